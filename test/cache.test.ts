/**
 * The query cache against the real topology: what is cached and what is
 * not, hits that never reach the server (counted in the server's own
 * general log), TTLs, stale serving, coalescing, invalidation by writes from
 * other sessions, races, isolation between users, schemas and character
 * sets, prepared statements, and the memory bound.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { compileRule, type RawRule } from '../src/config/rules.js';
import type { CacheConfig } from '../src/config/types.js';
import { encodePacket } from '../src/protocol/framing.js';
import { ResponseKind } from '../src/protocol/response_scanner.js';
import { RawClient } from './raw-client.js';
import { getTopology } from './topology-context.js';
import { connect, startProxy, testCacheConfig, type RunningProxy } from './proxy-harness.js';
import { disableGeneralLog, enableGeneralLog, markers, serverRan as countRan } from './general-log.js';

const topo = getTopology();
let root: mysql.Connection;

const rule = (raw: RawRule) => compileRule(raw, 'test');

async function withProxy<T>(cache: Partial<CacheConfig>, fn: (px: RunningProxy) => Promise<T>): Promise<T> {
  const px = await startProxy(topo, { cache: testCacheConfig(cache) });
  try {
    return await fn(px);
  } finally {
    await px.stop();
  }
}

const serverRan = (marker: string) => countRan(root, marker);
/** A unique comment to find a statement in the general log (comments do not change the cache key). */
const mark = markers('m');

async function value(c: mysql.Connection, sql: string, params?: (string | number)[]): Promise<unknown> {
  const [rows] = params ? await c.execute(sql, params) : await c.query(sql);
  return (rows as Record<string, unknown>[])[0]?.v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  root = await connect(topo.primary.port, topo, { user: 'root', multipleStatements: true });
  await root.query(`
    CREATE TABLE IF NOT EXISTS wc_test.qc_items (id INT PRIMARY KEY, v VARCHAR(64)) CHARACTER SET utf8mb4;
    TRUNCATE wc_test.qc_items;
    INSERT INTO wc_test.qc_items VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'caf\u00e9');
    CREATE DATABASE IF NOT EXISTS wc_test2;
    CREATE TABLE IF NOT EXISTS wc_test2.qc_items (id INT PRIMARY KEY, v VARCHAR(64));
    TRUNCATE wc_test2.qc_items;
    INSERT INTO wc_test2.qc_items VALUES (1, 'other-schema');
    CREATE DATABASE IF NOT EXISTS wc_secret;
    CREATE TABLE IF NOT EXISTS wc_secret.s (id INT PRIMARY KEY, v VARCHAR(64));
    TRUNCATE wc_secret.s;
    INSERT INTO wc_secret.s VALUES (1, 'secret');
    CREATE TABLE IF NOT EXISTS wc_test.qc_big (id INT PRIMARY KEY, v MEDIUMTEXT);
    TRUNCATE wc_test.qc_big;
  `);
  await enableGeneralLog(root);
});

afterAll(async () => {
  // Other files list the server's databases: leave only what the topology made.
  if (!root) return;
  await disableGeneralLog(root);
  await root.query('DROP DATABASE IF EXISTS wc_test2; DROP DATABASE IF EXISTS wc_secret');
  await root?.end();
});

