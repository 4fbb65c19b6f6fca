/**
 * users_from_database: accounts read from the primary's mysql.user. Accounts
 * are created on the shared topology's primary (they replicate) and dropped in
 * afterAll, replicas included, so later test files see a clean server.
 */
import { Writable } from 'node:stream';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFreePorts, waitForReplication } from '../scripts/topology.js';
import { doubleSha1, plainUser } from '../src/config/accounts.js';
import type { UsersFromDatabaseConfig } from '../src/config/types.js';
import { createLogger } from '../src/logger.js';
import { parseAccounts, UserDirectory } from '../src/auth/user_directory.js';
import { startProxy, testConfig } from './proxy-harness.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
const primaryEndpoint = { name: 'primary', host: topo.primary.host, port: topo.primary.port };
const fromDb: UsersFromDatabaseConfig = { refreshSeconds: 1, user: 'root', password: topo.rootPassword };

/** Every account this file creates (user, host), dropped before and after. */
const ACCOUNTS: [string, string][] = [
  ['dbonly', '%'],
  ['shadowed', '%'],
  ['dropme', '%'],
  ['late', '%'],
  ['afterkill', '%'],
  ['amb2', '10.0.0.1'],
  ['amb2', '10.0.0.2'],
  ['same2', '10.0.0.1'],
  ['same2', '10.0.0.2'],
  ['pref', '%'],
  ['pref', 'localhost'],
  ['sockonly', '%'],
  ['nopw_db', '%'],
];
const ROLE = 'wc_users_role';

let admin: mysql.Connection;

async function dropAll(): Promise<void> {
  for (const [user, host] of ACCOUNTS) await admin.query('DROP USER IF EXISTS ?@?', [user, host]);
  await admin.query(`DROP ROLE IF EXISTS ${ROLE}`);
}

const login = (port: number, user: string, password: string) =>
  mysql.createConnection({ host: '127.0.0.1', port, user, password, database: 'wc_test' }).catch((e: { errno: number; message: string }) => e);

function isConnection(x: unknown): x is mysql.Connection {
  return typeof (x as mysql.Connection).query === 'function';
}

