/**
 * A reload, decided before the proxy applies it: which changed options take
 * effect only after a restart (named as the reload's answer lists them in
 * `restart_needed`, see docs/configuration.md#reloading), and the config the
 * proxy runs with afterwards, in which those options keep their running
 * values. The cache's own restart-only options are QueryCache.reconfigure's.
 */
import type { CacheConfig, WirecacheConfig } from './types.js';

/** Options changed from `old` to `next` that need a restart, in the order the answer lists them. */
export function restartNeeded(old: WirecacheConfig, next: WirecacheConfig): string[] {
  const out: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (!same(old.listen, next.listen)) out.push('listen');
  if (old.admin.host !== next.admin.host || old.admin.port !== next.admin.port) out.push('admin.host/admin.port');
  if (!same(old.backends, next.backends)) out.push('backends');
  if (!same(old.monitor, next.monitor)) out.push('monitor');
  if (!same(old.tls, next.tls)) out.push('tls');
  if (!same(old.backendTls, next.backendTls)) out.push('backend_tls');
  if (!same(old.auth, next.auth)) out.push('auth');
  if (!same(old.usersFromDatabase, next.usersFromDatabase)) out.push('users_from_database');
  if (!same(old.binlog, next.binlog)) out.push('binlog');
  if (!same(old.memcachedApi, next.memcachedApi)) out.push('memcached_api');
  if (old.queryStats.maxDigests !== next.queryStats.maxDigests) out.push('query_stats');
  if (old.classifierCacheBytes !== next.classifierCacheBytes) out.push('classifier_cache_bytes');
  // The monitor judges lag with the bound it was started with; the greeting's version is learnt at start.
  if (old.routing.maxReplicationLagSeconds !== next.routing.maxReplicationLagSeconds) out.push('routing.max_replication_lag');
  if (old.serverVersion !== next.serverVersion) out.push('server_version');
  return out;
}

/** `next` with the restart-only options as they run now; `cache` is the cache config as applied. */
export function appliedConfig(old: WirecacheConfig, next: WirecacheConfig, cache: CacheConfig | null): WirecacheConfig {
  return {
    ...next,
    listen: old.listen,
    backends: old.backends,
    monitor: old.monitor,
    queryStats: old.queryStats,
    classifierCacheBytes: old.classifierCacheBytes,
    tls: old.tls,
    backendTls: old.backendTls,
    auth: old.auth,
    usersFromDatabase: old.usersFromDatabase,
    binlog: old.binlog,
    routing: { ...next.routing, maxReplicationLagSeconds: old.routing.maxReplicationLagSeconds },
    serverVersion: old.serverVersion,
    cache,
  };
}
