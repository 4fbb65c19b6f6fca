import mysql from 'mysql2/promise';
import type { ServerInfo, TopologyInfo } from '../scripts/topology.js';
import { plainUser } from '../src/config/accounts.js';
import type { CacheConfig, WirecacheConfig } from '../src/config/types.js';
import { createLogger } from '../src/logger.js';
import { Metrics } from '../src/metrics/metrics.js';
import { ProxyServer } from '../src/proxy_server.js';

export interface RunningProxy {
  proxy: ProxyServer;
  metrics: Metrics;
  config: WirecacheConfig;
  host: string;
  port: number;
  stop(): Promise<void>;
}

/** Limits that never refuse a login: tests log in with wrong passwords on purpose and must not block 127.0.0.1. */
export const NO_LOGIN_LIMITS = { maxUserConnections: 0, loginFailuresPerMinute: 0, loginBlockSeconds: 60 };

/** A config for the test topology: every test account, the topology's primary as the only backend. */
export function testConfig(topo: TopologyInfo, overrides: Partial<WirecacheConfig> = {}, primary: ServerInfo = topo.primary): WirecacheConfig {
  return {
    sourcePath: '<test>',
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0, token: null },
    queryStats: { maxDigests: 1000 },
    classifierCacheBytes: 8 * 1024 * 1024,
    sessionTracking: true,
    backends: [{ name: 'primary', host: primary.host, port: primary.port, role: 'primary', weight: 1 }],
    users: [...topo.users.map((u) => plainUser(u.name, u.password)), plainUser('root', topo.rootPassword)],
    tls: null,
    backendTls: null,
    auth: { defaultPlugin: 'mysql_native_password', rsaPrivateKeyFile: null, rsaPublicKeyFile: null },
    usersFromDatabase: null,
    limits: { ...NO_LOGIN_LIMITS, maxClientConnections: 200, maxPacketBytes: 64 * 1024 * 1024 },
    timeouts: { backendConnectMs: 3000, clientHandshakeMs: 5000, clientReadMs: 5000, clientIdleSeconds: 0, shutdownGraceMs: 2000 },
    monitor: null,
    routing: { maxReplicationLagSeconds: 10, consistency: 'session', consistencyWaitMs: 500 },
    cache: null,
    // Off unless a test turns it on: the binlog reader's own tests set it (test/binlog_invalidation.test.ts).
    binlog: { enabled: 'off', user: null, password: '', serverId: 4242, maxDelayMs: 5000, onUnavailable: 'fail_closed' },
    memcachedApi: null,
    pool: { maxIdle: 100, idleTimeoutSeconds: 60, maxConnections: 0, maxConnectionsPerUser: 0, queueTimeoutMs: 5000, multiplexing: true },
    log: { level: 'error' },
    serverVersion: '5.5.5-10.11.0-MariaDB-wirecache',
    workers: 1,
    ...overrides,
  };
}

/** A memory-only cache config for tests; `overrides` replace single fields. */
export function testCacheConfig(overrides: Partial<CacheConfig> = {}): CacheConfig {
  return {
    mode: 'hinted',
    defaultTtlSeconds: 60,
    defaultSoftTtlSeconds: null,
    maxResultBytes: 1_048_576,
    cacheResultsWithWarnings: false,
    allowReadOnlyTransactions: false,
    coalesceWaitMs: 2000,
    storage: 'memory',
    memory: { maxBytes: 64 * 1024 * 1024 },
    memcached: { servers: [], timeoutMs: 20, itemLimitBytes: 1_048_576, maxItemsPerEntry: 16, keyPrefix: 'wc' },
    rules: [],
    rulesFile: null,
    ...overrides,
  };
}

export async function startProxy(topo: TopologyInfo, overrides: Partial<WirecacheConfig> = {}, primary?: ServerInfo): Promise<RunningProxy> {
  const config = testConfig(topo, overrides, primary);
  const metrics = new Metrics({ backendNames: config.backends.map((b) => b.name) });
  const proxy = new ProxyServer(config, createLogger(process.env.WIRECACHE_TEST_LOG ? 'debug' : 'error'), metrics, metrics.cache, metrics.routing, metrics.binlog, metrics.pool);
  metrics.pool.watch((server) => proxy.loginPool.usage(server));
  if (proxy.binlog) metrics.binlog.enable();
  if (proxy.cache) metrics.cache.watch(() => proxy.cache!.stats);
  if (proxy.monitor) metrics.routing.watch(() => proxy.monitor!.servers());
  const address = await proxy.start();
  return {
    proxy,
    metrics,
    config,
    host: '127.0.0.1',
    port: address.port,
    stop: () => proxy.shutdown(500),
  };
}

export function passwordOf(topo: TopologyInfo, user: string): string {
  if (user === 'root') return topo.rootPassword;
  const u = topo.users.find((x) => x.name === user);
  if (!u) throw new Error(`no test user ${user}`);
  return u.password;
}

/** A mysql2 connection through the proxy (or directly, given a server's port). */
export function connect(
  port: number,
  topo: TopologyInfo,
  opts: { user?: string; database?: string; multipleStatements?: boolean; flags?: string[] } = {},
): Promise<mysql.Connection> {
  const user = opts.user ?? 'app';
  return mysql.createConnection({
    host: '127.0.0.1',
    port,
    user,
    password: passwordOf(topo, user),
    database: opts.database ?? 'wc_test',
    multipleStatements: opts.multipleStatements ?? false,
    flags: opts.flags,
    supportBigNumbers: true,
  });
}

/** Backends for a primary and its replicas, with the monitor logging in as root; checks every 200 ms, two in a row decide. */
export function routingConfig(
  set: { primary: ServerInfo; replicas: ServerInfo[]; rootPassword: string },
  overrides: { monitor?: Partial<NonNullable<WirecacheConfig['monitor']>>; routing?: Partial<WirecacheConfig['routing']> } = {},
): Partial<WirecacheConfig> {
  return {
    backends: [
      { name: 'primary', host: set.primary.host, port: set.primary.port, role: 'primary', weight: 1 },
      ...set.replicas.map((r) => ({ name: r.name, host: r.host, port: r.port, role: 'replica' as const, weight: 1 })),
    ],
    monitor: {
      user: 'root',
      password: set.rootPassword,
      intervalMs: 200,
      checkTimeoutMs: 1000,
      failAfter: 2,
      recoverAfter: 2,
      heartbeatTable: 'wirecache.heartbeat',
      ...overrides.monitor,
    },
    routing: { maxReplicationLagSeconds: 10, consistency: 'session', consistencyWaitMs: 500, ...overrides.routing },
  };
}