describe('choosing what to cache', () => {
  it('caches a /*qc=on*/ SELECT: repeats do not reach the server', async () => {
    await withProxy({}, async (px) => {
      const c = await connect(px.port, topo);
      const m = mark();
      for (let i = 0; i < 3; i++) expect(await value(c, `/*qc=on*/ SELECT v FROM qc_items WHERE id = 1 ${m}`)).toBe('one');
      expect(await serverRan(m)).toBe(1);
      expect(px.metrics.cache.value('hits', 'hint')).toBe(2);
      expect(px.metrics.cache.value('stores', 'hint')).toBe(1);
      await c.end();
    });
  });

  it('leaves unhinted SELECTs alone in hinted mode, and honours qc=off in all mode', async () => {
    await withProxy({}, async (px) => {
      const c = await connect(px.port, topo);
      const m = mark();
      for (let i = 0; i < 3; i++) await value(c, `SELECT v FROM qc_items WHERE id = 1 ${m}`);
      expect(await serverRan(m)).toBe(3);
      await c.end();
    });
    await withProxy({ mode: 'all' }, async (px) => {
      const c = await connect(px.port, topo);
      const cached = mark();
      const bypassed = mark();
      for (let i = 0; i < 3; i++) {
        expect(await value(c, `SELECT v FROM qc_items WHERE id = 2 ${cached}`)).toBe('two');
        expect(await value(c, `/*qc=off*/ SELECT v FROM qc_items WHERE id = 3 ${bypassed}`)).toBe('three');
      }
      expect(await serverRan(cached)).toBe(1);
      expect(await serverRan(bypassed)).toBe(3);
      await c.end();
    });
  });

  it('expires entries after qc_ttl seconds', async () => {
    await withProxy({}, async (px) => {
      const c = await connect(px.port, topo);
      const m = mark();
      const sql = `/*qc=on*//*qc_ttl=1*/ SELECT v FROM qc_items WHERE id = 2 ${m}`;
      await value(c, sql);
      await value(c, sql);
      expect(await serverRan(m)).toBe(1);
      await sleep(1100);
      await value(c, sql);
      expect(await serverRan(m)).toBe(2);
      await c.end();
    });
  });

  it('never joins two statements the server reads differently: touching tokens, and strings under the session sql_mode', async () => {
    await root.query('CREATE TABLE IF NOT EXISTS wc_test.qc_boundary (`1e` INT); TRUNCATE wc_test.qc_boundary; INSERT INTO wc_test.qc_boundary VALUES (5)');
    await withProxy({ mode: 'all' }, async (px) => {
      const app = await connect(px.port, topo);
      const direct = await connect(topo.primary.port, topo);
      try {
        // 1e+1 is the number 10; 1e + 1 is the column `1e` plus one.
        for (const sql of ['SELECT 1e+1 AS v FROM qc_boundary', 'SELECT 1e + 1 AS v FROM qc_boundary', 'SELECT 1e+1 AS v FROM qc_boundary']) {
          expect(await value(app, sql), sql).toEqual(await value(direct, sql));
        }
        // With NO_BACKSLASH_ESCAPES, 'a\' ends at its second quote: the texts below hold different strings. The
        // server's status flags say the session is in that mode, and a text with a backslash is not cached then.
        for (const c of [app, direct]) await c.query("SET sql_mode = 'NO_BACKSLASH_ESCAPES'");
        for (const sql of ["SELECT 'a\\' AS w, 'b  c' AS v", "SELECT 'a\\' AS w, 'b c' AS v", "SELECT 'a\\' AS w, 'b  c' AS v"]) {
          expect(await value(app, sql), sql).toEqual(await value(direct, sql));
        }
        expect(px.metrics.cache.value('hits', 'all')).toBe(1);
        expect(px.metrics.cache.refusedCount('all', 'sql_mode_quoting')).toBe(3);
        // Without a backslash the same session caches as usual.
        for (let i = 0; i < 2; i++) expect(await value(app, "SELECT 'b  c' AS v")).toEqual(await value(direct, "SELECT 'b  c' AS v"));
        expect(px.metrics.cache.value('hits', 'all')).toBe(2);
      } finally {
        await app.end();
        await direct.end();
      }
    });
  });

  it('never stores a read of a sequence table: NEXTVAL moves it without a write the proxy sees', async () => {
    await root.query('CREATE OR REPLACE SEQUENCE wc_test.qc_seq START WITH 1 INCREMENT BY 1 CACHE 2');
    await withProxy({ mode: 'all' }, async (px) => {
      const app = await connect(px.port, topo);
      const direct = await connect(topo.primary.port, topo);
      try {
        for (let i = 0; i < 4; i++) {
          await direct.query('SELECT NEXTVAL(wc_test.qc_seq)');
          const sql = 'SELECT next_not_cached_value AS v FROM wc_test.qc_seq';
          expect(await value(app, sql)).toEqual(await value(direct, sql));
        }
        expect(px.metrics.cache.value('hits', 'all')).toBe(0);
        expect(px.metrics.cache.refusedCount('all', 'sequence')).toBe(4);
      } finally {
        await app.end();
        await direct.end();
      }
    });
  });

  it('never stores what a READ UNCOMMITTED session reads: a rolled-back row is not served again', async () => {
    await root.query('CREATE TABLE IF NOT EXISTS wc_test.qc_dirty (id INT PRIMARY KEY) ENGINE=InnoDB; TRUNCATE wc_test.qc_dirty');
    await withProxy({ mode: 'all' }, async (px) => {
      const reader = await connect(px.port, topo);
      const writer = await connect(px.port, topo);
      try {
        await reader.query('SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED');
        await writer.query('BEGIN');
        await writer.query('INSERT INTO qc_dirty VALUES (1)');
        expect(await value(reader, 'SELECT COUNT(*) AS v FROM qc_dirty')).toBe(1);
        await writer.query('ROLLBACK');
        expect(await value(reader, 'SELECT COUNT(*) AS v FROM qc_dirty')).toBe(0);
        expect(px.metrics.cache.value('hits', 'all')).toBe(0);
      } finally {
        await reader.end();
        await writer.end();
      }
    });
  });

  it('matches rules by digest (multi-line SQL with other literals too), regex, table, user and schema', async () => {
    const rules = [
      rule({ name: 'by-digest', match: { digest: 'SELECT v FROM qc_items WHERE id = ?' }, cache: true }),
      rule({ name: 'by-regex', match: { regex: '^SELECT id FROM qc_items WHERE v = ' }, cache: true }),
      rule({ name: 'by-table', match: { tables: 'wc_test.qc_items', users: 'other' }, cache: true }),
      rule({ name: 'by-schema', match: { schemas: 'wc_test2' }, cache: true }),
    ];
    await withProxy({ rules }, async (px) => {
      const app = await connect(px.port, topo);
      const m1 = mark();
      expect(await value(app, `SELECT v FROM qc_items WHERE id = 1 ${m1}`)).toBe('one');
      // Multi-line ORM text with other amounts of spacing shares the entry (tokens that touch stay joined in the
      // key: `id=1` would be an entry of its own); other literals match the rule as their own entries.
      expect(await value(app, `SELECT v\n   FROM qc_items\n  WHERE id =  1 ${m1}`)).toBe('one');
      expect(await value(app, `select v from qc_items where id = 2 ${m1}`)).toBe('two');
      expect(await value(app, `select v from qc_items where id = 2 ${m1}`)).toBe('two');
      expect(await serverRan(m1)).toBe(2);
      expect(px.metrics.cache.value('hits', 'by-digest')).toBe(2);
      expect(px.metrics.cache.value('stores', 'by-digest')).toBe(2);

      const m2 = mark();
      await app.query(`SELECT id FROM qc_items WHERE v = 'two' ${m2}`);
      await app.query(`SELECT id FROM qc_items WHERE v = 'two' ${m2}`);
      expect(await serverRan(m2)).toBe(1);
      expect(px.metrics.cache.value('hits', 'by-regex')).toBe(1);

      // by-table only for user "other": app's queries on the table are not cached.
      const m3 = mark();
      const other = await connect(px.port, topo, { user: 'other' });
      for (const c of [app, app, other, other]) await c.query(`SELECT COUNT(*) AS v FROM qc_items ${m3}`);
      expect(await serverRan(m3)).toBe(3);
      expect(px.metrics.cache.value('hits', 'by-table')).toBe(1);

      const m4 = mark();
      const s2 = await connect(px.port, topo, { database: 'wc_test2' });
      for (let i = 0; i < 2; i++) expect(await value(s2, `SELECT v FROM qc_items WHERE id = 1 AND 1 = 1 ${m4}`)).toBe('other-schema');
      expect(await serverRan(m4)).toBe(1);
      await Promise.all([app.end(), other.end(), s2.end()]);
    });
  });

  it('a rule with cache: false wins over a hint', async () => {
    const rules = [rule({ name: 'never', match: { tables: 'qc_items' }, cache: false })];
    await withProxy({ rules }, async (px) => {
      const c = await connect(px.port, topo);
      const m = mark();
      for (let i = 0; i < 2; i++) await value(c, `/*qc=on*/ SELECT v FROM qc_items WHERE id = 1 ${m}`);
      expect(await serverRan(m)).toBe(2);
      await c.end();
    });
  });
});

