<?php
/**
 * Exercises the MySQL protocol through PHP's PDO_MySQL (mysqlnd) and prints
 * ONE JSON object on stdout. test/php_clients.test.ts runs it directly
 * against MariaDB and through wirecache, in both prepare modes, and compares
 * the outputs; per-connection values are kept under "meta" (not compared).
 *
 *   php php_pdo.php HOST PORT USER PASSWORD DATABASE MODE
 *
 * MODE is "emulate" (PDO::ATTR_EMULATE_PREPARES => true: everything is text
 * COM_QUERY) or "native" (false: server-side COM_STMT_PREPARE/EXECUTE).
 * Arguments fall back to WC_HOST, WC_PORT, WC_USER, WC_PASSWORD, WC_DB, WC_MODE.
 * Exits 1 (message on stderr) on any unexpected failure.
 */

declare(strict_types=1);

require __DIR__ . '/common.php';
$mode = arg(6, 'WC_MODE', 'native');
if ($mode !== 'emulate' && $mode !== 'native') {
    fwrite(STDERR, "php_pdo.php: MODE must be 'emulate' or 'native', got '$mode'\n");
    exit(2);
}

$T = "php_pdo_{$mode}_items";
$PROC = "php_pdo_{$mode}_two_sets";

function pdoError(PDOException $e): array
{
    return [
        'class' => get_class($e),
        'code' => $e->getCode(),
        'sqlstate' => $e->errorInfo[0] ?? null,
        'errno' => $e->errorInfo[1] ?? null,
        'message' => $e->errorInfo[2] ?? null,
    ];
}

/** Column metadata of a statement, minus the PDO-internal 'pdo_type' guess (derived from the same bytes anyway). */
function meta(PDOStatement $st): array
{
    $out = [];
    for ($i = 0; $i < $st->columnCount(); $i++) {
        $c = $st->getColumnMeta($i);
        $out[] = [
            'name' => $c['name'], 'table' => $c['table'], 'len' => $c['len'], 'precision' => $c['precision'],
            'native_type' => $c['native_type'] ?? null, 'flags' => $c['flags'],
        ];
    }
    return $out;
}

