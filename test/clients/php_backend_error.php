<?php
/**
 * Connects through wirecache with mysqli or PDO and, when given, runs one
 * statement; prints one JSON object with the error the driver reported
 * (errno, SQLSTATE, message), or {"ok": true}. Used while the backend is down
 * or lost, to check that PHP shows the proxy's message.
 *
 * Arguments: host port user password db driver(mysqli|pdo) [sql]
 */
require __DIR__ . '/common.php';

$driver = arg(6, 'WC_DRIVER', 'mysqli');
$sql = arg(7, 'WC_SQL', '');
$out = ['driver' => $driver, 'ok' => false];
try {
    if ($driver === 'pdo') {
        $pdo = new PDO("mysql:host=$host;port=$port;dbname=$db", $user, $password, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
        if ($sql !== '') $pdo->query($sql)->fetchAll();
    } else {
        mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
        $m = new mysqli($host, $user, $password, $db, $port);
        if ($sql !== '') $m->query($sql);
    }
    $out['ok'] = true;
} catch (mysqli_sql_exception $e) {
    $out += ['errno' => $e->getCode(), 'sqlstate' => $e->getSqlState(), 'message' => $e->getMessage()];
} catch (PDOException $e) {
    $out += ['errno' => $e->errorInfo[1] ?? null, 'sqlstate' => $e->errorInfo[0] ?? null, 'message' => $e->getMessage()];
}
echo json_encode($out), "\n";
