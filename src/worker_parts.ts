/** The main thread's parts that a worker thread's ProxyServer is given (see WorkerParts). */
import type { KeyObject } from 'node:crypto';
import type { CacheSharing } from './cache/query_cache.js';
import type { UserConfig } from './config/types.js';
import type { MonitorView } from './routing/mirrored_monitor.js';
import type { BinlogWaiter, RemoteSession } from './session/session_context.js';

/**
 * What a worker thread's proxy gets from the main thread in place of the
 * parts that run once per process (src/worker_thread.ts fills it in): the
 * monitor, the binlog reader, the view reader, accounts from the database,
 * login throttling and the connection limits live in the main thread.
 */
export interface WorkerParts {
  /** This worker's number (0-based) and how many there are: connection ids and pool limits are split by them. */
  index: number;
  count: number;
  /** A descriptor of the shared listening socket (src/workers/shared_listener.ts). */
  listenFd: number;
  /** The query cache's shared generation counters and memory tier (null without a cache). */
  cacheSharing: CacheSharing | null;
  /** The main thread's monitor as last published (null without a monitor section). */
  monitor: MonitorView | null;
  /** The main thread's binlog reader (null without one). */
  binlog: BinlogWaiter | null;
  /** binlog.on_unavailable: fail_closed: whether the main thread's reader holds the cache off now. */
  binlogUnhealthy: (() => boolean) | null;
  /** A session ran DDL: the main thread reads the views again (they come back through applySchema()). */
  schemaChanged(): Promise<void>;
  /** An account read from the database by the main thread. */
  databaseUser(name: string): UserConfig | undefined;
  /** caching_sha2_password's RSA pair, the same in every thread. */
  rsaKeys: { publicKeyPem: Buffer; privateKey: KeyObject } | null;
  /** A failed login, for the main thread's throttles (their blocks come back through logins.block()). */
  loginFailed(address: string, user: string): void;
  /** Client sessions open in every worker, one slot each (limits.max_client_connections). */
  sessionCounts: Int32Array;
  /** Each worker's next connection id (0: none handed out yet), kept across its restarts. */
  nextIds: Uint32Array;
  /** Reserves one of limits.max_user_connections for `user` across the workers; false when none is left. */
  reserveUserSession(user: string, limit: number): Promise<boolean>;
  /** A session of `user` logged in while there is no limit: counted, for a limit a reload may set. */
  countUserSession(user: string): void;
  /** A session of `user` that was reserved has ended. */
  releaseUserSession(user: string): void;
  /** A session of another worker named by KILL: what this worker's KILL needs of it, or null. */
  remoteSession(targetId: number): Promise<RemoteSession | null>;
  /** A session of another worker named by a KILL in a multi-statement text: its primary thread, or null. */
  remoteKillThread(targetId: number, scope: 'connection' | 'query', user: string | null): Promise<number | null>;
}
