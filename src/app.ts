import type { WirecacheConfig } from './config/types.js';
import { AdminServer, type HealthStatus } from './admin/admin_server.js';
import { BackendConnection } from './backend/backend_connection.js';
import { registerCacheRoutes } from './admin/cache_routes.js';
import { loadConfig } from './config/load.js';
import { ConfigError } from './config/yaml_locations.js';
import { registerRoutingRoutes } from './admin/routing_routes.js';
import { registerQueryStatsRoutes } from './admin/query_stats_routes.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics/metrics.js';
import { ProxyServer } from './proxy_server.js';

/** What a reload did: applied (with the options that need a restart to take effect), or refused with the config error. */
export type ReloadResult = { ok: true; restartNeeded: string[] } | { ok: false; error: string };

/** A running wirecache: the MySQL listener, the metrics/health listener, and their shared metrics. */
export interface RunningApp {
  proxy: ProxyServer;
  admin: AdminServer;
  metrics: Metrics;
  logger: Logger;
  mysqlAddress: { host: string; port: number };
  adminAddress: { host: string; port: number };
  /** Re-reads the config file (and rules file); an invalid one is refused and the running config stays. */
  reload(): Promise<ReloadResult>;
  stop(): Promise<void>;
}

export async function startApp(initial: WirecacheConfig, logger = createLogger(initial.log.level)): Promise<RunningApp> {
  let config = initial;
  const metrics = new Metrics({ backendNames: config.backends.map((b) => b.name) });
  const proxy = new ProxyServer(config, logger, metrics, metrics.cache, metrics.routing);
  metrics.watchProxy(proxy);
  if (proxy.monitor) {
    const monitor = proxy.monitor;
    metrics.routing.watch(() => monitor.servers());
  }
  const admin = new AdminServer({
    host: config.admin.host,
    port: config.admin.port,
    metrics,
    logger,
    token: () => config.admin.token,
    health: () => ({ ok: true, detail: { sessions: proxy.sessions.size } }),
    ready: () => readiness(proxy, config),
  });
  if (proxy.cache) {
    const cache = proxy.cache;
    metrics.cache.watch(() => cache.stats);
    metrics.cache.knownRules(cache.config.rules.map((r) => r.name));
    registerCacheRoutes(admin, cache, metrics.cache);
  }
  registerRoutingRoutes(admin, () => config, proxy.selector, proxy.monitor);
  if (proxy.queryStats) registerQueryStatsRoutes(admin, proxy.queryStats);

  let reloading: Promise<ReloadResult> | null = null;
  const reload = (): Promise<ReloadResult> =>
    (reloading ??= (async (): Promise<ReloadResult> => {
      let next: WirecacheConfig;
      try {
        next = loadConfig(config.sourcePath);
      } catch (err) {
        const error = err instanceof ConfigError ? err.message : (err as Error).message;
        metrics.configReloaded('failure');
        logger.error({ error }, 'config reload refused; the running config stays');
        return { ok: false, error };
      }
      const restartNeeded = proxy.reload(next);
      config = { ...next, admin: { ...config.admin, token: next.admin.token } };
      if (proxy.cache) metrics.cache.knownRules(proxy.cache.config.rules.map((r) => r.name));
      metrics.configReloaded('success');
      if (restartNeeded.length > 0) logger.warn({ restartNeeded }, 'config reloaded; these changes take effect only after a restart');
      else logger.info({ file: config.sourcePath }, 'config reloaded');
      return { ok: true, restartNeeded };
    })().finally(() => {
      reloading = null;
    }));
  admin.addRoute('POST', '/reload', async () => {
    const result = await reload();
    return result.ok
      ? { json: { reloaded: true, restart_needed: result.restartNeeded } }
      : { status: 422, json: { reloaded: false, error: result.error } };
  });

  const adminAddress = await admin.start();
  const address = await proxy.start();
  logger.info({ metrics: `http://${adminAddress.host}:${adminAddress.port}/metrics` }, 'admin listener ready');
  let stopping: Promise<void> | null = null;
  return {
    proxy,
    admin,
    metrics,
    logger,
    mysqlAddress: { host: address.address, port: address.port },
    adminAddress,
    reload,
    stop: () =>
      (stopping ??= (async () => {
        logger.info({ graceMs: config.timeouts.shutdownGraceMs }, 'shutting down: no new connections, finishing queries in flight');
        await proxy.shutdown(config.timeouts.shutdownGraceMs);
        await admin.stop();
        logger.info('stopped');
      })()),
  };
}

/**
 * Ready when a primary is reachable: as the monitor last saw it, or (without
 * a monitor) by reading the primary's greeting now.
 */
async function readiness(proxy: ProxyServer, config: WirecacheConfig): Promise<HealthStatus> {
  const choice = proxy.selector.primary();
  if (!choice.endpoint) return { ok: false, detail: { reason: `no primary: ${choice.conflict.join(' and ')} are all writable` } };
  const primary = choice.endpoint.name;
  if (proxy.monitor) {
    const status = proxy.monitor.server(primary);
    const ok = status?.reachable === true && status.readOnly === false;
    return { ok, detail: { primary, state: status?.state ?? 'unknown', last_error: status?.lastError ?? null } };
  }
  try {
    await BackendConnection.probe(choice.endpoint, Math.min(config.timeouts.backendConnectMs, 2000));
    return { ok: true, detail: { primary } };
  } catch (err) {
    return { ok: false, detail: { primary, reason: (err as Error).message } };
  }
}
