<?php
/**
 * Connects through wirecache with TLS from PHP's mysqlnd, with mysqli and
 * with PDO, and prints one JSON object: for each driver the cipher mysqlnd
 * negotiated and the result of a query. Usage: php php_tls.php HOST PORT USER PASSWORD DB CA_FILE
 */
declare(strict_types=1);
require __DIR__ . '/common.php';

[$host, $port, $user, $password, $db, $ca] = [arg(1, 'H', '127.0.0.1'), (int) arg(2, 'P', '6033'), arg(3, 'U', 'app'), arg(4, 'PW', ''), arg(5, 'DB', 'wc_test'), arg(6, 'CA', '')];

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$m = mysqli_init();
$m->ssl_set(null, null, $ca, null, null);
$m->real_connect($host, $user, $password, $db, $port, null, MYSQLI_CLIENT_SSL_DONT_VERIFY_SERVER_CERT);
$cipher = $m->query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")->fetch_row();
$mysqli = ['value' => $m->query('SELECT 40 + 2 AS v')->fetch_assoc()['v'], 'host_info' => $m->host_info];
$m->close();

$pdo = new PDO("mysql:host=$host;port=$port;dbname=$db", $user, $password, [
    PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
    PDO::MYSQL_ATTR_SSL_CA => $ca,
    PDO::MYSQL_ATTR_SSL_VERIFY_SERVER_CERT => false,
]);
$pdoValue = $pdo->query('SELECT 40 + 2 AS v')->fetch(PDO::FETCH_ASSOC)['v'];

echo json_encode(['mysqli' => $mysqli, 'pdo' => ['value' => $pdoValue]]), "\n";
