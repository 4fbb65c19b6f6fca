/**
 * Multiplexing against the real primary: between statements a session's
 * backend connection goes back to the login pool (reset there) unless the
 * server holds something of the session, and the next statement runs on
 * whichever connection the pool gives, with the session's SET/USE statements
 * replayed and its prepared statements prepared again under the same ids.
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WirecacheConfig } from '../src/config/types.js';
import { runCommand } from './run-command.js';
import { getTopology } from './topology-context.js';
import { connect, startProxy, testConfig, type RunningProxy } from './proxy-harness.js';
import { waitFor } from './wait.js';

const topo = getTopology();
const DB = 'wc_mux';
const ROWS = 100;

let root: mysql.Connection;

function pool(overrides: Partial<WirecacheConfig['pool']>): Partial<WirecacheConfig> {
  return {
    pool: { maxIdle: 100, idleTimeoutSeconds: 60, maxConnections: 0, maxConnectionsPerUser: 0, queueTimeoutMs: 5000, multiplexing: true, ...overrides },
    limits: { ...testConfig(topo).limits, maxClientConnections: 2000 },
  };
}

async function metric(px: RunningProxy, pattern: RegExp): Promise<number> {
  const text = await px.metrics.metricsText();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

const inUse = (px: RunningProxy) => metric(px, /^wirecache_backend_pool_in_use\{server="primary"\} (\d+)/m);
const open = (px: RunningProxy) => metric(px, /^wirecache_backend_pool_connections\{server="primary"\} (\d+)/m);
const kept = (px: RunningProxy, reason: string) => metric(px, new RegExp(`^wirecache_multiplexing_disabled_total\\{reason="${reason}"\\} (\\d+)`, 'm'));
const releases = (px: RunningProxy) => metric(px, /^wirecache_multiplexing_releases_total (\d+)/m);
/** A connection lent to the pool is taken from its session after 100 to 125 ms (and reset for anyone): wait past that. */
const lentConnectionsTaken = () => new Promise((r) => setTimeout(r, 250));

/** Backend threads on the primary of the proxy's user in this test's database (every connection the proxy opens here). */
async function backendThreads(): Promise<number> {
  const [rows] = await root.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ? AND USER = 'app'", [DB]);
  return Number(rows[0].n);
}

async function value(c: mysql.Connection, id: number): Promise<string> {
  const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT v FROM kv WHERE id = ?', [id]);
  return String(rows[0]?.v);
}

beforeAll(async () => {
  root = await mysql.createConnection({ host: topo.primary.host, port: topo.primary.port, user: 'root', password: topo.rootPassword, multipleStatements: true });
  await root.query(`DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}; CREATE TABLE ${DB}.kv (id INT PRIMARY KEY, v VARCHAR(32)) ENGINE=InnoDB`);
  const values = Array.from({ length: ROWS }, (_, i) => `(${i + 1}, 'v${i + 1}')`).join(',');
  await root.query(`INSERT INTO ${DB}.kv VALUES ${values}`);
});

afterAll(async () => {
  await root?.query(`DROP DATABASE IF EXISTS ${DB}`);
  await root?.end();
});