try {
    $out = ['mode' => $mode];
    $meta = [];

    // ------------------------------------------------------------------ connect
    $pdo = new PDO("mysql:host=$host;port=$port;dbname=$db;charset=utf8mb4", $user, $password, [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_EMULATE_PREPARES => $mode === 'emulate',
        PDO::ATTR_STRINGIFY_FETCHES => false,
        PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
        PDO::ATTR_TIMEOUT => 10,
        PDO::MYSQL_ATTR_MULTI_STATEMENTS => false,
    ]);
    $meta['server_version'] = $pdo->getAttribute(PDO::ATTR_SERVER_VERSION);
    $meta['server_info'] = $pdo->getAttribute(PDO::ATTR_SERVER_INFO);
    $meta['connection_status'] = $pdo->getAttribute(PDO::ATTR_CONNECTION_STATUS);
    $out['connect'] = [
        'emulate_prepares' => (bool) $pdo->getAttribute(PDO::ATTR_EMULATE_PREPARES),
        'driver' => $pdo->getAttribute(PDO::ATTR_DRIVER_NAME),
        'row' => $pdo->query('SELECT DATABASE() AS db, CURRENT_USER() AS u, @@character_set_client AS cs')->fetch(),
    ];

    // ------------------------------------------------------------------ setup (fresh table: equal insert ids every run)
    $pdo->exec("DROP TABLE IF EXISTS $T");
    $pdo->exec("CREATE TABLE $T " . ITEMS_TABLE_DEFINITION);
    $pdo->exec("DROP PROCEDURE IF EXISTS $PROC");
    $pdo->exec("CREATE PROCEDURE $PROC(IN p INT) BEGIN
        SELECT p AS v, 'one' AS tag;
        SELECT id, name, qty FROM $T WHERE id <= p ORDER BY id;
    END");

    // ------------------------------------------------------------------ simple SELECT
    $st = $pdo->query("SELECT 1 AS one, 'abc' AS s, 2.5 AS d, -7 AS neg, 1.5e0 AS dbl");
    $out['simple'] = ['rows' => $st->fetchAll(), 'meta' => meta($st)];

    // ------------------------------------------------------------------ NULLs, utf8mb4, binary
    $st = $pdo->query("SELECT NULL AS n, '😀 héllo ✓' AS emoji, X'00FF7F80' AS bin, CHAR_LENGTH('😀') AS chars,
                               LENGTH('😀') AS bytes, '' AS empty, HEX('😀') AS hex");
    $row = $st->fetch();
    $row['bin'] = bin2hex($row['bin']);
    $out['special'] = ['row' => $row, 'meta' => meta($st)];
    $out['quote'] = $pdo->quote("it's \"quoted\"\\ \0 😀");

    // ------------------------------------------------------------------ INSERT: affected rows, insert id
    $n = $pdo->exec("INSERT INTO $T (name, qty, price) VALUES ('a', 1, 1.50), ('b', NULL, 2.25), ('c😀', 3, 3.00)");
    $out['insert_multi'] = ['exec' => $n, 'last_insert_id' => $pdo->lastInsertId()];
    $st = $pdo->prepare("INSERT INTO $T (name, qty, price, data) VALUES ('d', 4, 4.00, X'00010203FF')");
    $st->execute();
    $out['insert_one'] = ['row_count' => $st->rowCount(), 'last_insert_id' => $pdo->lastInsertId()];
    $out['update'] = $pdo->exec("UPDATE $T SET qty = qty + 1 WHERE qty IS NOT NULL");
    $out['update_nochange'] = $pdo->exec("UPDATE $T SET qty = qty WHERE id = 1");
    $out['table'] = $pdo->query("SELECT id, name, qty, price, HEX(data) AS data FROM $T ORDER BY id")->fetchAll();

    // ------------------------------------------------------------------ errors
    $errors = [];
    foreach ([
        'bad_table' => 'SELECT * FROM php_no_such_table',
        'syntax' => 'SELEC 1',
        'duplicate' => "INSERT INTO $T (name) VALUES ('a')",
    ] as $key => $sql) {
        try {
            $pdo->query($sql);
            $errors[$key] = 'no error';
        } catch (PDOException $e) {
            $errors[$key] = pdoError($e);
        }
    }
    try {
        $st = $pdo->prepare('SELECT * FROM php_no_such_table WHERE id = ?');
        $st->execute([1]);
        $errors['prepared_bad_table'] = 'no error';
    } catch (PDOException $e) {
        $errors['prepared_bad_table'] = pdoError($e);
    }
    $errors['after'] = $pdo->query('SELECT 7 AS x')->fetch();
    $out['errors'] = $errors;

    // ------------------------------------------------------------------ stored procedure with two result sets
    // Free the previous statement first: PDO's statement destructor drains any
    // pending results of the connection, which would eat the CALL's later sets.
    $st = null;
    $st = $pdo->query("CALL $PROC(2)");
    $sets = [];
    do {
        if ($st->columnCount() > 0) $sets[] = $st->fetchAll();
    } while ($st->nextRowset());
    $st->closeCursor();
    $out['call'] = $sets;
    $st = null;
    $st = $pdo->prepare("CALL $PROC(?)");
    $sets = [];
    foreach ([1, 3] as $p) {
        $st->execute([$p]);
        $one = [];
        do {
            if ($st->columnCount() > 0) $one[] = $st->fetchAll();
        } while ($st->nextRowset());
        $st->closeCursor();
        $sets[] = $one;
    }
    $out['call_prepared'] = $sets;
    $out['after_call'] = $pdo->query('SELECT 9 AS x')->fetch();

    // ------------------------------------------------------------------ transactions
    $tx = [];
    $count = static fn (): int => (int) $pdo->query("SELECT COUNT(*) FROM $T")->fetchColumn();
    $tx['before'] = $count();
    $pdo->beginTransaction();
    $pdo->exec("INSERT INTO $T (name, qty) VALUES ('tx-rolled-back', 1)");
    $tx['in_transaction'] = $pdo->inTransaction();
    $tx['server_in_transaction'] = (int) $pdo->query('SELECT @@in_transaction')->fetchColumn();
    $tx['inside'] = $count();
    $pdo->rollBack();
    $tx['after_rollback'] = $count();
    $tx['in_transaction_after_rollback'] = $pdo->inTransaction();
    $pdo->beginTransaction();
    $ins = $pdo->prepare("INSERT INTO $T (name, qty) VALUES (?, ?)");
    $ins->execute(['tx-committed', 2]);
    $pdo->commit();
    $tx['after_commit'] = $count();
    $out['transactions'] = $tx;

    // ------------------------------------------------------------------ prepared statements reused many times
    $prep = [];
    $ins = $pdo->prepare("INSERT INTO $T (name, qty, price) VALUES (:name, :qty, :price)");
    $prep['insert_loop'] = [];
    for ($i = 1; $i <= 60; $i++) {
        $ins->bindValue(':name', "p$i " . str_repeat('é', $i % 4) . ($i % 5 === 0 ? '😀' : ''), PDO::PARAM_STR);
        if ($i % 7 === 0) $ins->bindValue(':qty', null, PDO::PARAM_NULL);
        else $ins->bindValue(':qty', $i * 10, PDO::PARAM_INT);
        $ins->bindValue(':price', sprintf('%.2f', $i + 0.25), PDO::PARAM_STR);
        $ins->execute();
        $prep['insert_loop'][] = [$ins->rowCount(), $pdo->lastInsertId()];
    }
    $sel = $pdo->prepare("SELECT id, name, qty, price FROM $T WHERE id = ?");
    $prep['select_loop'] = [];
    for ($id = 1; $id <= 70; $id += 3) {
        $sel->execute([$id]);
        $prep['select_loop'][] = $sel->fetchAll();
    }
    $prep['select_meta'] = meta($sel);
    $upd = $pdo->prepare("UPDATE $T SET qty = COALESCE(qty, 0) + ? WHERE id BETWEEN ? AND ?");
    $prep['update_loop'] = [];
    foreach ([[1, 1, 5], [2, 10, 20], [3, 1000, 2000]] as $args) {
        $upd->execute($args);
        $prep['update_loop'][] = $upd->rowCount();
    }

    // NULL parameters
    $st = $pdo->prepare("SELECT ? IS NULL AS is_null, COALESCE(?, 'dflt') AS c, ? AS s");
    $st->bindValue(1, null, PDO::PARAM_NULL);
    $st->bindValue(2, null, PDO::PARAM_NULL);
    $st->bindValue(3, 'hé 😀', PDO::PARAM_STR);
    $st->execute();
    $prep['null_param'] = $st->fetch();
    $st = $pdo->prepare("SELECT COUNT(*) FROM $T WHERE qty <=> ?");
    $st->execute([null]);
    $prep['null_safe_count'] = (int) $st->fetchColumn();

    // 1 MB blob parameter: as PARAM_LOB string and as a PARAM_LOB stream.
    $big = blob(1024 * 1024, 'wirecache-pdo-');
    $st = $pdo->prepare("INSERT INTO $T (name, data) VALUES (?, ?)");
    $st->bindValue(1, 'blob-string');
    $st->bindValue(2, $big, PDO::PARAM_LOB);
    $st->execute();
    $prep['blob_string_insert'] = [$st->rowCount(), $pdo->lastInsertId()];
    $fh = fopen('php://memory', 'w+b');
    fwrite($fh, $big);
    rewind($fh);
    $lob = $fh; // bindParam binds by reference and PDO may replace the stream with its contents
    $st->bindValue(1, 'blob-stream');
    $st->bindParam(2, $lob, PDO::PARAM_LOB);
    $st->execute();
    fclose($fh);
    $prep['blob_stream_insert'] = [$st->rowCount(), $pdo->lastInsertId()];
    $st = $pdo->prepare("SELECT name, LENGTH(data) AS len, SHA1(data) AS sha, data FROM $T WHERE name LIKE ? ORDER BY id");
    $st->execute(['blob-%']);
    $prep['blobs'] = [];
    foreach ($st->fetchAll() as $row) {
        $prep['blobs'][] = [
            'name' => $row['name'], 'len' => (int) $row['len'], 'sha' => $row['sha'],
            'fetched_len' => strlen($row['data']), 'fetched_matches' => $row['data'] === $big,
        ];
    }
    $prep['blob_sha_expected'] = sha1($big);

    // Many rows through a prepared statement.
    $st = $pdo->prepare("SELECT seq, CONCAT('row-', seq) AS label FROM seq_1_to_3000 WHERE seq > ?");
    $st->execute([0]);
    $rows = $st->fetchAll(PDO::FETCH_NUM);
    $prep['many_rows'] = ['count' => count($rows), 'sum' => array_sum(array_column($rows, 0)), 'last' => end($rows)];
    $out['prepared'] = $prep;

    $out['final'] = [
        'count' => $count(),
        'qty_sum' => (int) $pdo->query("SELECT SUM(qty) FROM $T")->fetchColumn(),
        'null_qty' => (int) $pdo->query("SELECT COUNT(*) FROM $T WHERE qty IS NULL")->fetchColumn(),
    ];

    $pdo->exec("DROP PROCEDURE $PROC");
    $pdo->exec("DROP TABLE $T");
    $pdo = null;

    echo json_encode(['results' => $out, 'meta' => $meta], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION | JSON_THROW_ON_ERROR), "\n";
    exit(0);
} catch (Throwable $e) {
    fwrite(STDERR, 'php_pdo.php: unexpected ' . get_class($e) . ' (' . $e->getCode() . '): ' . $e->getMessage() . ' at line ' . $e->getLine() . "\n");
    exit(1);
}
