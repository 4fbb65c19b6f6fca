/**
 * GET /dashboard in headless Chromium (Debian's `chromium`, driven by
 * playwright-core through its executablePath: no browser is downloaded)
 * against a running app with an admin token, a cache and read/write routing,
 * under traffic: cache hits and misses, reads on the replicas, writes.
 *
 * The browser opens /dashboard without the token, gets the 401 page, types the
 * token, and the dashboard loads in place. The test checks that the numbers
 * the page shows are the JSON endpoints' numbers (after the traffic stops, so
 * the two cannot drift), that qps by route moves under traffic, that the token
 * travels only in Authorization headers, and takes a screenshot.
 *
 * WIRECACHE_DASHBOARD_SCREENSHOT=docs/dashboard.png writes the screenshot
 * (the one in the README comes from such a run). WIRECACHE_CHROMIUM names
 * another Chromium binary.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import type { Connection } from 'mysql2/promise';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForReplication } from '../scripts/topology.js';
import { startApp, type RunningApp } from '../src/app.js';
import { compileRule } from '../src/config/rules.js';
import { createLogger } from '../src/logger.js';
import { getTopology } from './topology-context.js';
import { connect, routingConfig, testCacheConfig, testConfig } from './proxy-harness.js';

const topo = getTopology();
const TOKEN = 'dashboard-test-token-7f3a9c';
/** Bounded waits: a CI runner with 2 cores is slow, but never this slow. */
const WAIT_MS = 20_000;
const REFRESH_SECONDS = 1;

let app: RunningApp | undefined;
let browser: Browser | undefined;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Debian's chromium, or WIRECACHE_CHROMIUM; a clear message when there is none. */
function chromiumPath(): string {
  const given = process.env.WIRECACHE_CHROMIUM;
  if (given) {
    if (!existsSync(given)) throw new Error(`WIRECACHE_CHROMIUM=${given}: no such file`);
    return given;
  }
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      // not on PATH
    }
  }
  throw new Error('Chromium not found: install Debian\'s chromium (scripts/install-deps.sh does), or set WIRECACHE_CHROMIUM to a Chromium binary');
}

const adminUrl = (path: string) => `http://127.0.0.1:${app!.adminAddress.port}${path}`;
const adminGet = async (path: string): Promise<Response> => {
  const res = await fetch(adminUrl(path), { headers: { Authorization: `Bearer ${TOKEN}` } });
  if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return res;
};

/** One series' value from the Prometheus text; 0 when the series does not exist yet (as the page shows it). */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

const ratioText = (r: number | null) => (r === null ? '\u2014' : `${(r * 100).toFixed(1)}%`);

interface Shown {
  routes: Record<string, { value: number; text: string }>;
  memory: { bytes: number; max_bytes: number; entries: number; entries_text: string };
  rules: { rule: string; hits: string; misses: string; stale_hits: string; hit_ratio: string; hit_ratio_value: number | null }[];
  servers: { name: string; state: string; in_rotation: boolean | null; lag: number | null; lag_text: string }[];
  queries: { digest: string; count: string; cache_hits: string; cache_misses: string; total_seconds: number }[];
}

/** What the page shows now, read in one go. */
function readPage(page: Page): Promise<Shown> {
  return page.evaluate(() => {
    const q = (root: ParentNode, id: string) => {
      const e = root.querySelector(`[data-testid="${id}"]`);
      if (!e) throw new Error(`no [data-testid="${id}"] on the page`);
      return e as HTMLElement;
    };
    const value = (e: HTMLElement) => JSON.parse(e.getAttribute('data-value') ?? 'undefined') as never;
    const text = (e: HTMLElement) => (e.textContent ?? '').trim();
    const rows = (id: string) => [...document.querySelectorAll<HTMLElement>(`[data-testid="${id}"]`)];
    const routes: Record<string, { value: number; text: string }> = {};
    for (const r of rows('route-row')) routes[r.dataset.route!] = { value: value(q(r, 'total')), text: text(q(r, 'total')) };
    return {
      routes,
      memory: {
        bytes: value(q(document, 'cache-bytes')),
        max_bytes: value(q(document, 'cache-max-bytes')),
        entries: value(q(document, 'cache-entries')),
        entries_text: text(q(document, 'cache-entries')),
      },
      rules: rows('rule-row').map((r) => ({
        rule: r.dataset.rule!,
        hits: text(q(r, 'hits')),
        misses: text(q(r, 'misses')),
        stale_hits: text(q(r, 'stale-hits')),
        hit_ratio: text(q(r, 'hit-ratio')),
        hit_ratio_value: value(q(r, 'hit-ratio')),
      })),
      servers: rows('server-row').map((r) => ({
        name: r.dataset.server!,
        state: text(q(r, 'state')),
        in_rotation: value(q(r, 'in-rotation')),
        lag: value(q(r, 'lag')),
        lag_text: text(q(r, 'lag')),
      })),
      queries: rows('query-row').map((r) => ({
        digest: text(q(r, 'digest')),
        count: text(q(r, 'count')),
        cache_hits: text(q(r, 'cache-hits')),
        cache_misses: text(q(r, 'cache-misses')),
        total_seconds: value(q(r, 'total-seconds')),
      })),
    };
  });
}

