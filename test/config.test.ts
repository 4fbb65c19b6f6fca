import { availableParallelism } from 'node:os';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { doubleSha1 } from '../src/config/accounts.js';
import { autoWorkers, loadConfig, parseConfig } from '../src/config/load.js';
import { findUser } from '../src/config/lookup.js';
import { ConfigError } from '../src/config/yaml_locations.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sha1 = (data: string | Buffer) => createHash('sha1').update(data).digest();

const MINIMAL = `backends:
  - name: primary
    host: db.internal
users:
  - name: app
    password: app_pw
`;

/** Parses `text` expecting a ConfigError and returns it. */
function configError(text: string, file = 'test.yaml'): ConfigError {
  try {
    parseConfig(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('config.example.yaml', () => {
  it('loads and validates', () => {
    const path = join(repoRoot, 'config.example.yaml');
    const config = loadConfig(path);
    expect(config.sourcePath).toBe(path);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 6033 });
    expect(config.admin).toEqual({ host: '127.0.0.1', port: 9104, token: null });
    expect(config.queryStats).toEqual({ maxDigests: 1000 });
    expect(config.backends).toEqual([{ name: 'primary', host: '127.0.0.1', port: 3306, role: 'primary', weight: 1 }]);
    expect(config.users.map((u) => u.name)).toEqual(['app', 'report']);
    expect(findUser(config, 'report')?.passwordDoubleSha1.toString('hex')).toBe(
      '6c8989366eaf75bb670ad8ea7a7fc1176a95cef4',
    );
    expect(config.limits).toEqual({ maxClientConnections: 1000, maxPacketBytes: 67108864, maxUserConnections: 0, loginFailuresPerMinute: 10, loginBlockSeconds: 60 });
    expect(config.log.level).toBe('info');
    expect(config.monitor).toBeNull();
    expect(config.routing).toEqual({ maxReplicationLagSeconds: 10, consistency: 'session', consistencyWaitMs: 500 });
  });

  it('loads with its commented monitor, binlog, cache and memcached_api sections turned on', () => {
    const text = readFileSync(join(repoRoot, 'config.example.yaml'), 'utf8')
      .replace(/^# (monitor:|cache:|binlog:|memcached_api:)/gm, '$1')
      .replace(/^ {2}# (token:)/m, '  $1')
      .replace(/^#( {2,}[^ #])/gm, '$1');
    const config = parseConfig(text, 'example-uncommented.yaml');
    expect(config.monitor).toEqual({
      user: 'wirecache_monitor',
      password: 'monitor_pw',
      intervalMs: 1000,
      checkTimeoutMs: 1000,
      failAfter: 3,
      recoverAfter: 3,
      heartbeatTable: 'wirecache.heartbeat',
    });
    expect(config.cache?.rules.find((r) => r.name === 'reports')).toMatchObject({ route: 'replica', consistency: 'eventual' });
    expect(config.admin.token).toBe('change-me-to-a-long-random-string');
    expect(config.binlog).toEqual({ enabled: 'auto', user: 'wirecache_repl', password: 'repl_pw', serverId: 4242, maxDelayMs: 5000, onUnavailable: 'fail_closed' });
    expect(config.memcachedApi).toMatchObject({ user: 'sessions_rw', readFrom: 'primary', defaultContainer: 'sessions', containersTable: 'innodb_memcache.containers' });
    expect(config.memcachedApi?.containers[0]).toMatchObject({ name: 'sessions', schema: 'app', table: 'sessions', expiryColumn: 'expiry' });
    expect(config.pool).toEqual({ maxIdle: 100, idleTimeoutSeconds: 60, maxConnections: 0, maxConnectionsPerUser: 0, queueTimeoutMs: 5000, multiplexing: true });
  });
});

describe('parseConfig', () => {
  it('applies defaults', () => {
    const config = parseConfig(MINIMAL, 'relative/minimal.yaml');
    expect(config).toEqual({
      sourcePath: resolve('relative/minimal.yaml'),
      listen: { host: '127.0.0.1', port: 6033 },
      admin: { host: '127.0.0.1', port: 9104, token: null },
      queryStats: { maxDigests: 1000 },
      classifierCacheBytes: 67_108_864,
      sessionTracking: true,
      backends: [{ name: 'primary', host: 'db.internal', port: 3306, role: 'primary', weight: 1 }],
      users: [
        {
          name: 'app',
          passwordDoubleSha1: sha1(sha1('app_pw')),
          emptyPassword: false,
          passwordSha1: sha1('app_pw'),
          sha256Stage2: createHash('sha256').update(createHash('sha256').update('app_pw').digest()).digest(),
          requireTls: false,
        },
      ],
      tls: null,
      auth: { defaultPlugin: 'mysql_native_password', rsaPrivateKeyFile: null, rsaPublicKeyFile: null },
      usersFromDatabase: null,
      backendTls: null,
      limits: { maxClientConnections: 1000, maxPacketBytes: 67108864, maxUserConnections: 0, loginFailuresPerMinute: 10, loginBlockSeconds: 60 },
      timeouts: { backendConnectMs: 5000, clientHandshakeMs: 10000, clientReadMs: 30000, clientIdleSeconds: 28800, shutdownGraceMs: 30000 },
      monitor: null,
      routing: { maxReplicationLagSeconds: 10, consistency: 'session', consistencyWaitMs: 500 },
      cache: null,
      binlog: { enabled: 'auto', user: null, password: '', serverId: null, maxDelayMs: 5000, onUnavailable: 'fail_closed' },
      memcachedApi: null,
      pool: { maxIdle: 100, idleTimeoutSeconds: 60, maxConnections: 0, maxConnectionsPerUser: 0, queueTimeoutMs: 5000, multiplexing: true },
      log: { level: 'info' },
      serverVersion: '5.5.5-10.11.0-MariaDB-wirecache',
      workers: autoWorkers(),
    });
  });

  it('reads every option', () => {
    const config = parseConfig(
      `listen: { host: 0.0.0.0, port: 0 }
admin: { host: ::1, port: 0, token: "0123456789abcdef!" }
query_stats: { max_digests: 0 }
classifier_cache_bytes: 0
backends:
  - { name: main_1, host: 10.0.0.1, port: 3307, role: primary, weight: 2 }
  - { name: replica-1, host: 10.0.0.2, role: replica, weight: 0.5 }
users:
  - { name: app, password: app_pw }
limits: { max_client_connections: 5, max_packet_bytes: 1024, max_user_connections: 3, login_failures_per_minute: 0, login_block_seconds: 1 }
timeouts: { backend_connect_ms: 1, client_handshake_ms: 2, client_read_ms: 3, client_idle_seconds: 0, shutdown_grace_ms: 0 }
monitor: { user: mon, password: "", interval_ms: 250, check_timeout_ms: 100, fail_after: 1, recover_after: 5, heartbeat_table: null }
routing: { max_replication_lag: 0.5, consistency: eventual, consistency_wait_ms: 0 }
log: { level: debug }
server_version: "8.0.36-wirecache"
`,
      '/etc/wirecache.yaml',
    );
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 0 });
    expect(config.admin).toEqual({ host: '::1', port: 0, token: '0123456789abcdef!' });
    expect(config.queryStats).toEqual({ maxDigests: 0 });
    expect(config.classifierCacheBytes).toBe(0);
    expect(config.backends).toEqual([
      { name: 'main_1', host: '10.0.0.1', port: 3307, role: 'primary', weight: 2 },
      { name: 'replica-1', host: '10.0.0.2', port: 3306, role: 'replica', weight: 0.5 },
    ]);
    expect(config.limits).toEqual({ maxClientConnections: 5, maxPacketBytes: 1024, maxUserConnections: 3, loginFailuresPerMinute: 0, loginBlockSeconds: 1 });
    expect(config.timeouts).toEqual({
      backendConnectMs: 1,
      clientHandshakeMs: 2,
      clientReadMs: 3,
      clientIdleSeconds: 0,
      shutdownGraceMs: 0,
    });
    expect(config.log.level).toBe('debug');
    expect(config.serverVersion).toBe('8.0.36-wirecache');
    expect(config.monitor).toEqual({ user: 'mon', password: '', intervalMs: 250, checkTimeoutMs: 100, failAfter: 1, recoverAfter: 5, heartbeatTable: null });
    expect(config.routing).toEqual({ maxReplicationLagSeconds: 0.5, consistency: 'eventual', consistencyWaitMs: 0 });
  });

  it('gives the same passwordDoubleSha1 for a plain password and its hash', () => {
    const expected = sha1(sha1('app_pw'));
    const hash = `*${expected.toString('hex').toUpperCase()}`;
    const config = parseConfig(
      `backends: [{ name: primary, host: h }]
users:
  - { name: plain, password: app_pw }
  - { name: hashed, password_hash: "${hash}" }
  - { name: lower, password_hash: "${hash.toLowerCase()}" }
  - { name: mypass, password_hash: "*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4" }
  - { name: mypass_plain, password: mypass }
  - { name: hash_in_password, password: "*6c8989366eaf75bb670ad8ea7a7fc1176a95cef4" }
`,
      't.yaml',
    );
    expect(findUser(config, 'plain')?.passwordDoubleSha1).toEqual(expected);
    expect(findUser(config, 'hashed')?.passwordDoubleSha1).toEqual(expected);
    expect(findUser(config, 'lower')?.passwordDoubleSha1).toEqual(expected);
    // MySQL manual: PASSWORD('mypass') = '*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4'.
    expect(findUser(config, 'mypass')?.passwordDoubleSha1.toString('hex')).toBe(
      '6c8989366eaf75bb670ad8ea7a7fc1176a95cef4',
    );
    expect(findUser(config, 'mypass_plain')?.passwordDoubleSha1).toEqual(
      findUser(config, 'mypass')?.passwordDoubleSha1,
    );
    // ProxySQL's convention: the mysql.user hash written in the password field is the hash.
    expect(findUser(config, 'hash_in_password')?.passwordDoubleSha1).toEqual(
      findUser(config, 'mypass')?.passwordDoubleSha1,
    );
    for (const u of config.users) expect(u.emptyPassword).toBe(false);
    expect(findUser(config, 'nobody')).toBeUndefined();
    expect(findUser(config, 'PLAIN')).toBeUndefined();
  });

  it('accepts an empty password', () => {
    const config = parseConfig(`backends: [{ name: p, host: h }]\nusers: [{ name: anon, password: "" }]\n`, 'e.yaml');
    expect(config.users[0]).toEqual({ name: 'anon', passwordDoubleSha1: Buffer.alloc(0), emptyPassword: true, passwordSha1: null, sha256Stage2: null, requireTls: false });
  });
});

describe('doubleSha1', () => {
  it('matches MySQL PASSWORD()', () => {
    expect(doubleSha1('mypass').toString('hex')).toBe('6c8989366eaf75bb670ad8ea7a7fc1176a95cef4');
    expect(doubleSha1(Buffer.from('123456')).toString('hex')).toBe('6bb4837eb74329105ee4568dda7dc67ed2ca2ad9');
  });
});

describe('config errors', () => {
  it('reports YAML syntax errors with their line', () => {
    const err = configError(`backends:\n  - name: p\n    host: "unterminated\nusers: []\n`);
    expect(err.line).toBe(5);
    expect(err.field).toBeUndefined();
    expect(err.message).toMatch(/^test\.yaml:5:\d+: YAML syntax error: /);

    const dup = configError(`backends: [{ name: p, host: h }]\nusers: [{ name: a, password: x }]\nusers: []\n`);
    expect(dup.line).toBe(3);
    expect(dup.column).toBe(1);
    expect(dup.message).toContain('unique');
  });

  it('names pool.multiplexing when it is not a boolean, with its line', () => {
    const err = configError(`${MINIMAL}pool:\n  multiplexing: sometimes\n`);
    expect(err.field).toBe('pool.multiplexing');
    expect(err.message).toMatch(/^test\.yaml:\d+:\d+: field pool\.multiplexing: must be true or false/);
    expect(parseConfig(`${MINIMAL}pool:\n  multiplexing: false\n`, 'ok.yaml').pool.multiplexing).toBe(false);
  });

  it('reads workers as a count or auto (the cores), and names a bad one with its line', () => {
    expect(parseConfig(`${MINIMAL}workers: 4\n`, 'ok.yaml').workers).toBe(4);
    expect(parseConfig(`${MINIMAL}workers: auto\n`, 'ok.yaml').workers).toBe(Math.max(1, availableParallelism() - 1));
    expect([autoWorkers(1), autoWorkers(2), autoWorkers(16)]).toEqual([1, 1, 15]);
    for (const bad of ['0', '1.5', 'many', '257']) {
      const err = configError(`${MINIMAL}workers: ${bad}\n`);
      expect(err.field).toBe('workers');
      expect(err.message).toMatch(/^test\.yaml:\d+:\d+: field workers: must be (auto or )?an integer between 1 and 256, got/);
    }
  });

  it('explains an unquoted password hash (a YAML alias)', () => {
    const err = configError(
      `backends: [{ name: p, host: h }]\nusers:\n  - name: a\n    password_hash: *6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9\n`,
    );
    expect(err.line).toBe(4);
    expect(err.message).toContain('must be quoted');
  });

  it('reports an unknown top-level key at the key', () => {
    const err = configError(`${MINIMAL}\nlisten_port: 3306\n`);
    expect(err.line).toBe(8);
    expect(err.column).toBe(1);
    expect(err.field).toBe('listen_port');
    expect(err.message).toBe('test.yaml:8:1: field listen_port: unknown key "listen_port"');
  });

  it('reports an unknown nested key with a suggestion', () => {
    const err = configError(`backends:\n  - name: primary\n    hots: db\n    host: db\nusers: [{ name: a, password: x }]\n`);
    expect(err.field).toBe('backends[0].hots');
    expect(err.line).toBe(3);
    expect(err.column).toBe(5);
    expect(err.reason).toBe('unknown key "hots" (did you mean "host"?)');
  });

  it('reports a wrong type', () => {
    const err = configError(`listen:\n  host: 127.0.0.1\n  port: three\n${MINIMAL}`);
    expect(err.field).toBe('listen.port');
    expect(err.line).toBe(3);
    expect(err.column).toBe(9);
    expect(err.reason).toBe('must be an integer between 0 and 65535, got "three"');

    const memo = configError(`classifier_cache_bytes: -1\n${MINIMAL}`);
    expect(memo.field).toBe('classifier_cache_bytes');
    expect(memo.reason).toBe('must be an integer between 0 and 68719476736, got -1');

    const mapping = configError(`limits: 5\n${MINIMAL}`);
    expect(mapping.field).toBe('limits');
    expect(mapping.line).toBe(1);
    expect(mapping.reason).toBe('must be a mapping, got a number');
  });

  it('does not echo a mistyped password', () => {
    const err = configError(`backends: [{ name: p, host: h }]\nusers:\n  - name: a\n    password: 123456\n`);
    expect(err.field).toBe('users[0].password');
    expect(err.line).toBe(4);
    expect(err.message).not.toContain('123456');
    expect(err.reason).toBe('must be a string (quote it in YAML), got a number');
  });

  it('reports a bad password hash', () => {
    const err = configError(`backends: [{ name: p, host: h }]
users:
  - name: a
    password: x
  - name: b
    password_hash: "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD"
`);
    expect(err.message).toBe(
      'test.yaml:6:20: field users[1].password_hash: must be "*" followed by 40 hex digits',
    );
    expect(err.file).toBe('test.yaml');
    expect(err.line).toBe(6);
    expect(err.column).toBe(20);
    expect(err.field).toBe('users[1].password_hash');
  });

  it('rejects both password and password_hash', () => {
    const err = configError(`backends: [{ name: p, host: h }]
users:
  - name: a
    password: x
    password_hash: "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"
`);
    expect(err.field).toBe('users[0].password_hash');
    expect(err.line).toBe(5);
    expect(err.reason).toContain('not both');
  });

  it('rejects a user with neither password nor password_hash', () => {
    const err = configError(`backends: [{ name: p, host: h }]\nusers:\n  - name: a\n`);
    expect(err.field).toBe('users[0]');
    expect(err.line).toBe(3);
  });

  it('reports missing backends', () => {
    const err = configError(`users:\n  - name: a\n    password: x\n`);
    expect(err.field).toBe('backends');
    expect(err.line).toBe(1);
    expect(err.reason).toBe('is required');

    const empty = configError(`users: [{ name: a, password: x }]\nbackends: []\n`);
    expect(empty.field).toBe('backends');
    expect(empty.line).toBe(2);
    expect(empty.reason).toBe('must list at least one backend');
  });

  it('checks the admin token', () => {
    const short = configError(`admin: { host: 10.0.0.1, token: short }\n${MINIMAL}`);
    expect(short.field).toBe('admin.token');
    expect(short.reason).toBe('must be at least 16 characters');
    const open = configError(`admin: { host: 10.0.0.1 }\n${MINIMAL}`);
    expect(open.field).toBe('admin.host');
    expect(open.reason).toMatch(/not a loopback address: set admin\.token/);
    expect(parseConfig(`admin: { host: 127.0.0.2 }\n${MINIMAL}`, 'x.yaml').admin.token).toBeNull();
  });

  it('requires a monitor section with replicas, and checks its fields and the routing section', () => {
    const two = `users: [{ name: a, password: x }]\nbackends:\n  - { name: p, host: h, role: primary }\n  - { name: r, host: h2, role: replica }\n`;
    const missing = configError(two);
    expect(missing.field).toBe('backends');
    expect(missing.reason).toMatch(/needs a monitor section/);
    const badInterval = configError(`${two}monitor: { user: m, password: x, interval_ms: 5 }\n`);
    expect(badInterval.field).toBe('monitor.interval_ms');
    expect(badInterval.line).toBe(5);
    const badTable = configError(`${two}monitor: { user: m, password: x, heartbeat_table: "no dot" }\n`);
    expect(badTable.field).toBe('monitor.heartbeat_table');
    const badConsistency = configError(`${two}monitor: { user: m, password: x }\nrouting: { consistency: strong }\n`);
    expect(badConsistency.field).toBe('routing.consistency');
    expect(badConsistency.reason).toMatch(/"eventual" or "session"/);
    const badRule = configError(`${two}monitor: { user: m, password: x }\ncache:\n  rules:\n    - { name: x, match: {}, consistency: maybe }\n`);
    expect(badRule.field).toBe('cache.rules[0].consistency');
  });

  it('reports a duplicate user name at the second one', () => {
    const err = configError(`backends: [{ name: p, host: h }]
users:
  - name: app
    password: x
  - name: other
    password: y
  - name: app
    password: z
`);
    expect(err.field).toBe('users[2].name');
    expect(err.line).toBe(7);
    expect(err.reason).toBe('duplicate user name "app" (first defined at line 3)');
  });

  it('reports ports out of range', () => {
    const err = configError(`backends:\n  - name: p\n    host: h\n    port: 0\nusers: [{ name: a, password: x }]\n`);
    expect(err.field).toBe('backends[0].port');
    expect(err.line).toBe(4);
    expect(err.reason).toBe('must be an integer between 1 and 65535, got 0');

    const listen = configError(`listen: { port: 65536 }\n${MINIMAL}`);
    expect(listen.field).toBe('listen.port');
    expect(listen.line).toBe(1);
    expect(listen.column).toBe(17);
  });

  it('checks backend roles and names', () => {
    const twoPrimaries = configError(`backends:
  - { name: a, host: h, role: primary }
  - { name: b, host: h, role: primary }
users: [{ name: a, password: x }]
monitor: { user: m, password: x }
`);
    expect(twoPrimaries.field).toBe('backends[1].role');
    expect(twoPrimaries.line).toBe(3);

    const noRole = configError(`backends:\n  - { name: a, host: h }\n  - { name: b, host: h }\nusers: [{ name: a, password: x }]\nmonitor: { user: m, password: x }\n`);
    expect(noRole.field).toBe('backends[0].role');
    expect(noRole.issues).toHaveLength(2);

    const badName = configError(`backends:\n  - { name: "a b", host: h }\nusers: [{ name: a, password: x }]\n`);
    expect(badName.field).toBe('backends[0].name');
  });

  it('checks the remaining ranges', () => {
    expect(configError(`limits: { max_packet_bytes: 1023 }\n${MINIMAL}`).field).toBe('limits.max_packet_bytes');
    expect(configError(`timeouts: { client_idle_seconds: -1 }\n${MINIMAL}`).field).toBe('timeouts.client_idle_seconds');
    expect(configError(`log: { level: verbose }\n${MINIMAL}`).reason).toBe(
      'must be one of fatal, error, warn, info, debug, trace, got "verbose"',
    );
    expect(configError(`backends: [{ name: p, host: h, weight: 0 }]\nusers: [{ name: a, password: x }]\n`).field).toBe(
      'backends[0].weight',
    );
  });

  it('lists every problem, earliest first', () => {
    const err = configError(`listen: { port: -1 }\nbackends: [{ name: p, host: h, colour: blue }]\nusers: [{ name: a, password: x }]\nfoo: 1\n`);
    expect(err.issues.map((i) => [i.line, i.field])).toEqual([
      [1, 'listen.port'],
      [2, 'backends[0].colour'],
      [4, 'foo'],
    ]);
    expect(err.message.split('\n')).toHaveLength(3);
    expect(err.message.split('\n')[0]).toBe(`test.yaml:1:17: field listen.port: ${err.reason}`);
  });

  it('rejects empty and non-mapping documents', () => {
    expect(configError('').reason).toBe('the config file is empty');
    expect(configError('- a\n').reason).toBe('the config must be a YAML mapping of options, got a list');
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wirecache-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the file in errors', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, `${MINIMAL}bogus: true\n`);
    expect(() => loadConfig(file)).toThrow(ConfigError);
    try {
      loadConfig(file);
    } catch (err) {
      expect((err as ConfigError).file).toBe(file);
      expect((err as ConfigError).message).toBe(`${file}:7:1: field bogus: unknown key "bogus"`);
    }
  });

  it('reports an unreadable file', () => {
    const file = join(dir, 'missing.yaml');
    expect(() => loadConfig(file)).toThrow(`${file}: cannot read config: file not found`);
  });
});

describe('cache section and rules file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wirecache-rules-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the cache options with their defaults, and inline rules', () => {
    const config = parseConfig(
      `${MINIMAL}cache:
  mode: all
  default_ttl: 30
  rules:
    - name: points
      match: { digest: "select c from sbtest1 where id = 5", users: app }
      cache: true
      ttl: 10
      soft_ttl: 5
`,
      'test.yaml',
    );
    const cache = config.cache!;
    expect(cache).toMatchObject({
      mode: 'all',
      defaultTtlSeconds: 30,
      defaultSoftTtlSeconds: null,
      maxResultBytes: 1_048_576,
      storage: 'memory',
      memory: { maxBytes: 268_435_456 },
      coalesceWaitMs: 2000,
      rulesFile: null,
    });
    expect(cache.rules).toHaveLength(1);
    expect(cache.rules[0]).toMatchObject({ name: 'points', source: 'test.yaml:11', cache: true, ttlSeconds: 10, softTtlSeconds: 5 });
    // The digest is normalised like a query's: literals, case and spacing do not matter.
    expect(cache.rules[0].match.digest).toBe('SELECT C FROM sbtest1 WHERE ID = ?');
    expect(cache.rules[0].match.users).toEqual(['app']);
  });

  it('loads a rules file relative to the config and reports its mistakes with file, line and field', () => {
    writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - name: a\n    match: { tables: t1 }\n    cache: true\n');
    const configFile = join(dir, 'wirecache.yaml');
    writeFileSync(configFile, `${MINIMAL}cache:\n  rules_file: rules.yaml\n`);
    const config = loadConfig(configFile);
    expect(config.cache!.rulesFile).toBe(join(dir, 'rules.yaml'));
    expect(config.cache!.rules.map((r) => [r.name, r.match.tables])).toEqual([['a', ['t1']]]);

    writeFileSync(join(dir, 'rules.yaml'), '- name: a\n  match: {}\n  cache: true\n  tll: 5\n');
    expect(() => loadConfig(configFile)).toThrow(`${join(dir, 'rules.yaml')}:4:3: field [0].tll: unknown key "tll" (did you mean "ttl"?)`);
    writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - name: a\n    cache: true\n');
    expect(() => loadConfig(configFile)).toThrow(/rules\.yaml:2:\d+: field rules\[0\]\.match: /);
    writeFileSync(join(dir, 'rules.yaml'), '- name: a\n  cache: true\n');
    expect(() => loadConfig(configFile)).toThrow(/rules\.yaml:1:\d+: field \[0\]\.match: /);
    writeFileSync(join(dir, 'rules.yaml'), '- name: a\n  match: { regex: "(" }\n');
    expect(() => loadConfig(configFile)).toThrow(/rules\.yaml:2:19: field \[0\]\.match\.regex: is not a valid regular expression/);
    writeFileSync(join(dir, 'rules.yaml'), '- name: a\n  match: { clients: "10.0.0.0/33" }\n');
    expect(() => loadConfig(configFile)).toThrow(/field \[0\]\.match\.clients: must be IP addresses or CIDR ranges/);
    writeFileSync(join(dir, 'rules.yaml'), '- name: a\n  match: {}\n  ttl: 5\n  soft_ttl: 9\n');
    expect(() => loadConfig(configFile)).toThrow(/rules\.yaml:4:13: field \[0\]\.soft_ttl: soft_ttl must not be longer than ttl/);
    writeFileSync(join(dir, 'rules.yaml'), '- name: a\n  match: {}\n- name: a\n  match: {}\n');
    expect(() => loadConfig(configFile)).toThrow(/rules\.yaml:3: field \[1\]\.name: duplicate rule name "a"/);
    writeFileSync(join(dir, 'rules.yaml'), '- name: a\n  match: {}\n  route: nowhere\n');
    expect(() => loadConfig(configFile)).toThrow(/field \[0\]\.route: must be "primary", "replica" or a backend name \(primary\)/);
    rmSync(join(dir, 'rules.yaml'));
    expect(() => loadConfig(configFile)).toThrow(/rules\.yaml: cannot read rules file/);
  });

  it('reports the errors of every round in one pass: schema, cross-field, then the rules file', () => {
    writeFileSync(join(dir, 'rounds-rules.yaml'), '- name: a\n  match: {}\n  tll: 5\n');
    const configFile = join(dir, 'rounds.yaml');
    writeFileSync(
      configFile,
      [
        'listen: { port: -1 }', // 1: schema
        'limits: { max_client_conections: 5 }', // 2: schema, with a suggestion
        'backends:',
        '  - { name: db1, host: h1, role: primary }',
        '  - { name: db2, host: h2, role: primary }', // 5: cross-field (two primaries; and no monitor)
        'monitor: { user: m, password: m }',
        'users:',
        '  - { name: app, password: a }',
        '  - { name: app, password: b }', // 9: cross-field (duplicate)
        'cache:',
        '  storage: memcached', // 11: cross-field (no memcached section)
        '  rules_file: rounds-rules.yaml', // the rules file: unknown key
        '',
      ].join('\n'),
    );
    let err: ConfigError | undefined;
    try {
      loadConfig(configFile);
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.issues.map((i) => [i.file === configFile ? 'config' : 'rules', i.line, i.field])).toEqual([
      ['config', 1, 'listen.port'],
      ['config', 2, 'limits.max_client_conections'],
      ['config', 5, 'backends[1].role'],
      ['config', 9, 'users[1].name'],
      ['config', 11, 'cache.storage'],
      ['rules', 3, '[0].tll'],
    ]);
    expect(err!.message.split('\n')).toHaveLength(6);

    // Without schema errors, the cross-field errors and the rules file's are still reported together.
    writeFileSync(configFile, `${MINIMAL}  - { name: app, password: b }\ncache:\n  rules_file: rounds-rules.yaml\n`);
    try {
      loadConfig(configFile);
      expect.unreachable();
    } catch (e) {
      expect((e as ConfigError).issues.map((i) => i.field)).toEqual(['users[1].name', '[0].tll']);
    }
  });

  it('checks the cache options', () => {
    expect(configError(`${MINIMAL}cache: { mode: sometimes }\n`).message).toMatch(/field cache\.mode: must be "hinted" or "all"/);
    expect(configError(`${MINIMAL}cache: { storage: memcached }\n`).message).toMatch(/field cache\.storage: storage "memcached" needs a cache\.memcached section/);
    expect(configError(`${MINIMAL}cache: { memcached: { servers: [localhost] } }\n`).message).toMatch(/field cache\.memcached\.servers\[0\]: must be "host:port"/);
    expect(configError(`${MINIMAL}cache: { default_ttl: 5, default_soft_ttl: 6 }\n`).message).toMatch(/default_soft_ttl: must not be longer than default_ttl/);
  });
});

