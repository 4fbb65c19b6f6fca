/**
 * The cache with memcached storage, through the proxy and a real memcached:
 * entries survive a proxy restart and are shared between proxies, a write
 * through one proxy invalidates the other's next read, and a memcached that
 * dies or hangs never costs a client an error or a stale row.
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { startMemcached, stopMemcached, type MemcachedInfo } from '../scripts/topology.js';
import { compileRule } from '../src/config/rules.js';
import type { CacheConfig } from '../src/config/types.js';
import { getTopology } from './topology-context.js';
import { stopProcess } from './process-signals.js';
import { connect, passwordOf, startProxy, testCacheConfig, testConfig, type RunningProxy } from './proxy-harness.js';
import { startApp } from '../src/app.js';
import { createLogger } from '../src/logger.js';
import { startCli, writeTemp, yamlFor } from './cli-process.js';
import { disableGeneralLog, enableGeneralLog, markers, serverRan as countRan } from './general-log.js';
import mysqlClient from 'mysql2/promise';

const topo = getTopology();
let root: mysql.Connection;
let mc: MemcachedInfo;
const proxies: RunningProxy[] = [];
/** Per test: entries of earlier tests (whose rows were reset behind the proxies' backs) stay out of sight. */
let keyPrefix = 'x';
let testNo = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * memcached's time budget in these tests: generous, so a busy machine does not turn hits into
 * misses; the failure tests below rely on down detection, not on the budget's size.
 */
const BUDGET_MS = 500;

async function proxyWith(storage: CacheConfig['storage'], extra: Partial<CacheConfig> = {}): Promise<RunningProxy> {
  const px = await startProxy(topo, {
    cache: testCacheConfig({
      storage,
      memcached: { servers: [`${mc.host}:${mc.port}`], timeoutMs: BUDGET_MS, itemLimitBytes: 1_048_576, maxItemsPerEntry: 16, keyPrefix },
      ...extra,
    }),
  });
  proxies.push(px);
  return px;
}

const serverRan = (marker: string) => countRan(root, marker);
const mark = markers('mc');

async function value(c: mysql.Connection, sql: string): Promise<unknown> {
  const [rows] = await c.query(sql);
  return (rows as Record<string, unknown>[])[0]?.v;
}

/** memcached problems counted by a proxy (any operation and kind). */
async function memcachedProblems(px: RunningProxy): Promise<number> {
  const text = await px.metrics.metricsText();
  let sum = 0;
  for (const m of text.matchAll(/^wirecache_cache_memcached_problems_total\{[^}]*\} (\d+)/gm)) sum += Number(m[1]);
  return sum;
}

beforeAll(async () => {
  root = await connect(topo.primary.port, topo, { user: 'root', multipleStatements: true });
  await root.query(`
    CREATE TABLE IF NOT EXISTS wc_test.mc_items (id INT PRIMARY KEY, v VARCHAR(64));
  `);
  await enableGeneralLog(root);
  mc = await startMemcached(path.join(topo.baseDir, `memcached-proxy-${process.pid}`));
});

beforeEach(async () => {
  keyPrefix = `t${process.pid}_${++testNo}`;
  await root.query("REPLACE INTO wc_test.mc_items VALUES (1, 'one'), (2, 'two')");
});

afterEach(async () => {
  while (proxies.length > 0) await proxies.pop()!.stop();
});

afterAll(async () => {
  if (root) await disableGeneralLog(root);
  await root?.end();
  if (mc) await stopMemcached(mc, 'SIGKILL').catch(() => undefined);
});

describe('memcached storage', () => {
  it('shares entries between proxies and keeps them across a proxy restart', async () => {
    const m = mark();
    const sql = `/*qc=on*/ SELECT v FROM mc_items WHERE id = 1 ${m}`;
    const a = await proxyWith('memcached');
    const ca = await connect(a.port, topo);
    expect(await value(ca, sql)).toBe('one');
    await ca.end();
    await a.stop();

    const b = await proxyWith('memcached');
    const cb = await connect(b.port, topo);
    expect(await value(cb, sql)).toBe('one');
    expect(await value(cb, sql)).toBe('one');
    expect(await serverRan(m)).toBe(1);
    expect(b.metrics.cache.value('hits', 'hint')).toBe(2);
    await cb.end();
  });

  for (const storage of ['memcached', 'tiered'] as const) {
    it(`${storage}: a write through one proxy invalidates the other's next read`, async () => {
      const a = await proxyWith(storage);
      const b = await proxyWith(storage);
      const ca = await connect(a.port, topo);
      const cb = await connect(b.port, topo);
      const sql = '/*qc=on*/ SELECT v FROM mc_items WHERE id = 2';
      expect(await value(ca, sql)).toBe('two');
      expect(await value(ca, sql)).toBe('two');
      expect(a.metrics.cache.value('hits', 'hint')).toBe(1);
      await cb.query("UPDATE mc_items SET v = 'zwei' WHERE id = 2");
      expect(await value(ca, sql)).toBe('zwei');
      // Proxy b learns it from the shared entry; a's memory tier (if any) was invalidated through memcached.
      expect(await value(cb, sql)).toBe('zwei');
      await Promise.all([ca.end(), cb.end()]);
    });
  }
});

