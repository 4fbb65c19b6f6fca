/** /explain and /servers on a running app in front of the real primary and replicas. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunningApp } from '../src/app.js';
import { compileRule } from '../src/config/rules.js';
import { createLogger } from '../src/logger.js';
import { getTopology } from './topology-context.js';
import { routingConfig, testCacheConfig, testConfig } from './proxy-harness.js';

const topo = getTopology();
let app: RunningApp;

const get = (path: string) =>
  fetch(`http://127.0.0.1:${app.adminAddress.port}${path}`).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any> }));
const explain = async (sql: string, extra = '') => (await get(`/explain?sql=${encodeURIComponent(sql)}${extra}`)).body;

beforeAll(async () => {
  const rules = [
    compileRule({ name: 'reports', match: { tables: 'wc_test.reports' }, route: 'replica2', consistency: 'eventual' }, 'test'),
    compileRule({ name: 'items', match: { tables: 'items' }, cache: true, ttl: 30 }, 'test'),
  ];
  app = await startApp(testConfig(topo, { ...routingConfig(topo), cache: testCacheConfig({ rules }) }), createLogger('error'));
});

afterAll(async () => {
  await app?.stop();
});

describe('GET /explain', () => {
  it('explains a point select: replica read, not cached without a hint', async () => {
    const e = await explain('SELECT name FROM wc_test.t WHERE id = 42');
    expect(e.statement).toMatchObject({ type: 'select', digest: 'SELECT NAME FROM wc_test.t WHERE ID = ?', tables_read: ['wc_test.t'], tables_written: [] });
    expect(e.rule).toBeNull();
    expect(e.cache).toMatchObject({ cached: false });
    expect(e.route).toMatchObject({ target: 'replica', reason: 'read', consistency: 'session' });
    expect(e.route.servers.sort()).toEqual(['replica1', 'replica2']);
  });

  it('explains a cached rule match: TTL, and the miss read from the primary', async () => {
    const e = await explain('SELECT * FROM items WHERE id IN (1, 2)', '&schema=wc_test');
    expect(e.rule).toEqual({ name: 'items', source: 'test' });
    expect(e.cache).toMatchObject({ cached: true, ttl_seconds: 30, reason: null });
    expect(e.route).toMatchObject({ target: 'replica', on_cache_miss: 'primary' });
  });

  it('explains writes, locking reads, NOW() and a rule route', async () => {
    expect((await explain('UPDATE t SET a = 1 WHERE id = 2')).route).toMatchObject({ target: 'primary', reason: 'write', servers: ['primary'] });
    expect((await explain('SELECT * FROM t WHERE id = 1 FOR UPDATE')).route).toMatchObject({ target: 'primary', reason: 'locking_read' });
    const now = await explain('/*qc=on*/ SELECT NOW()');
    expect(now.cache).toMatchObject({ cached: false, reason: 'non_deterministic' });
    expect((await explain('SELECT GET_LOCK("x", 1)')).route).toMatchObject({ target: 'primary', reason: 'primary_function', detail: 'GET_LOCK' });
    expect((await explain('SELECT * FROM t', '&in_transaction=1')).route).toMatchObject({ target: 'primary', reason: 'transaction' });
    const report = await explain('SELECT count(*) FROM wc_test.reports');
    expect(report.rule).toMatchObject({ name: 'reports' });
    expect(report.route).toMatchObject({ target: 'replica2', reason: 'rule', consistency: 'eventual', servers: ['replica2'] });
    expect((await explain('/*route=primary*/ SELECT 1')).route).toMatchObject({ target: 'primary', reason: 'hint' });
    expect((await explain('SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1')).route).toMatchObject({ target: 'primary', reason: 'primary_function', detail: 'SQL_CALC_FOUND_ROWS' });
  });

  it('warns about a comment that looks like a hint but is not one, and says nothing for real hints', async () => {
    const several = await explain('/*qc=on,ttl=5*/ SELECT * FROM t');
    expect(several.warnings).toEqual([{ comment: '/*qc=on,ttl=5*/', warning: expect.stringMatching(/not one, and is ignored: write one hint per comment/) }]);
    expect(several.statement.hints).toMatchObject({ cache: null, ttlSeconds: null });
    const seconds = await explain('/* qc_ttl=5s */ /*qc=on*/ SELECT * FROM t');
    expect(seconds.warnings).toEqual([{ comment: '/* qc_ttl=5s */', warning: expect.stringMatching(/qc_ttl takes whole seconds, digits only/) }]);
    expect((await explain('SELECT /*qc=on*/ 1')).warnings[0].warning).toMatch(/only before the first token/);
    expect((await explain('/*qc=on*/ /*qc_ttl=5*/ SELECT 1')).warnings).toEqual([]);
    expect((await explain("SELECT '/*qc=on,ttl=5*/' AS s")).warnings).toEqual([]);
  });

  it('refuses a request without sql', async () => {
    const r = await get('/explain');
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/sql=/);
  });
});

describe('GET /', () => {
  it('lists the endpoints of the admin listener, each with what it does', async () => {
    const r = await get('/');
    expect(r.status).toBe(200);
    const endpoints = r.body.endpoints as { method: string; path: string; description: string | null }[];
    const names = endpoints.map((e) => `${e.method} ${e.path}`);
    for (const e of ['GET /', 'GET /metrics', 'GET /healthz', 'GET /readyz', 'GET /cache', 'POST /cache/purge', 'GET /servers', 'GET /explain', 'GET /stats/queries', 'POST /reload']) {
      expect(names).toContain(e);
    }
    expect(endpoints.every((e) => typeof e.description === 'string' && e.description.length > 0)).toBe(true);
  });
});

describe('GET /servers', () => {
  it('lists the primary and both replicas with state, lag and rotation', async () => {
    const { body } = await get('/servers');
    expect(body.primary).toBe('primary');
    expect(body.writable_conflict).toEqual([]);
    const byName = Object.fromEntries((body.servers as { name: string; lag_seconds: number }[]).map((s) => [s.name, s]));
    expect(byName.primary).toMatchObject({ state: 'primary', read_only: false });
    for (const r of ['replica1', 'replica2']) {
      expect(byName[r]).toMatchObject({ state: 'up', in_rotation: true, read_only: true, replicating: true });
      expect(byName[r].lag_seconds).toBeLessThan(5);
    }
  });

  it("shows each server's pool of client connections", async () => {
    const { body } = await get('/servers');
    const primary = (body.servers as { name: string; pool: Record<string, number> }[]).find((s) => s.name === 'primary');
    expect(primary?.pool).toEqual({ open: expect.any(Number), idle: expect.any(Number), waiting: 0, max_connections: 0, max_idle: 100 });
    expect(primary?.pool.open).toBeGreaterThanOrEqual(primary?.pool.idle ?? 0);
  });
});
