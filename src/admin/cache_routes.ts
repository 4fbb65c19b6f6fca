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

export function registerCacheRoutes(
  admin: AdminServer,
  cache: QueryCache,
  metrics: CacheMetrics,
  /** The binlog reader's state, when there is a reader. */
  binlog: (() => Record<string, unknown>) | null = null,
): void {
  admin.addRoute('GET', '/cache', () => {
    const rules = ['hint', 'all', ...cache.config.rules.map((r) => r.name)].map((rule) => {
      const hits = metrics.value('hits', rule);
      const misses = metrics.value('misses', rule);
      return {
        rule,
        hits,
        stale_hits: metrics.value('staleHits', rule),
        misses,
        stores: metrics.value('stores', rule),
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
      return { json: { purged: 'table', table: table.toLowerCase(), dropped: await cache.purge({ table }) } };
    }
    if (rule !== null) {
      if (!cache.config.rules.some((r) => r.name === rule)) return { status: 404, json: { error: `no rule named ${JSON.stringify(rule)}` } };
      return { json: { purged: 'rule', rule, dropped: await cache.purge({ rule }) } };
    }
    if (all !== '1' && all !== 'true') return { status: 400, json: { error: 'write ?all=1 to purge everything' } };
    return { json: { purged: 'all', dropped: await cache.purge({ all: true }) } };
  });
}