describe('slam defense across proxies', () => {
  it('after the soft TTL a memcached lease lets only one of several proxies refresh; the others serve the stale copy', async () => {
    const rules = [compileRule({ name: 'soft', match: { regex: 'SLEEP' }, cache: true, ttl: 30, soft_ttl: 1, allow_nondeterministic: true }, 'test')];
    const pxs = await Promise.all([proxyWith('memcached', { rules }), proxyWith('memcached', { rules }), proxyWith('tiered', { rules })]);
    const clients = await Promise.all(pxs.map((px) => connect(px.port, topo)));
    const m = mark();
    const sql = `SELECT v, SLEEP(0.3) AS s FROM mc_items WHERE id = 1 ${m}`;
    expect(await value(clients[0], sql)).toBe('one');
    await root.query("UPDATE wc_test.mc_items SET v = 'changed behind the proxies' WHERE id = 1");
    await sleep(1100);
    const results = await Promise.all(clients.map((c) => value(c, sql)));
    // Exactly one proxy went to the database for the refresh; the other two served the stale copy.
    expect(await serverRan(m)).toBe(2);
    expect(results.filter((v) => v === 'one')).toHaveLength(2);
    expect(results.filter((v) => v === 'changed behind the proxies')).toHaveLength(1);
    const stale = pxs.reduce((n, px) => n + px.metrics.cache.value('staleHits', 'soft'), 0);
    expect(stale).toBe(2);
    await Promise.all(clients.map((c) => c.end()));
  });
});

describe('two wirecache processes sharing one memcached', () => {
  it('a write through one process invalidates the other process\'s next read', { timeout: 120_000 }, async () => {
    const yaml = yamlFor(
      topo,
      `cache:\n  storage: tiered\n  memcached: { servers: ["${mc.host}:${mc.port}"], key_prefix: ${keyPrefix}, timeout_ms: 500 }\n`,
    );
    const file = await writeTemp('shared.yaml', yaml);
    const [one, two] = await Promise.all([startCli(['--config', file]), startCli(['--config', file])]);
    const open = (port: number) =>
      mysqlClient.createConnection({ host: '127.0.0.1', port, user: 'app', password: passwordOf(topo, 'app'), database: 'wc_test' });
    try {
      const [c1, c2] = await Promise.all([open(one.port), open(two.port)]);
      const m = mark();
      const sql = `/*qc=on*/ SELECT v FROM mc_items WHERE id = 1 ${m}`;
      expect(await value(c1, sql)).toBe('one');
      // The session takes its next command once the entry is in memcached: after this, it is there.
      await c1.query('DO 0');
      // The second process finds the first one's entry in memcached.
      expect(await value(c2, sql)).toBe('one');
      expect(await serverRan(m)).toBe(1);
      await c1.query("UPDATE mc_items SET v = 'ein' WHERE id = 1");
      expect(await value(c2, sql)).toBe('ein');
      expect(await value(c1, sql)).toBe('ein');
      await Promise.all([c1.end(), c2.end()]);
    } finally {
      for (const p of [one, two]) p.child.kill('SIGTERM');
      await Promise.all([one.exited, two.exited]);
    }
  });
});

