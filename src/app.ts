import type { BackendEndpoint, WirecacheConfig } from './config/types.js';
import { gtidCovers } from './routing/gtid.js';
import { AdminServer, type HealthStatus } from './admin/admin_server.js';
import { BackendConnection } from './backend/backend_connection.js';
import { registerCacheRoutes, type RuleCounts } from './admin/cache_routes.js';
import { readFileSync } from 'node:fs';
import { changedFields, readRawConfig, rulesFileChanged } from './config/config_diff.js';
import { isLoopback, loadConfig } from './config/load.js';
import { ConfigError } from './config/yaml_locations.js';
import { registerRoutingRoutes } from './admin/routing_routes.js';
import { registerQueryStatsRoutes } from './admin/query_stats_routes.js';
import { registerDashboardRoutes } from './admin/dashboard_routes.js';
import { createLogger, logFormat, type Logger } from './logger.js';
import { WorkerPool } from './worker_pool.js';
import type { QueryStatsPart } from './workers/messages.js';
import { Metrics } from './metrics/metrics.js';
import { ProxyServer } from './proxy_server.js';
import type { QueryCache } from './cache/query_cache.js';
import type { BinlogReader } from './replication/binlog_reader.js';
import { MemcachedApiServer } from './memcached_api/memcached_server.js';
import { ContainerRowWatcher } from './memcached_api/container_rows.js';
import { findUser } from './config/lookup.js';

/** What a reload did: applied (the fields that changed, and those of them that need a restart to take effect), or refused with the config error. */
export type ReloadResult = { ok: true; changed: string[]; restartNeeded: string[] } | { ok: false; error: string };

/** The package's version, for the startup line. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** A running wirecache: the MySQL listener, the metrics/health listener, and their shared metrics. */
export interface RunningApp {
  proxy: ProxyServer;
  /** The worker threads serving the clients (workers above 1), or null: the proxy above serves them. */
  workers: WorkerPool | null;
  admin: AdminServer;
  metrics: Metrics;
  logger: Logger;
  mysqlAddress: { host: string; port: number };
  /** The memcached API's address, when it is configured. */
  memcachedAddress: { host: string; port: number } | null;
  memcached: MemcachedApiServer | null;
  adminAddress: { host: string; port: number };
  /** Re-reads the config file (and rules file); an invalid one is refused and the running config stays. */
  reload(): Promise<ReloadResult>;
  stop(): Promise<void>;
}

