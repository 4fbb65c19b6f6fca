/**
 * Admin HTTP endpoints of routing:
 *
 *   GET /servers              every backend as the monitor sees it (state, lag, read_only, rotation)
 *   GET /explain?sql=...      classification, matching rule, cacheability and destination of a statement
 *       optional: user=, schema=, client=, in_transaction=1
 */
import type { LoginPool, PoolUsage } from '../backend/login_pool.js';
import type { AdminServer } from './admin_server.js';
import type { WirecacheConfig } from '../config/types.js';
import { explainStatement } from './explain.js';
import type { ServerMonitor } from '../routing/server_monitor.js';
import type { ServerSelector } from '../routing/server_selector.js';

/** Longest statement /explain accepts (query strings beyond this are a mistake, not SQL to explain). */
const MAX_EXPLAIN_SQL = 64 * 1024;

export function registerRoutingRoutes(
  admin: AdminServer,
  config: () => WirecacheConfig,
  selector: ServerSelector,
  monitor: ServerMonitor | null,
  pool: LoginPool | null = null,
  /** With worker threads: each one's pool usage by server (their pools are the client sessions'). */
  workerPools: (() => Promise<Record<string, PoolUsage>[]>) | null = null,
): void {
  admin.addRoute('GET', '/servers', async () => {
    const primary = selector.primary();
    const limits = config().pool;
    const usages = workerPools ? await workerPools() : [];
    // Client sessions' backend connections per server, as the login pool counts and limits them (summed over the workers).
    const poolOf = (server: string) => {
      if (!pool) return undefined;
      const usage = { ...pool.usage(server) };
      for (const u of usages) if (u[server]) for (const key of Object.keys(usage) as (keyof PoolUsage)[]) usage[key] += u[server][key];
      return { ...usage, max_connections: limits.maxConnections, max_idle: limits.maxIdle };
    };
    return {
      json: {
        monitored: monitor !== null,
        primary: primary.endpoint?.name ?? null,
        writable_conflict: primary.conflict,
        servers: monitor
          ? monitor.servers().map((s) => ({
              name: s.name,
              host: s.host,
              port: s.port,
              configured_role: s.configuredRole,
              state: s.state,
              in_rotation: s.inRotation,
              read_only: s.readOnly,
              replicating: s.replicating,
              lag_seconds: s.lagSeconds,
              lag_source: s.lagSource,
              gtid_position: s.gtidPosition,
              consecutive_bad: s.consecutiveBad,
              consecutive_good: s.consecutiveGood,
              last_error: s.lastError,
              last_check_at: s.lastCheckAt === null ? null : new Date(s.lastCheckAt).toISOString(),
              pool: poolOf(s.name),
            }))
          : config().backends.map((b) => ({ name: b.name, host: b.host, port: b.port, configured_role: b.role, state: 'unmonitored', pool: poolOf(b.name) })),
      },
    };
  });
  admin.addRoute('GET', '/explain', ({ query }) => {
    const sql = query.get('sql');
    if (sql === null || sql.trim() === '') return { status: 400, json: { error: 'give the statement as ?sql=...' } };
    if (sql.length > MAX_EXPLAIN_SQL) return { status: 400, json: { error: `the statement is over ${MAX_EXPLAIN_SQL} characters` } };
    const cfg = config();
    return {
      json: explainStatement(
        {
          sql,
          user: query.get('user') ?? cfg.users[0].name,
          schema: query.get('schema'),
          clientAddress: query.get('client') ?? '127.0.0.1',
          inTransaction: query.get('in_transaction') === '1',
        },
        cfg,
        selector,
        monitor?.servers() ?? [],
      ),
    };
  });
}