/** The same view, built from the endpoints' answers now. */
async function fromEndpoints(): Promise<Shown> {
  const [metrics, cache, servers, stats] = await Promise.all([
    adminGet('/metrics').then((r) => r.text()),
    adminGet('/cache').then((r) => r.json() as Promise<any>),
    adminGet('/servers').then((r) => r.json() as Promise<any>),
    adminGet('/stats/queries?limit=10&sort=total_time').then((r) => r.json() as Promise<any>),
  ]);
  const routes: Shown['routes'] = {};
  for (const route of ['cache', 'primary', 'replica']) {
    const v = sample(metrics, `wirecache_statements_total{route="${route}"}`);
    routes[route] = { value: v, text: String(v) };
  }
  return {
    routes,
    memory: { bytes: cache.memory.bytes, max_bytes: cache.memory.max_bytes, entries: cache.memory.entries, entries_text: String(cache.memory.entries) },
    // The page lists every configured rule, and `hint` and `all` once used.
    rules: (cache.rules as any[])
      .filter((r) => (r.rule !== 'hint' && r.rule !== 'all') || r.hits + r.misses + r.stale_hits + r.stores > 0)
      .map((r) => ({
        rule: r.rule,
        hits: String(r.hits),
        misses: String(r.misses),
        stale_hits: String(r.stale_hits),
        hit_ratio: ratioText(r.hit_ratio),
        hit_ratio_value: r.hit_ratio,
      })),
    servers: (servers.servers as any[]).map((s) => ({
      name: s.name,
      state: s.state,
      in_rotation: s.in_rotation ?? null,
      lag: s.lag_seconds ?? null,
      lag_text: s.lag_seconds === null || s.lag_seconds === undefined ? '\u2014' : `${s.lag_seconds} s`,
    })),
    queries: (stats.digests as any[]).map((d) => ({
      digest: d.digest,
      count: String(d.count),
      cache_hits: String(d.cache_hits),
      cache_misses: String(d.cache_misses),
      total_seconds: d.total_seconds,
    })),
  };
}

const refreshes = (page: Page) => page.evaluate(() => Number(document.body?.getAttribute('data-refreshes') ?? 0));

async function waitForRefreshes(page: Page, atLeast: number, why: string): Promise<void> {
  try {
    await page.waitForFunction((n) => Number(document.body?.getAttribute('data-refreshes') ?? 0) >= n, atLeast, { timeout: WAIT_MS, polling: 100 });
  } catch (err) {
    const error = await page.locator('[data-testid="error"]').textContent().catch(() => null);
    throw new Error(`the dashboard did not refresh ${atLeast} times within ${WAIT_MS} ms (${why}); shown error: ${JSON.stringify(error)}; ${(err as Error).message}`);
  }
}

/** Width, height and how much of the image is not its background, from the PNG bytes. */
function pngFacts(png: Buffer): { width: number; height: number; busyFraction: number } {
  expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'PNG signature').toBe(true);
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    if (png.toString('latin1', at + 4, at + 8) === 'IDAT') idat.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  // Scanlines after the filters: a blank page is almost all zeros (or one repeated byte).
  const raw = inflateSync(Buffer.concat(idat));
  const counts = new Map<number, number>();
  for (const b of raw) counts.set(b, (counts.get(b) ?? 0) + 1);
  const commonest = Math.max(...counts.values());
  return { width, height, busyFraction: 1 - commonest / raw.length };
}

