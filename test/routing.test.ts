/**
 * Read/write split against the real topology (a primary and two GTID
 * replicas): which server answers is read from @@server_id in the results
 * (primary 1, replica1 2, replica2 3).
 */
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { waitForReplication } from '../scripts/topology.js';
import { connect, routingConfig, startProxy, testCacheConfig, type RunningProxy } from './proxy-harness.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
type Row = mysql.RowDataPacket;

async function serverIdOf(conn: mysql.Connection, sql = 'SELECT @@server_id AS id'): Promise<number> {
  const [rows] = await conn.query<Row[]>(sql);
  return Number(rows[0].id);
}

async function serverIds(conn: mysql.Connection, n: number, sql?: string): Promise<Set<number>> {
  const ids = new Set<number>();
  for (let i = 0; i < n; i++) ids.add(await serverIdOf(conn, sql));
  return ids;
}

async function rootOn(port: number): Promise<mysql.Connection> {
  const mysql2 = await import('mysql2/promise');
  return mysql2.createConnection({ host: '127.0.0.1', port, user: 'root', password: topo.rootPassword });
}

describe('read/write split', () => {
  let px: RunningProxy;
  let conn: mysql.Connection;

  beforeAll(async () => {
    const root = await rootOn(topo.primary.port);
    await root.query('CREATE TABLE IF NOT EXISTS wc_test.rw_split (id INT PRIMARY KEY, sid INT, v VARCHAR(20))');
    await root.query('TRUNCATE wc_test.rw_split');
    await root.end();
    await waitForReplication(topo);
    px = await startProxy(topo, routingConfig(topo));
    conn = await connect(px.port, topo);
  });

  afterAll(async () => {
    await conn?.end();
    await px?.stop();
    const root = await rootOn(topo.primary.port);
    await root.query('DROP TABLE IF EXISTS wc_test.rw_split');
    await root.end();
  });

  it('spreads reads over both replicas and sends writes to the primary', async () => {
    expect(await serverIds(conn, 12)).toEqual(new Set([2, 3]));
    await conn.query('INSERT INTO rw_split (id, sid) VALUES (1, @@server_id)');
    const root = await rootOn(topo.primary.port);
    const [rows] = await root.query<Row[]>('SELECT sid FROM wc_test.rw_split WHERE id = 1');
    await root.end();
    expect(rows[0].sid).toBe(1);
    expect(px.metrics.routing.routedCount('primary', 'primary', 'write')).toBeGreaterThan(0);
    expect(px.metrics.routing.routedCount('replica', 'replica1', 'read')).toBeGreaterThan(0);
    expect(px.metrics.routing.routedCount('replica', 'replica2', 'read')).toBeGreaterThan(0);
  });

  it('sends reads inside a transaction and locking reads to the primary', async () => {
    await conn.query('BEGIN');
    expect(await serverIds(conn, 4)).toEqual(new Set([1]));
    await conn.query('COMMIT');
    expect(await serverIds(conn, 4, 'SELECT @@server_id AS id FROM rw_split WHERE id = 1 FOR UPDATE')).toEqual(new Set([1]));
    expect(await serverIds(conn, 4, 'SELECT @@server_id AS id FROM rw_split WHERE id = 1 LOCK IN SHARE MODE')).toEqual(new Set([1]));
    await conn.query('SET autocommit = 0');
    expect(await serverIds(conn, 4)).toEqual(new Set([1]));
    await conn.query('SET autocommit = 1');
    expect(await serverIds(conn, 6)).toEqual(new Set([2, 3]));
  });

  it('keeps a session with a temporary table on the primary until the table is dropped', async () => {
    await conn.query('CREATE TEMPORARY TABLE tmp_rw (a INT)');
    await conn.query('INSERT INTO tmp_rw VALUES (7)');
    const [rows] = await conn.query<Row[]>('SELECT a, @@server_id AS id FROM tmp_rw');
    expect(rows).toEqual([{ a: 7, id: 1 }]);
    expect(await serverIds(conn, 4)).toEqual(new Set([1]));
    await conn.query('DROP TEMPORARY TABLE tmp_rw');
    expect(await serverIds(conn, 6)).toEqual(new Set([2, 3]));
  });

  it('keeps a session on the primary after a multi-statement text whose later statement creates a temporary table', async () => {
    const multi = await connect(px.port, topo, { multipleStatements: true });
    try {
      await multi.query('SELECT 1; CREATE TEMPORARY TABLE tmp_ms (a INT); INSERT INTO tmp_ms VALUES (3)');
      const [rows] = await multi.query<Row[]>('SELECT a FROM tmp_ms');
      expect(rows).toEqual([{ a: 3 }]);
      expect(await serverIds(multi, 4)).toEqual(new Set([1]));
    } finally {
      await multi.end();
    }
  });

  it('keeps a session on the primary after state it cannot replay: EXECUTE IMMEDIATE, a compound statement', async () => {
    const other = await connect(px.port, topo, { multipleStatements: true });
    try {
      await other.query("EXECUTE IMMEDIATE 'SET @@session.time_zone = ''+05:00'''");
      for (let i = 0; i < 4; i++) {
        const [rows] = await other.query<Row[]>('SELECT @@time_zone AS tz, @@server_id AS id');
        expect(rows[0]).toEqual({ tz: '+05:00', id: 1 });
      }
    } finally {
      await other.end();
    }
    const compound = await connect(px.port, topo, { multipleStatements: true });
    try {
      await compound.query("BEGIN NOT ATOMIC SET @@session.time_zone = '+04:00'; END");
      const [rows] = await compound.query<Row[]>('SELECT @@time_zone AS tz, @@server_id AS id');
      expect(rows[0]).toEqual({ tz: '+04:00', id: 1 });
    } finally {
      await compound.end();
    }
  });

  it('reads user variables where they were set, and holds GET_LOCK sessions on the primary', async () => {
    await conn.query('SET @wc_answer = 42');
    const [rows] = await conn.query<Row[]>('SELECT @wc_answer AS v, @@server_id AS id');
    expect(rows[0]).toEqual({ v: 42, id: 1 });
    await conn.query("SELECT GET_LOCK('wc_rw_lock', 1)");
    expect(await serverIds(conn, 4)).toEqual(new Set([1]));
    await conn.query("SELECT RELEASE_LOCK('wc_rw_lock')");
    expect(await serverIds(conn, 6)).toEqual(new Set([2, 3]));
    const [last] = await conn.query<Row[]>('SELECT LAST_INSERT_ID() AS v, @@server_id AS id');
    expect(last[0].id).toBe(1);
    // FOUND_ROWS() answers about the SQL_CALC_FOUND_ROWS select before it: both on the primary.
    await conn.query('INSERT INTO rw_split (id, sid) VALUES (10, 0), (11, 0)');
    const [[{ total }]] = await conn.query<Row[]>('SELECT COUNT(*) AS total FROM rw_split FOR UPDATE');
    const [calc] = await conn.query<Row[]>('SELECT SQL_CALC_FOUND_ROWS id, @@server_id AS sid FROM rw_split LIMIT 1');
    expect(calc[0].sid).toBe(1);
    const [[{ found }]] = await conn.query<Row[]>('SELECT FOUND_ROWS() AS found');
    expect(found).toBe(total);
    expect(Number(total)).toBeGreaterThan(1);
  });

  it('asks FOUND_ROWS(), ROW_COUNT() and @@warning_count where the previous statement ran, as a direct connection answers', async () => {
    const pairs: [string, string][] = [
      ['SELECT id FROM rw_split ORDER BY id LIMIT 1', 'SELECT FOUND_ROWS() AS v'],
      ["SELECT CAST('12abc' AS SIGNED) AS x", 'SELECT @@warning_count AS v'],
      ["SELECT CAST('12abc' AS SIGNED) AS x", 'SELECT @@session.warning_count AS v, @@error_count AS e'],
      ['SELECT 1 AS x', 'SELECT ROW_COUNT() AS v'],
    ];
    const direct = await rootOn(topo.replicas[0].port);
    try {
      await direct.query('USE wc_test');
      for (const [first, diag] of pairs) {
        await direct.query(first);
        const [expected] = await direct.query<Row[]>(diag);
        // Several rounds: the round robin would send a second read to the other replica.
        for (let i = 0; i < 4; i++) {
          await conn.query(first);
          const [got] = await conn.query<Row[]>(diag);
          expect(got, `${first}; ${diag}`).toEqual(expected);
        }
      }
    } finally {
      await direct.end();
    }
    expect(px.metrics.routing.routedCount('replica', 'replica1', 'diagnostics') + px.metrics.routing.routedCount('replica', 'replica2', 'diagnostics')).toBeGreaterThan(0);
  });

  it('applies SET NAMES, sql_mode and USE on the replicas too, including connections opened later', async () => {
    const c = await connect(px.port, topo);
    try {
      await c.query("SET sql_mode = 'ANSI_QUOTES'");
      await c.query('SET NAMES latin1');
      await c.query('USE mysql');
      for (let i = 0; i < 6; i++) {
        const [rows] = await c.query<Row[]>('SELECT @@server_id AS id, @@sql_mode AS mode, @@character_set_client AS cs, DATABASE() AS db');
        expect(rows[0].id).not.toBe(1);
        expect(rows[0]).toMatchObject({ mode: 'ANSI_QUOTES', cs: 'latin1', db: 'mysql' });
      }
      // ANSI_QUOTES on the replica: "name" is an identifier there, as on the primary.
      const [rows] = await c.query<Row[]>('SELECT "User" AS u FROM mysql.user LIMIT 1');
      expect(typeof rows[0].u).toBe('string');
    } finally {
      await c.end();
    }
  });

  it('prepares statements on whichever server executes them', async () => {
    const seen = new Set<number>();
    for (let i = 0; i < 8; i++) {
      const [rows] = await conn.execute<Row[]>('SELECT @@server_id AS id, ? + 1 AS n', [i]);
      expect(Number(rows[0].n)).toBe(i + 1);
      seen.add(Number(rows[0].id));
    }
    expect(seen).toEqual(new Set([2, 3]));
    await conn.execute('INSERT INTO rw_split (id, sid) VALUES (?, @@server_id)', [2]);
    const [rows] = await conn.execute<Row[]>('SELECT sid FROM rw_split WHERE id = ? FOR UPDATE', [2]);
    expect(rows[0].sid).toBe(1);
  });

  it('obeys /*route=primary*/ and a rule route for reads, but never sends a write to a replica', async () => {
    expect(await serverIds(conn, 4, '/*route=primary*/ SELECT @@server_id AS id')).toEqual(new Set([1]));
    expect(await serverIds(conn, 4, '/*route=replica2*/ SELECT @@server_id AS id')).toEqual(new Set([3]));
    await conn.query("/*route=replica1*/ INSERT INTO rw_split (id, sid) VALUES (3, @@server_id)");
    const [rows] = await conn.query<Row[]>('SELECT sid FROM rw_split WHERE id = 3 FOR UPDATE');
    expect(rows[0].sid).toBe(1);
  });
});

