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
import type { CacheStats, QueryCache } from '../cache/query_cache.js';

const COUNT_KINDS = ['hits', 'misses', 'stores', 'staleHits'] as const;
export type RuleCounts = Record<string, Record<(typeof COUNT_KINDS)[number], number>>;

/** One cache's figures for GET /cache: entries and bytes in memory, and counts by rule. */
export interface CacheSummary {
  stats: CacheStats;
  rules: RuleCounts;
}

/** The figures of one proxy's (or worker thread's) cache, to be summed. */
export function cacheSummary(cache: QueryCache, metrics: CacheMetrics): CacheSummary {
  const rules: RuleCounts = {};
  for (const rule of ['hint', 'all', ...cache.config.rules.map((r) => r.name)]) {
    rules[rule] = { hits: 0, misses: 0, stores: 0, staleHits: 0 };
    for (const kind of COUNT_KINDS) rules[rule][kind] = metrics.value(kind, rule);
  }
  return { stats: cache.stats, rules };
}

/** With worker threads: their caches' figures, and a purge of each one's memory (entries dropped by each). */
export interface WorkerCaches {
  summaries(): Promise<CacheSummary[]>;
  purge(target: { all: true } | { table: string } | { rule: string }): Promise<number[]>;
}

export function registerCacheRoutes(
  admin: AdminServer,
  cache: QueryCache,
  metrics: CacheMetrics,
  /** The binlog reader's state, when there is a reader. */
  binlog: (() => Record<string, unknown>) | null = null,
  workers: WorkerCaches | null = null,
): void {
  admin.addRoute('GET', '/cache', async () => {
    const parts = [cacheSummary(cache, metrics), ...(workers ? await workers.summaries() : [])];
    const count = (kind: (typeof COUNT_KINDS)[number], rule: string) => parts.reduce((n, p) => n + (p.rules[rule]?.[kind] ?? 0), 0);
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
    const stats = { entries: parts.reduce((n, p) => n + p.stats.entries, 0), bytes: parts.reduce((n, p) => n + p.stats.bytes, 0) };
    return {
      json: {
        storage: cache.config.storage,
        mode: cache.config.mode,
        tiers: cache.tiers,
        binlog: binlog ? binlog() : null,
        memory: { ...stats, max_bytes: cache.config.storage === 'memcached' ? 0 : cache.config.memory.maxBytes },
        rules,
      },
    };
  });
  /** Purges this cache and every worker's; returns the entries dropped from memory in all of them. */
  const purge = async (target: { all: true } | { table: string } | { rule: string }): Promise<number> => {
    const dropped = await cache.purge(target);
    const others = workers ? await workers.purge(target) : [];
    return others.reduce((n, d) => n + d, dropped);
  };
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
