import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { BackendConnection } from './backend/backend_connection.js';
import { ClientSession } from './session/client_session.js';
import { primaryThreadForRemoteKill, sessionNamed } from './session/local_commands.js';
import type { BinlogWaiter, RemoteSession, ServerIdentity, SessionContext } from './session/session_context.js';
import type { BackendEndpoint, UserConfig, WirecacheConfig } from './config/types.js';
import type { Logger } from './logger.js';
import type { ProxyObserver } from './session/observer.js';
import { Capability, ErrorCode, MariaDbCapability } from './protocol/constants.js';
import { encodePacket } from './protocol/framing.js';
import { buildErr } from './protocol/generic_packets.js';
import type { HandshakeV10 } from './protocol/handshake.js';
import { createCacheSharing, QueryCache, type CacheSharing } from './cache/query_cache.js';
import { nullCacheObserver, type CacheObserver } from './cache/types.js';
import { ServerMonitor } from './routing/server_monitor.js';
import { nullMonitorObserver, type MonitorObserver } from './routing/server_status.js';
import { ServerSelector } from './routing/server_selector.js';
import type { MonitorView } from './routing/mirrored_monitor.js';
import { QueryStats } from './session/query_stats.js';
import { BinlogReader, BinlogUnavailableError } from './replication/binlog_reader.js';
import { SchemaReader } from './replication/schema_reader.js';
import { SchemaCatalog, type PrimarySchema } from './cache/schema_catalog.js';
import { nullBinlogObserver, type BinlogObserver } from './replication/observer.js';
import { LoginGuard } from './auth/login_guard.js';
import type { KeyObject } from 'node:crypto';
import { loadOrGenerateRsaKeyPair, Sha2CredentialCache } from './auth/caching_sha2_password.js';
import { UserDirectory } from './auth/user_directory.js';
import { findUser } from './config/lookup.js';
import { StatementMemo, type StatementMemoStats } from './sql/statement_memo.js';
import { LoginPool, type LoginPoolObserver } from './backend/login_pool.js';
import { poolOptions } from './backend/pool_limits.js';
import { appliedConfig, restartNeeded } from './config/reload_plan.js';
import type { WorkerParts } from './worker_parts.js';

/**
 * Capabilities the proxy implements. Compression, TLS, optional metadata,
 * query attributes and MariaDB's progress reports, COM_MULTI, bulk execute
 * and metadata caching are not: they are masked in the greeting so clients
 * never ask for them.
 */
export const SUPPORTED_CAPABILITIES =
  Capability.CLIENT_MYSQL |
  Capability.FOUND_ROWS |
  Capability.LONG_FLAG |
  Capability.CONNECT_WITH_DB |
  Capability.NO_SCHEMA |
  Capability.ODBC |
  Capability.LOCAL_FILES |
  Capability.IGNORE_SPACE |
  Capability.PROTOCOL_41 |
  Capability.INTERACTIVE |
  Capability.IGNORE_SIGPIPE |
  Capability.TRANSACTIONS |
  Capability.RESERVED |
  Capability.SECURE_CONNECTION |
  Capability.MULTI_STATEMENTS |
  Capability.MULTI_RESULTS |
  Capability.PS_MULTI_RESULTS |
  Capability.PLUGIN_AUTH |
  Capability.CONNECT_ATTRS |
  Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  Capability.CAN_HANDLE_EXPIRED_PASSWORDS |
  Capability.SESSION_TRACK |
  Capability.DEPRECATE_EOF;

export const SUPPORTED_MARIADB_CAPABILITIES = MariaDbCapability.EXTENDED_TYPE_INFO;

/**
 * Proxy connection ids start above any backend thread id a server will
 * reach, so a number given to KILL can only mean one of the two: the proxy
 * id from the handshake, or the backend thread id from CONNECTION_ID().
 */
export const PROXY_ID_BASE = 1_000_000_000;

/** What the proxy announces before it has seen any backend. */
function defaultIdentity(config: WirecacheConfig): ServerIdentity {
  return {
    serverVersion: config.serverVersion,
    capabilities: SUPPORTED_CAPABILITIES,
    mariaDbCapabilities: 0,
    characterSet: 45, // utf8mb4_general_ci
  };
}