describe('1,000 clients idle between statements while 8 run sysbench', () => {
  it('need at most 40 backend threads on the primary, with zero errors', async () => {
    const px = await startProxy(topo, pool({ maxIdle: 40, maxConnections: 40, queueTimeoutMs: 20_000 }));
    const clients: mysql.Connection[] = [];
    let peakOpen = 0;
    let peakThreads = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakOpen = Math.max(peakOpen, await open(px));
        peakThreads = Math.max(peakThreads, await backendThreads());
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    try {
      for (let batch = 0; batch < 10; batch++) {
        const opened = await Promise.all(Array.from({ length: 100 }, () => connect(px.port, topo, { database: DB })));
        clients.push(...opened);
        const answers = await Promise.all(opened.map((c, i) => value(c, ((batch * 100 + i) % ROWS) + 1)));
        answers.forEach((v, i) => expect(v).toBe(`v${((batch * 100 + i) % ROWS) + 1}`));
      }
      expect(clients).toHaveLength(1000);

      await runCommand('sysbench', ['oltp_read_write', '--db-driver=mysql', '--mysql-host=127.0.0.1', `--mysql-port=${topo.primary.port}`, '--mysql-user=root', `--mysql-password=${topo.rootPassword}`, `--mysql-db=${DB}`, '--tables=2', '--table-size=1000', 'prepare'], { timeoutMs: 60_000 });
      const sysbench = runCommand(
        'sysbench',
        ['oltp_read_write', '--db-driver=mysql', '--mysql-host=127.0.0.1', `--mysql-port=${px.port}`, '--mysql-user=app', '--mysql-password=app_pw', `--mysql-db=${DB}`, '--mysql-ignore-errors=1213', '--tables=2', '--table-size=1000', '--threads=8', '--time=6', '--report-interval=0', 'run'],
        { timeoutMs: 60_000 },
      );
      // Meanwhile the idle clients wake up in turns, 100 at a time, and go idle again.
      const deadline = Date.now() + 5000;
      let round = 0;
      while (Date.now() < deadline) {
        const group = clients.slice((round % 10) * 100, (round % 10) * 100 + 100);
        const answers = await Promise.all(group.map((c, i) => value(c, ((round + i) % ROWS) + 1)));
        answers.forEach((v, i) => expect(v).toBe(`v${((round + i) % ROWS) + 1}`));
        round++;
      }
      const r = await sysbench;
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout + r.stderr).not.toMatch(/FATAL|ALERT/);
      expect(Number(/transactions:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0)).toBeGreaterThan(0);
      expect(round).toBeGreaterThan(0);

      // Every client still answers, each with its own session.
      const last = await Promise.all(clients.map((c, i) => value(c, (i % ROWS) + 1)));
      last.forEach((v, i) => expect(v).toBe(`v${(i % ROWS) + 1}`));
      sampling = false;
      await sampler;
      console.log(`1,000 idle clients + sysbench (8 threads): peak ${peakOpen} pool connections, ${peakThreads} backend threads; ${round} wake-up rounds`);
      expect(peakOpen).toBeGreaterThan(0);
      expect(peakOpen).toBeLessThanOrEqual(40);
      expect(peakThreads).toBeLessThanOrEqual(40);
      expect(await releases(px)).toBeGreaterThan(1000);
      // At rest, no client holds a backend connection.
      await waitFor('every connection back in the pool', async () => (await inUse(px)) === 0);
    } finally {
      sampling = false;
      await sampler;
      await Promise.allSettled(clients.map((c) => c.end()));
      await px.stop();
      await root.query(`DROP TABLE IF EXISTS ${DB}.sbtest1, ${DB}.sbtest2`);
    }
  }, 120_000);
});

describe('what keeps a connection', () => {
  let px: RunningProxy;
  beforeAll(async () => {
    px = await startProxy(topo, pool({}));
  });
  afterAll(async () => {
    await px?.stop();
  });

  /** Twenty other clients take and give back connections meanwhile. */
  async function churn(): Promise<void> {
    const others = await Promise.all(Array.from({ length: 20 }, () => connect(px.port, topo, { database: DB })));
    await Promise.all(others.map((c, i) => value(c, i + 1)));
    await Promise.all(others.map((c) => c.end()));
  }

  it('a temporary table, a user variable, an open transaction and a GET_LOCK each keep theirs', async () => {
    const [temp, variable, trx, lock, observer] = await Promise.all(Array.from({ length: 5 }, () => connect(px.port, topo, { database: DB })));
    try {
      const before = {
        temp: await kept(px, 'temporary_table'),
        variable: await kept(px, 'user_variable'),
        trx: await kept(px, 'transaction'),
        lock: await kept(px, 'get_lock'),
      };
      await temp.query('CREATE TEMPORARY TABLE scratch (n INT)');
      await temp.query('INSERT INTO scratch VALUES (1), (2)');
      await variable.query('SELECT @counter := 41 AS c');
      await trx.query('BEGIN');
      await trx.query("UPDATE kv SET v = 'uncommitted' WHERE id = 1");
      await lock.query("SELECT GET_LOCK('wc_mux_lock', 0) AS got");
      await churn();

      const [tempRows] = await temp.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM scratch');
      expect(Number(tempRows[0].n)).toBe(2);
      const [varRows] = await variable.query<mysql.RowDataPacket[]>('SELECT @counter := @counter + 1 AS c');
      expect(Number(varRows[0].c)).toBe(42);
      expect(await value(trx, 1)).toBe('uncommitted');
      expect(await value(observer, 1)).toBe('v1');
      const [free] = await observer.query<mysql.RowDataPacket[]>("SELECT IS_FREE_LOCK('wc_mux_lock') AS f");
      expect(Number(free[0].f)).toBe(0);
      await churn();
      await trx.query('ROLLBACK');
      const [released] = await lock.query<mysql.RowDataPacket[]>("SELECT RELEASE_LOCK('wc_mux_lock') AS r");
      expect(Number(released[0].r)).toBe(1);
      expect(await value(trx, 1)).toBe('v1');

      expect(await kept(px, 'temporary_table')).toBeGreaterThan(before.temp);
      expect(await kept(px, 'user_variable')).toBeGreaterThan(before.variable);
      expect(await kept(px, 'transaction')).toBeGreaterThan(before.trx);
      expect(await kept(px, 'get_lock')).toBeGreaterThan(before.lock);
    } finally {
      await Promise.allSettled([temp, variable, trx, lock, observer].map((c) => c.end()));
    }
  });

  it('the last insert id keeps the connection: LAST_INSERT_ID() answers for this session', async () => {
    await root.query(`CREATE TABLE IF NOT EXISTS ${DB}.auto (id INT AUTO_INCREMENT PRIMARY KEY, v INT)`);
    const c = await connect(px.port, topo, { database: DB });
    try {
      const [ok] = await c.query<mysql.ResultSetHeader>('INSERT INTO auto (v) VALUES (1)');
      await churn();
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT LAST_INSERT_ID() AS id');
      expect(Number(rows[0].id)).toBe(ok.insertId);
      expect(ok.insertId).toBeGreaterThan(0);
    } finally {
      await c.end();
    }
  });
});

