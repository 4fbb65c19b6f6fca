/**
 * The login pool's limits, from the config's `pool` section and shared out
 * over the worker threads, and the error a client gets when a limit holds
 * it back longer than `queue_timeout_ms`.
 */
import type { BackendEndpoint, WirecacheConfig } from '../config/types.js';
import { BackendError } from './backend_connection.js';

export interface LoginPoolOptions {
  /** Idle connections kept per server; 0 keeps none. */
  maxIdlePerServer: number;
  /** An idle connection unused for this long is closed. */
  idleTimeoutMs: number;
  /** Client sessions' connections open at once per server (idle ones included); 0: no limit of the proxy's own. */
  maxConnectionsPerServer: number;
  /** The same per account and server; 0: no limit. */
  maxConnectionsPerUser: number;
  /** How long a new connection waits for a free one when a server (or the account's share of it) is at its limit. */
  queueTimeoutMs: number;
}

/**
 * The server had no free connection within queue_timeout: the client gets
 * MySQL's own answer to a full server, ERR 1040 "Too many connections" (08004).
 */
export class PoolExhaustedError extends BackendError {
  constructor(endpoint: BackendEndpoint, user: string, userLimit: number | null, serverLimit: number, waitedMs: number) {
    // An account at its share gets MySQL's max_user_connections answer (1203), a full server "Too many connections" (1040).
    const [code, message] =
      userLimit !== null
        ? [1203, `User ${user} already has more than 'max_user_connections' active connections: wirecache's pool for '${endpoint.name}' allows ${userLimit} per account (waited ${waitedMs} ms)`]
        : [1040, `Too many connections: wirecache's pool for '${endpoint.name}' has all ${serverLimit} connections in use (waited ${waitedMs} ms)`];
    super(message, endpoint, { kind: 'err', code, sqlState: code === 1203 ? '42000' : '08004', message });
  }
}

/**
 * The pool's limits for one of `workers` pools: each worker has a pool of
 * its own, and their limits add up to the configured ones (each at least 1;
 * 0 stays "no limit").
 */
export function poolOptions(config: WirecacheConfig, workers = 1): LoginPoolOptions {
  const share = (limit: number) => (limit === 0 ? 0 : Math.max(1, Math.floor(limit / workers)));
  return {
    maxIdlePerServer: config.pool.maxIdle === 0 ? 0 : share(config.pool.maxIdle),
    idleTimeoutMs: config.pool.idleTimeoutSeconds * 1000,
    maxConnectionsPerServer: share(config.pool.maxConnections),
    maxConnectionsPerUser: share(config.pool.maxConnectionsPerUser),
    queueTimeoutMs: config.pool.queueTimeoutMs,
  };
}