/** Reads and writes on one connection until told to stop: cache hits and misses, replica reads, primary writes. */
function startTraffic(c: Connection): { stop: () => Promise<number> } {
  let stopped = false;
  let statements = 0;
  const done = (async () => {
    for (let i = 0; !stopped; i++) {
      // 8 keys are read over and over (hits after the first miss), and a new key now and then (a miss, filled from the primary).
      const id = i % 5 === 4 ? 1000 + i : (i % 8) + 1;
      await c.query('SELECT id, name FROM dash_items WHERE id = ?', [id]);
      statements++;
      if (i % 2 === 0) {
        await c.query('SELECT COUNT(*) AS n FROM dash_plain WHERE v >= 0'); // no rule: a replica read
        statements++;
      }
      if (i % 10 === 0) {
        await c.query('UPDATE dash_plain SET v = v + 1 WHERE id = 1'); // primary
        statements++;
      }
      await sleep(10);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
      return statements;
    },
  };
}

beforeAll(async () => {
  const root = await connect(topo.primary.port, topo, { user: 'root' });
  try {
    await root.query('CREATE TABLE IF NOT EXISTS wc_test.dash_items (id INT PRIMARY KEY, name VARCHAR(40))');
    await root.query('CREATE TABLE IF NOT EXISTS wc_test.dash_plain (id INT PRIMARY KEY, v INT)');
    await root.query("REPLACE INTO wc_test.dash_items VALUES (1,'one'),(2,'two'),(3,'three'),(4,'four'),(5,'five'),(6,'six'),(7,'seven'),(8,'eight')");
    await root.query('REPLACE INTO wc_test.dash_plain VALUES (1, 0), (2, 0)');
  } finally {
    await root.end();
  }
  await waitForReplication(topo);
  const rules = [compileRule({ name: 'dash_items', match: { tables: 'dash_items' }, cache: true, ttl: 600 }, 'test')];
  app = await startApp(
    testConfig(topo, {
      ...routingConfig(topo),
      admin: { host: '127.0.0.1', port: 0, token: TOKEN },
      cache: testCacheConfig({ rules }),
    }),
    createLogger('error'),
  );
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    timeout: WAIT_MS * 3,
    // As root (CI containers), Chromium refuses to start with its sandbox.
    args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-dev-shm-usage', '--disable-gpu'],
  });
});

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await app?.stop();
});

