<?php
/**
 * Exercises the MySQL protocol through PHP's mysqli (mysqlnd) and prints ONE
 * JSON object on stdout. test/php_clients.test.ts runs it once directly
 * against MariaDB and once through wirecache and compares the two outputs;
 * everything that legitimately differs per connection (thread id, host info,
 * server uptime) is kept under "meta", which the test does not compare.
 *
 *   php php_mysqli.php HOST PORT USER PASSWORD DATABASE
 *
 * Arguments fall back to WC_HOST, WC_PORT, WC_USER, WC_PASSWORD, WC_DB.
 * Exits 1 (message on stderr) on any unexpected failure.
 */

declare(strict_types=1);

require __DIR__ . '/common.php';

const T = 'php_mysqli_items';
const PROC = 'php_mysqli_two_sets';

/** Column metadata as plain arrays (everything the server sent, no connection-specific parts). */
function fields(mysqli_result $r): array
{
    $out = [];
    foreach ($r->fetch_fields() as $f) {
        $out[] = [
            'name' => $f->name, 'orgname' => $f->orgname, 'table' => $f->table, 'orgtable' => $f->orgtable,
            'db' => $f->db, 'length' => $f->length, 'charsetnr' => $f->charsetnr, 'flags' => $f->flags,
            'type' => $f->type, 'decimals' => $f->decimals,
        ];
    }
    return $out;
}

/** Drains a multi_query / multi-result statement: one entry per result. */
function drainMulti(mysqli $m): array
{
    $results = [];
    do {
        $r = $m->store_result();
        if ($r instanceof mysqli_result) {
            $results[] = ['rows' => $r->fetch_all(MYSQLI_ASSOC), 'fields' => count($r->fetch_fields())];
            $r->free();
        } else {
            $results[] = ['affected_rows' => $m->affected_rows, 'insert_id' => $m->insert_id];
        }
        if (!$m->more_results()) break;
        $m->next_result();
    } while (true);
    return $results;
}

function exceptionInfo(Throwable $e): array
{
    return [
        'class' => get_class($e),
        'code' => $e->getCode(),
        'sqlstate' => $e instanceof mysqli_sql_exception ? $e->getSqlState() : null,
        'message' => $e->getMessage(),
    ];
}

