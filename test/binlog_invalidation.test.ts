/**
 * Binlog-driven invalidation against the real topology: writes made beside
 * the proxy (directly on the primary, by triggers, FK cascades, stored
 * functions, views, DDL) invalidate cached results once the binlog reader
 * has passed them; the reader resumes after its connection is killed; and
 * while it is stopped, the cache (fail_closed) serves nothing.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartMariaDB, startReplicationSet, stopReplicationSet, waitForReplication, type ReplicationSetInfo } from '../scripts/topology.js';
import type { BinlogConfig } from '../src/config/types.js';
import { startApp } from '../src/app.js';
import { createLogger } from '../src/logger.js';
import { connect, routingConfig, startProxy, testCacheConfig, testConfig, type RunningProxy } from './proxy-harness.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
const DB = 'wc_binlog';

let root: mysql.Connection;
let proxy: RunningProxy;
let client: mysql.Connection;

/** An account with REPLICATION SLAVE only (created in beforeAll), so a test can lock it to hold the reader off. */
const REPL = { user: 'wc_binlog_repl', password: 'repl_pw' };

function binlogConfig(overrides: Partial<BinlogConfig> = {}): BinlogConfig {
  return { enabled: 'on', user: REPL.user, password: REPL.password, serverId: 4242, maxDelayMs: 5000, onUnavailable: 'fail_closed', ...overrides };
}

async function primaryPosition(): Promise<string> {
  const [rows] = await root.query<mysql.RowDataPacket[]>('SELECT @@gtid_binlog_pos AS pos');
  return String(rows[0].pos);
}

/** Waits (bounded) until the reader has applied everything the primary has logged so far; returns the wait in ms. */
async function readerPassed(p: RunningProxy = proxy): Promise<number> {
  const started = performance.now();
  const pos = await primaryPosition();
  expect(await p.proxy.binlog!.waitFor(pos, 3000), `reader reached ${pos}`).toBe(true);
  return performance.now() - started;
}

async function one(c: mysql.Connection, sql: string): Promise<unknown> {
  const [rows] = await c.query<mysql.RowDataPacket[]>({ sql, rowsAsArray: true });
  return rows[0]?.[0];
}

const hits = (p: RunningProxy = proxy) => p.metrics.cache.value('hits', 'hint');

/** Reads `sql` through the proxy twice: the second read must be a cache hit. Returns the value. */
async function cacheIt(sql: string): Promise<unknown> {
  const first = await one(client, sql);
  const before = hits();
  expect(await one(client, sql)).toEqual(first);
  expect(hits(), `hit for ${sql}`).toBe(before + 1);
  return first;
}

beforeAll(async () => {
  root = await mysql.createConnection({ host: '127.0.0.1', port: topo.primary.port, user: 'root', password: topo.rootPassword, multipleStatements: true });
  await root.query(`DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}; USE ${DB}`);
  await root.query(`DROP USER IF EXISTS '${REPL.user}'@'%'; CREATE USER '${REPL.user}'@'%' IDENTIFIED BY '${REPL.password}'; GRANT REPLICATION SLAVE ON *.* TO '${REPL.user}'@'%'`);
  await root.query(`
    CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;
    CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB;
    CREATE TABLE parent (id INT PRIMARY KEY) ENGINE=InnoDB;
    CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, FOREIGN KEY (parent_id) REFERENCES parent(id) ON DELETE CASCADE) ENGINE=InnoDB;
    CREATE TABLE ddl_t (id INT PRIMARY KEY) ENGINE=InnoDB;
    CREATE TABLE other_t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;
    CREATE VIEW v_items AS SELECT id, v FROM items;
    CREATE TRIGGER items_au AFTER UPDATE ON items FOR EACH ROW INSERT INTO audit (note) VALUES (NEW.v);
    CREATE FUNCTION f_write(x INT) RETURNS INT DETERMINISTIC MODIFIES SQL DATA BEGIN INSERT INTO audit (note) VALUES ('f'); RETURN x; END;
    CREATE PROCEDURE p_rename(IN x VARCHAR(20)) BEGIN UPDATE items SET v = x WHERE id = 3; END;
    INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three');
    INSERT INTO parent VALUES (1), (2);
    INSERT INTO child VALUES (10, 1), (11, 1), (20, 2);
    INSERT INTO ddl_t VALUES (1), (2);
    INSERT INTO other_t VALUES (1, 100);
  `);
  proxy = await startProxy(topo, { cache: testCacheConfig(), binlog: binlogConfig() });
  expect(proxy.proxy.binlog?.state).toMatch(/^(streaming|catching_up)$/);
  client = await connect(proxy.port, topo, { database: DB });
});

