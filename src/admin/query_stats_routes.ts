/**
 * Admin HTTP endpoints of the per-digest statement statistics:
 *
 *   GET  /stats/queries?limit=100&sort=total_time
 *        {"digests": [...], "tracked": n, "max_digests": n, "evicted": n}
 *        limit 1..10000 (default 100); sort total_time | count | mean_time | rows
 *        (default total_time), descending.
 *   POST /stats/queries/reset
 *        {"reset": true, "dropped": <digests forgotten>}
 */
import type { AdminServer } from './admin_server.js';
import { QUERY_STATS_SORT_KEYS, QueryStats, type DigestRecord, type QueryStatsSortKey } from '../session/query_stats.js';

export const QUERY_STATS_MAX_LIMIT = 10_000;
export const QUERY_STATS_DEFAULT_LIMIT = 100;

/** With worker threads: each one's digests, and a reset of each (returns the digests each dropped). */
export interface WorkerQueryStats {
  parts(): Promise<{ records: DigestRecord[]; evicted: number }[]>;
  reset(): Promise<number[]>;
}

export function registerQueryStatsRoutes(admin: AdminServer, stats: QueryStats, workers: WorkerQueryStats | null = null): void {
  /** The statistics to show: this proxy's, or the sum of the workers' (at most max_digests of them again). */
  const current = async (): Promise<QueryStats> => {
    if (!workers) return stats;
    const sum = new QueryStats(stats.maxDigests);
    for (const part of await workers.parts()) sum.absorb(part.records, part.evicted);
    return sum;
  };
  admin.addRoute('GET', '/stats/queries', async ({ query }) => {
    let limit = QUERY_STATS_DEFAULT_LIMIT;
    const limitParam = query.get('limit');
    if (limitParam !== null) {
      limit = /^[0-9]{1,6}$/.test(limitParam) ? Number(limitParam) : NaN;
      if (!(limit >= 1 && limit <= QUERY_STATS_MAX_LIMIT)) {
        return { status: 400, json: { error: `limit must be an integer from 1 to ${QUERY_STATS_MAX_LIMIT}` } };
      }
    }
    let sort: QueryStatsSortKey = 'total_time';
    const sortParam = query.get('sort');
    if (sortParam !== null) {
      if (!(QUERY_STATS_SORT_KEYS as readonly string[]).includes(sortParam)) {
        return { status: 400, json: { error: `sort must be one of ${QUERY_STATS_SORT_KEYS.join(', ')}` } };
      }
      sort = sortParam as QueryStatsSortKey;
    }
    const shown = await current();
    return {
      json: {
        digests: shown.top(limit, sort),
        tracked: shown.size,
        max_digests: stats.maxDigests,
        evicted: shown.evicted,
      },
    };
  });
  admin.addRoute('POST', '/stats/queries/reset', async () => {
    let dropped = stats.size;
    stats.reset();
    if (workers) for (const n of await workers.reset()) dropped += n;
    return { json: { reset: true, dropped } };
  });
}