describe('never cached', () => {
  it('inside transactions, locking reads, SELECT INTO, non-deterministic functions, writes; each counted', async () => {
    await withProxy({}, async (px) => {
      const c = await connect(px.port, topo);
      const cases: [string, string, string][] = [
        ['in_transaction', 'BEGIN', `/*qc=on*/ SELECT v FROM qc_items WHERE id = 1`],
        ['locking_read', 'ROLLBACK', `/*qc=on*/ SELECT v FROM qc_items WHERE id = 1 FOR UPDATE`],
        ['locking_read', 'DO 0', `/*qc=on*/ SELECT v FROM qc_items WHERE id = 1 LOCK IN SHARE MODE`],
        ['non_deterministic', 'DO 0', `/*qc=on*/ SELECT v, NOW() AS t FROM qc_items WHERE id = 1`],
        ['non_deterministic', 'DO 0', `/*qc=on*/ SELECT v, @@sql_mode AS t FROM qc_items WHERE id = 1`],
        ['select_into', 'DO 0', `/*qc=on*/ SELECT v INTO @x FROM qc_items WHERE id = 1`],
        ['not_select', 'DO 0', `/*qc=on*/ UPDATE qc_items SET v = v WHERE id = 1`],
      ];
      for (const [reason, before, sql] of cases) {
        await c.query(before);
        const m = mark();
        await c.query(`${sql} ${m}`);
        await c.query(`${sql} ${m}`);
        expect(await serverRan(m), sql).toBe(2);
        expect(px.metrics.cache.refusedCount('hint', reason as never), reason).toBeGreaterThan(0);
      }
      await c.query('ROLLBACK');
      // autocommit off is a transaction too.
      await c.query('SET autocommit = 0');
      const m = mark();
      for (let i = 0; i < 2; i++) await c.query(`/*qc=on*/ SELECT v FROM qc_items WHERE id = 3 ${m}`);
      expect(await serverRan(m)).toBe(2);
      await c.query('SET autocommit = 1');
      const after = mark();
      for (let i = 0; i < 2; i++) await c.query(`/*qc=on*/ SELECT v FROM qc_items WHERE id = 3 ${after}`);
      expect(await serverRan(after)).toBe(1);
      await c.end();
    });
  });

  it('does not store results with warnings or errors, nor results over the size limit (the client still gets them whole)', async () => {
    await root.query("REPLACE INTO wc_test.qc_big VALUES (1, REPEAT('x', 300000))");
    await withProxy({ maxResultBytes: 100_000 }, async (px) => {
      const c = await connect(px.port, topo);
      const big = mark();
      for (let i = 0; i < 2; i++) {
        const [rows] = await c.query(`/*qc=on*/ SELECT v FROM qc_big WHERE id = 1 ${big}`);
        expect(((rows as { v: string }[])[0].v).length).toBe(300000);
      }
      expect(await serverRan(big)).toBe(2);
      expect(px.metrics.cache.refusedCount('hint', 'too_large')).toBe(2);

      const warn = mark();
      for (let i = 0; i < 2; i++) await c.query(`/*qc=on*/ SELECT CAST(v AS SIGNED) AS v FROM qc_items WHERE id = 1 ${warn}`);
      expect(await serverRan(warn)).toBe(2);
      expect(px.metrics.cache.refusedCount('hint', 'warnings')).toBe(2);

      const err = mark();
      for (let i = 0; i < 2; i++) await expect(c.query(`/*qc=on*/ SELECT v FROM no_such_table ${err}`)).rejects.toMatchObject({ errno: 1146 });
      expect(await serverRan(err)).toBe(2);
      await c.end();
    });
  });
});