afterAll(async () => {
  await client?.end().catch(() => {});
  await proxy?.stop();
  await root?.query(`DROP DATABASE IF EXISTS ${DB}; DROP USER IF EXISTS '${REPL.user}'@'%'`).catch(() => {});
  await root?.end();
});

describe('binlog-driven invalidation', () => {
  it('a row updated directly on the primary is not served stale once the reader passed it (and is without the reader)', async () => {
    const sql = `/*qc=on*/ SELECT v FROM items WHERE id = 1`;
    expect(await cacheIt(sql)).toBe('one');
    // Without a reader, the same write leaves the stale value in the cache until the TTL.
    const plain = await startProxy(topo, { cache: testCacheConfig() });
    try {
      expect(plain.proxy.binlog).toBeNull();
      const c = await connect(plain.port, topo, { database: DB });
      expect(await one(c, sql)).toBe('one');
      await root.query(`UPDATE ${DB}.items SET v = 'uno' WHERE id = 1`);
      const before = plain.metrics.cache.value('hits', 'hint');
      expect(await one(c, sql)).toBe('one');
      expect(plain.metrics.cache.value('hits', 'hint')).toBe(before + 1);
      await c.end();
    } finally {
      await plain.stop();
    }
    await readerPassed();
    expect(await one(client, sql)).toBe('uno');
  });

  it('measures the delay from a direct commit to the invalidation', async () => {
    const sql = `/*qc=on*/ SELECT v FROM items WHERE id = 3`;
    const reader = proxy.proxy.binlog!;
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      await one(client, sql);
      await one(client, sql);
      // The next GTID of domain 0 is known before the write: wait for it from before the commit.
      const [domain, server, seq] = (await primaryPosition()).split('-');
      const passed = reader.waitFor(`${domain}-${server}-${BigInt(seq) + 1n}`, 3000).then((ok) => ({ ok, at: performance.now() }));
      await root.query(`UPDATE ${DB}.items SET v = ? WHERE id = 3`, [`v${i}`]);
      const committed = performance.now();
      const { ok, at } = await passed;
      expect(ok).toBe(true);
      // Negative: the reader bumped the table before the writer's client had read its OK.
      delays.push(at - committed);
      expect(await one(client, sql)).toBe(`v${i}`);
    }
    delays.sort((a, b) => a - b);
    console.log(`binlog: commit OK to invalidation p50 ${delays[4].toFixed(2)} ms, max ${delays[8].toFixed(2)} ms (min ${delays[0].toFixed(2)})`);
    expect(delays[8]).toBeLessThan(3000);
  });

  it('auto with an account that may not replicate stays off, and the cache works as without a reader', async () => {
    const off = await startProxy(topo, { cache: testCacheConfig(), binlog: binlogConfig({ enabled: 'auto', user: 'limited', password: 'limited_pw' }) });
    try {
      expect(off.proxy.binlog?.state).toBe('off');
      expect(off.proxy.binlog?.unhealthy).toBe(false);
      expect(off.proxy.binlog?.status().last_error).toMatch(/REPLICATION SLAVE|denied/i);
      const c = await connect(off.port, topo, { database: DB });
      const sql = `/*qc=on*/ SELECT v FROM items WHERE id = 2`;
      await one(c, sql);
      const before = off.metrics.cache.value('hits', 'hint');
      await one(c, sql);
      expect(off.metrics.cache.value('hits', 'hint')).toBe(before + 1);
      await c.end();
    } finally {
      await off.stop();
    }
  });

  it('a trigger writing a second table invalidates that table', async () => {
    const sql = `/*qc=on*/ SELECT COUNT(*) FROM audit`;
    const count = Number(await cacheIt(sql));
    await root.query(`UPDATE ${DB}.items SET v = 'deux' WHERE id = 2`);
    await readerPassed();
    expect(Number(await one(client, sql))).toBe(count + 1);
  });

  it('a write through a view invalidates the base table', async () => {
    const sql = `/*qc=on*/ SELECT v FROM items WHERE id = 2`;
    expect(await cacheIt(sql)).toBe('deux');
    await root.query(`UPDATE ${DB}.v_items SET v = 'dos' WHERE id = 2`);
    await readerPassed();
    expect(await one(client, sql)).toBe('dos');
  });

  it('an FK ON DELETE CASCADE invalidates the child table', async () => {
    const sql = `/*qc=on*/ SELECT COUNT(*) FROM child`;
    expect(Number(await cacheIt(sql))).toBe(3);
    await root.query(`DELETE FROM ${DB}.parent WHERE id = 1`);
    await readerPassed();
    expect(Number(await one(client, sql))).toBe(1);
  });

  it('a stored function that writes, called through the proxy in a SELECT, invalidates what it wrote', async () => {
    const sql = `/*qc=on*/ SELECT COUNT(*) FROM audit`;
    const count = Number(await cacheIt(sql));
    // A SELECT: the proxy's classifier sees no write here.
    expect(Number(await one(client, 'SELECT f_write(1)'))).toBe(1);
    await readerPassed();
    expect(Number(await one(client, sql))).toBe(count + 1);
  });

  it('a CALL that writes: its reply waits for the reader to pass its GTID, which invalidates what it wrote, and nothing else', async () => {
    const written = `/*qc=on*/ SELECT v FROM items WHERE id = 3`;
    const untouched = `/*qc=on*/ SELECT v FROM other_t WHERE id = 1`;
    const binlog = proxy.metrics.binlog;
    // The caller's own cache entries are private after a CALL (it may have made a temporary table): another session reads.
    const caller = await connect(proxy.port, topo, { database: DB });
    for (const [i, name] of ['drei', 'tres', 'trois'].entries()) {
      await cacheIt(written);
      await cacheIt(untouched);
      const passed = binlog.value('write_waits', 'passed');
      await caller.query('CALL p_rename(?)', [name]);
      expect(binlog.value('write_waits', 'passed')).toBe(passed + 1);
      // Right after the reply, with no wait of the test's own: the new value, and the other table still cached.
      expect(await one(client, written), `round ${i}`).toBe(name);
      const before = hits();
      expect(await one(client, untouched)).toBe(100);
      expect(hits()).toBe(before + 1);
    }
    await caller.end();
  });

  it('DDL invalidates: ALTER TABLE and TRUNCATE', async () => {
    const sql = `/*qc=on*/ SELECT * FROM ddl_t ORDER BY id`;
    await cacheIt(sql);
    await root.query(`ALTER TABLE ${DB}.ddl_t ADD COLUMN w INT NOT NULL DEFAULT 7`);
    await readerPassed();
    const [rows] = await client.query<mysql.RowDataPacket[]>(sql);
    expect(rows).toEqual([{ id: 1, w: 7 }, { id: 2, w: 7 }]);
    await client.query(sql);
    await root.query(`TRUNCATE TABLE ${DB}.ddl_t`);
    await readerPassed();
    const [after] = await client.query<mysql.RowDataPacket[]>(sql);
    expect(after).toEqual([]);
  });

  it('reconnects after its connection is killed and misses no write made during the outage', async () => {
    const reader = proxy.proxy.binlog!;
    const sql = `/*qc=on*/ SELECT v FROM items WHERE id = 1`;
    const unrelated = `/*qc=on*/ SELECT v FROM other_t WHERE id = 1`;
    await cacheIt(sql);
    await cacheIt(unrelated);
    const reconnects = proxy.metrics.binlog.value('reconnects');
    const thread = reader.status().thread_id;
    expect(thread).not.toBeNull();
    // Locked, the account cannot log in again: the write below is made while the reader is surely disconnected.
    // Not logged (sql_log_bin=0): a logged ALTER USER would invalidate everything, and the check of the unrelated entry below with it.
    await root.query(`SET sql_log_bin = 0; ALTER USER '${REPL.user}'@'%' ACCOUNT LOCK; SET sql_log_bin = 1`);
    try {
      await root.query(`KILL ${thread}`);
      const lostBy = Date.now() + 3000;
      while (reader.state === 'streaming' && Date.now() < lostBy) await new Promise((r) => setTimeout(r, 10));
      await root.query(`UPDATE ${DB}.items SET v = 'during' WHERE id = 1`);
      await new Promise((r) => setTimeout(r, 300));
      expect(reader.state).toMatch(/^(disconnected|connecting)$/);
      expect(reader.unhealthy).toBe(true);
      expect(reader.status().last_error).toMatch(/locked|denied/i);
    } finally {
      await root.query(`SET sql_log_bin = 0; ALTER USER '${REPL.user}'@'%' ACCOUNT UNLOCK; SET sql_log_bin = 1`);
    }
    const deadline = Date.now() + 5000;
    while (proxy.metrics.binlog.value('reconnects') === reconnects && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(proxy.metrics.binlog.value('reconnects')).toBe(reconnects + 1);
    await readerPassed();
    expect(reader.state).toBe('streaming');
    expect(await one(client, sql)).toBe('during');
    // It resumed from its position instead of starting over: the unrelated entry is still served.
    const before = hits();
    expect(await one(client, unrelated)).toBe(100);
    expect(hits()).toBe(before + 1);
  });

  it('with memcached storage, a proxy that did not see the write serves the new value once the reader passed it', async () => {
    const memcached = { servers: [`${topo.memcached.host}:${topo.memcached.port}`], timeoutMs: 500, itemLimitBytes: 1_048_576, maxItemsPerEntry: 16, keyPrefix: `bl${process.pid}` };
    const shared = await startProxy(topo, { cache: testCacheConfig({ storage: 'memcached', memcached }), binlog: binlogConfig({ serverId: 4244 }) });
    try {
      const c = await connect(shared.port, topo, { database: DB });
      const sql = `/*qc=on*/ SELECT v FROM items WHERE id = 2`;
      const first = await one(c, sql);
      const before = shared.metrics.cache.value('hits', 'hint');
      expect(await one(c, sql)).toBe(first);
      expect(shared.metrics.cache.value('hits', 'hint')).toBe(before + 1);
      await root.query(`UPDATE ${DB}.items SET v = 'mc' WHERE id = 2`);
      await readerPassed(shared);
      expect(await one(c, sql)).toBe('mc');
      await c.end();
    } finally {
      await shared.stop();
    }
  });

  it('restarting wirecache while writes go on: no write made while it was down is served stale from shared memcached', async () => {
    const memcached = { servers: [`${topo.memcached.host}:${topo.memcached.port}`], timeoutMs: 500, itemLimitBytes: 1_048_576, maxItemsPerEntry: 16, keyPrefix: `rs${process.pid}` };
    const settings = { cache: testCacheConfig({ storage: 'memcached', memcached }), binlog: binlogConfig({ serverId: 4245 }) };
    const sql = `/*qc=on*/ SELECT v FROM items WHERE id = 1`;
    let value = 'restart-0';
    await root.query(`UPDATE ${DB}.items SET v = ? WHERE id = 1`, [value]);
    for (let round = 1; round <= 3; round++) {
      const px = await startProxy(topo, settings);
      const c = await connect(px.port, topo, { database: DB });
      try {
        await readerPassed(px);
        expect(await one(c, sql), `round ${round}, first read`).toBe(value);
        const before = px.metrics.cache.value('hits', 'hint');
        expect(await one(c, sql)).toBe(value);
        expect(px.metrics.cache.value('hits', 'hint'), 'the entry is in memcached').toBe(before + 1);
      } finally {
        await c.end();
        await px.stop();
      }
      // The proxy is down: a write it cannot see (and memcached keeps the old entry).
      value = `restart-${round}`;
      await root.query(`UPDATE ${DB}.items SET v = ? WHERE id = 1`, [value]);
    }
  });

  it('/cache and /readyz say the reader state, and whether the cache serves', async () => {
    // Its own server_id: the primary drops an older replication client that registers the same id.
    const app = await startApp(testConfig(topo, { cache: testCacheConfig(), binlog: binlogConfig({ serverId: 4243 }) }), createLogger('error'));
    try {
      const get = async (p: string) => (await (await fetch(`http://127.0.0.1:${app.adminAddress.port}${p}`)).json()) as Record<string, any>;
      expect((await get('/cache')).binlog).toMatchObject({ state: 'streaming', server: 'primary', on_unavailable: 'fail_closed', cache_serving: true, last_error: null });
      expect(await get('/readyz')).toMatchObject({ status: 'ok', detail: { binlog: { state: 'streaming', cache_serving: true } } });
      expect(await (await fetch(`http://127.0.0.1:${app.adminAddress.port}/metrics`)).text()).toMatch(/^wirecache_binlog_connected 1$/m);
      app.proxy.binlog!.stop();
      expect((await get('/cache')).binlog).toMatchObject({ state: 'stopped', cache_serving: false });
      expect(await get('/readyz')).toMatchObject({ status: 'ok', detail: { binlog: { state: 'stopped', cache_serving: false } } });
    } finally {
      await app.stop();
    }
  });

  it('fail-closed: while the reader is stopped, cached statements are not served from the cache', async () => {
    const reader = proxy.proxy.binlog!;
    const sql = `/*qc=on*/ SELECT v FROM other_t WHERE id = 1`;
    await cacheIt(sql);
    reader.stop();
    try {
      expect(reader.unhealthy).toBe(true);
      const before = hits();
      const refused = proxy.metrics.cache.refusedCount('hint', 'binlog_unavailable');
      // A write the stopped reader does not see: the database answers, not the cache.
      await root.query(`UPDATE ${DB}.other_t SET v = 101 WHERE id = 1`);
      expect(await one(client, sql)).toBe(101);
      expect(await one(client, sql)).toBe(101);
      expect(hits()).toBe(before);
      expect(proxy.metrics.cache.refusedCount('hint', 'binlog_unavailable')).toBe(refused + 2);
    } finally {
      await reader.start();
    }
    await readerPassed();
    expect(reader.unhealthy).toBe(false);
    // Resumed from its position: the write made while it was stopped is applied, and caching works again.
    await root.query(`UPDATE ${DB}.other_t SET v = 102 WHERE id = 1`);
    await readerPassed();
    expect(await cacheIt(sql)).toBe(102);
  });
});

