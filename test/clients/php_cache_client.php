<?php
/**
 * Runs a list of statements through PHP's mysqlnd drivers (PDO_MySQL or
 * mysqli) on ONE connection and prints ONE JSON object on stdout: for each
 * statement, the column names (and, for mysqli, the field type ids) and the
 * rows, every value as a string or null. test/cache_clients.test.ts uses it
 * to read and fill wirecache's query cache from PHP.
 *
 *   php php_cache_client.php HOST PORT USER PASSWORD DATABASE < plan.json
 *
 * plan.json: {"driver": "pdo" | "mysqli", "emulate": bool (PDO only),
 *             "ops": [{"sql": "...", "params": [..]?, "types": "is"? (mysqli)}]}
 *
 * An op without "params" is a plain query (COM_QUERY, or for PDO with native
 * prepares whatever PDO::query does). An op with "params" is a prepared
 * statement: PDO::prepare + execute($params) (every value bound as a string),
 * or mysqli::prepare + bind_param($types, ...$params) + execute. Statements
 * are prepared once per distinct SQL text and executed as often as the plan
 * lists them. Both drivers log in with the utf8mb4 character set in the
 * handshake (collation 45, utf8mb4_general_ci), never with SET NAMES.
 * Exits 1 (message on stderr) on any failure.
 */

declare(strict_types=1);

require __DIR__ . '/common.php';

/** Values as the test compares them: null, or the string form of what the driver returned. */
function normalise(array $rows): array
{
    return array_map(static fn (array $row): array => array_map(static fn ($v) => $v === null ? null : (string) $v, $row), $rows);
}

try {
    $plan = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
    $driver = $plan['driver'];
    $out = [];
    $meta = ['driver' => $driver];

    if ($driver === 'pdo') {
        $pdo = new PDO("mysql:host=$host;port=$port;dbname=$db;charset=utf8mb4", $user, $password, [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_EMULATE_PREPARES => (bool) $plan['emulate'],
            PDO::ATTR_STRINGIFY_FETCHES => false,
            PDO::ATTR_TIMEOUT => 10,
        ]);
        $meta['emulate_prepares'] = (bool) $pdo->getAttribute(PDO::ATTR_EMULATE_PREPARES);
        $statements = [];
        foreach ($plan['ops'] as $op) {
            if (array_key_exists('params', $op)) {
                $st = $statements[$op['sql']] ??= $pdo->prepare($op['sql']);
                $st->execute(array_map('strval', $op['params']));
            } else {
                $st = $pdo->query($op['sql']);
            }
            $columns = [];
            for ($i = 0; $i < $st->columnCount(); $i++) $columns[] = $st->getColumnMeta($i)['name'];
            $out[] = ['columns' => $columns, 'rows' => normalise($st->fetchAll(PDO::FETCH_NUM))];
            $st->closeCursor();
        }
        $pdo = null;
    } elseif ($driver === 'mysqli') {
        mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
        $m = mysqli_init();
        $m->options(MYSQLI_SET_CHARSET_NAME, 'utf8mb4');
        $m->options(MYSQLI_OPT_CONNECT_TIMEOUT, 10);
        $m->real_connect($host, $user, $password, $db, $port);
        $meta['charset'] = $m->character_set_name();
        $statements = [];
        foreach ($plan['ops'] as $op) {
            if (array_key_exists('params', $op)) {
                $st = $statements[$op['sql']] ??= $m->prepare($op['sql']);
                $params = $op['params'];
                $st->bind_param($op['types'], ...$params);
                $st->execute();
                $r = $st->get_result();
            } else {
                $r = $m->query($op['sql']);
            }
            $fields = $r->fetch_fields();
            $out[] = [
                'columns' => array_map(static fn ($f) => $f->name, $fields),
                'types' => array_map(static fn ($f) => $f->type, $fields),
                'rows' => normalise($r->fetch_all(MYSQLI_NUM)),
            ];
            $r->free();
        }
        foreach ($statements as $st) $st->close();
        $m->close();
    } else {
        throw new InvalidArgumentException("unknown driver '$driver'");
    }

    echo json_encode(['results' => $out, 'meta' => $meta], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR), "\n";
    exit(0);
} catch (Throwable $e) {
    fwrite(STDERR, 'php_cache_client.php: unexpected ' . get_class($e) . ' (' . $e->getCode() . '): ' . $e->getMessage() . ' at line ' . $e->getLine() . "\n");
    exit(1);
}