describe('invalidation', () => {
  beforeEach(async () => {
    await root.query("UPDATE wc_test.qc_items SET v = 'one' WHERE id = 1");
  });

  it('an UPDATE through another session invalidates: the next read sees the new row', async () => {
    await withProxy({}, async (px) => {
      const reader = await connect(px.port, topo);
      const writer = await connect(px.port, topo);
      const sql = '/*qc=on*/ SELECT v FROM qc_items WHERE id = 1';
      expect(await value(reader, sql)).toBe('one');
      expect(await value(reader, sql)).toBe('one');
      await writer.query("UPDATE qc_items SET v = 'uno' WHERE id = 1");
      expect(await value(reader, sql)).toBe('uno');
      // Qualified names in another default schema invalidate the same table.
      const elsewhere = await connect(px.port, topo, { database: 'wc_test2' });
      await elsewhere.query("UPDATE wc_test.qc_items SET v = 'eins' WHERE id = 1");
      expect(await value(reader, sql)).toBe('eins');
      await Promise.all([reader.end(), writer.end(), elsewhere.end()]);
    });
  });

  it('a write inside a transaction invalidates at COMMIT; a ROLLBACK invalidates nothing', async () => {
    await withProxy({}, async (px) => {
      const reader = await connect(px.port, topo);
      const writer = await connect(px.port, topo);
      const sql = '/*qc=on*/ SELECT v FROM qc_items WHERE id = 1';
      const invalidations = () => px.metrics.registry.getSingleMetricAsString('wirecache_cache_invalidations_total');
      expect(await value(reader, sql)).toBe('one');
      await writer.query('BEGIN');
      await writer.query("UPDATE qc_items SET v = 'rolled back' WHERE id = 1");
      const before = await invalidations();
      await writer.query('ROLLBACK');
      expect(await invalidations()).toBe(before);
      expect(await value(reader, sql)).toBe('one');

      await writer.query('START TRANSACTION');
      await writer.query("UPDATE qc_items SET v = 'committed' WHERE id = 1");
      // Not committed: readers see (and may cache) the old row.
      expect(await value(reader, sql)).toBe('one');
      await writer.query('COMMIT');
      expect(await value(reader, sql)).toBe('committed');
      await Promise.all([reader.end(), writer.end()]);
    });
  });

  it('a write racing a slow read never leaves the old result stored', async () => {
    const rules = [rule({ name: 'slow', match: { regex: 'SLEEP' }, cache: true, allow_nondeterministic: true })];
    await withProxy({ rules }, async (px) => {
      const reader = await connect(px.port, topo);
      const writer = await connect(px.port, topo);
      const sql = 'SELECT v, SLEEP(0.6) AS s FROM qc_items WHERE id = 1';
      const slow = reader.query(sql);
      await sleep(200);
      await writer.query("UPDATE qc_items SET v = 'raced' WHERE id = 1");
      const [rows] = await slow;
      // The slow read began before the write: it saw the old row, and must not have been stored.
      expect((rows as { v: string }[])[0].v).toBe('one');
      expect(px.metrics.cache.refusedCount('slow', 'concurrent_write')).toBe(1);
      const [again] = await reader.query(sql);
      expect((again as { v: string }[])[0].v).toBe('raced');
      await Promise.all([reader.end(), writer.end()]);
    });
  });

  it('a prepared UPDATE invalidates like a text one', async () => {
    await withProxy({}, async (px) => {
      const c = await connect(px.port, topo);
      const sql = '/*qc=on*/ SELECT v FROM qc_items WHERE id = 1';
      expect(await value(c, sql)).toBe('one');
      await c.execute('UPDATE qc_items SET v = ? WHERE id = ?', ['prepared', 1]);
      expect(await value(c, sql)).toBe('prepared');
      await c.end();
    });
  });

  it('inside START TRANSACTION READ ONLY (when allowed) entries are served but never stored', async () => {
    await withProxy({ allowReadOnlyTransactions: true }, async (px) => {
      const c = await connect(px.port, topo);
      const m = mark();
      const sql = `/*qc=on*/ SELECT v FROM qc_items WHERE id = 2 ${m}`;
      await c.query('START TRANSACTION READ ONLY');
      expect(await value(c, sql)).toBe('two');
      expect(await value(c, sql)).toBe('two');
      await c.query('COMMIT');
      expect(await serverRan(m)).toBe(2);
      expect(px.metrics.cache.refusedCount('hint', 'in_transaction')).toBe(2);
      expect(await value(c, sql)).toBe('two');
      await c.query('START TRANSACTION READ ONLY');
      expect(await value(c, sql)).toBe('two');
      await c.query('COMMIT');
      expect(await serverRan(m)).toBe(3);
      await c.end();
    });
  });

  it('DDL and writes whose tables cannot be told invalidate everything they may touch', async () => {
    await withProxy({}, async (px) => {
      const c = await connect(px.port, topo, { multipleStatements: true });
      const sql = '/*qc=on*/ SELECT v FROM qc_items WHERE id = 2';
      expect(await value(c, sql)).toBe('two');
      await c.query("UPDATE qc_items SET v = 'dos' WHERE id = 2; DO 0");
      expect(await value(c, sql)).toBe('dos');
      await c.query("UPDATE qc_items SET v = 'two' WHERE id = 2");
      expect(await value(c, sql)).toBe('two');
      await c.end();
    });
  });
});

