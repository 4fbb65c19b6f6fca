/**
 * Admin HTTP endpoints of the query cache:
 *
 *   GET  /cache                 each tier's state (up/down), entries and bytes in memory, hits/misses/stores by rule
 *   POST /cache/purge?all=1     drop everything (every proxy sharing memcached too)
 *   POST /cache/purge?table=db.t
 *   POST /cache/purge?rule=name
 */
import type { AdminServer } from './admin_server.js';
import type { CacheMetrics } from '../metrics/cache_metrics.js';
import type { QueryCache } from '../cache/query_cache.js';

const COUNT_KINDS = ['hits', 'misses', 'stores', 'staleHits'] as const;
export type RuleCounts = Record<string, Record<(typeof COUNT_KINDS)[number], number>>;

/** A cache's hits, misses, stores and stale hits by rule (a worker thread's, to be summed). */
export function ruleCounts(cache: QueryCache, metrics: CacheMetrics): RuleCounts {
  const rules: RuleCounts = {};
  for (const rule of ['hint', 'all', ...cache.config.rules.map((r) => r.name)]) {
    rules[rule] = { hits: 0, misses: 0, stores: 0, staleHits: 0 };
    for (const kind of COUNT_KINDS) rules[rule][kind] = metrics.value(kind, rule);
  }
  return rules;
}

export function registerCacheRoutes(
  admin: AdminServer,
  cache: QueryCache,
  metrics: CacheMetrics,
  /** The binlog reader's state, when there is a reader. */
  binlog: (() => Record<string, unknown>) | null = null,
  /** With worker threads: their counts by rule (their memory tier is this cache's, shared). */
  workerCounts: (() => Promise<RuleCounts[]>) | null = null,
): void {
  admin.addRoute('GET', '/cache', async () => {
    const parts = [ruleCounts(cache, metrics), ...(workerCounts ? await workerCounts() : [])];
    const count = (kind: (typeof COUNT_KINDS)[number], rule: string) => parts.reduce((n, p) => n + (p[rule]?.[kind] ?? 0), 0);
    const rules = ['hint', 'all', ...cache.config.rules.map((r) => r.name)].map((rule) => {
      const hits = count('hits', rule);
      const misses = count('misses', rule);
      return {
        rule,
        hits,
        stale_hits: count('staleHits', rule),
        misses,
        stores: count('stores', rule),
        hit_ratio: hits + misses > 0 ? hits / (hits + misses) : null,
      };
    });
    return {
      json: {
        storage: cache.config.storage,
        mode: cache.config.mode,
        tiers: cache.tiers,
        binlog: binlog ? binlog() : null,
        memory: { ...cache.stats, max_bytes: cache.config.storage === 'memcached' ? 0 : cache.config.memory.maxBytes },
        rules,
      },
    };
  });
  // With worker threads the memory tier and the counters are shared: purging here purges theirs.
  const purge = (target: { all: true } | { table: string } | { rule: string }): Promise<number> => cache.purge(target);
  admin.addRoute('POST', '/cache/purge', async ({ query }) => {
    const table = query.get('table');
    const rule = query.get('rule');
    const all = query.get('all');
    const given = [table !== null, rule !== null, all !== null].filter(Boolean).length;
    if (given !== 1) {
      return { status: 400, json: { error: 'give exactly one of ?all=1, ?table=schema.table or ?rule=name' } };
    }
    if (table !== null) {
      if (!/^[^.\s]+\.[^.\s]+$/.test(table)) return { status: 400, json: { error: 'table must be "schema.table"' } };
      return { json: { purged: 'table', table: table.toLowerCase(), dropped: await purge({ table }) } };
    }
    if (rule !== null) {
      if (!cache.config.rules.some((r) => r.name === rule)) return { status: 404, json: { error: `no rule named ${JSON.stringify(rule)}` } };
      return { json: { purged: 'rule', rule, dropped: await purge({ rule }) } };
    }
    if (all !== '1' && all !== 'true') return { status: 400, json: { error: 'write ?all=1 to purge everything' } };
    return { json: { purged: 'all', dropped: await purge({ all: true }) } };
  });
}
