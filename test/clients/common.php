<?php
/**
 * Shared by the PHP client scripts: strict error handling, argument parsing
 * and deterministic test data.
 */

declare(strict_types=1);

error_reporting(E_ALL);
set_error_handler(static function (int $no, string $msg, string $file, int $line): bool {
    throw new ErrorException($msg, 0, $no, $file, $line);
});

/** Argument $i, else the environment variable $env, else $default. */
function arg(int $i, string $env, string $default): string
{
    global $argv;
    if (isset($argv[$i]) && $argv[$i] !== '') return $argv[$i];
    $v = getenv($env);
    return $v === false ? $default : $v;
}

/** A deterministic binary string of $n bytes covering every byte value. */
function blob(int $n, string $salt): string
{
    $out = '';
    for ($i = 0; strlen($out) < $n; $i++) $out .= hash('sha256', "$salt$i", true);
    return substr($out, 0, $n);
}

$host = arg(1, 'WC_HOST', '127.0.0.1');
$port = (int) arg(2, 'WC_PORT', '3306');
$user = arg(3, 'WC_USER', 'app');
$password = arg(4, 'WC_PASSWORD', '');
$db = arg(5, 'WC_DB', 'wc_test');

/** Columns of the items table both scripts create fresh on every run (so insert ids are equal run to run). */
const ITEMS_TABLE_DEFINITION = '(
        id INT AUTO_INCREMENT PRIMARY KEY,
        name VARCHAR(64) CHARACTER SET utf8mb4 NOT NULL,
        qty INT NULL,
        price DECIMAL(10,2) NULL,
        data LONGBLOB NULL,
        UNIQUE KEY uq_name (name)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4';