describe('slam defense', () => {
  it('100 concurrent misses on one key send exactly one query to the database', async () => {
    const rules = [rule({ name: 'slam', match: { regex: 'SLEEP' }, cache: true, allow_nondeterministic: true })];
    await withProxy({ rules }, async (px) => {
      const clients = await Promise.all(Array.from({ length: 100 }, () => connect(px.port, topo)));
      const m = mark();
      const results = await Promise.all(clients.map((c) => value(c, `SELECT v, SLEEP(0.3) AS s FROM qc_items WHERE id = 3 ${m}`)));
      expect(results.every((v) => v === 'three')).toBe(true);
      expect(await serverRan(m)).toBe(1);
      expect(px.metrics.cache.value('hits', 'slam')).toBe(99);
      await Promise.all(clients.map((c) => c.end()));
    });
  });

  it('after the soft TTL one reader refreshes while the others get the stale copy', async () => {
    const rules = [rule({ name: 'soft', match: { regex: 'SLEEP' }, cache: true, ttl: 30, soft_ttl: 1, allow_nondeterministic: true })];
    await withProxy({ rules }, async (px) => {
      const clients = await Promise.all(Array.from({ length: 5 }, () => connect(px.port, topo)));
      const m = mark();
      const sql = `SELECT v, SLEEP(0.4) AS s FROM qc_items WHERE id = 4 ${m}`;
      expect(await value(clients[0], sql)).toBe('caf\u00e9');
      // Changed behind the proxy's back: only the TTLs can notice.
      await root.query("UPDATE wc_test.qc_items SET v = 'cafe' WHERE id = 4");
      await sleep(1100);
      const refresher = value(clients[0], sql);
      await sleep(100);
      const others = await Promise.all(clients.slice(1).map((c) => value(c, sql)));
      expect(others).toEqual(['caf\u00e9', 'caf\u00e9', 'caf\u00e9', 'caf\u00e9']);
      expect(await refresher).toBe('cafe');
      expect(await serverRan(m)).toBe(2);
      expect(px.metrics.cache.value('staleHits', 'soft')).toBe(4);
      expect(await value(clients[1], sql)).toBe('cafe');
      await root.query("UPDATE wc_test.qc_items SET v = 'caf\u00e9' WHERE id = 4");
      await Promise.all(clients.map((c) => c.end()));
    });
  });
});