export function identityFromGreeting(greeting: HandshakeV10): ServerIdentity {
  return {
    serverVersion: greeting.serverVersion,
    capabilities: (greeting.capabilities & SUPPORTED_CAPABILITIES) >>> 0,
    mariaDbCapabilities: greeting.mariaDbCapabilities & SUPPORTED_MARIADB_CAPABILITIES,
    characterSet: greeting.characterSet,
  };
}

/** How often the primary's views are read again (DDL seen through the proxy or in the binlog reads them at once). */
const VIEW_REFRESH_MS = 30_000;

/** Accepts client connections, enforces connection limits, and owns the sessions. */
export class ProxyServer {
  private readonly server: net.Server;
  readonly sessions = new Map<number, ClientSession>();
  private nextId = PROXY_ID_BASE + 1;
  private currentIdentity: ServerIdentity;
  private shuttingDown = false;
  private readonly ctx: SessionContext;
  private readonly idleSweep: NodeJS.Timeout;
  /** The query cache, when the config has one. */
  readonly cache: QueryCache | null;
  /** Health checks of the backends, when the config has a monitor section. */
  readonly monitor: ServerMonitor | null;
  readonly selector: ServerSelector;
  /** Per-digest statement statistics, unless query_stats.max_digests is 0. */
  readonly queryStats: QueryStats | null;
  /** Classifications of repeated statement texts: this thread's share of classifier_cache_bytes. */
  readonly statements: StatementMemo;
  /** Accounts read from the primary's mysql.user, when users_from_database is configured. */
  readonly databaseUsers: UserDirectory | null;
  /** Binlog-driven invalidation of the cache, when the config has a cache and binlog is not off. */
  readonly binlog: BinlogReader | null;
  /** Backend connections left by earlier clients, reset, for the next client of the same login. */
  readonly loginPool: LoginPool;
  /** The primary's views for the cache (reads of a view depend on its base tables); null without a cache or an account. */
  readonly views: SchemaReader | null;
  /** What the schema reader knows of the primary's views and stored functions; null without a reader. */
  private catalog: SchemaCatalog | null = null;
  /** caching_sha2_password's RSA pair: from the configured files or generated, on first use. */
  private rsaKeys: { publicKeyPem: Buffer; privateKey: KeyObject } | null = null;
  /** Failed logins per client address. */
  /** Failed logins per client address, and per account (a guesser spread over many addresses). */
  /** Failed logins, per client address and per account, and the blocks they start. */
  readonly logins: LoginGuard;
  /** Sessions holding one of limits.max_user_connections reserved with the main thread, and their account. */
  private readonly userReserved = new Map<number, string>();
  private readonly schemaListeners: ((schema: PrimarySchema) => void)[] = [];
  /** The primary's views and stored functions as last read (null: not read yet). */
  schema: PrimarySchema | null = null;
  /** Client bytes of sessions that have ended (live ones are read from their sockets). */
  private closedClientBytes = { received: 0, sent: 0 };

