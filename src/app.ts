import type { WirecacheConfig } from './config_types.js';
import { AdminServer } from './admin_server.js';
import { registerCacheRoutes } from './cache_admin.js';
import { registerRoutingRoutes } from './routing_admin.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { ProxyServer } from './proxy_server.js';

/** A running wirecache: the MySQL listener, the metrics/health listener, and their shared metrics. */
export interface RunningApp {
  proxy: ProxyServer;
  admin: AdminServer;
  metrics: Metrics;
  logger: Logger;
  mysqlAddress: { host: string; port: number };
  adminAddress: { host: string; port: number };
  stop(): Promise<void>;
}

export async function startApp(config: WirecacheConfig, logger = createLogger(config.log.level)): Promise<RunningApp> {
  const metrics = new Metrics({ backendNames: config.backends.map((b) => b.name) });
  const proxy = new ProxyServer(config, logger, metrics, metrics.cache, metrics.routing);
  if (proxy.monitor) {
    const monitor = proxy.monitor;
    metrics.routing.watch(() => monitor.servers());
  }
  const admin = new AdminServer({
    host: config.admin.host,
    port: config.admin.port,
    metrics,
    logger,
    health: () => ({ ok: true, detail: { sessions: proxy.sessions.size } }),
  });
  if (proxy.cache) {
    const cache = proxy.cache;
    metrics.cache.watch(() => cache.stats);
    metrics.cache.knownRules(cache.config.rules.map((r) => r.name));
    registerCacheRoutes(admin, cache, metrics.cache);
  }
  registerRoutingRoutes(admin, () => config, proxy.selector, proxy.monitor);
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
    stop: () =>
      (stopping ??= (async () => {
        logger.info({ graceMs: config.timeouts.shutdownGraceMs }, 'shutting down: no new connections, finishing queries in flight');
        await proxy.shutdown(config.timeouts.shutdownGraceMs);
        await admin.stop();
        logger.info('stopped');
      })()),
  };
}