export async function startApp(initial: WirecacheConfig, logger = createLogger(initial.log.level)): Promise<RunningApp> {
  let config = initial;
  const metrics = new Metrics({ backendNames: config.backends.map((b) => b.name) });
  const proxy = new ProxyServer(config, logger, metrics, metrics.cache, metrics.routing, metrics.binlog, metrics.pool);
  // With worker threads, they serve the clients; this thread's proxy runs what runs once per process.
  const threaded = config.workers > 1;
  let workers: WorkerPool | null = null;
  const running = (): WorkerPool => {
    if (!workers) throw new Error('the worker threads are not running');
    return workers;
  };
  if (threaded) {
    proxy.listening = false;
    metrics.sumWorkers(config.workers, () => (workers ? workers.gather({ kind: 'metrics' }) : Promise.resolve([])), (i) => workers?.sessionsOf(i) ?? 0);
  }
  metrics.pool.watch((server) => proxy.loginPool.usage(server));
  if (proxy.binlog) metrics.binlog.enable();
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
    health: () => ({ ok: true, detail: { sessions: workers ? workers.sessions : proxy.sessions.size } }),
    ready: () => readiness(proxy, config),
  });
  if (proxy.cache) {
    const cache = proxy.cache;
    metrics.cache.watch(() => cache.stats);
    metrics.cache.knownRules(cache.config.rules.map((r) => r.name));
    const binlog = proxy.binlog;
    const workerCounts = threaded
      ? async () => (await running().gather<RuleCounts | null>({ kind: 'cache_counts' })).filter((c): c is RuleCounts => c !== null)
      : null;
    registerCacheRoutes(admin, cache, metrics.cache, binlog ? () => binlogStatus(binlog, cache, config) : null, workerCounts);
  }
  registerRoutingRoutes(admin, () => config, proxy.selector, proxy.monitor, proxy.loginPool, threaded ? () => running().gather({ kind: 'pool_usage' }) : null);
  if (proxy.queryStats) {
    const workerStats = threaded
      ? {
          parts: async () => (await running().gather<QueryStatsPart | null>({ kind: 'query_stats' })).filter((p): p is QueryStatsPart => p !== null),
          reset: () => running().gather<number>({ kind: 'query_stats_reset' }),
        }
      : null;
    registerQueryStatsRoutes(admin, proxy.queryStats, workerStats);
  }
  registerDashboardRoutes(admin);

  let reloading: Promise<ReloadResult> | null = null;
  /** The file as it was last applied, to log what a reload changes. */
  let appliedRaw = readRawConfig(config.sourcePath);
  const reload = (): Promise<ReloadResult> =>
    (reloading ??= (async (): Promise<ReloadResult> => {
      const refuse = (error: string): ReloadResult => {
        metrics.configReloaded('failure');
        logger.error({ error }, 'config reload refused; the running config stays');
        return { ok: false, error };
      };
      let next: WirecacheConfig;
      try {
        next = loadConfig(config.sourcePath);
      } catch (err) {
        return refuse(err instanceof ConfigError ? err.message : (err as Error).message);
      }
      if (next.admin.token === null && !isLoopback(config.admin.host)) {
        // The admin listener keeps its address until a restart: a new file that drops the token
        // (valid for a loopback address) must not leave it open beyond loopback.
        return refuse(
          `admin.token cannot be removed while the admin API listens on ${config.admin.host} (the address changes only at a restart): keep the token, or restart with a loopback admin.host`,
        );
      }
      const nextRaw = readRawConfig(config.sourcePath);
      const changed = changedFields(appliedRaw, nextRaw);
      if (rulesFileChanged(config, next)) changed.push('cache.rules_file');
      appliedRaw = nextRaw;
      const restartNeeded = proxy.reload(next);
      if (next.workers !== config.workers) restartNeeded.push('workers');
      workers?.reload(proxy.currentConfig);
      const previous = config;
      config = { ...next, admin: { ...config.admin, token: next.admin.token } };
      if (proxy.cache) metrics.cache.knownRules(proxy.cache.config.rules.map((r) => r.name));
      metrics.configReloaded('success');
      // Same key names as POST /reload answers with.
      const fields = { file: previous.sourcePath, changed, restart_needed: restartNeeded };
      if (restartNeeded.length > 0) logger.warn(fields, 'config reloaded; some changes take effect only after a restart');
      else logger.info(fields, changed.length > 0 ? 'config reloaded' : 'config reloaded: nothing changed');
      return { ok: true, changed, restartNeeded };
    })().finally(() => {
      reloading = null;
    }));
  admin.addRoute('POST', '/reload', async () => {
    const result = await reload();
    return result.ok
      ? { json: { reloaded: true, changed: result.changed, restart_needed: result.restartNeeded } }
      : { status: 422, json: { reloaded: false, error: result.error } };
  });

  const adminAddress = await admin.start();
  let address: { address: string; port: number } = await proxy.start();
  if (threaded) {
    try {
      workers = await WorkerPool.start(config.workers, config, proxy, logger, metrics, logFormat() === 'pretty');
    } catch (err) {
      await proxy.shutdown(0);
      await admin.stop();
      throw err;
    }
    address = workers.address;
    if (proxy.cache) {
      const cache = proxy.cache;
      workers.onProxyWrite((tables) => cache.proxyWroteElsewhere(tables));
    }
  }
  const memcached = config.memcachedApi ? createMemcachedApi(config, proxy, metrics, logger) : null;
  let memcachedAddress: { host: string; port: number } | null = null;
  try {
    if (memcached) memcachedAddress = await memcached.start();
  } catch (err) {
    await workers?.stop(0);
    await proxy.shutdown(0);
    await admin.stop();
    throw err;
  }
  // The startup banner: one line with what an operator checks first.
  const adminUrl = `http://${adminAddress.host}:${adminAddress.port}`;
  logger.info(
    {
      version: packageVersion(),
      config: config.sourcePath,
      listen: `${address.address}:${address.port}`,
      admin: adminUrl,
      metrics: `${adminUrl}/metrics`,
      backends: config.backends.map((b) => `${b.name} ${b.host}:${b.port} (${b.role})`),
      cache: config.cache ? config.cache.storage : 'off',
      cache_rules: config.cache?.rules.length ?? 0,
      memcached_api: memcachedAddress ? `${memcachedAddress.host}:${memcachedAddress.port}` : 'off',
      workers: config.workers,
    },
    'wirecache started',
  );
  let stopping: Promise<void> | null = null;
  return {
    proxy,
    workers,
    admin,
    metrics,
    logger,
    mysqlAddress: { host: address.address, port: address.port },
    memcachedAddress,
    memcached,
    adminAddress,
    reload,
    stop: () =>
      (stopping ??= (async () => {
        logger.info({ grace_ms: config.timeouts.shutdownGraceMs }, 'shutting down: no new connections, finishing queries in flight');
        await memcached?.stop();
        await workers?.stop(config.timeouts.shutdownGraceMs);
        await proxy.shutdown(config.timeouts.shutdownGraceMs);
        await admin.stop();
        logger.info('stopped');
      })()),
  };
}

