/** QueryStats (per-digest statement statistics) and its admin routes on a real AdminServer. */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { prng } from './prng.js';
import { AdminServer } from '../src/admin/admin_server.js';
import { createLogger } from '../src/logger.js';
import { Metrics } from '../src/metrics/metrics.js';
import { HISTOGRAM_BOUNDS, MAX_DIGEST_CHARS, QueryStats, type QueryDigestStats, type StatementSample } from '../src/session/query_stats.js';
import { registerQueryStatsRoutes } from '../src/admin/query_stats_routes.js';

const BUCKET_RATIO = 10 ** (1 / 6);

function sample(digest: string, seconds: number, extra: Partial<StatementSample> = {}): StatementSample {
  return { digest, seconds, rows: 0, cache: null, destination: 'primary', error: false, ...extra };
}

function byDigest(stats: QueryStats, digest: string): QueryDigestStats | undefined {
  return stats.top().find((d) => d.digest === digest);
}


afterEach(() => {
  vi.useRealTimers();
});

describe('QueryStats: per-digest figures', () => {
  it('counts, times, rows, errors, cache hits/misses, destinations and first/last seen', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2024-05-01T10:00:00.000Z'));
    const stats = new QueryStats(10);
    const d = 'SELECT * FROM T WHERE ID = ?';
    stats.record(sample(d, 0.002, { rows: 1, cache: 'miss', destination: 'replica' }));
    vi.setSystemTime(new Date('2024-05-01T10:00:05.000Z'));
    stats.record(sample(d, 0.0001, { rows: 1, cache: 'hit', destination: 'cache' }));
    stats.record(sample(d, 0.0001, { rows: 3, cache: 'hit', destination: 'cache' }));
    vi.setSystemTime(new Date('2024-05-01T10:01:00.000Z'));
    stats.record(sample(d, 0.004, { rows: 0, cache: null, destination: 'primary', error: true }));
    stats.record(sample('COMMIT', 0.001));

    expect(stats.size).toBe(2);
    const s = byDigest(stats, d)!;
    expect(s).toMatchObject({
      digest: d,
      count: 4,
      errors: 1,
      max_seconds: 0.004,
      rows_sent: 5,
      cache_hits: 2,
      cache_misses: 1,
      destinations: { cache: 2, primary: 1, replica: 1 },
      first_seen: '2024-05-01T10:00:00.000Z',
      last_seen: '2024-05-01T10:01:00.000Z',
    });
    expect(s.total_seconds).toBeCloseTo(0.0062, 12);
    expect(s.mean_seconds).toBeCloseTo(0.00155, 12);
    expect(byDigest(stats, 'COMMIT')).toMatchObject({ count: 1, errors: 0, rows_sent: 0, cache_hits: 0, cache_misses: 0, destinations: { cache: 0, primary: 1, replica: 0 } });
  });

  it('counts a statement with a nonsense time or row count but adds no time or rows', () => {
    const stats = new QueryStats(10);
    stats.record(sample('X', Number.NaN, { rows: Number.NaN }));
    stats.record(sample('X', -1, { rows: -4 }));
    stats.record(sample('X', Infinity, { rows: Infinity }));
    stats.record(sample('X', 0.5, { rows: 2 }));
    expect(byDigest(stats, 'X')).toMatchObject({ count: 4, total_seconds: 0.5, max_seconds: 0.5, rows_sent: 2 });
  });

  it('caps long digests and keys them by the capped text', () => {
    const stats = new QueryStats(10);
    const head = 'SELECT ' + 'A, '.repeat(1000);
    stats.record(sample(head + 'B FROM T', 1));
    stats.record(sample(head + 'C FROM U', 1));
    expect(stats.size).toBe(1);
    const [only] = stats.top();
    expect(only.digest).toHaveLength(MAX_DIGEST_CHARS);
    expect(only.digest).toBe(head.slice(0, MAX_DIGEST_CHARS));
    expect(only.count).toBe(2);
  });

  it('does not split a surrogate pair when capping', () => {
    const stats = new QueryStats(10);
    const digest = 'x'.repeat(MAX_DIGEST_CHARS - 1) + '😀' + 'tail';
    stats.record(sample(digest, 1));
    stats.record(sample(digest, 1));
    const [only] = stats.top();
    expect(only.digest).toBe('x'.repeat(MAX_DIGEST_CHARS - 1));
    expect(only.count).toBe(2);
  });

  it('rejects a non-positive or fractional bound', () => {
    expect(() => new QueryStats(0)).toThrow(RangeError);
    expect(() => new QueryStats(2.5)).toThrow(RangeError);
    expect(new QueryStats(7).maxDigests).toBe(7);
  });
});