  constructor(
    private config: WirecacheConfig,
    private readonly logger: Logger,
    private readonly observer: ProxyObserver,
    cacheObserver: CacheObserver = nullCacheObserver,
    monitorObserver: MonitorObserver = nullMonitorObserver,
    binlogObserver: BinlogObserver = nullBinlogObserver,
    poolObserver: LoginPoolObserver = { loginSaved: () => {}, released: () => {}, waited: () => {}, resetOutcome: () => {} },
    /** Set in a worker thread: the parts the main thread runs for it. */
    private readonly worker: WorkerParts | null = null,
  ) {
    this.loginPool = new LoginPool(poolOptions(config, worker?.count), poolObserver);
    // With worker threads, the main thread makes the shared memory that every thread's cache uses.
    const cacheSharing = !config.cache ? null : worker?.cacheSharing ? { ...worker.cacheSharing, thread: worker.index } : config.workers > 1 ? createCacheSharing(config.cache, config.workers) : null;
    this.cache = config.cache ? new QueryCache(config.cache, cacheObserver, logger.child({ component: 'cache' }), cacheSharing) : null;
    this.monitor =
      config.monitor && !worker
        ? new ServerMonitor(config.backends, config.monitor, config.routing.maxReplicationLagSeconds, this.poolFollowing(monitorObserver), logger.child({ component: 'monitor' }))
        : null;
    this.selector = new ServerSelector(config.backends, worker ? worker.monitor : this.monitor);
    this.views = worker ? null : this.createSchemaReader();
    if (worker && (this.cache || config.monitor)) this.catalog = this.cache?.views ?? new SchemaCatalog();
    this.binlog = worker ? null : this.createBinlogReader(binlogObserver);
    if (worker?.binlogUnhealthy && this.cache) this.cache.suspendWhen(worker.binlogUnhealthy);
    this.queryStats = config.queryStats.maxDigests > 0 ? new QueryStats(config.queryStats.maxDigests) : null;
    // With worker threads the main thread serves no client: the workers share the bytes.
    this.statements = new StatementMemo(worker ? Math.floor(config.classifierCacheBytes / worker.count) : config.workers > 1 ? 0 : config.classifierCacheBytes);
    this.databaseUsers =
      config.usersFromDatabase && !worker ? new UserDirectory(config.usersFromDatabase, () => this.primaryEndpoint(), logger.child({ component: 'users' })) : null;
    // With caching_sha2_password as the default, a bad key pair is a start-up error, not a failed login later.
    if (worker) this.rsaKeys = worker.rsaKeys;
    else if (config.auth.defaultPlugin === 'caching_sha2_password') {
      this.rsaKeys = loadOrGenerateRsaKeyPair({ privateKeyFile: config.auth.rsaPrivateKeyFile, publicKeyFile: config.auth.rsaPublicKeyFile });
    }
    // A restarted worker goes on from its predecessor's next id: a KILL of a dead session's id must not hit a new one.
    if (worker) this.nextId = Atomics.load(worker.nextIds, worker.index) || PROXY_ID_BASE + 1 + worker.index;
    this.logins = new LoginGuard(config.limits.loginFailuresPerMinute, config.limits.loginBlockSeconds * 1000);
    this.currentIdentity = defaultIdentity(config);
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => this.logger.error({ err }, 'listener error'));
    this.idleSweep = setInterval(() => this.closeIdleSessions(), 1000);
    this.idleSweep.unref();
    this.ctx = {
      config: () => this.config,
      cache: this.cache,
      binlog: worker ? worker.binlog : this.binlog,
      schemaChanged: () => (worker ? worker.schemaChanged() : this.views?.refresh()),
      catalog: this.catalog,
      logger,
      observer,
      identity: () => this.currentIdentity,
      selector: this.selector,
      queryStats: this.queryStats,
      statements: this.statements,
      backendTls: config.backendTls ? { ca: config.backendTls.caFile ? readFileSync(config.backendTls.caFile) : null, verify: config.backendTls.verify } : null,
      tls: config.tls ? tls.createSecureContext({ cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) }) : null,
      loginFailed: (address, user) => (worker ? worker.loginFailed(address, user) : this.loginFailed(address, user)),
      accountBlockedFor: (user) => this.logins.accountBlockedFor(user),
      sha2Credentials: new Sha2CredentialCache(),
      rsaKeyPair: () =>
        (this.rsaKeys ??= loadOrGenerateRsaKeyPair({ privateKeyFile: this.config.auth.rsaPrivateKeyFile, publicKeyFile: this.config.auth.rsaPublicKeyFile })),
      findUser: (name) => findUser(this.config, name) ?? (worker ? worker.databaseUser(name) : this.databaseUsers?.find(name)),
      admitUser: (user, session, limit) => {
        if (worker && limit === 0) {
          worker.countUserSession(user);
          this.userReserved.set(session.id, user);
          return true;
        }
        if (worker) {
          return worker.reserveUserSession(user, limit).then((ok) => {
            // A session that ended while the main thread answered gives its place back at once.
            if (ok && this.sessions.get(session.id) === session) this.userReserved.set(session.id, user);
            else if (ok) worker.releaseUserSession(user);
            return ok;
          });
        }
        if (limit === 0) return true;
        let n = 0;
        for (const other of this.sessions.values()) if (other !== session && other.user?.name === user) n++;
        return n < limit;
      },
      accountChanged: (session, user) => {
        const before = this.userReserved.get(session.id);
        if (!worker || before === undefined || before === user) return;
        // As one thread counts the live sessions of each account: the session counts under its new account.
        worker.releaseUserSession(before);
        worker.countUserSession(user);
        this.userReserved.set(session.id, user);
      },
      remoteSession: worker ? (id) => (this.ownerOf(id) === worker.index ? Promise.resolve(null) : worker.remoteSession(id)) : null,
      remoteKillThread: worker ? (id, scope, user) => (this.ownerOf(id) === worker.index ? Promise.resolve(null) : worker.remoteKillThread(id, scope, user)) : null,
      sessions: this.sessions,
      loginPool: this.loginPool,
      learnedBackend: (conn: BackendConnection) => {
        this.currentIdentity = identityFromGreeting(conn.greeting);
      },
      removed: (session) => {
        if (this.sessions.get(session.id) === session) {
          this.sessions.delete(session.id);
          if (worker) {
            Atomics.sub(worker.sessionCounts, worker.index, 1);
            const user = this.userReserved.get(session.id);
            if (user !== undefined) {
              this.userReserved.delete(session.id);
              worker.releaseUserSession(user);
            }
          }
          const bytes = session.clientBytes;
          this.closedClientBytes.received += bytes.received;
          this.closedClientBytes.sent += bytes.sent;
          this.observer.clientDisconnected();
        }
      },
    };
  }

  /** The monitor's reports, also closing the kept connections of a server it finds down (they would fail their next client). */
  private poolFollowing(observer: MonitorObserver): MonitorObserver {
    return {
      checkCompleted: (server, ok, seconds) => observer.checkCompleted(server, ok, seconds),
      primaryChanged: (from, to) => observer.primaryChanged(from, to),
      stateChanged: (server, from, to) => {
        observer.stateChanged(server, from, to);
        if (to === 'down') this.loginPool.dropServer(server);
      },
    };
  }

  private createBinlogReader(observer: BinlogObserver): BinlogReader | null {
    const cache = this.cache;
    const binlog = this.config.binlog;
    if (!cache || binlog.enabled === 'off') return null;
    if (binlog.user === null) {
      this.logger.info('binlog-driven invalidation is off: no account (binlog.user, or a monitor section)');
      return null;
    }
    const log = this.logger.child({ component: 'binlog' });
    const reader = new BinlogReader({
      user: binlog.user,
      password: binlog.password,
      // Drawn at random unless configured: two proxies in front of one primary must not share an id.
      serverId: binlog.serverId ?? randomInt(2_000_000_000, 4_000_000_000),
      maxDelayMs: binlog.maxDelayMs,
      connectTimeoutMs: this.config.timeouts.backendConnectMs,
      primary: () => this.selector.primary().endpoint,
      invalidate: (tables) => cache.invalidate(tables, 'binlog'),
      onDdl: () => void this.views?.refresh(),
      observer,
      log,
      auto: binlog.enabled === 'auto',
    });
    if (binlog.onUnavailable === 'fail_closed') cache.suspendWhen(() => reader.unhealthy);
    return reader;
  }

  /** Reads the primary's views with the monitor's account (else the binlog's): it needs SHOW VIEW to see definitions. */
  /** The cache's catalog, or one of its own for the split alone (stored functions keep reads on the primary). */
  private createSchemaReader(): SchemaReader | null {
    const cache = this.cache;
    const account = this.config.monitor ?? (this.config.binlog.user ? { user: this.config.binlog.user, password: this.config.binlog.password } : null);
    if (!account || (!cache && !this.config.monitor)) return null;
    const catalog = cache?.views ?? new SchemaCatalog();
    this.catalog = catalog;
    return new SchemaReader({
      user: account.user,
      password: account.password,
      primary: () => this.selector.primary().endpoint,
      apply: (views, functions, tables) => {
        this.schema = { views: [...views], functions: [...functions], tables: [...tables] };
        for (const listener of this.schemaListeners) listener(this.schema);
        catalog.replaceTables(tables);
        if (cache) return cache.replaceSchema(views, functions);
        catalog.replaceFunctions(functions);
        catalog.replace(views);
      },
      intervalMs: VIEW_REFRESH_MS,
      connectTimeoutMs: this.config.timeouts.backendConnectMs,
      log: this.logger.child({ component: 'views' }),
    });
  }

  /** Starts the binlog reader; with `auto`, a server or account that cannot replicate leaves it off with one warning. */
  private async startBinlog(): Promise<void> {
    if (!this.binlog) return;
    try {
      await this.binlog.start();
    } catch (err) {
      if (!(err instanceof BinlogUnavailableError)) throw err;
      this.logger.warn(
        { component: 'binlog', reason: err.message },
        'binlog-driven invalidation is off (binlog.enabled: auto): the cache invalidates only for writes through this proxy, and by TTL',
      );
    }
  }

  /** The primary as the monitor sees it now (the configured one without a monitor). */
  primaryEndpoint(): BackendEndpoint {
    // Backends are restart-only: the selector's configured primary is the config's.
    return this.selector.primary().endpoint ?? this.selector.configuredPrimary;
  }

  /** Bytes received from and sent to clients since start (read at scrape time, nothing counted per packet). */
  clientTraffic(): { received: number; sent: number } {
    let { received, sent } = this.closedClientBytes;
    for (const session of this.sessions.values()) {
      const bytes = session.clientBytes;
      received += bytes.received;
      sent += bytes.sent;
    }
    return { received, sent };
  }

  /** The remembered classifications: lookups, entries, bytes. */
  statementMemo(): StatementMemoStats {
    return this.statements.stats;
  }

  /** Open backend connections by server, and how many of them run no command now. */
  backendConnections(): Map<string, { open: number; idle: number }> {
    const out = new Map<string, { open: number; idle: number }>();
    for (const b of this.config.backends) out.set(b.name, { open: 0, idle: 0 });
    for (const session of this.sessions.values()) {
      session.forEachBackend((server, active) => {
        const counts = out.get(server) ?? { open: 0, idle: 0 };
        counts.open++;
        if (!active) counts.idle++;
        out.set(server, counts);
      });
    }
    return out;
  }

  /**
   * Applies a reloaded config to the running proxy: users, limits, timeouts,
   * routing, log level and cache rules take effect for the next statement or
   * login; no session is dropped. Returns the options that changed but only
   * apply after a restart (listeners, backends, monitor, cache storage).
   */
  reload(next: WirecacheConfig): string[] {
    const old = this.config;
    this.loginPool.reconfigure(poolOptions(next, this.worker?.count));
    const restart = restartNeeded(old, next);
    let cache = old.cache;
    if ((old.cache === null) !== (next.cache === null)) restart.push('cache (turning it on or off)');
    else if (this.cache && next.cache) {
      restart.push(...this.cache.reconfigure(next.cache));
      cache = this.cache.config;
    }
    this.config = appliedConfig(old, next, cache);
    this.logger.level = next.log.level;
    this.logins.configure(next.limits.loginFailuresPerMinute, next.limits.loginBlockSeconds * 1000);
    return restart;
  }

  /** The config as applied (restart-only options as started). */
  get currentConfig(): WirecacheConfig {
    return this.config;
  }

  get identity(): ServerIdentity {
    return this.currentIdentity;
  }

  /** Learns the primary's version and capabilities (best effort), then listens. */
  async start(): Promise<net.AddressInfo> {
    if (this.worker) return this.listen({ fd: this.worker.listenFd });
    // One round of checks first: the first client's reads already know which replicas are usable.
    if (this.monitor) await this.monitor.start();
    // The first read of mysql.user is awaited (bounded): logins right after start already see those accounts.
    if (this.databaseUsers) await this.databaseUsers.start();
    await this.startBinlog();
    await this.views?.start();
    await this.learnIdentity();
    if (this.listening === false) return { address: this.config.listen.host, port: this.config.listen.port, family: '' };
    return this.listen({ port: this.config.listen.port, host: this.config.listen.host });
  }

  /** Listens for clients: on the configured address, or (in a worker thread) on the shared socket's descriptor. */
  private async listen(where: net.ListenOptions | { fd: number }): Promise<net.AddressInfo> {
    if (this.worker) await this.learnIdentity();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(where as net.ListenOptions, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as net.AddressInfo;
    if (!this.worker) this.logger.info({ host: address.address, port: address.port }, 'listening for MySQL clients');
    return address;
  }

  /** The primary's version and capabilities, for the greeting (best effort). */
  private async learnIdentity(): Promise<void> {
    const primary = this.primaryEndpoint();
    try {
      this.currentIdentity = identityFromGreeting(await BackendConnection.probe(primary, this.config.timeouts.backendConnectMs));
    } catch (err) {
      this.logger.warn(
        { backend: primary.name, err: (err as Error).message },
        'primary not reachable at start; announcing the configured server_version until it is',
      );
    }
  }

  /**
   * With worker threads the main thread's proxy runs the monitor, the binlog
   * reader and the rest, and listens for no client: start() then only starts those.
   */
  listening = true;

  /** A worker thread: the primary's views, stored functions and base tables as the main thread read them. */
  applySchema({ views, functions, tables }: PrimarySchema): void {
    this.catalog?.replaceTables(tables);
    if (this.cache) void this.cache.replaceSchema(views, functions);
    else if (this.catalog) {
      this.catalog.replaceFunctions(functions);
      this.catalog.replace(views);
    }
  }

  address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  private accept(socket: net.Socket): void {
    socket.on('error', () => {});
    if (this.shuttingDown) {
      this.observer.clientRefused('shutting_down');
      socket.end(encodePacket(buildErr(ErrorCode.SERVER_SHUTDOWN, 'Server shutdown in progress'), 0));
      return;
    }
    const address = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const blockedMs = this.logins.addressBlockedFor(address);
    if (blockedMs > 0) {
      this.observer.clientRefused('login_throttled');
      const message = `Host '${address}' is blocked because of many connection errors; wirecache unblocks it in ${Math.ceil(blockedMs / 1000)} s`;
      socket.end(encodePacket(buildErr(ErrorCode.HOST_IS_BLOCKED, message), 0));
      return;
    }
    // With workers the place is taken first, then the total checked: two threads cannot both take the last one.
    if (this.worker) Atomics.add(this.worker.sessionCounts, this.worker.index, 1);
    if (this.openSessions() > this.config.limits.maxClientConnections - (this.worker ? 0 : 1)) {
      if (this.worker) Atomics.sub(this.worker.sessionCounts, this.worker.index, 1);
      this.observer.clientRefused('max_connections');
      socket.end(encodePacket(buildErr(ErrorCode.CON_COUNT, 'Too many connections'), 0));
      return;
    }
    const id = this.allocateId();
    const session = new ClientSession(id, socket, this.ctx);
    this.sessions.set(id, session);
    this.observer.clientConnected();
    session.start();
  }

  private closeIdleSessions(): void {
    const idleSeconds = this.config.timeouts.clientIdleSeconds;
    if (idleSeconds <= 0) return;
    const now = performance.now();
    for (const session of this.sessions.values()) session.closeIfIdle(now, idleSeconds * 1000);
  }

  /** Client sessions open in this proxy, or in every worker thread. */
  private openSessions(): number {
    if (!this.worker) return this.sessions.size;
    let n = 0;
    for (let i = 0; i < this.worker.sessionCounts.length; i++) n += Atomics.load(this.worker.sessionCounts, i);
    return n;
  }

  /**
   * Connection ids are what clients see (and KILL); they stay unique among
   * live sessions. Worker k of n hands out the ids equal to k modulo n
   * (counted from PROXY_ID_BASE + 1), so an id names its worker.
   */
  private allocateId(): number {
    const stride = this.worker?.count ?? 1;
    const first = PROXY_ID_BASE + 1 + (this.worker?.index ?? 0);
    for (;;) {
      const id = this.nextId;
      this.nextId = this.nextId + stride > 0xffffffff ? first : this.nextId + stride;
      if (this.worker) Atomics.store(this.worker.nextIds, this.worker.index, this.nextId);
      if (!this.sessions.has(id)) return id;
    }
  }

  /** The worker whose session holds proxy connection id `id` (0 without workers; -1 for a backend thread id). */
  ownerOf(id: number, workers = this.worker?.count ?? 1): number {
    if (id <= PROXY_ID_BASE) return -1;
    return (id - PROXY_ID_BASE - 1) % workers;
  }

  /** A session named by another worker thread's KILL (by proxy connection id or backend thread id), or null. */
  sessionFor(targetId: number): { id: number; user: string | null; backendThreads: { endpoint: BackendEndpoint; threadId: number }[] } | null {
    const session = sessionNamed(this.sessions, targetId);
    if (!session) return null;
    // Asked for a KILL: see ClientSession.markKillTarget.
    session.markKillTarget();
    return { id: session.id, user: session.user?.name ?? null, backendThreads: session.backendThreads.map(({ endpoint, threadId }) => ({ endpoint, threadId })) };
  }

  /** Another worker thread's multi-statement KILL names a session here (by proxy id or backend thread id): its primary thread, or null. */
  killThreadFor(targetId: number, scope: 'connection' | 'query', user: string | null): Promise<number | null> {
    const session = sessionNamed(this.sessions, targetId);
    return session ? primaryThreadForRemoteKill(session, user, scope) : Promise.resolve(null);
  }

  /** Another worker thread's KILL acts on session `id` of this one. */
  killedElsewhere(id: number, action: { kind: 'kill_pending'; on: boolean } | { kind: 'killed'; idle: boolean; reason: string }): void {
    const session = this.sessions.get(id);
    if (!session) return;
    if (action.kind === 'kill_pending') session.killPending = action.on;
    else session.killedBy(action.idle, action.reason);
  }

  /** Hears every read of the primary's views and stored functions: worker threads get them too. */
  onSchema(listener: (schema: PrimarySchema) => void): void {
    this.schemaListeners.push(listener);
  }

  /** caching_sha2_password's RSA pair (made now if it was not): the same in every worker thread. */
  rsaKeyPair(): { publicKeyPem: Buffer; privateKey: KeyObject } {
    return this.ctx.rsaKeyPair();
  }

  /** A failed login (in this proxy, or reported by a worker thread): counted, and a block it starts is logged. */
  loginFailed(address: string, user: string): void {
    const limits = { failures: this.config.limits.loginFailuresPerMinute, block_seconds: this.config.limits.loginBlockSeconds };
    for (const block of this.logins.failed(address, user)) {
      if (block.kind === 'address') {
        this.observer.loginBlocked();
        this.logger.warn({ client: address, ...limits }, 'client address blocked after too many failed logins');
      } else {
        this.observer.accountBlocked();
        this.logger.warn({ user, client: address, ...limits }, 'account blocked after too many failed logins to it');
      }
    }
  }

  /**
   * Graceful stop: no new connections; idle sessions close now, sessions with
   * a command in flight close when it completes; after `graceMs` the rest are cut.
   */
  async shutdown(graceMs = this.config.timeouts.shutdownGraceMs): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    clearInterval(this.idleSweep);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of [...this.sessions.values()]) s.closeAfterCurrentCommand('proxy shutting down');
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    for (const s of [...this.sessions.values()]) s.terminate('shutdown grace period over');
    await closed;
    this.loginPool.close();
    this.binlog?.stop();
    this.views?.stop();
    this.cache?.close();
    await this.monitor?.stop();
    await this.databaseUsers?.stop();
  }
}
