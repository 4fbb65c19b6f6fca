<?php
/**
 * What a PHP application's installer asks before it writes anything, as
 * popular installers do it (mysqli and PDO): is the server writable
 * (`SELECT @@GLOBAL.read_only AS Value`, SHOW VARIABLES), which version and
 * binary log format it runs, then a first table written and read back.
 * Prints ONE JSON object; test/server_state.test.ts runs it through the
 * read/write split and directly against the primary.
 *
 *   php php_installer_checks.php HOST PORT USER PASSWORD DATABASE
 */

declare(strict_types=1);

require __DIR__ . '/common.php';

$host = arg(1, 'WC_HOST', '127.0.0.1');
$port = (int) arg(2, 'WC_PORT', '3306');
$user = arg(3, 'WC_USER', 'app');
$password = arg(4, 'WC_PASSWORD', '');
$db = arg(5, 'WC_DB', 'wc_test');

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$out = [];
try {
    $m = new mysqli($host, $user, $password, $db, $port);
    $out['mysqli_read_only'] = $m->query('SELECT @@GLOBAL.read_only AS Value')->fetch_assoc()['Value'];
    $out['mysqli_show_read_only'] = $m->query("SHOW VARIABLES LIKE 'read_only'")->fetch_assoc()['Value'];
    $out['mysqli_log_bin'] = $m->query('SELECT @@log_bin AS v, @@binlog_format AS f')->fetch_assoc();
    $m->query('DROP TABLE IF EXISTS php_installer_config');
    $m->query('CREATE TABLE php_installer_config (name VARCHAR(64) PRIMARY KEY, value TEXT)');
    $m->query("INSERT INTO php_installer_config VALUES ('version', '1.0')");
    $out['mysqli_written'] = $m->query("SELECT value FROM php_installer_config WHERE name = 'version'")->fetch_assoc()['value'];
    $m->close();

    $pdo = new PDO("mysql:host=$host;port=$port;dbname=$db", $user, $password, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_EMULATE_PREPARES => false]);
    $stmt = $pdo->prepare('SELECT @@GLOBAL.read_only AS Value');
    $stmt->execute();
    $out['pdo_read_only'] = $stmt->fetch(PDO::FETCH_ASSOC)['Value'];
    $out['pdo_global_variables'] = $pdo->query("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'READ_ONLY'")->fetchColumn();
    $pdo->exec("UPDATE php_installer_config SET value = '1.1' WHERE name = 'version'");
    $out['pdo_written'] = $pdo->query("SELECT value FROM php_installer_config WHERE name = 'version'")->fetchColumn();
    $pdo->exec('DROP TABLE php_installer_config');
} catch (Throwable $e) {
    fwrite(STDERR, get_class($e) . ': ' . $e->getMessage() . "\n");
    exit(1);
}
echo json_encode($out), "\n";