describe('one backend connection shared by two clients (pool.max_connections: 1)', () => {
  let px: RunningProxy;
  let a: mysql.Connection;
  let b: mysql.Connection;
  beforeAll(async () => {
    px = await startProxy(topo, pool({ maxConnections: 1, maxIdle: 1 }));
    a = await connect(px.port, topo, { database: DB });
    b = await connect(px.port, topo, { database: DB });
  });
  afterAll(async () => {
    await Promise.allSettled([a?.end(), b?.end()]);
    await px?.stop();
  });

  const get = async (c: mysql.Connection, sql: string): Promise<unknown> => {
    const [rows] = await c.query<mysql.RowDataPacket[]>(sql);
    return Object.values(rows[0])[0];
  };

  it('never leaks state: each client sees its own sql_mode, time_zone and schema on the same backend thread', async () => {
    const fresh = await get(b, 'SELECT @@sql_mode');
    await a.query("SET sql_mode = 'ANSI_QUOTES', time_zone = '+05:00'");
    await a.query('USE wc_test');
    expect(await get(a, 'SELECT @@sql_mode')).toBe('ANSI_QUOTES');
    expect(await get(b, 'SELECT @@sql_mode')).toBe(fresh);
    expect(await get(b, 'SELECT @@time_zone')).toBe('SYSTEM');
    expect(await get(b, 'SELECT DATABASE()')).toBe(DB);
    expect(await get(a, 'SELECT @@time_zone')).toBe('+05:00');
    expect(await get(a, 'SELECT DATABASE()')).toBe('wc_test');
    expect(await get(b, 'SELECT @@sql_mode')).toBe(fresh);
    // One backend connection served both.
    expect(await open(px)).toBe(1);
    await a.query(`USE ${DB}`);
  });

  it('keeps prepared statement ids stable across connections, preparing again where needed', async () => {
    const [first] = await a.execute<mysql.RowDataPacket[]>('SELECT v FROM kv WHERE id = ?', [3]);
    expect(first[0].v).toBe('v3');
    // A binary execute's diagnostics cannot be had again by running text: its connection stays until a's next statement.
    expect(await get(a, 'SELECT 1')).toBe(1);
    const [other] = await b.execute<mysql.RowDataPacket[]>('SELECT ? + 1 AS n', [41]);
    expect(Number(other[0].n)).toBe(42);
    expect(await get(b, 'SELECT 1')).toBe(1);
    const [again] = await a.execute<mysql.RowDataPacket[]>('SELECT v FROM kv WHERE id = ?', [4]);
    expect(again[0].v).toBe('v4');
    expect(await get(a, 'SELECT 1')).toBe(1);
    expect(await open(px)).toBe(1);
  });

  it('answers FOUND_ROWS() and ROW_COUNT() about the client\'s own previous read after another client used the connection', async () => {
    await a.query('SELECT * FROM kv WHERE id <= 7');
    await b.query('SELECT * FROM kv WHERE id <= 2');
    expect(Number(await get(a, 'SELECT FOUND_ROWS()'))).toBe(7);
    expect(Number(await get(b, 'SELECT FOUND_ROWS()'))).toBe(2);
    expect(Number(await get(b, 'SELECT FOUND_ROWS()'))).toBe(1);
    expect(Number(await get(a, 'SELECT ROW_COUNT()'))).toBe(-1);
    expect(await open(px)).toBe(1);
  });

  it('keeps the connection of a statement with warnings (or a write) until the next statement, which sees them', async () => {
    const before = await kept(px, 'diagnostics');
    await a.query("SELECT CAST('12abc' AS SIGNED) AS n");
    const [warnings] = await a.query<mysql.RowDataPacket[]>('SHOW WARNINGS');
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0].Message)).toMatch(/12abc/);
    // mysql2 logs in with CLIENT_FOUND_ROWS: matched rows count.
    await a.query('UPDATE kv SET v = v WHERE id <= 5');
    expect(Number(await get(a, 'SELECT ROW_COUNT()'))).toBe(5);
    expect(await kept(px, 'diagnostics')).toBeGreaterThan(before);
    // b gets the connection once a moved on.
    expect(await get(b, 'SELECT 1')).toBe(1);
  });
});