try {
    mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    $out = [];
    $meta = [];

    // ------------------------------------------------------------------ connect
    $m = mysqli_init();
    $m->options(MYSQLI_OPT_INT_AND_FLOAT_NATIVE, 1);
    $m->options(MYSQLI_OPT_CONNECT_TIMEOUT, 10);
    $m->real_connect($host, $user, $password, $db, $port);
    $m->set_charset('utf8mb4');
    $meta['server_info'] = $m->server_info;
    $meta['host_info'] = $m->host_info;
    $meta['thread_id'] = $m->thread_id;
    $out['connect'] = [
        'charset' => $m->character_set_name(),
        'protocol_version' => $m->protocol_version,
        'database' => $m->query('SELECT DATABASE() AS db')->fetch_assoc()['db'],
        'current_user' => $m->query('SELECT CURRENT_USER() AS u')->fetch_assoc()['u'],
    ];

    // ------------------------------------------------------------------ setup (fresh table: equal insert ids every run)
    $m->query('DROP TABLE IF EXISTS ' . T);
    $m->query('CREATE TABLE ' . T . ' ' . ITEMS_TABLE_DEFINITION);
    $m->query('DROP PROCEDURE IF EXISTS ' . PROC);
    $m->query('CREATE PROCEDURE ' . PROC . '(IN p INT) BEGIN
        SELECT p AS v, \'one\' AS tag;
        SELECT id, name, qty FROM ' . T . ' WHERE id <= p ORDER BY id;
    END');

    // ------------------------------------------------------------------ simple SELECT
    $r = $m->query("SELECT 1 AS one, 'abc' AS s, 2.5 AS d, -7 AS neg, 1.5e0 AS dbl, 18446744073709551615 AS big");
    $out['simple'] = ['rows' => $r->fetch_all(MYSQLI_ASSOC), 'fields' => fields($r)];

    // ------------------------------------------------------------------ NULLs, utf8mb4, binary
    $r = $m->query("SELECT NULL AS n, '😀 héllo ✓' AS emoji, X'00FF7F80' AS bin, CHAR_LENGTH('😀') AS chars,
                            LENGTH('😀') AS bytes, CAST(NULL AS SIGNED) AS n2, '' AS empty, HEX('😀') AS hex");
    $row = $r->fetch_assoc();
    $row['bin'] = bin2hex($row['bin']);
    $out['special'] = ['row' => $row, 'fields' => fields($r)];
    $out['escape'] = $m->real_escape_string("it's \"quoted\"\\ \0 😀");

    // ------------------------------------------------------------------ INSERT: affected rows, insert id, info
    $m->query('INSERT INTO ' . T . " (name, qty, price) VALUES ('a', 1, 1.50), ('b', NULL, 2.25), ('c😀', 3, 3.00)");
    $out['insert_multi'] = ['affected_rows' => $m->affected_rows, 'insert_id' => $m->insert_id, 'info' => $m->info];
    $m->query('INSERT INTO ' . T . " (name, qty, price, data) VALUES ('d', 4, 4.00, X'00010203FF')");
    $out['insert_one'] = ['affected_rows' => $m->affected_rows, 'insert_id' => $m->insert_id];
    $m->query('UPDATE ' . T . ' SET qty = qty + 1 WHERE qty IS NOT NULL');
    $out['update'] = ['affected_rows' => $m->affected_rows, 'info' => $m->info];
    $m->query('UPDATE ' . T . ' SET qty = qty WHERE id = 1');
    $out['update_nochange'] = ['affected_rows' => $m->affected_rows, 'info' => $m->info];
    $r = $m->query('SELECT id, name, qty, price, HEX(data) AS data FROM ' . T . ' ORDER BY id');
    $out['table'] = $r->fetch_all(MYSQLI_ASSOC);
    $out['warnings'] = ['count' => 0];
    $m->query("SELECT CAST('12abc' AS SIGNED) AS x");
    $out['warnings']['count'] = $m->warning_count;
    $w = $m->get_warnings();
    $out['warnings']['first'] = $w ? ['errno' => $w->errno, 'message' => $w->message] : null;

    // ------------------------------------------------------------------ errors
    $errors = [];
    foreach ([
        'bad_table' => 'SELECT * FROM php_no_such_table',
        'syntax' => 'SELEC 1',
        'duplicate' => 'INSERT INTO ' . T . " (name) VALUES ('a')",
    ] as $key => $sql) {
        try {
            $m->query($sql);
            $errors[$key] = 'no error';
        } catch (mysqli_sql_exception $e) {
            $errors[$key] = exceptionInfo($e) + ['errno' => $m->errno, 'sqlstate_conn' => $m->sqlstate];
        }
    }
    $errors['after'] = $m->query('SELECT 7 AS x')->fetch_assoc();
    $out['errors'] = $errors;

    // ------------------------------------------------------------------ multi statements
    $m->multi_query("SELECT 1 AS a; SELECT 'x' AS b, NULL AS c; UPDATE " . T . " SET qty = qty + 0 WHERE id = 1; INSERT INTO " . T . " (name) VALUES ('multi'); SELECT COUNT(*) AS n FROM " . T);
    $out['multi'] = drainMulti($m);
    $multiErr = ['results' => []];
    try {
        $m->multi_query('SELECT 1 AS first; SELECT * FROM php_no_such_table; SELECT 3 AS never');
        do {
            $r = $m->store_result();
            if ($r instanceof mysqli_result) $multiErr['results'][] = $r->fetch_all(MYSQLI_ASSOC);
            if (!$m->more_results()) break;
            $m->next_result();
        } while (true);
        $multiErr['error'] = 'no error';
    } catch (mysqli_sql_exception $e) {
        $multiErr['error'] = exceptionInfo($e);
    }
    $multiErr['after'] = $m->query('SELECT 8 AS x')->fetch_assoc();
    $out['multi_error'] = $multiErr;

    // ------------------------------------------------------------------ stored procedure with two result sets
    $m->multi_query('CALL ' . PROC . '(2)');
    $out['call_text'] = drainMulti($m);
    $st = $m->prepare('CALL ' . PROC . '(?)');
    $p = 3;
    $st->bind_param('i', $p);
    $st->execute();
    $sets = [];
    do {
        $r = $st->get_result();
        if ($r instanceof mysqli_result) $sets[] = $r->fetch_all(MYSQLI_ASSOC);
        else $sets[] = ['affected_rows' => $st->affected_rows];
    } while ($st->more_results() && $st->next_result());
    $st->close();
    $out['call_prepared'] = $sets;
    $out['after_call'] = $m->query('SELECT 9 AS x')->fetch_assoc();

    // ------------------------------------------------------------------ transactions
    $tx = [];
    $count = static fn (): int => (int) $m->query('SELECT COUNT(*) AS n FROM ' . T)->fetch_assoc()['n'];
    $tx['before'] = $count();
    $m->begin_transaction();
    $m->query('INSERT INTO ' . T . " (name, qty) VALUES ('tx-rolled-back', 1)");
    $tx['in_transaction'] = $m->query('SELECT @@in_transaction AS t')->fetch_assoc()['t'];
    $tx['inside'] = $count();
    $m->rollback();
    $tx['after_rollback'] = $count();
    $tx['in_transaction_after_rollback'] = $m->query('SELECT @@in_transaction AS t')->fetch_assoc()['t'];
    $m->begin_transaction();
    $m->query('INSERT INTO ' . T . " (name, qty) VALUES ('tx-committed', 2)");
    $m->commit();
    $tx['after_commit'] = $count();
    $m->autocommit(false);
    $m->query('UPDATE ' . T . " SET qty = 100 WHERE name = 'a'");
    $m->rollback();
    $m->autocommit(true);
    $tx['qty_after_autocommit_rollback'] = $m->query('SELECT qty FROM ' . T . " WHERE name = 'a'")->fetch_assoc()['qty'];
    $out['transactions'] = $tx;

    // ------------------------------------------------------------------ prepared statements
    $prep = [];
    $st = $m->prepare('SELECT id, name, qty, price FROM ' . T . ' WHERE id = ?');
    $prep['param_count'] = $st->param_count;
    $prep['field_count'] = $st->field_count;
    $id = 0;
    $st->bind_param('i', $id);
    $prep['select_loop'] = [];
    foreach ([1, 2, 3, 4, 99, 1] as $id) {
        $st->execute();
        $prep['select_loop'][] = $st->get_result()->fetch_all(MYSQLI_ASSOC);
    }
    $st->close();

    $st = $m->prepare('INSERT INTO ' . T . ' (name, qty, price) VALUES (?, ?, ?)');
    $name = '';
    $qty = null;
    $price = 0.0;
    $st->bind_param('sid', $name, $qty, $price);
    $prep['insert_loop'] = [];
    for ($i = 1; $i <= 25; $i++) {
        $name = "p$i " . str_repeat('é', $i % 4) . ($i % 5 === 0 ? '😀' : '');
        $qty = $i % 3 === 0 ? null : $i * 10;
        $price = $i + 0.25;
        $st->execute();
        $prep['insert_loop'][] = [$st->affected_rows, $st->insert_id];
    }
    $st->close();

    $st = $m->prepare('SELECT ? + 0 AS i, ? AS s, ? AS n, CAST(? AS DATETIME) AS dt, 1.5e0 AS dbl, CAST(2.5 AS DECIMAL(5,2)) AS dec_');
    $a = 41;
    $b = 'hé 😀';
    $c = null;
    $d = '2024-02-29 13:14:15';
    $st->bind_param('isss', $a, $b, $c, $d);
    $st->execute();
    $res = $st->get_result();
    $prep['typed'] = ['row' => $res->fetch_assoc(), 'fields' => fields($res)];
    $st->close();

    // 1 MB blob: once via COM_STMT_SEND_LONG_DATA ('b'), once inline ('s').
    $big = blob(1024 * 1024, 'wirecache-');
    $st = $m->prepare('INSERT INTO ' . T . ' (name, data) VALUES (?, ?)');
    $bname = 'blob-long-data';
    $nullv = null;
    $st->bind_param('sb', $bname, $nullv);
    foreach (str_split($big, 256 * 1024) as $chunk) $st->send_long_data(1, $chunk);
    $st->execute();
    $prep['blob_long_data_insert'] = [$st->affected_rows, $st->insert_id];
    $st->close();
    $st = $m->prepare('INSERT INTO ' . T . ' (name, data) VALUES (?, ?)');
    $bname = 'blob-inline';
    $inline = $big;
    $st->bind_param('ss', $bname, $inline);
    $st->execute();
    $prep['blob_inline_insert'] = [$st->affected_rows, $st->insert_id];
    $st->close();
    $st = $m->prepare('SELECT name, LENGTH(data) AS len, SHA1(data) AS sha, data FROM ' . T . ' WHERE name LIKE ? ORDER BY id');
    $like = 'blob-%';
    $st->bind_param('s', $like);
    $st->execute();
    $prep['blobs'] = [];
    foreach ($st->get_result()->fetch_all(MYSQLI_ASSOC) as $row) {
        $prep['blobs'][] = [
            'name' => $row['name'], 'len' => $row['len'], 'sha' => $row['sha'],
            'fetched_len' => strlen($row['data']), 'fetched_matches' => $row['data'] === $big,
        ];
    }
    $st->close();
    $prep['blob_sha_expected'] = sha1($big);

    // Many rows through the binary protocol.
    $st = $m->prepare('SELECT seq, CONCAT(\'row-\', seq) AS label FROM seq_1_to_3000 WHERE seq > ?');
    $min = 0;
    $st->bind_param('i', $min);
    $st->execute();
    $rows = $st->get_result()->fetch_all(MYSQLI_NUM);
    $prep['many_rows'] = ['count' => count($rows), 'sum' => array_sum(array_column($rows, 0)), 'last' => end($rows)];
    $st->close();

    try {
        $m->prepare('SELECT * FROM php_no_such_table WHERE id = ?');
        $prep['prepare_error'] = 'no error';
    } catch (mysqli_sql_exception $e) {
        $prep['prepare_error'] = exceptionInfo($e);
    }
    $out['prepared'] = $prep;

    // ------------------------------------------------------------------ a large text result, ping, select_db, stat, change_user
    $r = $m->query('SELECT seq, REPEAT(\'x\', seq % 50) AS pad FROM seq_1_to_5000');
    $rows = $r->fetch_all(MYSQLI_NUM);
    $out['text_many_rows'] = ['count' => count($rows), 'sum' => array_sum(array_column($rows, 0))];
    $out['ping'] = $m->ping();
    $m->select_db('mysql');
    $out['select_db'] = $m->query('SELECT DATABASE() AS db')->fetch_assoc()['db'];
    $m->select_db($db);
    $meta['stat'] = $m->stat();
    $m->change_user('other', 'other_pw', $db);
    $out['change_user'] = $m->query('SELECT CURRENT_USER() AS u, DATABASE() AS db')->fetch_assoc();
    $m->change_user($user, $password, $db);
    $out['change_user_back'] = $m->query('SELECT CURRENT_USER() AS u, @@in_transaction AS t')->fetch_assoc();
    $out['final_count'] = (int) $m->query('SELECT COUNT(*) AS n FROM ' . T)->fetch_assoc()['n'];

    $m->query('DROP PROCEDURE ' . PROC);
    $m->query('DROP TABLE ' . T);
    $m->close();

    echo json_encode(['results' => $out, 'meta' => $meta], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION | JSON_THROW_ON_ERROR), "\n";
    exit(0);
} catch (Throwable $e) {
    fwrite(STDERR, 'php_mysqli.php: unexpected ' . get_class($e) . ' (' . $e->getCode() . '): ' . $e->getMessage() . ' at line ' . $e->getLine() . "\n");
    exit(1);
}