/** The value of `name{labels}` in Prometheus text (0 when absent). */
function sample(text: string, name: string, labels: string): number {
  const prefix = `${name}{${labels}} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? 0 : Number(line.slice(prefix.length));
}

/** A debug logger whose JSON lines are kept in `lines`. */
function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: { level: string; msg: string; [k: string]: unknown }[] } {
  const lines: { level: string; msg: string }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: createLogger('debug', { destination }), lines };
}

async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

beforeAll(async () => {
  admin = await mysql.createConnection({ host: topo.primary.host, port: topo.primary.port, user: 'root', password: topo.rootPassword });
  await dropAll();
  await admin.query("CREATE USER 'dbonly'@'%' IDENTIFIED BY 'dbonly_pw'");
  await admin.query("GRANT SELECT ON wc_test.* TO 'dbonly'@'%'");
  await admin.query("CREATE USER 'shadowed'@'%' IDENTIFIED BY 'db_pw'");
  await admin.query("GRANT SELECT ON wc_test.* TO 'shadowed'@'%'");
  await admin.query("CREATE USER 'amb2'@'10.0.0.1' IDENTIFIED BY 'amb_one'");
  await admin.query("CREATE USER 'amb2'@'10.0.0.2' IDENTIFIED BY 'amb_two'");
  await admin.query("CREATE USER 'same2'@'10.0.0.1' IDENTIFIED BY 'same_pw'");
  await admin.query("CREATE USER 'same2'@'10.0.0.2' IDENTIFIED BY 'same_pw'");
  await admin.query("CREATE USER 'pref'@'%' IDENTIFIED BY 'pct_pw'");
  await admin.query("CREATE USER 'pref'@'localhost' IDENTIFIED BY 'local_pw'");
  await admin.query("CREATE USER 'sockonly'@'%' IDENTIFIED VIA unix_socket");
  await admin.query("CREATE USER 'nopw_db'@'%'");
  await admin.query(`CREATE ROLE ${ROLE}`);
});

afterAll(async () => {
  await dropAll();
  const [left] = await admin.query<mysql.RowDataPacket[]>('SELECT User FROM mysql.user WHERE User IN (?)', [[...new Set(ACCOUNTS.map(([u]) => u)), ROLE]]);
  expect(left).toEqual([]);
  await admin.end();
  // The drops replicate: later files must not find these accounts on the replicas.
  await waitForReplication(topo);
});

describe('users from mysql.user through the proxy', () => {
  it('a user that exists only on the server logs in and queries; without users_from_database it is refused', async () => {
    const px = await startProxy(topo, { usersFromDatabase: fromDb });
    try {
      expect(px.config.users.some((u) => u.name === 'dbonly')).toBe(false);
      const conn = await login(px.port, 'dbonly', 'dbonly_pw');
      if (!isConnection(conn)) throw new Error(`login failed: ${conn.message}`);
      const [rows] = await conn.query('SELECT 1 AS one, CURRENT_USER() AS cu');
      expect(rows).toEqual([{ one: 1, cu: 'dbonly@%' }]);
      await conn.end();
      // A wrong password is refused by the proxy's own check.
      expect(await login(px.port, 'dbonly', 'nope')).toMatchObject({ errno: 1045 });
    } finally {
      await px.stop();
    }
    const plain = await startProxy(topo);
    try {
      expect(await login(plain.port, 'dbonly', 'dbonly_pw')).toMatchObject({ errno: 1045 });
    } finally {
      await plain.stop();
    }
  });

  it('a config user overrides the database account of the same name', async () => {
    const base = testConfig(topo);
    const px = await startProxy(topo, { usersFromDatabase: fromDb, users: [...base.users, plainUser('shadowed', 'config_pw')] });
    const failures = async () => {
      const text = await px.metrics.metricsText();
      return {
        proxy: sample(text, 'wirecache_client_auth_failures_total', 'reason="bad_credentials"'),
        server: sample(text, 'wirecache_client_auth_failures_total', 'reason="backend_refused"'),
      };
    };
    try {
      // The directory did read the server's account...
      expect(px.proxy.databaseUsers!.find('shadowed')?.passwordDoubleSha1).toEqual(doubleSha1('db_pw'));
      // ...but the proxy checks the config's password: the server's password is refused by the proxy itself.
      expect(await login(px.port, 'shadowed', 'db_pw')).toMatchObject({ errno: 1045 });
      expect(await failures()).toEqual({ proxy: 1, server: 0 });
      // The config's password passes the proxy's check; the backend login then uses SHA1('config_pw'),
      // which the server (that knows db_pw) refuses with its own 1045. The config wins for the proxy's check,
      // and the server still has the last word.
      const viaConfig = await login(px.port, 'shadowed', 'config_pw');
      expect(viaConfig).toMatchObject({ errno: 1045 });
      expect((viaConfig as { message: string }).message).toMatch(/Access denied for user 'shadowed'/);
      expect(await failures()).toEqual({ proxy: 1, server: 1 });
    } finally {
      await px.stop();
    }
  });

  it('a user dropped on the server can no longer log in after the timer refresh; one created later can', async () => {
    await admin.query("CREATE USER 'dropme'@'%' IDENTIFIED BY 'dropme_pw'");
    await admin.query("GRANT SELECT ON wc_test.* TO 'dropme'@'%'");
    const px = await startProxy(topo, { usersFromDatabase: fromDb });
    try {
      const dirUsers = px.proxy.databaseUsers!;
      const before = await login(px.port, 'dropme', 'dropme_pw');
      if (!isConnection(before)) throw new Error(`login failed: ${before.message}`);
      await before.end();

      await admin.query("DROP USER 'dropme'@'%'");
      await admin.query("CREATE USER 'late'@'%' IDENTIFIED BY 'late_pw'");
      await admin.query("GRANT SELECT ON wc_test.* TO 'late'@'%'");
      // refresh_seconds is 1: the timer alone picks both changes up (no refreshNow here).
      expect(await until(() => dirUsers.find('dropme') === undefined && dirUsers.find('late') !== undefined, 3000)).toBe(true);

      const text0 = await px.metrics.metricsText();
      const after = await login(px.port, 'dropme', 'dropme_pw');
      expect(after).toMatchObject({ errno: 1045 });
      const text1 = await px.metrics.metricsText();
      // Refused by the proxy's check (bad_credentials), not by the backend.
      const reasons = (t: string) => ['bad_credentials', 'backend_refused'].map((r) => sample(t, 'wirecache_client_auth_failures_total', `reason="${r}"`));
      expect(reasons(text1)).toEqual([reasons(text0)[0]! + 1, reasons(text0)[1]]);

      const late = await login(px.port, 'late', 'late_pw');
      if (!isConnection(late)) throw new Error(`login failed: ${late.message}`);
      const [rows] = await late.query('SELECT CURRENT_USER() AS cu');
      expect(rows).toEqual([{ cu: 'late@%' }]);
      await late.end();
    } finally {
      await px.stop();
    }
  });
});

describe('UserDirectory', () => {
  it('reads the accounts: native hashes and empty passwords kept; other plugins, roles, locked accounts skipped; hosts resolved', async () => {
    const { logger, lines } = captureLogger();
    const dir = new UserDirectory(fromDb, () => primaryEndpoint, logger);
    try {
      await dir.refreshNow();
      expect(dir.find('dbonly')).toEqual({
        name: 'dbonly',
        passwordDoubleSha1: doubleSha1('dbonly_pw'),
        emptyPassword: false,
        passwordSha1: null,
        sha256Stage2: null,
        requireTls: false,
      });
      expect(dir.find('nopw_db')).toMatchObject({ emptyPassword: true, passwordDoubleSha1: Buffer.alloc(0) });
      // Two hosts, same password: used. Two hosts, different passwords, no '%': skipped.
      expect(dir.find('same2')?.passwordDoubleSha1).toEqual(doubleSha1('same_pw'));
      expect(dir.find('amb2')).toBeUndefined();
      // '%' is preferred over a more specific host.
      expect(dir.find('pref')?.passwordDoubleSha1).toEqual(doubleSha1('pct_pw'));
      expect(dir.find('sockonly')).toBeUndefined();
      expect(dir.find(ROLE)).toBeUndefined();
      // mariadb.sys: native, empty password, but locked.
      expect(dir.find('mariadb.sys')).toBeUndefined();
      expect(dir.find('root')?.passwordDoubleSha1).toEqual(doubleSha1(topo.rootPassword));
      // Names are case-sensitive, as in MySQL.
      expect(dir.find('DBONLY')).toBeUndefined();
      expect(dir.size).toBeGreaterThanOrEqual(5);

      const skipped = lines.filter((l) => l.msg === 'users from database: account skipped');
      expect(skipped).toContainEqual(expect.objectContaining({ user: 'sockonly', reason: 'plugin unix_socket' }));
      expect(skipped).toContainEqual(expect.objectContaining({ user: ROLE, reason: 'role' }));
      expect(skipped).toContainEqual(expect.objectContaining({ user: 'mariadb.sys', reason: 'account locked' }));

      // The ambiguity is warned about once, not at every refresh.
      await dir.refreshNow();
      await dir.refreshNow();
      const warnings = lines.filter((l) => l.level === 'warn');
      expect(warnings).toEqual([expect.objectContaining({ user: 'amb2', msg: expect.stringMatching(/different passwords/) })]);
      // No hash reaches the logs.
      expect(JSON.stringify(lines)).not.toMatch(new RegExp(doubleSha1('dbonly_pw').toString('hex'), 'i'));
    } finally {
      await dir.stop();
    }
  });

  it('parses rows of MySQL 5.7/8 and of MariaDB before 10.4 (pure function)', () => {
    const h1 = '*' + doubleSha1('one').toString('hex').toUpperCase();
    const h2 = '*' + doubleSha1('two').toString('hex');
    const parsed = parseAccounts([
      // MySQL 8: no Password column, hash in authentication_string.
      { Host: '%', User: 'my8', plugin: 'mysql_native_password', authentication_string: h1, account_locked: 'N', ssl_type: '' },
      // REQUIRE SSL on the server: TLS required at the proxy too.
      { Host: '%', User: 'sslonly', plugin: 'mysql_native_password', authentication_string: h1, account_locked: 'N', ssl_type: 'ANY' },
      { Host: '%', User: 'sha2', plugin: 'caching_sha2_password', authentication_string: '$A$005$xxxx', account_locked: 'N' },
      { Host: 'localhost', User: 'mysql.sys', plugin: 'mysql_native_password', authentication_string: '*THISISNOTAVALIDPASSWORDTHATCANBEUSEDHERE', account_locked: 'Y' },
      // MariaDB 10.3: plugin '' with the hash in Password; bytes rather than strings.
      { Host: '%', User: Buffer.from('old'), plugin: '', authentication_string: '', Password: Buffer.from(h2) },
      { Host: '%', User: 'nopass', plugin: '', authentication_string: '', Password: '' },
      { Host: '%', User: 'pre41', plugin: '', authentication_string: '', Password: '378b243e220ca493' },
      { Host: '%', User: '', plugin: '', authentication_string: '', Password: '' },
      // MariaDB 10.4+ root default: native with "invalid", OR unix_socket.
      { Host: 'localhost', User: 'sockroot', plugin: 'mysql_native_password', authentication_string: 'invalid', Password: 'invalid', is_role: 'N' },
      // Mixed hosts: the unusable row is ignored when no '%' exists.
      { Host: 'localhost', User: 'mix', plugin: 'unix_socket', authentication_string: '', Password: '', is_role: 'N' },
      { Host: '10.1.1.1', User: 'mix', plugin: 'mysql_native_password', authentication_string: h1, Password: h1, is_role: 'N' },
      // A '%' row that is unusable decides: the name is skipped.
      { Host: '%', User: 'pctsock', plugin: 'unix_socket', authentication_string: '', Password: '', is_role: 'N' },
      { Host: '10.1.1.1', User: 'pctsock', plugin: 'mysql_native_password', authentication_string: h1, Password: h1, is_role: 'N' },
      // One host without password, another with: ambiguous.
      { Host: '10.1.1.1', User: 'halfpw', plugin: 'mysql_native_password', authentication_string: '', Password: '', is_role: 'N' },
      { Host: '10.1.1.2', User: 'halfpw', plugin: 'mysql_native_password', authentication_string: h1, Password: h1, is_role: 'N' },
    ]);
    expect([...parsed.users.keys()].sort()).toEqual(['mix', 'my8', 'nopass', 'old', 'sslonly']);
    expect(parsed.users.get('sslonly')!.requireTls).toBe(true);
    expect(parsed.users.get('my8')!.requireTls).toBe(false);
    expect(parsed.users.get('my8')!.passwordDoubleSha1).toEqual(doubleSha1('one'));
    expect(parsed.users.get('old')!.passwordDoubleSha1).toEqual(doubleSha1('two'));
    expect(parsed.users.get('nopass')).toMatchObject({ emptyPassword: true });
    expect(parsed.users.get('mix')!.passwordDoubleSha1).toEqual(doubleSha1('one'));
    expect(parsed.ambiguous).toEqual(['halfpw']);
    expect(parsed.skipped.map((s) => `${s.user}@${s.host}: ${s.reason}`).sort()).toEqual(
      [
        '@%: anonymous account',
        'mix@localhost: plugin unix_socket',
        'mysql.sys@localhost: account locked',
        'pctsock@%: plugin unix_socket',
        'pre41@%: native password is not a "*"+40-hex hash',
        'sha2@%: plugin caching_sha2_password',
        'sockroot@localhost: mysql_native_password password is not a "*"+40-hex hash',
      ].sort(),
    );
  });

  it('a primary down at start: start() returns within its bound, no accounts, one warning; the next primary is read', async () => {
    const [deadPort] = await getFreePorts(1);
    let endpoint = { name: 'dead', host: '127.0.0.1', port: deadPort! };
    const { logger, lines } = captureLogger();
    const dir = new UserDirectory(fromDb, () => endpoint, logger);
    try {
      const t0 = Date.now();
      await dir.start();
      expect(Date.now() - t0).toBeLessThan(5500);
      expect(dir.find('dbonly')).toBeUndefined();
      expect(dir.size).toBe(0);
      // Retries every second: still one warning for the whole streak.
      await new Promise((r) => setTimeout(r, 2300));
      const failures = lines.filter((l) => /reading mysql\.user failed/.test(l.msg));
      expect(failures.length).toBeGreaterThanOrEqual(2);
      expect(failures.filter((l) => l.level === 'warn')).toHaveLength(1);
      // Failover: the primary endpoint changes, the timer's next read goes there.
      endpoint = primaryEndpoint;
      expect(await until(() => dir.find('dbonly') !== undefined, 3000)).toBe(true);
      expect(lines).toContainEqual(expect.objectContaining({ level: 'info', msg: 'users from database: mysql.user read again' }));
    } finally {
      await dir.stop();
      await dir.stop();
    }
    // Stopped: no more reads.
    const count = lines.length;
    await new Promise((r) => setTimeout(r, 1300));
    expect(lines.length).toBe(count);
  });

  it('keeps the accounts when a read fails, and reconnects after its connection was killed', async () => {
    const rootIds = async () => {
      const [rows] = await admin.query<mysql.RowDataPacket[]>("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE User = 'root'");
      return new Set(rows.map((r) => Number(r.id)));
    };
    const { logger, lines } = captureLogger();
    let endpoint = primaryEndpoint;
    const dir = new UserDirectory(fromDb, () => endpoint, logger);
    try {
      const before = await rootIds();
      await dir.start();
      expect(dir.find('dbonly')).toBeDefined();
      const mine = [...(await rootIds())].filter((id) => !before.has(id));
      expect(mine).toHaveLength(1);
      // Killed by the server between two reads: the 'error' event is handled (no crash), the next read reconnects.
      await admin.query(`KILL ${mine[0]}`);
      await admin.query("CREATE USER 'afterkill'@'%' IDENTIFIED BY 'afterkill_pw'");
      await dir.refreshNow();
      expect(dir.find('afterkill')?.passwordDoubleSha1).toEqual(doubleSha1('afterkill_pw'));
      // A failing read (the primary is gone) keeps the previous accounts.
      const [deadPort] = await getFreePorts(1);
      endpoint = { name: 'dead', host: '127.0.0.1', port: deadPort! };
      const size = dir.size;
      await dir.refreshNow();
      expect(dir.size).toBe(size);
      expect(dir.find('dbonly')).toBeDefined();
      expect(lines).toContainEqual(expect.objectContaining({ level: 'warn', keptAccounts: size, primary: 'dead' }));
    } finally {
      await dir.stop();
    }
  });
});