describe('replica health', () => {
  it('takes a replica lagging past max_replication_lag out after fail_after checks and back after recover_after', async () => {
    const px = await startProxy(topo, routingConfig(topo, { routing: { maxReplicationLagSeconds: 1 } }));
    const replica = await rootOn(topo.replicas[1].port);
    const conn = await connect(px.port, topo);
    const root = await rootOn(topo.primary.port);
    try {
      expect(await serverIds(conn, 6)).toEqual(new Set([2, 3]));
      await replica.query('STOP SLAVE');
      await replica.query('CHANGE MASTER TO MASTER_DELAY = 5');
      await replica.query('START SLAVE');
      // The monitor's own heartbeat writes make the delay visible as lag.
      await vi.waitFor(() => expect(px.proxy.monitor!.server('replica2')!.inRotation).toBe(false), { timeout: 10_000, interval: 100 });
      expect(px.proxy.monitor!.server('replica2')!.state).toBe('lagging');
      expect(await serverIds(conn, 6)).toEqual(new Set([2]));
      await replica.query('STOP SLAVE');
      await replica.query('CHANGE MASTER TO MASTER_DELAY = 0');
      await replica.query('START SLAVE');
      await vi.waitFor(() => expect(px.proxy.monitor!.server('replica2')!.inRotation).toBe(true), { timeout: 15_000, interval: 100 });
      expect(await serverIds(conn, 6)).toEqual(new Set([2, 3]));
      const metrics = await px.metrics.metricsText();
      expect(metrics).toMatch(/wirecache_server_state\{server="replica2",state="up"\} 1/);
      expect(metrics).toMatch(/wirecache_server_state_changes_total\{server="replica2",to="lagging"\} [1-9]/);
    } finally {
      await replica.query('STOP SLAVE').catch(() => undefined);
      await replica.query('CHANGE MASTER TO MASTER_DELAY = 0').catch(() => undefined);
      await replica.query('START SLAVE').catch(() => undefined);
      await replica.end();
      await root.end();
      await conn.end();
      await px.stop();
    }
  });

  it('reads a session its own writes with a delayed replica under consistency: session, and not under eventual', async () => {
    const delayed = topo.replicas[1];
    const replica = await rootOn(delayed.port);
    const root = await rootOn(topo.primary.port);
    await root.query('CREATE TABLE IF NOT EXISTS wc_test.ryw (id INT PRIMARY KEY)');
    await waitForReplication(topo);
    // Only the delayed replica, and a lag bound that keeps it in rotation: every read would go there.
    const only = { ...topo, replicas: [delayed] };
    const session = await startProxy(topo, routingConfig(only, { routing: { maxReplicationLagSeconds: 100, consistencyWaitMs: 200 } }));
    const eventual = await startProxy(topo, routingConfig(only, { routing: { maxReplicationLagSeconds: 100, consistency: 'eventual' } }));
    const a = await connect(session.port, topo);
    const b = await connect(eventual.port, topo);
    try {
      await replica.query('STOP SLAVE');
      await replica.query('CHANGE MASTER TO MASTER_DELAY = 5');
      await replica.query('START SLAVE');
      for (let id = 1; id <= 5; id++) {
        await a.query('INSERT INTO ryw (id) VALUES (?)', [id]);
        const [rows] = await a.query<Row[]>('SELECT id FROM ryw WHERE id = ?', [id]);
        expect(rows).toEqual([{ id }]);
      }
      // The writing session reads from the primary while the replica is behind; a session that wrote nothing still goes to the replica.
      await a.query('INSERT INTO ryw (id) VALUES (6)');
      expect(await serverIdOf(a)).toBe(1);
      const c = await connect(session.port, topo);
      expect(await serverIdOf(c)).toBe(3);
      await c.end();
      await b.query('INSERT INTO ryw (id) VALUES (100)');
      const [rows] = await b.query<Row[]>('SELECT id, @@server_id AS sid FROM ryw WHERE id = 100');
      expect(rows).toEqual([]);
      expect(await session.metrics.metricsText()).toMatch(/wirecache_consistency_checks_total\{outcome="timeout"\} [1-9]/);
    } finally {
      await replica.query('STOP SLAVE').catch(() => undefined);
      await replica.query('CHANGE MASTER TO MASTER_DELAY = 0').catch(() => undefined);
      await replica.query('START SLAVE').catch(() => undefined);
      await a.end();
      await b.end();
      await session.stop();
      await eventual.stop();
      await root.query('DROP TABLE IF EXISTS wc_test.ryw');
      await root.end();
      await replica.end();
      await waitForReplication(topo);
    }
  });
});