describe('after pauses long enough for parked connections to be reset, answers equal a connection of its own', () => {
  let px: RunningProxy;
  beforeAll(async () => {
    px = await startProxy(topo, pool({}));
    await root.query(`CREATE TABLE IF NOT EXISTS ${DB}.narrow (n TINYINT)`);
  });
  afterAll(async () => {
    await px?.stop();
  });

  /** Runs the statements on a proxied and a direct session alike, pausing 150 ms (> the 100 ms park) after each on the proxied one, and compares every answer. */
  async function same(statements: string[]): Promise<unknown[]> {
    const proxied = await connect(px.port, topo, { database: DB });
    const direct = await connect(topo.primary.port, topo, { database: DB });
    const bystander = await connect(px.port, topo, { database: DB });
    const answers: unknown[] = [];
    try {
      for (const sql of statements) {
        const run = (c: mysql.Connection) => c.query(sql).then(([rows]) => JSON.parse(JSON.stringify(rows)), (e: mysql.QueryError) => ({ errno: e.errno }));
        const [mine, theirs] = [await run(proxied), await run(direct)];
        expect(mine, sql).toEqual(theirs);
        answers.push(mine);
        await value(bystander, 1);
        await lentConnectionsTaken();
      }
    } finally {
      await Promise.allSettled([proxied.end(), direct.end(), bystander.end()]);
    }
    return answers;
  }

  it('keeps a user variable set with SET', async () => {
    const answers = await same(['SET @v = 5', 'SELECT @v AS v', 'SET @v = @v + 1', 'SELECT @v AS v']);
    expect(answers[3]).toEqual([{ v: 6 }]);
  });

  it('keeps a warning listed through table-less statements', async () => {
    const answers = await same(["SET sql_mode = ''", 'INSERT INTO narrow VALUES (1000)', 'SELECT 1 AS one', 'DO 1', 'SHOW WARNINGS', 'SELECT COUNT(*) AS n FROM kv', 'SHOW WARNINGS']);
    expect(answers[4]).toHaveLength(1);
    expect(answers[6]).toEqual([]);
  });

  it('answers FOUND_ROWS() inside any statement about the read before it', async () => {
    const answers = await same(['SELECT * FROM kv WHERE id <= 3', 'SET @n = FOUND_ROWS()', 'SELECT @n AS n']);
    expect(answers[2]).toEqual([{ n: 3 }]);
  });

  it('holds named locks while any is held', async () => {
    const c = await connect(px.port, topo, { database: DB });
    const watcher = await connect(px.port, topo, { database: DB });
    try {
      await c.query("SELECT GET_LOCK('wc_mux_c', 0), GET_LOCK('wc_mux_d', 0)");
      await c.query("SELECT RELEASE_LOCK('wc_mux_c')");
      await lentConnectionsTaken();
      await value(watcher, 2);
      const [rows] = await watcher.query<mysql.RowDataPacket[]>("SELECT IS_FREE_LOCK('wc_mux_d') AS f");
      expect(Number(rows[0].f)).toBe(0);
    } finally {
      await Promise.allSettled([c.end(), watcher.end()]);
    }
  });

  it('runs a prepared statement against the database it was prepared in', async () => {
    const c = await connect(px.port, topo, { database: DB });
    try {
      const [first] = await c.execute<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM kv WHERE id > ?', [0]);
      expect(Number(first[0].n)).toBe(ROWS);
      await c.query('USE wc_test');
      await c.query('SELECT 1');
      await lentConnectionsTaken();
      const [again] = await c.execute<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM kv WHERE id > ?', [0]);
      expect(Number(again[0].n)).toBe(ROWS);
      expect(await kept(px, 'prepared_statement_state')).toBeGreaterThan(0);
    } finally {
      await c.end();
    }
  });

  it('fails a statement whose database cannot be restored, rather than run it elsewhere', async () => {
    await root.query('CREATE DATABASE IF NOT EXISTS wc_mux_gone');
    const c = await connect(px.port, topo, { database: DB });
    try {
      await c.query('USE wc_mux_gone');
      await c.query('SELECT 1');
      await lentConnectionsTaken();
      await root.query('DROP DATABASE wc_mux_gone');
      const err = (await c.query('SELECT DATABASE() AS d').catch((e) => e)) as mysql.QueryError;
      expect(err.errno).toBe(1049);
      expect(err.message).toMatch(/could not be restored.*wc_mux_gone/);
    } finally {
      await c.end();
    }
  });
});
