/**
 * The login pool against the real server: a backend connection a client left
 * is reset and given to the next client of the same login, and that client
 * cannot tell it from a fresh login: every session variable, the database,
 * the diagnostics, and none of the earlier client's user variables,
 * temporary tables, locks, prepared statements or uncommitted rows.
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { connect, startProxy, testCacheConfig, type RunningProxy } from './proxy-harness.js';
import { getTopology } from './topology-context.js';
import { RawClient } from './raw-client.js';
import { disableGeneralLog, enableGeneralLog, serverRan } from './general-log.js';
import { Phase } from '../src/session/client_session.js';

const topo = getTopology();
const DB = 'wc_pool';
let root: mysql.Connection;
let pooled: RunningProxy;
let unpooled: RunningProxy;

/** Every session variable but those that differ between any two fresh sessions. */
const SESSION_STATE = `SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.SESSION_VARIABLES
  WHERE VARIABLE_NAME NOT IN ('TIMESTAMP', 'RAND_SEED1', 'RAND_SEED2', 'PSEUDO_THREAD_ID', 'THREAD_ID', 'LAST_GTID', 'GTID_SEQ_NO', 'SERVER_UID',
    'GTID_BINLOG_POS', 'GTID_CURRENT_POS', 'GTID_SLAVE_POS', 'GTID_BINLOG_STATE')
  ORDER BY VARIABLE_NAME`;

async function state(c: mysql.Connection): Promise<unknown> {
  const [rows] = await c.query(SESSION_STATE);
  return rows;
}

async function threadId(c: mysql.Connection): Promise<number> {
  const [rows] = await c.query('SELECT CONNECTION_ID() AS id');
  return Number((rows as { id: number }[])[0].id);
}

async function idle(p: RunningProxy): Promise<number> {
  const text = await p.metrics.metricsText();
  return Number(/wirecache_backend_pool_idle\{server="primary"\} (\d+)/.exec(text)?.[1] ?? 0);
}

/** Waits until every client that left has had its connection reset and kept (the count holds still). */
async function settled(p: RunningProxy): Promise<number> {
  let last = -1;
  let n = await idle(p);
  while (n !== last) {
    last = n;
    await new Promise((r) => setTimeout(r, 150));
    n = await idle(p);
  }
  return n;
}

