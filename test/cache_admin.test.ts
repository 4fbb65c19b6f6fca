/** The cache's admin endpoints and metrics on a running app (real listener, real topology). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { startApp, type RunningApp } from '../src/app.js';
import { compileRule } from '../src/config/rules.js';
import { createLogger } from '../src/logger.js';
import { getTopology } from './topology-context.js';
import { connect, testCacheConfig, testConfig } from './proxy-harness.js';

const topo = getTopology();
let app: RunningApp;
let c: mysql.Connection;

const admin = (path: string, method = 'GET') =>
  fetch(`http://127.0.0.1:${app.adminAddress.port}${path}`, { method }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${app.adminAddress.port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
}

beforeAll(async () => {
  const root = await connect(topo.primary.port, topo, { user: 'root', multipleStatements: true });
  await root.query(`
    CREATE TABLE IF NOT EXISTS wc_test.adm_a (id INT PRIMARY KEY, v INT);
    CREATE TABLE IF NOT EXISTS wc_test.adm_b (id INT PRIMARY KEY, v INT);
    REPLACE INTO wc_test.adm_a VALUES (1, 1);
    REPLACE INTO wc_test.adm_b VALUES (1, 1);
  `);
  await root.end();
  const rules = [compileRule({ name: 'table-b', match: { tables: 'adm_b' }, cache: true }, 'test')];
  app = await startApp(testConfig(topo, { cache: testCacheConfig({ rules }) }), createLogger('error'));
  c = await connect(app.mysqlAddress.port, topo);
});

afterAll(async () => {
  await c?.end();
  await app?.stop();
});

describe('cache admin endpoints', () => {
  it('GET /cache reports entries, bytes and hits by rule; /metrics has the cache families', async () => {
    await c.query('/*qc=on*/ SELECT v FROM adm_a WHERE id = 1');
    await c.query('/*qc=on*/ SELECT v FROM adm_a WHERE id = 1');
    await c.query('SELECT v FROM adm_b WHERE id = 1');
    const { status, body } = await admin('/cache');
    expect(status).toBe(200);
    expect(body.memory).toMatchObject({ entries: 2 });
    expect((body.memory as { bytes: number }).bytes).toBeGreaterThan(100);
    const rules = body.rules as { rule: string; hits: number; misses: number; hit_ratio: number | null }[];
    expect(rules.find((r) => r.rule === 'hint')).toMatchObject({ hits: 1, misses: 1, hit_ratio: 0.5 });
    expect(rules.find((r) => r.rule === 'table-b')).toMatchObject({ hits: 0, misses: 1 });
    expect(await metric('wirecache_cache_entries')).toBe(2);
    expect(await metric('wirecache_cache_hits_total{rule="hint"}')).toBe(1);
    expect(await metric('wirecache_cache_stores_total{rule="table-b"}')).toBe(1);
  });

  it('POST /cache/purge by table, by rule and all drops entries and later reads go to the database', async () => {
    await c.query('/*qc=on*/ SELECT v FROM adm_a WHERE id = 1');
    await c.query('SELECT v FROM adm_b WHERE id = 1');
    expect((await admin('/cache')).body.memory).toMatchObject({ entries: 2 });

    expect(await admin('/cache/purge?table=wc_test.adm_a', 'POST')).toMatchObject({ status: 200, body: { purged: 'table', dropped: 1 } });
    expect((await admin('/cache')).body.memory).toMatchObject({ entries: 1 });
    const misses = await metric('wirecache_cache_misses_total{rule="hint"}');
    await c.query('/*qc=on*/ SELECT v FROM adm_a WHERE id = 1');
    expect(await metric('wirecache_cache_misses_total{rule="hint"}')).toBe(misses + 1);

    expect(await admin('/cache/purge?rule=table-b', 'POST')).toMatchObject({ status: 200, body: { purged: 'rule', dropped: 1 } });
    const ruleMisses = await metric('wirecache_cache_misses_total{rule="table-b"}');
    await c.query('SELECT v FROM adm_b WHERE id = 1');
    expect(await metric('wirecache_cache_misses_total{rule="table-b"}')).toBe(ruleMisses + 1);

    expect(await admin('/cache/purge?all=1', 'POST')).toMatchObject({ status: 200, body: { purged: 'all', dropped: 2 } });
    expect((await admin('/cache')).body.memory).toMatchObject({ entries: 0 });
  });

  it('rejects bad purge requests with a clear error', async () => {
    expect(await admin('/cache/purge', 'POST')).toMatchObject({ status: 400 });
    expect(await admin('/cache/purge?table=nodot', 'POST')).toMatchObject({ status: 400, body: { error: 'table must be "schema.table"' } });
    expect(await admin('/cache/purge?rule=nope', 'POST')).toMatchObject({ status: 404 });
    expect(await admin('/cache/purge?all=1&rule=table-b', 'POST')).toMatchObject({ status: 400 });
    expect(await admin('/cache/purge?all=0', 'POST')).toMatchObject({ status: 400, body: { error: 'write ?all=1 to purge everything' } });
    expect((await admin('/cache/purge?all=1')).status).toBe(405);
  });
});