/** A replication set of its own (the shared topology is never restarted or promoted). */
describe('binlog reader: primary restart and failover', () => {
  let set: ReplicationSetInfo;
  let baseDir: string;
  let px: RunningProxy;
  let c: mysql.Connection;
  const rootOn = (port: number) => mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: set.rootPassword });

  async function passedOn(port: number): Promise<void> {
    const conn = await rootOn(port);
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@gtid_binlog_pos AS pos');
      expect(await px.proxy.binlog!.waitFor(String(rows[0].pos), 8000), `reader reached ${rows[0].pos}`).toBe(true);
    } finally {
      await conn.end();
    }
  }

  beforeAll(async () => {
    baseDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-binlog-'));
    set = await startReplicationSet({ baseDir, templateDir: topo.templateDir, replicas: 1 });
    const r = await rootOn(set.primary.port);
    await r.query('CREATE TABLE wc_test.bl (id INT PRIMARY KEY, v INT)');
    await r.query('INSERT INTO wc_test.bl VALUES (1, 0)');
    await r.end();
    await waitForReplication({ ...set, memcached: topo.memcached });
    px = await startProxy(topo, { ...routingConfig(set, { monitor: { intervalMs: 200 } }), cache: testCacheConfig(), binlog: binlogConfig({ user: 'root', password: set.rootPassword }) }, set.primary);
    c = await connect(px.port, set as never);
  });

  afterAll(async () => {
    await c?.end().catch(() => {});
    await px?.stop();
    if (set) await stopReplicationSet(set);
    if (baseDir) await fs.rm(baseDir, { recursive: true, force: true });
  });

  const sql = '/*qc=on*/ SELECT v FROM bl WHERE id = 1';

  it('resumes after the primary restarts and misses no write made right after the restart (during its backoff, usually)', async () => {
    expect(await one(c, sql)).toBe(0);
    const reconnects = px.metrics.binlog.value('reconnects');
    set.primary = await restartMariaDB(set.primary);
    const r = await rootOn(set.primary.port);
    await r.query('UPDATE wc_test.bl SET v = 1 WHERE id = 1');
    // Usually still in its backoff here (100 ms doubling while the server was down): the write is then read on resume.
    console.log(`binlog: reader state when the write after the restart committed: ${px.proxy.binlog!.state}`);
    await r.end();
    await passedOn(set.primary.port);
    expect(px.metrics.binlog.value('reconnects')).toBeGreaterThan(reconnects);
    // The session's own connection died with the server: a fresh client.
    await c.end().catch(() => {});
    c = await connect(px.port, set as never);
    expect(await one(c, sql)).toBe(1);
  });

  it('follows a promoted replica and invalidates the writes made there', async () => {
    await waitForReplication({ ...set, memcached: topo.memcached });
    await one(c, sql);
    const before = px.metrics.cache.value('hits', 'hint');
    expect(await one(c, sql)).toBe(1);
    expect(px.metrics.cache.value('hits', 'hint')).toBe(before + 1);
    const oldPrimary = await rootOn(set.primary.port);
    const promoted = await rootOn(set.replicas[0].port);
    try {
      await promoted.query('STOP SLAVE');
      await promoted.query('SET GLOBAL read_only = OFF');
      await oldPrimary.query('SET GLOBAL read_only = ON');
      const deadline = Date.now() + 8000;
      while (px.proxy.binlog!.status().server !== set.replicas[0].name && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(px.proxy.binlog!.status().server).toBe(set.replicas[0].name);
      await promoted.query('UPDATE wc_test.bl SET v = 2 WHERE id = 1');
      await passedOn(set.replicas[0].port);
      expect(await one(c, sql)).toBe(2);
    } finally {
      await oldPrimary.end();
      await promoted.end();
    }
  });
});

