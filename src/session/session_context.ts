/**
 * What a client session needs from the proxy around it (the listener in
 * src/proxy_server.ts provides it), and the server identity it announces.
 */
import type tls from 'node:tls';
import type { KeyObject } from 'node:crypto';
import type { Sha2CredentialCache } from '../auth/caching_sha2_password.js';
import type { UserConfig, WirecacheConfig } from '../config/types.js';
import type { Logger } from '../logger.js';
import type { QueryCache } from '../cache/query_cache.js';
import type { SchemaCatalog } from '../cache/schema_catalog.js';
import type { ServerSelector } from '../routing/server_selector.js';
import type { LoginPool } from '../backend/login_pool.js';
import type { BackendConnection, BackendTls } from '../backend/backend_connection.js';
import type { BackendEndpoint } from '../config/types.js';
import type { ClientSession } from './client_session.js';
import type { ProxyObserver } from './observer.js';
import type { QueryStats } from './query_stats.js';
import type { StatementMemo } from '../sql/statement_memo.js';

/** What the proxy announces to clients: mirrors the primary's greeting, minus what the proxy does not implement. */
export interface ServerIdentity {
  serverVersion: string;
  capabilities: number;
  mariaDbCapabilities: number;
  characterSet: number;
}

/** The binlog reader, as a session sees it: whether it is current, and a wait for a write's GTID. */
export interface BinlogWaiter {
  readonly current: boolean;
  /** Resolves true once the reader has applied `gtid` (and bumped what it wrote), false after `timeoutMs`. */
  waitFor(gtid: string, timeoutMs: number): Promise<boolean>;
}

/** A session of another worker thread, as a KILL sees it. */
export interface RemoteSession {
  /** The account it is logged in as (null: not yet). */
  user: string | null;
  backendThreads: { endpoint: BackendEndpoint; threadId: number }[];
  /** A KILL of its connection is under way (true), or failed (false); resolved once the session knows. */
  killPending(on: boolean): void | Promise<void>;
  /** Its connection was killed: with no backend thread (idle) it ends now, else once the server has closed it. */
  killed(idle: boolean, reason: string): void;
}

/** Everything a session needs from the proxy around it. */
export interface SessionContext {
  config(): WirecacheConfig;
  /** The query cache, or null when caching is off. */
  cache: QueryCache | null;
  /** The binlog reader that invalidates the cache, or null when there is none. */
  binlog: BinlogWaiter | null;
  /** The primary's views and stored functions, when known (with a cache and an account to read them). */
  catalog: SchemaCatalog | null;
  /** A session ran DDL (CREATE, ALTER, DROP, RENAME): the views may have changed. Resolves once they are read again. */
  schemaChanged(): Promise<void> | void;
  logger: Logger;
  observer: ProxyObserver;
  identity(): ServerIdentity;
  /** Where each statement may go: the primary, replicas in rotation, servers by name. */
  selector: ServerSelector;
  /** Per-digest statement statistics, or null when turned off. */
  queryStats: QueryStats | null;
  /** Classifies statement texts, remembering those that repeat. */
  statements: StatementMemo;
  /** The TLS context offered to clients, or null when no certificate is configured. */
  tls: tls.SecureContext | null;
  /** TLS to the backends, or null. */
  backendTls: BackendTls | null;
  /** caching_sha2_password: digests learnt from full authentications, and the RSA key pair (made on first use). */
  sha2Credentials: Sha2CredentialCache;
  rsaKeyPair(): { publicKeyPem: Buffer; privateKey: KeyObject };
  /** A login (or COM_CHANGE_USER) from this client address to this account failed: counted for throttling, per address and per account. */
  loginFailed(address: string, user: string): void;
  /** Milliseconds the account stays blocked after too many failed logins, or 0. */
  accountBlockedFor(user: string): number;
  /** The account a client logs in as: the config's users first, then accounts read from the database. */
  findUser(name: string): UserConfig | undefined;
  sessions: ReadonlyMap<number, ClientSession>;
  /**
   * limits.max_user_connections: whether account `user` may have one more
   * session, `session` (asked of the main thread when there are worker threads).
   */
  admitUser(user: string, session: ClientSession, limit: number): boolean | Promise<boolean>;
  /** COM_CHANGE_USER made `session` a session of account `user` (with worker threads, counted under it from now on). */
  accountChanged(session: ClientSession, user: string): void;
  /** With worker threads: a session of another worker, by proxy connection id or backend thread id (null: none). */
  remoteSession: ((id: number) => Promise<RemoteSession | null>) | null;
  /** With worker threads: a multi-statement KILL's target in another worker, by id: its primary thread (null: none of `user`'s). */
  remoteKillThread: ((id: number, scope: 'connection' | 'query', user: string | null) => Promise<number | null>) | null;
  /** Backend connections: those kept from earlier clients, and the per-server limit on new ones. */
  loginPool: LoginPool;
  /** Called when a backend greeting is seen, to keep the announced identity current. */
  learnedBackend(conn: BackendConnection): void;
  removed(session: ClientSession): void;
}