describe('binlog section', () => {
  const monitor = 'monitor: { user: mon, password: mon_pw }\n';

  it('defaults to auto with the monitor account, and reads every option', () => {
    expect(parseConfig(`${MINIMAL}${monitor}cache: {}\n`, 'x.yaml').binlog).toEqual({
      enabled: 'auto',
      user: 'mon',
      password: 'mon_pw',
      serverId: null,
      maxDelayMs: 5000,
      onUnavailable: 'fail_closed',
    });
    const all = parseConfig(
      `${MINIMAL}${monitor}cache: {}\nbinlog: { enabled: true, user: repl, password: repl_pw, server_id: 90001, max_delay_ms: 250, on_unavailable: ttl_only }\n`,
      'x.yaml',
    ).binlog;
    expect(all).toEqual({ enabled: 'on', user: 'repl', password: 'repl_pw', serverId: 90001, maxDelayMs: 250, onUnavailable: 'ttl_only' });
    expect(parseConfig(`${MINIMAL}binlog: { enabled: false }\n`, 'x.yaml').binlog.enabled).toBe('off');
    expect(parseConfig(`${MINIMAL}binlog: { user: repl }\n`, 'x.yaml').binlog.password).toBe('');
  });

  it('reports its mistakes with line and field', () => {
    const bad = configError(`${MINIMAL}cache: {}\nbinlog:\n  enabled: yes please\n`);
    expect(bad.field).toBe('binlog.enabled');
    expect(bad.line).toBe(9);
    expect(bad.reason).toMatch(/must be auto, true or false/);
    expect(configError(`${MINIMAL}cache: {}\nbinlog: { enabled: true, user: r, server_id: 0 }\n`).field).toBe('binlog.server_id');
    expect(configError(`${MINIMAL}cache: {}\nbinlog: { enabled: true, user: r, on_unavailable: open }\n`).reason).toMatch(/"fail_closed" or "ttl_only"/);
    expect(configError(`${MINIMAL}binlog: { enabled: true, user: r }\n`).message).toMatch(/field binlog\.enabled: true needs a cache section/);
    expect(configError(`${MINIMAL}cache: {}\nbinlog: { enabled: true }\n`).message).toMatch(/field binlog: needs a user and password/);
    expect(configError(`${MINIMAL}${monitor}cache: {}\nbinlog: { password: x }\n`).message).toMatch(/field binlog\.password: is set without binlog\.user/);
    expect(configError(`${MINIMAL}binlog: { server: 1 }\n`).field).toBe('binlog.server');
  });
});