describe('QueryStats: p95', () => {
  it('is the upper bound of the bucket holding the 95th percentile', () => {
    const stats = new QueryStats(10);
    // 100 samples: 90 at 1 ms, 8 at 30 ms, 2 at 2 s: the 95th is 30 ms.
    for (let i = 0; i < 90; i++) stats.record(sample('Q', 0.001));
    for (let i = 0; i < 8; i++) stats.record(sample('Q', 0.03));
    for (let i = 0; i < 2; i++) stats.record(sample('Q', 2));
    const s = byDigest(stats, 'Q')!;
    expect(s.max_seconds).toBe(2);
    // 30 ms lies in (21.5 ms, 31.6 ms].
    expect(s.p95_seconds).toBeCloseTo(0.0316227766017, 12);
    expect(HISTOGRAM_BOUNDS).toContain(s.p95_seconds);
    expect(s.p95_seconds).toBeGreaterThanOrEqual(0.03);
    expect(s.p95_seconds).toBeLessThanOrEqual(0.03 * BUCKET_RATIO);
  });

  it('puts a time exactly on a bucket bound into that bucket', () => {
    const stats = new QueryStats(10);
    for (let i = 0; i < 96; i++) stats.record(sample('Q', 0.001));
    for (let i = 0; i < 4; i++) stats.record(sample('Q', 1));
    expect(byDigest(stats, 'Q')!.p95_seconds).toBe(0.001);
  });

  it('puts every bucket bound into its own bucket and the next double above it into the next one', () => {
    const nextUp = (x: number) => {
      const f = new Float64Array([x]);
      new BigInt64Array(f.buffer)[0] += 1n;
      return f[0];
    };
    HISTOGRAM_BOUNDS.forEach((bound, k) => {
      for (const [t, expected] of [
        [bound, bound],
        [nextUp(bound), k + 1 < HISTOGRAM_BOUNDS.length ? HISTOGRAM_BOUNDS[k + 1] : 1000],
      ]) {
        const stats = new QueryStats(1);
        for (let i = 0; i < 96; i++) stats.record(sample('Q', t));
        for (let i = 0; i < 4; i++) stats.record(sample('Q', 1000));
        expect(byDigest(stats, 'Q')!.p95_seconds, `time ${t}`).toBe(expected);
      }
    });
  });

  it('never exceeds the maximum, below 10 µs, inside a bucket and above 100 s', () => {
    const stats = new QueryStats(10);
    for (let i = 0; i < 20; i++) stats.record(sample('SAME', 0.03));
    for (let i = 0; i < 20; i++) stats.record(sample('TINY', 0.000001));
    for (let i = 0; i < 20; i++) stats.record(sample('HUGE', 250));
    expect(byDigest(stats, 'SAME')!.p95_seconds).toBe(0.03);
    expect(byDigest(stats, 'TINY')!.p95_seconds).toBe(0.000001);
    expect(byDigest(stats, 'HUGE')!.p95_seconds).toBe(250);
  });

  it('stays within one bucket above the exact p95 on random log-uniform times', () => {
    const rand = prng(42);
    for (let round = 0; round < 20; round++) {
      const stats = new QueryStats(10);
      const n = 1 + Math.floor(rand() * 2000);
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = 10 ** (-6 + rand() * 8); // 1 µs .. 100 s
        times.push(t);
        stats.record(sample('R', t));
      }
      times.sort((a, b) => a - b);
      const exact = times[Math.ceil(n * 0.95) - 1];
      const { p95_seconds: p95, max_seconds: max } = byDigest(stats, 'R')!;
      expect(max).toBe(times[n - 1]);
      expect(p95).toBeGreaterThanOrEqual(exact);
      expect(p95).toBeLessThanOrEqual(Math.max(exact * BUCKET_RATIO * (1 + 1e-9), 1e-5));
      expect(p95).toBeLessThanOrEqual(max);
    }
  });
});

