<?php
/**
 * PHP's memcached extension as the session handler, pointed at a memcached
 * server (wirecache's memcached API or a real memcached).
 *
 * Usage: php php_memcached_session.php HOST PORT ACTION SESSION_ID BINARY(0|1)
 *   ACTION write: stores user, a counter and a binary string in the session
 *   ACTION read:  prints the session as one JSON object (binary values hex-encoded)
 *
 * Locking stays on (memcached.sess_locking, the default): session_start()
 * takes the lock with an add of "lock.<key>" (with an expiry) and
 * session_write_close() writes the data with a set (expiry
 * session.gc_maxlifetime) and releases the lock with a delete.
 */

declare(strict_types=1);

error_reporting(E_ALL);
set_error_handler(static function (int $no, string $msg, string $file, int $line): bool {
    throw new ErrorException($msg, 0, $no, $file, $line);
});

if ($argc < 6) {
    fwrite(STDERR, "usage: php_memcached_session.php HOST PORT write|read SESSION_ID 0|1\n");
    exit(2);
}
[, $host, $port, $action, $sid, $binary] = $argv;

if (!extension_loaded('memcached')) {
    fwrite(STDERR, "the memcached extension is not loaded\n");
    exit(3);
}

ini_set('session.save_handler', 'memcached');
ini_set('session.save_path', "$host:$port");
ini_set('memcached.sess_binary_protocol', $binary === '1' ? '1' : '0');
ini_set('memcached.sess_locking', '1');
// The lock is an add with this expiry (0 would fall back to max_execution_time, 0 in the CLI).
ini_set('memcached.sess_lock_expire', '30');
ini_set('session.use_cookies', '0');
ini_set('session.use_only_cookies', '0');
ini_set('session.use_strict_mode', '0');
ini_set('session.cache_limiter', '');
ini_set('session.gc_probability', '0');

session_id($sid);
if (!session_start()) {
    fwrite(STDERR, "session_start failed\n");
    exit(1);
}

$settings = [
    'binary_protocol' => ini_get('memcached.sess_binary_protocol'),
    'locking' => ini_get('memcached.sess_locking'),
    'lock_expire' => ini_get('memcached.sess_lock_expire'),
    'prefix' => ini_get('memcached.sess_prefix'),
];

if ($action === 'write') {
    $_SESSION['user'] = 'alice';
    $_SESSION['counter'] = ($_SESSION['counter'] ?? 0) + 1;
    $_SESSION['bin'] = "\x00\x01\x02\r\n\xff\xfe'\"\\|;:";
    $ok = session_write_close();
    echo json_encode(['written' => $ok, 'id' => $sid, 'settings' => $settings]), "\n";
} elseif ($action === 'read') {
    $data = [];
    foreach ($_SESSION as $k => $v) $data[$k] = $k === 'bin' ? bin2hex($v) : $v;
    session_write_close();
    echo json_encode(['session' => $data, 'id' => $sid, 'settings' => $settings], JSON_FORCE_OBJECT), "\n";
} else {
    fwrite(STDERR, "unknown action $action\n");
    exit(2);
}