describe('isolation', () => {
  it('a user without the grant gets the server error, never rows cached for another user', async () => {
    await withProxy({}, async (px) => {
      const app = await connect(px.port, topo);
      const limited = await connect(px.port, topo, { user: 'limited' });
      const sql = '/*qc=on*/ SELECT v FROM wc_secret.s WHERE id = 1';
      expect(await value(app, sql)).toBe('secret');
      expect(await value(app, sql)).toBe('secret');
      await expect(limited.query(sql)).rejects.toMatchObject({ errno: 1142 });
      await Promise.all([app.end(), limited.end()]);
    });
  });

  it('the same SQL under two schemas or two character sets gives two entries', async () => {
    await withProxy({}, async (px) => {
      const a = await connect(px.port, topo, { database: 'wc_test' });
      const b = await connect(px.port, topo, { database: 'wc_test2' });
      const sql = '/*qc=on*/ SELECT v FROM qc_items WHERE id = 1';
      expect(await value(a, sql)).toBe('one');
      expect(await value(b, sql)).toBe('other-schema');
      expect(await value(a, sql)).toBe('one');
      expect(await value(b, sql)).toBe('other-schema');
      await b.query('USE wc_test');
      expect(await value(b, sql)).toBe('one');

      const hex = '/*qc=on*/ SELECT HEX(v) AS v FROM qc_items WHERE id = 4';
      const utf8 = await connect(px.port, topo);
      const latin1 = await connect(px.port, topo);
      await latin1.query('SET NAMES latin1');
      expect(await value(utf8, hex)).toBe('636166C3A9');
      expect(await value(latin1, hex)).toBe('636166C3A9');
      const raw = '/*qc=on*/ SELECT v AS v, LENGTH(CONVERT(v USING latin1)) AS n FROM qc_items WHERE id = 4';
      const [u] = await utf8.query({ sql: raw, typeCast: (f: { buffer(): Buffer | null }) => f.buffer() } as never);
      const [l] = await latin1.query({ sql: raw, typeCast: (f: { buffer(): Buffer | null }) => f.buffer() } as never);
      expect((u as { v: Buffer }[])[0].v.toString('hex')).toBe('636166c3a9');
      expect((l as { v: Buffer }[])[0].v.toString('hex')).toBe('636166e9');
      // Each repeated text above was classified once and its earlier classification reused (and the
      // cache's decision made again for the other schema and character set).
      const memo = px.proxy.statementMemo();
      expect(memo.hits).toBe(6);
      expect(memo.entries).toBeGreaterThanOrEqual(3);
      await Promise.all([a.end(), b.end(), utf8.end(), latin1.end()]);
    });
  });
});