describe('QueryStats: ordering', () => {
  // A: 1 run of 10 s, 5 rows. B: 10 runs of 0.5 s, 100 rows. C: 3 runs of 3 s, no rows.
  const stats = new QueryStats(10);
  stats.record(sample('A', 10, { rows: 5 }));
  for (let i = 0; i < 10; i++) stats.record(sample('B', 0.5, { rows: 10 }));
  for (let i = 0; i < 3; i++) stats.record(sample('C', 3));
  const order = (...args: Parameters<QueryStats['top']>) => stats.top(...args).map((d) => d.digest);

  it('sorts by total time by default', () => {
    expect(order()).toEqual(['A', 'C', 'B']);
    expect(order(undefined, 'total_time')).toEqual(['A', 'C', 'B']);
  });

  it('sorts by count, mean time and rows', () => {
    expect(order(undefined, 'count')).toEqual(['B', 'C', 'A']);
    expect(order(undefined, 'mean_time')).toEqual(['A', 'C', 'B']);
    expect(order(undefined, 'rows')).toEqual(['B', 'A', 'C']);
    expect(stats.top(undefined, 'mean_time').map((d) => d.mean_seconds)).toEqual([10, 3, 0.5]);
  });

  it('applies the limit after sorting', () => {
    expect(order(2, 'count')).toEqual(['B', 'C']);
    expect(order(1)).toEqual(['A']);
    expect(order(0)).toEqual([]);
    expect(order(50)).toHaveLength(3);
  });
});

describe('QueryStats: bound and reset', () => {
  it('keeps at most N digests, evicting the smallest total time, and lets every new digest in', () => {
    const stats = new QueryStats(3);
    stats.record(sample('A', 3));
    stats.record(sample('B', 1));
    stats.record(sample('C', 2));
    expect(stats.evicted).toBe(0);

    stats.record(sample('D', 0.5));
    expect(stats.size).toBe(3);
    expect(stats.evicted).toBe(1);
    expect(stats.top().map((d) => d.digest)).toEqual(['A', 'C', 'D']);

    // D grows past C; the next newcomer pushes C out, not D.
    stats.record(sample('D', 2));
    stats.record(sample('E', 0.1));
    expect(stats.evicted).toBe(2);
    expect(stats.top().map((d) => d.digest)).toEqual(['A', 'D', 'E']);

    // The newcomer is the smallest now, so the next one replaces it.
    stats.record(sample('F', 0.2));
    expect(stats.evicted).toBe(3);
    expect(stats.top().map((d) => d.digest)).toEqual(['A', 'D', 'F']);

    // A digest that was evicted starts again from zero when it returns.
    stats.record(sample('B', 0.3));
    expect(stats.evicted).toBe(4);
    expect(byDigest(stats, 'B')).toMatchObject({ count: 1, total_seconds: 0.3 });
    expect(byDigest(stats, 'F')).toBeUndefined();
  });

  it('evicts a digest that was never an eviction candidate once the candidates have all grown past it', () => {
    // 40 digests, totals 1..40 s in insertion order, so one pass over the
    // table sees the smallest first.
    const stats = new QueryStats(40);
    for (let i = 0; i < 40; i++) stats.record(sample(`D${i}`, i + 1));
    stats.record(sample('X', 0.5));
    expect(byDigest(stats, 'D0')).toBeUndefined();
    // Everything below D32 (33 s) grows past it, and so does X.
    for (let i = 1; i < 32; i++) stats.record(sample(`D${i}`, 100));
    stats.record(sample('X', 100));
    stats.record(sample('Y', 0.5));
    expect(stats.evicted).toBe(2);
    expect(byDigest(stats, 'D32')).toBeUndefined();
    expect(byDigest(stats, 'D1')).toMatchObject({ total_seconds: 102 });
    stats.record(sample('Z', 0.25));
    expect(byDigest(stats, 'Y')).toBeUndefined();
    expect(stats.top(undefined, 'total_time').at(-1)!.digest).toBe('Z');
  });

  // Workloads for the comparison with a full scan: a skewed fixed mix, and a
  // hot set that drifts so kept digests keep overtaking one another.
  const workloads: [string, number, (rand: () => number, step: number) => { id: number; seconds: number }][] = [
    ['skewed mix, N=50', 50, (rand) => {
      const id = Math.floor(400 * rand() ** 3);
      return { id, seconds: 1e-4 + rand() * (id < 20 ? 0.05 : 0.002) };
    }],
    ['drifting hot set, N=40', 40, (rand, step) => ({
      id: (Math.floor(step / 1500) * 13 + Math.floor(rand() * 70)) % 500,
      seconds: rand() * 0.01,
    })],
    ['drifting hot set, N=200', 200, (rand, step) => ({
      id: (Math.floor(step / 3000) * 50 + Math.floor(rand() * 260)) % 1000,
      seconds: rand() * rand() * 0.01,
    })],
  ];

  it.each(workloads)('evicts exactly what a full scan for the smallest total would: %s', (_name, max, next) => {
    const rand = prng(max);
    const stats = new QueryStats(max);
    const model = new Map<string, number>();
    let modelEvicted = 0;
    for (let step = 0; step < 20_000; step++) {
      const { id, seconds } = next(rand, step);
      const digest = `SELECT ${id}`;
      if (!model.has(digest) && model.size >= max) {
        let victim = '';
        let least = Infinity;
        for (const [k, v] of model) if (v < least) [victim, least] = [k, v];
        model.delete(victim);
        modelEvicted++;
      }
      model.set(digest, (model.get(digest) ?? 0) + seconds);
      stats.record(sample(digest, seconds));
      if (step % 250 === 0 || step === 19_999) {
        expect(stats.size).toBe(model.size);
        expect(new Set(stats.top().map((d) => d.digest))).toEqual(new Set(model.keys()));
      }
    }
    expect(modelEvicted).toBeGreaterThan(1000);
    expect(stats.evicted).toBe(modelEvicted);
    for (const d of stats.top()) expect(d.total_seconds).toBe(model.get(d.digest));
  });

  it('reset forgets every digest and the evicted count', () => {
    const stats = new QueryStats(2);
    stats.record(sample('A', 1));
    stats.record(sample('B', 2));
    stats.record(sample('C', 3));
    expect(stats.evicted).toBe(1);
    expect(stats.size).toBe(2);
    stats.reset();
    expect(stats.size).toBe(0);
    expect(stats.evicted).toBe(0);
    expect(stats.top()).toEqual([]);
    stats.record(sample('B', 0.25));
    expect(stats.top()).toMatchObject([{ digest: 'B', count: 1, total_seconds: 0.25 }]);
    stats.record(sample('A', 1));
    stats.record(sample('D', 1));
    expect(stats.size).toBe(2);
    expect(stats.evicted).toBe(1);
    expect(byDigest(stats, 'B')).toBeUndefined();
  });
});