/** A replica in rotation whose last known position includes `after` (a connection's last write). */
function replicaHaving(proxy: ProxyServer, after: string | null): BackendEndpoint | null {
  const tried = new Set<string>();
  for (let endpoint = proxy.selector.pickReplica(tried); endpoint; endpoint = proxy.selector.pickReplica(tried)) {
    if (after === null || gtidCovers(proxy.selector.gtidPosition(endpoint.name) ?? '', after)) return endpoint;
    tried.add(endpoint.name);
  }
  return null;
}

/** The memcached API in front of the container tables, its binlog row watcher and metrics. */
function createMemcachedApi(config: WirecacheConfig, proxy: ProxyServer, metrics: Metrics, logger: Logger): MemcachedApiServer {
  const api = config.memcachedApi as NonNullable<WirecacheConfig['memcachedApi']>;
  const binlog = proxy.binlog;
  const server = new MemcachedApiServer({
    config: api,
    primary: () => proxy.primaryEndpoint(),
    backendTls: config.backendTls ? { ca: config.backendTls.caFile ? readFileSync(config.backendTls.caFile) : null, verify: config.backendTls.verify } : null,
    connectTimeoutMs: config.timeouts.backendConnectMs,
    findUser: (name) => findUser(config, name),
    tableWritten: (table) => void proxy.cache?.invalidate([table.toLowerCase()], 'memcached_api'),
    // Without a current binlog reader, writes made elsewhere would go unseen: the tier is not used.
    cacheUsable: () => binlog?.current ?? false,
    replicaFor: (after) => replicaHaving(proxy, after),
    observer: metrics.memcached,
    log: logger.child({ component: 'memcached_api' }),
    version: `${packageVersion()}-wirecache`,
  });
  const rows = new ContainerRowWatcher(() => server.loaded, server.cache);
  binlog?.watchRows(rows);
  // A write through the SQL port changes the tier at once (the binlog would tell it a moment later).
  proxy.cache?.onProxyWrite((tables) => rows.changed(tables));
  metrics.memcached.watchCache(() => ({ bytes: server.cache.bytes, items: server.cache.entries }));
  return server;
}

/**
 * Ready when a primary is reachable: as the monitor last saw it, or (without
 * a monitor) by reading the primary's greeting now.
 */
/**
 * The binlog reader's state for /cache and /readyz. `cache_serving` is false
 * while fail_closed holds the cache off (the proxy still answers: from the
 * database). A reader that is off (auto found no binlog or no grant) is
 * reported as such: the cache then invalidates only for writes it sees.
 */
function binlogStatus(reader: BinlogReader, cache: QueryCache, config: WirecacheConfig): Record<string, unknown> {
  return { ...reader.status(), on_unavailable: config.binlog.onUnavailable, cache_serving: !cache.isSuspended };
}

/** Readiness with the binlog reader's state added to its detail (it never makes the proxy unready: misses go to the database). */
async function readiness(proxy: ProxyServer, config: WirecacheConfig): Promise<HealthStatus> {
  const status = await primaryReadiness(proxy, config);
  if (proxy.binlog && proxy.cache) status.detail = { ...(status.detail as object | undefined), binlog: binlogStatus(proxy.binlog, proxy.cache, config) };
  return status;
}

async function primaryReadiness(proxy: ProxyServer, config: WirecacheConfig): Promise<HealthStatus> {
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