describe('prepared statements', () => {
  it('caches COM_STMT_EXECUTE results keyed on the parameters', async () => {
    await withProxy({}, async (px) => {
      const c = await connect(px.port, topo);
      const m = mark();
      const sql = `/*qc=on*/ SELECT v FROM qc_items WHERE id = ? ${m}`;
      expect(await value(c, sql, [1])).toBe('one');
      expect(await value(c, sql, [1])).toBe('one');
      expect(await value(c, sql, [2])).toBe('two');
      expect(await value(c, sql, [2])).toBe('two');
      expect(await serverRan(m)).toBe(2);
      // The same text through COM_QUERY is a different entry (text rows, not binary).
      expect(await value(c, sql.replace('?', '1'))).toBe('one');
      expect(await serverRan(m)).toBe(3);
      // A fresh connection (new statement ids) hits the same entries.
      const d = await connect(px.port, topo);
      expect(await value(d, sql, [2])).toBe('two');
      expect(await serverRan(m)).toBe(3);
      await Promise.all([c.end(), d.end()]);
    });
  });
});

describe('pipelining', () => {
  it('answers pipelined hits, misses and errors in order, each as the server would (the hits gathered into one write)', async () => {
    await withProxy({}, async (px) => {
      const c = await RawClient.login(px.port, 'app', 'app_pw', { database: 'wc_test' });
      const m = mark();
      const hinted = (id: number) => `/*qc=on*/ SELECT v FROM qc_items WHERE id = ${id} ${m}`;
      for (const id of [1, 2, 3]) await c.query(hinted(id));
      expect(await serverRan(m)).toBe(3);
      // One write: hits, a statement the server runs between them, an error, and hits after it.
      const sequence = [hinted(1), hinted(2), hinted(3), `SELECT v FROM qc_items WHERE id = 4 ${m}`, hinted(2), `SELECT nope FROM qc_items ${m}`, hinted(3), hinted(1)];
      const expected = ['one', 'two', 'three', 'caf\u00e9', 'two', null, 'three', 'one'];
      const many = Array.from({ length: 5 }, () => sequence).flat();
      c.socket.write(Buffer.concat(many.map((q) => encodePacket(Buffer.concat([Buffer.from([0x03]), Buffer.from(q, 'utf8')]), 0))));
      for (let i = 0; i < many.length; i++) {
        const answer = await c.readResponse(ResponseKind.Query);
        const want = expected[i % expected.length];
        if (want === null) {
          expect(answer[4], `answer ${i}`).toBe(0xff);
          expect(answer.readUInt16LE(5), `answer ${i}`).toBe(1054);
        } else {
          expect(answer[4], `answer ${i}`).toBe(0x01);
          expect(answer.includes(Buffer.from(want, 'utf8')), `answer ${i}: ${want}`).toBe(true);
        }
      }
      // Only the uncached statements reached the server: 5 rounds of two.
      expect(await serverRan(m)).toBe(3 + 10);
      // And the session is in step: the next command gets its own answer.
      expect((await c.query('SELECT 42')).includes(Buffer.from('42'))).toBe(true);
      c.close();
    });
  });
});

describe('memory bound', () => {
  it('holds within 10% under a working set ten times its size', async () => {
    const maxBytes = 2 * 1024 * 1024;
    await root.query("REPLACE INTO wc_test.qc_big VALUES (2, REPEAT('y', 20000))");
    await withProxy({ memory: { maxBytes } }, async (px) => {
      const c = await connect(px.port, topo);
      let peak = 0;
      // ~20 KB per result, 1000 distinct keys: about 20 MiB offered to a 2 MiB cache.
      for (let i = 0; i < 1000; i++) {
        await c.query(`/*qc=on*/ SELECT v, ${i} AS k FROM qc_big WHERE id = 2`);
        if (i % 50 === 0) peak = Math.max(peak, px.proxy.cache!.stats.bytes);
      }
      peak = Math.max(peak, px.proxy.cache!.stats.bytes);
      expect(peak).toBeLessThanOrEqual(maxBytes * 1.1);
      expect(peak).toBeGreaterThan(maxBytes * 0.5);
      const text = await px.metrics.metricsText();
      const evictions = Number(/^wirecache_cache_evictions_total (\d+)/m.exec(text)?.[1]);
      expect(evictions).toBeGreaterThan(800);
      await c.end();
    });
  });
});