describe('memcached_api', () => {
  const section = `memcached_api:
  listen: { port: 11311 }
  user: mc
  password: mc_pw
  containers:
    - name: sessions
      table: moodle.sessions
      key_column: id
      value_columns: [value]
      flags_column: flags
      cas_column: cas
      expiry_column: expiry
`;

  it('is off without its section, and fills in its defaults', () => {
    expect(parseConfig(MINIMAL, 'x.yaml').memcachedApi).toBeNull();
    expect(parseConfig(`${MINIMAL}${section}`, 'x.yaml').memcachedApi).toEqual({
      listen: { host: '127.0.0.1', port: 11311 },
      user: 'mc',
      password: 'mc_pw',
      connections: 8,
      maxConnections: 4096,
      readFrom: 'primary',
      allowFlush: false,
      sasl: false,
      maxValueBytes: 1_048_576,
      cacheBytes: 67_108_864,
      expirySweepSeconds: 60,
      operationTimeoutMs: 5000,
      containers: [
        {
          name: 'sessions',
          schema: 'moodle',
          table: 'sessions',
          keyColumn: 'id',
          valueColumns: ['value'],
          separator: '|',
          flagsColumn: 'flags',
          casColumn: 'cas',
          expiryColumn: 'expiry',
        },
      ],
      defaultContainer: null,
      containersTable: null,
    });
  });

  it('reports its mistakes with line and field', () => {
    expect(configError(`${MINIMAL}memcached_api: { user: mc, password: x }\n`).message).toMatch(
      /field memcached_api\.containers: must list at least one container \(or set containers_table\)/,
    );
    const dup = `${section}    - { name: sessions, table: a.b, key_column: k, value_columns: [v] }\n`;
    expect(configError(`${MINIMAL}${dup}`).message).toMatch(/field memcached_api\.containers\[1\]\.name: duplicate container name "sessions"/);
    expect(configError(`${MINIMAL}${section}  default_container: nope\n`).message).toMatch(/field memcached_api\.default_container: names no container/);
    expect(configError(`${MINIMAL}${section.replace('moodle.sessions', 'sessions')}`).field).toBe('memcached_api.containers[0].table');
    expect(configError(`${MINIMAL}${section.replace('key_column: id', 'key_column: "id; DROP"')}`).field).toBe('memcached_api.containers[0].key_column');
    expect(configError(`${MINIMAL}${section}  read_from: anywhere\n`).reason).toMatch(/"primary" or "replicas"/);
    expect(configError(`${MINIMAL}${section.replace('port: 11311', 'port: 6033')}`).message).toMatch(/field memcached_api\.listen: is the same address as listen/);
    expect(configError(`${MINIMAL}${section}  max_value_bytes: 0\n`).field).toBe('memcached_api.max_value_bytes');
  });
});