describe('the cache in front of the split', () => {
  it('serves hits without a backend, fills misses from the primary, and invalidates on writes from any session', async () => {
    const root = await rootOn(topo.primary.port);
    await root.query('CREATE TABLE IF NOT EXISTS wc_test.rw_cache (id INT PRIMARY KEY, v INT)');
    await root.query('REPLACE INTO wc_test.rw_cache VALUES (1, 10)');
    await waitForReplication(topo);
    const px = await startProxy(topo, { ...routingConfig(topo), cache: testCacheConfig() });
    const reader = await connect(px.port, topo);
    const writer = await connect(px.port, topo);
    const routed = () =>
      ['primary', 'replica1', 'replica2'].reduce(
        (n, server) => n + px.metrics.routing.routedCount(server === 'primary' ? 'primary' : 'replica', server, server === 'primary' ? 'cache_fill' : 'read'),
        0,
      );
    const read = async () => {
      const [rows] = await reader.query<Row[]>('/*qc=on*/ SELECT v FROM rw_cache WHERE id = 1');
      return rows[0].v as number;
    };
    try {
      expect(await read()).toBe(10);
      expect(px.metrics.routing.routedCount('primary', 'primary', 'cache_fill')).toBe(1);
      const before = routed();
      for (let i = 0; i < 5; i++) expect(await read()).toBe(10);
      // Five hits, no backend.
      expect(routed()).toBe(before);
      await writer.query('UPDATE rw_cache SET v = 11 WHERE id = 1');
      expect(await read()).toBe(11);
      expect(px.metrics.routing.routedCount('primary', 'primary', 'cache_fill')).toBe(2);
    } finally {
      await reader.end();
      await writer.end();
      await px.stop();
      await root.query('DROP TABLE IF EXISTS wc_test.rw_cache');
      await root.end();
    }
  });
});