async function waitIdle(p: RunningProxy, n: number): Promise<void> {
  const end = Date.now() + 5000;
  while ((await idle(p)) !== n) {
    if (Date.now() > end) throw new Error(`pool never had ${n} idle connections (has ${await idle(p)})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  root = await mysql.createConnection({ host: topo.primary.host, port: topo.primary.port, user: 'root', password: topo.rootPassword, multipleStatements: true });
  await root.query(`DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}; CREATE TABLE ${DB}.t (id INT PRIMARY KEY) ENGINE=InnoDB;
    CREATE TABLE ${DB}.plain_reads (id INT PRIMARY KEY); INSERT INTO ${DB}.plain_reads VALUES (1), (2), (3);
    CREATE TABLE ${DB}.snap (id INT PRIMARY KEY) ENGINE=InnoDB`);
  // Connection-per-client pooling (at disconnect); test/multiplexing.test.ts covers hand-overs between statements.
  // An account that reads the primary's views and stored functions (the binlog reader stays off): a connection
  // whose client read only tables no function-calling view hides goes over without a reset.
  const schemaReader = { enabled: 'off' as const, user: 'root', password: topo.rootPassword, serverId: 4242, maxDelayMs: 5000, onUnavailable: 'fail_closed' as const };
  pooled = await startProxy(topo, {
    cache: testCacheConfig(),
    binlog: schemaReader,
    pool: { maxIdle: 100, idleTimeoutSeconds: 60, maxConnections: 0, maxConnectionsPerUser: 0, queueTimeoutMs: 5000, multiplexing: false },
  });
  unpooled = await startProxy(topo, { cache: testCacheConfig(), pool: { maxIdle: 0, idleTimeoutSeconds: 60, maxConnections: 0, maxConnectionsPerUser: 0, queueTimeoutMs: 5000, multiplexing: false } });
});

afterAll(async () => {
  await pooled?.stop();
  await unpooled?.stop();
  await root?.query(`DROP DATABASE IF EXISTS ${DB}`).catch(() => {});
  await root?.end();
});

describe('a connection a client left', () => {
  it('goes to the next client of the same login, which sees exactly a fresh session', async () => {
    const reference = await connect(unpooled.port, topo, { database: DB, multipleStatements: true });
    const diagnostics = (await reference.query('SELECT FOUND_ROWS() AS f, ROW_COUNT() AS r, LAST_INSERT_ID() AS l, DATABASE() AS d'))[0];
    const fresh = { state: await state(reference), diagnostics };
    await reference.end();

    const a = await connect(pooled.port, topo, { database: DB, multipleStatements: true });
    const aThread = await threadId(a);
    await a.query(`SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci; SET SESSION sql_mode = 'ANSI'; SET @secret = 'a-only'; SET autocommit = 0;
      SET SESSION wait_timeout = 77, SESSION session_track_schema = OFF, SESSION tx_isolation = 'SERIALIZABLE';
      CREATE TEMPORARY TABLE scratch (x INT); INSERT INTO t VALUES (1); PREPARE s FROM 'SELECT 1'; USE mysql`);
    await a.query("SELECT GET_LOCK('wc_pool_lock', 0)");
    await a.end();
    await waitIdle(pooled, 1);

    // The same login: multipleStatements is a capability, and connections are kept per capabilities.
    const b = await connect(pooled.port, topo, { database: DB, multipleStatements: true });
    try {
      // Diagnostics first: any statement would change them.
      expect((await b.query('SELECT FOUND_ROWS() AS f, ROW_COUNT() AS r, LAST_INSERT_ID() AS l, DATABASE() AS d'))[0]).toEqual(fresh.diagnostics);
      expect(await threadId(b)).toBe(aThread);
      expect(await idle(pooled)).toBe(0);
      expect(await state(b)).toEqual(fresh.state);
      expect((await b.query('SELECT @secret AS v'))[0]).toEqual([{ v: null }]);
      await expect(b.query('SELECT * FROM scratch')).rejects.toThrow(/doesn't exist/);
      await expect(b.query('EXECUTE s')).rejects.toThrow(/Unknown prepared statement/);
      expect((await b.query('SELECT COUNT(*) AS n FROM t'))[0]).toEqual([{ n: 0 }]);
      expect((await root.query("SELECT IS_FREE_LOCK('wc_pool_lock') AS free"))[0]).toEqual([{ free: 1 }]);
    } finally {
      await b.end();
    }
  });

  it('goes to the next client without a reset after only plain reads, and a first question about diagnostics still gets a fresh login\'s answer', async () => {
    // plain_reads exists since before the proxy started: its schema reader knows it as a base table.
    const fresh = async (sql: string): Promise<unknown> => {
      const reference = await connect(unpooled.port, topo, { database: DB });
      try {
        return (await reference.query(sql))[0];
      } finally {
        await reference.end();
      }
    };
    const freshWarnings = await fresh('SHOW WARNINGS');
    const freshFound = await fresh('SELECT FOUND_ROWS() AS f');
    await enableGeneralLog(root);
    onTestFinished(() => disableGeneralLog(root));
    // The first statement of the pool's reset.
    const resets = () => serverRan(root, 'CURRENT_ROLE() IS NOT NULL');
    const before = await settled(pooled);
    const resetsBefore = await resets();
    // Plain reads, the last one finding three rows.
    const leaveReads = async (): Promise<number> => {
      const a = await connect(pooled.port, topo, { database: DB });
      const thread = await threadId(a);
      await a.query('SELECT id FROM plain_reads WHERE id <= 3');
      await a.end();
      await waitIdle(pooled, before + 1);
      return thread;
    };
    const aThread = await leaveReads();
    expect(await resets()).toBe(resetsBefore);
    const b = await connect(pooled.port, topo, { database: DB });
    expect((await b.query('SHOW WARNINGS'))[0]).toEqual(freshWarnings);
    expect(await threadId(b)).toBe(aThread);
    // Asking about the inherited diagnostics cost the one reset the hand-over skipped.
    expect(await resets()).toBe(resetsBefore + 1);
    await b.end();
    await waitIdle(pooled, before + 1);
    expect(await leaveReads()).toBe(aThread);
    const c = await connect(pooled.port, topo, { database: DB });
    expect((await c.query('SELECT FOUND_ROWS() AS f'))[0]).toEqual(freshFound);
    expect(await threadId(c)).toBe(aThread);
    await c.end();
    await waitIdle(pooled, before + 1);
    // A read that leaves a warning (it may outlive later statements): reset before the next client has it.
    const w = await connect(pooled.port, topo, { database: DB });
    const [, fields] = await w.query("SELECT CAST('1x' AS INT) AS v");
    expect(fields).toHaveLength(1);
    await w.end();
    await waitIdle(pooled, before + 1);
    expect(await resets()).toBe(resetsBefore + 3);
    const x = await connect(pooled.port, topo, { database: DB });
    expect((await x.query('SHOW WARNINGS'))[0]).toEqual(freshWarnings);
    expect(await threadId(x)).toBe(aThread);
    await x.end();
    await waitIdle(pooled, before + 1);
    expect(await resets()).toBe(resetsBefore + 3);
    // Any other first statement (here one setting a user variable) gets the skipped reset before it runs, and the
    // connection its reset again before the next client has it.
    const d = await connect(pooled.port, topo, { database: DB });
    await d.query("SET @left = 'd'");
    expect(await resets()).toBe(resetsBefore + 4);
    await d.end();
    await waitIdle(pooled, before + 1);
    const e = await connect(pooled.port, topo, { database: DB });
    expect((await e.query('SELECT @left AS v'))[0]).toEqual([{ v: null }]);
    expect(await threadId(e)).toBe(aThread);
    // Before e leaves: reading a user variable makes its connection need a reset too.
    expect(await resets()).toBe(resetsBefore + 5);
    await e.end();
    const text = await pooled.metrics.metricsText();
    const outcome = (name: string) => Number(new RegExp(`wirecache_backend_pool_resets_total\\{server="primary",outcome="${name}"\\} (\\d+)`).exec(text)?.[1]);
    expect(outcome('on_demand')).toBeGreaterThanOrEqual(3);
    expect(outcome('skipped')).toBeGreaterThanOrEqual(4);
    expect(outcome('reset')).toBeGreaterThanOrEqual(1);
  });

  it('is reset after a plain read that left a transaction open (autocommit off on the server): the next client sees fresh rows', async () => {
    // snap exists since before the proxy started: a read of it is a plain read of a known base table.
    await root.query(`DELETE FROM ${DB}.snap; INSERT INTO ${DB}.snap VALUES (1)`);
    await root.query('SET GLOBAL autocommit = 0');
    onTestFinished(async () => {
      await root.query('SET GLOBAL autocommit = 1');
    });
    // A login of its own (character set): a backend connection made after the change, so autocommit is off in it.
    const login = { database: DB, charset: 'utf8mb4_unicode_ci' };
    const a = await connect(pooled.port, topo, login);
    const aThread = await threadId(a);
    expect((await a.query('SELECT COUNT(*) AS n FROM snap'))[0]).toEqual([{ n: 1 }]);
    await a.end();
    await root.query(`INSERT INTO ${DB}.snap VALUES (2)`);
    await new Promise((r) => setTimeout(r, 200));
    const b = await connect(pooled.port, topo, login);
    try {
      expect((await b.query('SELECT COUNT(*) AS n FROM snap'))[0]).toEqual([{ n: 2 }]);
      expect(await threadId(b)).toBe(aThread);
    } finally {
      await b.end();
    }
  });

  it('gets back what its login capabilities set: IGNORE_SPACE in sql_mode, the interactive wait_timeout', async () => {
    const flags = ['INTERACTIVE', 'IGNORE_SPACE'];
    // An interactive login's wait_timeout is interactive_timeout: different from wait_timeout here, so that a miss shows.
    await root.query('SET GLOBAL interactive_timeout = 12345');
    onTestFinished(async () => {
      await root.query('SET GLOBAL interactive_timeout = DEFAULT');
    });
    const reference = await connect(unpooled.port, topo, { database: DB, flags });
    const fresh = await state(reference);
    await reference.end();
    const before = await settled(pooled);
    const a = await connect(pooled.port, topo, { database: DB, flags });
    const aThread = await threadId(a);
    await a.query("SET SESSION sql_mode = '', SESSION wait_timeout = 5");
    await a.end();
    await waitIdle(pooled, before + 1);
    const b = await connect(pooled.port, topo, { database: DB, flags });
    try {
      expect(await threadId(b)).toBe(aThread);
      const now = await state(b);
      expect(now).toEqual(fresh);
      expect(JSON.stringify(now)).toMatch(/"VARIABLE_NAME":"SQL_MODE","VARIABLE_VALUE":"IGNORE_SPACE,/);
      expect(JSON.stringify(now)).toMatch(/"VARIABLE_NAME":"WAIT_TIMEOUT","VARIABLE_VALUE":"12345"/);
    } finally {
      await b.end();
    }
  });

  it('is never given to another account, database or character set', async () => {
    const a = await connect(pooled.port, topo, { database: DB });
    const aThread = await threadId(a);
    await a.end();
    // Kept (a connection of this login may have been idle already: a took it, and left it again).
    const kept = await settled(pooled);
    const others = [
      await connect(pooled.port, topo, { database: DB, user: 'other' }),
      await connect(pooled.port, topo, { database: 'wc_test' }),
      await mysql.createConnection({ host: '127.0.0.1', port: pooled.port, user: 'app', password: 'app_pw', database: DB, charset: 'latin1_swedish_ci' }),
    ];
    try {
      for (const c of others) expect(await threadId(c)).not.toBe(aThread);
      expect(await idle(pooled)).toBe(kept);
    } finally {
      for (const c of others) await c.end();
    }
  });

  it('makes connect, query, disconnect cost no backend login: 200 clients in a row use one backend thread', async () => {
    const kept = await settled(pooled);
    const [[before]] = (await root.query("SHOW GLOBAL STATUS LIKE 'Connections'")) as unknown as [[{ Value: string }]];
    const threads = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const c = await connect(pooled.port, topo, { database: DB });
      threads.add(await threadId(c));
      await c.end();
      await waitIdle(pooled, kept);
    }
    const [[after]] = (await root.query("SHOW GLOBAL STATUS LIKE 'Connections'")) as unknown as [[{ Value: string }]];
    expect(threads.size).toBe(1);
    // Only this test's own two status reads log in.
    expect(Number(after.Value) - Number(before.Value)).toBeLessThanOrEqual(2);
    expect(await pooled.metrics.metricsText()).toMatch(/wirecache_backend_logins_saved_total\{server="primary"\} ([2-9]\d\d|\d{4,})/);
  });

  it('is closed, not kept, when the pool is off', async () => {
    const c = await connect(unpooled.port, topo, { database: DB });
    const thread = await threadId(c);
    await c.end();
    const end = Date.now() + 5000;
    let alive = true;
    while (alive && Date.now() < end) {
      const [rows] = await root.query('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = ?', [thread]);
      alive = (rows as { n: number }[])[0].n > 0;
      if (alive) await new Promise((r) => setTimeout(r, 20));
    }
    expect(alive).toBe(false);
  });
});

describe('pool.max_connections', () => {
  it('queues a new connection while a server is at its limit, serves it when one ends, and answers ERR 1040 after queue_timeout', async () => {
    const limited = await startProxy(topo, { pool: { maxIdle: 10, idleTimeoutSeconds: 60, maxConnections: 2, maxConnectionsPerUser: 0, queueTimeoutMs: 400, multiplexing: false } });
    const open: mysql.Connection[] = [];
    try {
      open.push(await connect(limited.port, topo, { database: DB }), await connect(limited.port, topo, { database: DB }));
      // A third waits; after 400 ms it gets MySQL's answer to a full server.
      const refused = await connect(limited.port, topo, { database: DB }).then(
        () => null,
        (err: { errno?: number; sqlState?: string; message: string }) => err,
      );
      expect(refused?.errno).toBe(1040);
      expect(refused?.sqlState).toBe('08004');
      expect(refused?.message).toMatch(/Too many connections: wirecache's pool for 'primary' has all 2 connections in use \(waited \d+ ms\)/);
      // A fourth waits, and gets in as soon as one of the two leaves (its connection kept, then given to it).
      const waiting = connect(limited.port, topo, { database: DB });
      await new Promise((r) => setTimeout(r, 100));
      const usage = limited.proxy.loginPool.usage('primary');
      expect(usage).toEqual({ open: 2, idle: 0, waiting: 1 });
      await (open.shift() as mysql.Connection).end();
      const fourth = await waiting;
      open.push(fourth);
      expect((await fourth.query('SELECT 1 AS one'))[0]).toEqual([{ one: 1 }]);
      const text = await limited.metrics.metricsText();
      expect(text).toMatch(/wirecache_backend_pool_waits_total\{server="primary",outcome="timeout"\} 1/);
      expect(text).toMatch(/wirecache_backend_pool_waits_total\{server="primary",outcome="served"\} 1/);
      expect(text).toMatch(/wirecache_backend_pool_connections\{server="primary"\} 2/);
    } finally {
      for (const c of open) await c.end();
      await limited.stop();
    }
  });

  it('keeps each account to its share (pool.max_connections_per_user): the next one waits, then ERR 1203; other accounts go on', async () => {
    const limited = await startProxy(topo, { pool: { maxIdle: 10, idleTimeoutSeconds: 60, maxConnections: 0, maxConnectionsPerUser: 1, queueTimeoutMs: 300, multiplexing: false } });
    const open: mysql.Connection[] = [];
    try {
      open.push(await connect(limited.port, topo, { database: DB }));
      const refused = await connect(limited.port, topo, { database: DB }).then(
        () => null,
        (err: { errno?: number; sqlState?: string; message: string }) => err,
      );
      expect(refused?.errno).toBe(1203);
      expect(refused?.sqlState).toBe('42000');
      expect(refused?.message).toMatch(/User app already has more than 'max_user_connections' active connections: wirecache's pool for 'primary' allows 1 per account/);
      open.push(await connect(limited.port, topo, { database: DB, user: 'other' }));
      expect((await open[1].query('SELECT CURRENT_USER() AS u'))[0]).toEqual([{ u: 'other@%' }]);
    } finally {
      for (const c of open) await c.end();
      await limited.stop();
    }
  });

  it('makes room by closing an idle connection of another login', async () => {
    const limited = await startProxy(topo, { pool: { maxIdle: 10, idleTimeoutSeconds: 60, maxConnections: 1, maxConnectionsPerUser: 0, queueTimeoutMs: 2000, multiplexing: false } });
    try {
      const a = await connect(limited.port, topo, { database: DB });
      await a.end();
      await waitIdle(limited, 1);
      // Another account: no kept connection fits it, and the server is at its limit of 1 (the idle one).
      const b = await connect(limited.port, topo, { database: DB, user: 'other' });
      expect((await b.query('SELECT CURRENT_USER() AS u'))[0]).toEqual([{ u: 'other@%' }]);
      expect(limited.proxy.loginPool.usage('primary')).toEqual({ open: 1, idle: 0, waiting: 0 });
      await b.end();
    } finally {
      await limited.stop();
    }
  });
});

describe('what a reset does not clear', () => {
  it('a role: a session that set one leaves no connection behind, and no client inherits it', async () => {
    await root.query(`DROP ROLE IF EXISTS wc_pool_role; CREATE ROLE wc_pool_role; GRANT SELECT ON ${DB}.* TO wc_pool_role; GRANT wc_pool_role TO app`);
    try {
      const before = await settled(pooled);
      const a = await connect(pooled.port, topo, { database: DB });
      const aThread = await threadId(a);
      await a.query('SET ROLE wc_pool_role');
      await a.end();
      expect(await settled(pooled)).toBeLessThanOrEqual(before);
      const b = await connect(pooled.port, topo, { database: DB });
      try {
        expect(await threadId(b)).not.toBe(aThread);
        expect((await b.query('SELECT CURRENT_ROLE() AS r'))[0]).toEqual([{ r: null }]);
      } finally {
        await b.end();
      }
    } finally {
      await root.query('DROP ROLE IF EXISTS wc_pool_role');
    }
  });

  it('the locks of a client that left are released before it sees its connection end', async () => {
    // A raw client: its quit() returns once the proxy has closed the connection (mysql2's end() may return before).
    const a = await RawClient.login(pooled.port, 'app', 'app_pw', { database: DB });
    await a.query("SELECT GET_LOCK('wc_pool_bye', 0)");
    await a.quit();
    expect((await root.query("SELECT IS_FREE_LOCK('wc_pool_bye') AS free"))[0]).toEqual([{ free: 1 }]);
  });
});

describe('a client that stops reading, then leaves', () => {
  it('does not take its paused connection, or its slot, with it', async () => {
    const limited = await startProxy(topo, { pool: { maxIdle: 10, idleTimeoutSeconds: 60, maxConnections: 1, maxConnectionsPerUser: 0, queueTimeoutMs: 3000, multiplexing: false } });
    try {
      const slow = await RawClient.login(limited.port, 'app', 'app_pw', { database: DB });
      slow.socket.pause();
      // Results the client never reads, one query at a time: once the client's buffer is full, the proxy pauses
      // the backend connection, and the last reply, whole in the chunk that filled the buffer, leaves the
      // session at rest with its backend connection still paused.
      const query = Buffer.concat([Buffer.from([0x03]), Buffer.from("SELECT REPEAT('x', 9000)")]);
      const frame = Buffer.concat([Buffer.from([query.length & 0xff, (query.length >> 8) & 0xff, 0, 0]), query]);
      const session = () => [...limited.proxy.sessions.values()][0];
      const end = Date.now() + 10_000;
      while (!(session()?.backendPaused && session()?.phase === Phase.Ready) && Date.now() < end) {
        slow.socket.write(frame);
        await new Promise((r) => setTimeout(r, 3));
      }
      expect(session()?.backendPaused).toBe(true);
      expect(session()?.phase).toBe(Phase.Ready);
      slow.close();
      // The only slot comes back (the connection is reset and kept, or closed), so the next client gets in.
      const next = await connect(limited.port, topo, { database: DB });
      expect((await next.query('SELECT 1 AS one'))[0]).toEqual([{ one: 1 }]);
      await next.end();
    } finally {
      await limited.stop();
    }
  });
});