describe('admin routes /stats/queries', () => {
  const stats = new QueryStats(500);
  let server: AdminServer;
  let base: string;

  const call = async (path: string, method = 'GET') => {
    const r = await fetch(`${base}${path}`, { method });
    return { status: r.status, contentType: r.headers.get('content-type'), allow: r.headers.get('allow'), body: (await r.json()) as any };
  };

  beforeAll(async () => {
    server = new AdminServer({
      host: '127.0.0.1',
      port: 0,
      metrics: new Metrics({ defaultMetrics: false }),
      logger: createLogger('silent'),
      health: () => ({ ok: true }),
    });
    registerQueryStatsRoutes(server, stats);
    const { port } = await server.start();
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('returns the digests sorted by total time with the table figures', async () => {
    stats.reset();
    stats.record(sample('SELECT ?', 0.001, { rows: 1, cache: 'hit', destination: 'cache' }));
    stats.record(sample('SELECT ?', 0.001, { rows: 1, cache: 'miss', destination: 'replica' }));
    stats.record(sample('UPDATE T SET A = ?', 0.5, { error: true }));
    const r = await call('/stats/queries');
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^application\/json/);
    expect(r.body).toMatchObject({ tracked: 2, max_digests: 500, evicted: 0 });
    expect(r.body.digests.map((d: QueryDigestStats) => d.digest)).toEqual(['UPDATE T SET A = ?', 'SELECT ?']);
    expect(r.body.digests[1]).toEqual(stats.top(undefined, 'total_time')[1]);
    expect(r.body.digests[1]).toMatchObject({ count: 2, rows_sent: 2, cache_hits: 1, cache_misses: 1, destinations: { cache: 1, primary: 0, replica: 1 } });
    expect(Object.keys(r.body.digests[0]).sort()).toEqual(
      ['cache_hits', 'cache_misses', 'count', 'destinations', 'digest', 'errors', 'first_seen', 'last_seen', 'max_seconds', 'mean_seconds', 'p95_seconds', 'rows_sent', 'total_seconds'].sort(),
    );
    expect(r.body.digests[0]).toMatchObject({ errors: 1, count: 1 });

    const byCount = await call('/stats/queries?sort=count&limit=1');
    expect(byCount.status).toBe(200);
    expect(byCount.body.digests.map((d: QueryDigestStats) => d.digest)).toEqual(['SELECT ?']);
    const byRows = await call('/stats/queries?sort=rows');
    expect(byRows.body.digests.map((d: QueryDigestStats) => d.digest)).toEqual(['SELECT ?', 'UPDATE T SET A = ?']);
    const byMean = await call('/stats/queries?sort=mean_time');
    expect(byMean.body.digests.map((d: QueryDigestStats) => d.digest)).toEqual(['UPDATE T SET A = ?', 'SELECT ?']);
  });

  it('limits to 100 digests by default and up to 10000 when asked', async () => {
    stats.reset();
    for (let i = 0; i < 150; i++) stats.record(sample(`SELECT ${i}`, 0.001 * (i + 1)));
    const def = await call('/stats/queries');
    expect(def.body.tracked).toBe(150);
    expect(def.body.digests).toHaveLength(100);
    expect(def.body.digests[0].digest).toBe('SELECT 149');
    expect((await call('/stats/queries?limit=10000')).body.digests).toHaveLength(150);
    expect((await call('/stats/queries?limit=7')).body.digests).toHaveLength(7);
  });

  it('reports evictions', async () => {
    const small = new QueryStats(2);
    const other = new AdminServer({ host: '127.0.0.1', port: 0, metrics: new Metrics({ defaultMetrics: false }), health: () => ({ ok: true }) });
    registerQueryStatsRoutes(other, small);
    const { port } = await other.start();
    try {
      for (const d of ['A', 'B', 'C', 'D']) small.record(sample(d, 1));
      const r = await fetch(`http://127.0.0.1:${port}/stats/queries`).then((x) => x.json() as Promise<any>);
      expect(r).toMatchObject({ tracked: 2, max_digests: 2, evicted: 2 });
      expect(r.digests).toHaveLength(2);
    } finally {
      await other.stop();
    }
  });

  it.each([
    ['limit=0'],
    ['limit=10001'],
    ['limit=abc'],
    ['limit=1.5'],
    ['limit=-1'],
    ['limit='],
    ['sort=bogus'],
    ['sort='],
    ['sort=TOTAL_TIME'],
    ['limit=5&sort=p95'],
  ])('rejects ?%s with 400 and a JSON error', async (q) => {
    const r = await call(`/stats/queries?${q}`);
    expect(r.status).toBe(400);
    expect(r.contentType).toMatch(/^application\/json/);
    expect(typeof r.body.error).toBe('string');
    expect(r.body.error).toMatch(q.startsWith('sort') || q.includes('sort=p95') ? /sort/ : /limit/);
  });

  it('POST /stats/queries/reset drops everything and says how much', async () => {
    stats.reset();
    for (const d of ['A', 'B', 'C']) stats.record(sample(d, 1));
    const r = await call('/stats/queries/reset', 'POST');
    expect(r).toMatchObject({ status: 200, body: { reset: true, dropped: 3 } });
    expect(stats.size).toBe(0);
    expect((await call('/stats/queries')).body).toEqual({ digests: [], tracked: 0, max_digests: 500, evicted: 0 });
    expect((await call('/stats/queries/reset', 'POST')).body).toEqual({ reset: true, dropped: 0 });
  });

  it('answers other methods with 405', async () => {
    const get = await call('/stats/queries/reset');
    expect(get.status).toBe(405);
    expect(get.allow).toBe('POST');
    const post = await call('/stats/queries', 'POST');
    expect(post.status).toBe(405);
    expect(post.allow).toContain('GET');
  });
});