describe('GET /dashboard in Chromium', () => {
  it('asks for the token, then shows the endpoints\' numbers, live', async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 720 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    const requests: { url: string; authorization: string | null }[] = [];
    const problems: string[] = [];
    page.on('request', (r) => requests.push({ url: r.url(), authorization: r.headers().authorization ?? null }));
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    const c = await connect(app!.mysqlAddress.port, topo);
    let traffic: ReturnType<typeof startTraffic> | undefined = startTraffic(c);
    try {
      // Without the token: the 401, whose page asks for it.
      const first = await page.goto(adminUrl(`/dashboard?refresh=${REFRESH_SECONDS}`));
      expect(first?.status()).toBe(401);
      await page.getByTestId('token').fill('not-the-token-at-all');
      await page.getByTestId('token-submit').click();
      await expect.poll(() => page.getByTestId('token-error').textContent(), { timeout: WAIT_MS }).toMatch(/not the admin token/);
      await page.getByTestId('token').fill(TOKEN);
      await page.getByTestId('token-submit').click();
      await page.getByTestId('dashboard').waitFor({ timeout: WAIT_MS });

      // Under traffic: two refreshes give a rate, and every route moves.
      await waitForRefreshes(page, 3, 'under traffic');
      const qps = await page.evaluate(() =>
        [...document.querySelectorAll<HTMLElement>('[data-testid="route-row"]')].map((r) => {
          const cell = r.querySelector<HTMLElement>('[data-testid="qps"]')!;
          const n = (name: string) => JSON.parse(cell.getAttribute(name)!) as number | null;
          const total = JSON.parse(r.querySelector<HTMLElement>('[data-testid="total"]')!.getAttribute('data-value')!) as number;
          return { route: r.dataset.route!, qps: n('data-value'), previous: n('data-previous'), interval: n('data-interval'), total, text: cell.textContent };
        }),
      );
      expect(qps.map((r) => r.route)).toEqual(['cache', 'primary', 'replica']);
      for (const r of qps) {
        expect(r.qps, `qps of ${r.route}: ${JSON.stringify(r)}`).toBeGreaterThan(0);
        // The rate is the counter's change over the time between the two reads.
        expect(r.qps!).toBeCloseTo((r.total - r.previous!) / r.interval!, 6);
        expect(r.text).toBe(r.qps!.toFixed(1));
      }

      const png = await page.screenshot({ fullPage: true });
      const facts = pngFacts(png);
      expect(facts.width).toBe(1280);
      expect(facts.height).toBeGreaterThanOrEqual(600);
      // A blank page is a few KB, and almost every byte of its filtered scanlines is 0 (here: ~100 KB, ~3%).
      expect(png.length, 'screenshot size').toBeGreaterThan(20_000);
      expect(facts.busyFraction, 'share of the image that is not background').toBeGreaterThan(0.005);
      const out = process.env.WIRECACHE_DASHBOARD_SCREENSHOT;
      if (out) writeFileSync(out, png);

      // Traffic stops; from a refresh that started after it, the page and the endpoints must agree.
      const sent = await traffic.stop();
      traffic = undefined;
      expect(sent).toBeGreaterThan(20);
      // Replication lag is measured afresh every monitor round (200 ms here), so it is compared
      // within a second; the page must still show its own value as it formats it.
      const withoutLag = (v: Shown) => ({ ...v, servers: v.servers.map(({ lag: _lag, lag_text: _text, ...rest }) => rest) });
      let shown: Shown | undefined;
      let expected: Shown | undefined;
      for (let attempt = 0; attempt < 3; attempt++) {
        // A refresh in flight when the traffic stopped may predate it: wait for two more.
        await waitForRefreshes(page, (await refreshes(page)) + 2, 'after the traffic stopped');
        shown = await readPage(page);
        expected = await fromEndpoints();
        if (JSON.stringify(withoutLag(shown)) === JSON.stringify(withoutLag(expected))) break;
        // Only the monitor's view (a server's state) moves without traffic: look again after the next refresh.
      }
      expect(withoutLag(shown!)).toEqual(withoutLag(expected!));
      for (const [i, s] of shown!.servers.entries()) {
        const e = expected!.servers[i];
        if (e.lag === null) expect(s.lag, `lag of ${s.name}`).toBeNull();
        else expect(Math.abs(s.lag! - e.lag), `lag of ${s.name}: shown ${s.lag}, /servers ${e.lag}`).toBeLessThanOrEqual(1);
        expect(s.lag_text).toBe(s.lag === null ? '\u2014' : `${s.lag} s`);
      }

      // The traffic shows: hits and misses of the rule, the replicas in rotation, the digests.
      const rule = shown!.rules.find((r) => r.rule === 'dash_items');
      expect(Number(rule?.hits)).toBeGreaterThan(0);
      expect(Number(rule?.misses)).toBeGreaterThan(0);
      expect(shown!.routes.replica.value).toBeGreaterThan(0);
      expect(shown!.servers.map((s) => s.name).sort()).toEqual(['primary', 'replica1', 'replica2']);
      expect(shown!.servers.filter((s) => s.in_rotation && s.state === 'up').length).toBe(2);
      expect(shown!.memory.entries).toBeGreaterThan(0);
      expect(shown!.memory.bytes).toBeGreaterThan(0);
      expect(shown!.queries.map((q) => q.digest)).toContain('SELECT ID, NAME FROM dash_items WHERE ID = ?');
      // Stopped traffic: the rates fall to 0.
      const rates = await page.evaluate(() => [...document.querySelectorAll('[data-testid="qps"]')].map((e) => e.textContent));
      expect(rates).toEqual(['0.0', '0.0', '0.0']);

      // The token went only in Authorization headers: never in a URL, and with every data request.
      expect(requests.filter((r) => r.url.includes(TOKEN))).toEqual([]);
      const data = requests.filter((r) => /\/(metrics|cache|servers|stats\/queries)(\?|$)/.test(new URL(r.url).pathname + new URL(r.url).search));
      expect(data.length).toBeGreaterThan(8);
      expect(data.filter((r) => r.authorization !== `Bearer ${TOKEN}`)).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await traffic?.stop().catch(() => undefined);
      await c.end().catch(() => undefined);
      await context.close().catch(() => undefined);
    }
  }, 180_000);
});