describe('memcached failures', () => {
  it('a tier that goes down is logged once and shown in GET /cache; coming back is logged once too', async () => {
    const logs: { level: string; msg: string; tier?: string }[] = [];
    const logger = createLogger('info', { destination: { write: (line: string) => void logs.push(JSON.parse(line)) } });
    const app = await startApp(
      testConfig(topo, {
        cache: testCacheConfig({
          storage: 'tiered',
          memcached: { servers: [`${mc.host}:${mc.port}`], timeoutMs: BUDGET_MS, itemLimitBytes: 1_048_576, maxItemsPerEntry: 16, keyPrefix },
        }),
      }),
      logger,
    );
    const c = await mysqlClient.createConnection({ host: '127.0.0.1', port: app.mysqlAddress.port, user: 'app', password: passwordOf(topo, 'app'), database: 'wc_test' });
    try {
      type Tier = { tier: string; state: string; down_since: string | null };
      const tiers = async () => ((await (await fetch(`http://127.0.0.1:${app.adminAddress.port}/cache`)).json()) as { tiers: Tier[] }).tiers;
      const tierLines = (msg: RegExp) => logs.filter((l) => l.tier === 'memcached' && msg.test(l.msg));
      expect(await tiers()).toEqual([
        { tier: 'memory', state: 'up', down_since: null },
        expect.objectContaining({ tier: 'memcached', state: 'up', down_since: null }),
      ]);
      await stopMemcached(mc, 'SIGKILL');
      // Distinct statements: each misses memory and goes to memcached.
      for (let i = 0; i < 20; i++) expect(await value(c, `/*qc=on*/ SELECT v FROM mc_items WHERE id = 1 AND ${i} = ${i}`)).toBe('one');
      const down = (await tiers())[1];
      expect(down).toMatchObject({ tier: 'memcached', state: 'down' });
      expect(Date.parse(down.down_since!)).toBeGreaterThan(0);
      expect(tierLines(/cache tier down/)).toHaveLength(1);
      expect(tierLines(/cache tier down/)[0].level).toBe('warn');
      expect(tierLines(/back up/)).toHaveLength(0);

      mc = await startMemcached(path.join(topo.baseDir, `memcached-proxy-${process.pid}`), mc.port);
      for (let i = 0; i < 100 && (await tiers())[1].state !== 'up'; i++) {
        await value(c, `/*qc=on*/ SELECT v FROM mc_items WHERE id = 2 AND ${i} = ${i}`);
        await sleep(50);
      }
      expect((await tiers())[1]).toMatchObject({ tier: 'memcached', state: 'up', down_since: null });
      expect(tierLines(/back up/)).toHaveLength(1);
      expect(tierLines(/cache tier down/)).toHaveLength(1);
    } finally {
      await c.end();
      await app.stop();
    }
  });

  it('memcached killed mid-test: every query and login still succeeds, problems are counted, caching resumes when it is back', async () => {
    const px = await proxyWith('memcached');
    const c = await connect(px.port, topo);
    const sql = '/*qc=on*/ SELECT v FROM mc_items WHERE id = 1';
    expect(await value(c, sql)).toBe('one');
    expect(await value(c, sql)).toBe('one');
    await stopMemcached(mc, 'SIGKILL');
    for (let i = 0; i < 20; i++) expect(await value(c, sql)).toBe('one');
    await c.query("UPDATE mc_items SET v = 'uno' WHERE id = 1");
    expect(await value(c, sql)).toBe('uno');
    const fresh = await connect(px.port, topo);
    expect(await value(fresh, sql)).toBe('uno');
    expect(await memcachedProblems(px)).toBeGreaterThan(0);

    mc = await startMemcached(path.join(topo.baseDir, `memcached-proxy-${process.pid}`), mc.port);
    const m = mark();
    const marked = `/*qc=on*/ SELECT v FROM mc_items WHERE id = 1 ${m}`;
    // The store retries after its back-off: within a few seconds entries are stored and served again.
    let served = false;
    for (let i = 0; i < 40 && !served; i++) {
      expect(await value(fresh, marked)).toBe('uno');
      const before = px.metrics.cache.value('hits', 'hint');
      expect(await value(fresh, marked)).toBe('uno');
      served = px.metrics.cache.value('hits', 'hint') > before;
      if (!served) await sleep(100);
    }
    expect(served).toBe(true);
    await Promise.all([c.end(), fresh.end()]);
  });

  it('a hung memcached (SIGSTOP) costs only its time budget; a write made meanwhile is never served stale after it wakes', async () => {
    const px = await proxyWith('memcached');
    const c = await connect(px.port, topo);
    const sql = '/*qc=on*/ SELECT v FROM mc_items WHERE id = 2';
    expect(await value(c, sql)).toBe('two');
    expect(await value(c, sql)).toBe('two');
    await stopProcess(mc.pid);
    try {
      // The update's invalidation cannot reach memcached now; the entry for 'two' is still in it.
      await c.query("UPDATE mc_items SET v = 'deux' WHERE id = 2");
      for (let i = 0; i < 5; i++) expect(await value(c, sql)).toBe('deux');
    } finally {
      process.kill(mc.pid, 'SIGCONT');
    }
    // Whatever memcached still holds, the next reads never see the old row.
    for (let i = 0; i < 30; i++) {
      expect(await value(c, sql)).toBe('deux');
      await sleep(50);
    }
    const other = await proxyWith('memcached');
    const co = await connect(other.port, topo);
    expect(await value(co, sql)).toBe('deux');
    expect(await memcachedProblems(px)).toBeGreaterThan(0);
    await Promise.all([c.end(), co.end()]);
  });
});
