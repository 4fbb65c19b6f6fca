/**
 * The memcached API's listener: containers, the pool of primary connections,
 * the cache tier, the background sweep of expired rows, and the sessions.
 */
import net from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { BackendLogin, BackendTls } from '../backend/backend_connection.js';
import { ConnectionPool, PoolError } from '../backend/connection_pool.js';
import { doubleSha1 } from '../config/accounts.js';
import type { BackendEndpoint, ContainerConfig, MemcachedApiConfig, UserConfig } from '../config/types.js';
import type { Logger } from '../logger.js';
import { ContainerSql } from './container_sql.js';
import { checkContainer, type LoadedContainer, readPluginContainers } from './containers.js';
import { absoluteExpiry, MemcachedError } from './commands.js';
import { ItemCache } from './item_cache.js';
import { MemcachedSession } from './memcached_session.js';
import { TableStore } from './table_store.js';

/** What the memcached API reports, without knowing Prometheus (src/metrics implements it). */
export interface MemcachedObserver {
  command(command: string, container: string, outcome: string, seconds: number): void;
  connection(delta: 1 | -1): void;
}

export interface MemcachedApiOptions {
  config: MemcachedApiConfig;
  primary: () => BackendEndpoint;
  backendTls: BackendTls | null;
  connectTimeoutMs: number;
  /** One of the proxy's users (for SASL). */
  findUser: (name: string) => UserConfig | undefined;
  /** Tells the query cache that a table changed. */
  tableWritten: (table: string) => void;
  /** True while the binlog reader is current: the cache tier may answer. */
  cacheUsable: () => boolean;
  /**
   * A healthy replica whose known GTID position includes `after` (null: any
   * healthy replica); null when there is none. Used with read_from: replicas.
   */
  replicaFor: (after: string | null) => BackendEndpoint | null;
  observer: MemcachedObserver;
  log: Logger;
  version: string;
}

/** CLIENT_LONG_PASSWORD | FOUND_ROWS is not set (affected rows must count changed rows) | PROTOCOL_41 | TRANSACTIONS | SECURE_CONNECTION | PLUGIN_AUTH. */
const LOGIN_CAPABILITIES = 0x1 | 0x200 | 0x2000 | 0x8000 | 0x80000;
const SWEEP_BATCH = 1000;
const MAX_TIMER_MS = 2_147_483_647;
const CONTAINER_RETRY_MS = 5000;

export class MemcachedApiServer {
  readonly cache: ItemCache;
  private readonly pool: ConnectionPool;
  /** Pools to replicas (read_from: replicas), by server name. */
  private readonly replicaPools = new Map<string, ConnectionPool>();
  private readonly store: TableStore;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private containers = new Map<string, LoadedContainer>();
  private defaultName: string | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  /** A delayed flush_all (a later one replaces it, as in memcached). */
  private flushTimer: NodeJS.Timeout | null = null;
  private sweeping = false;
  private readonly startedAt = Date.now();
  private totalConnections = 0;
  private readonly counts = { cmd_get: 0, get_hits: 0, get_misses: 0, cmd_set: 0, cmd_touch: 0, cmd_flush: 0 };

  constructor(private readonly options: MemcachedApiOptions) {
    const c = options.config;
    const login: BackendLogin = {
      user: c.user,
      passwordSha1: c.password === '' ? null : createHash('sha1').update(c.password).digest(),
      database: null,
      characterSet: 63,
      capabilities: LOGIN_CAPABILITIES,
      mariaDbCapabilities: 0,
      connectAttributes: null,
      tls: options.backendTls,
      trackSession: false,
    };
    const poolOptions = { maxConnections: c.connections, connectTimeoutMs: options.connectTimeoutMs, operationTimeoutMs: c.operationTimeoutMs };
    this.pool = new ConnectionPool(options.primary, login, poolOptions);
    this.cache = new ItemCache(c.cacheBytes);
    this.store = new TableStore({
      primary: (op) => this.pool.use(op),
      replica:
        c.readFrom === 'replicas'
          ? (after) => {
              const endpoint = options.replicaFor(after);
              if (!endpoint) return null;
              let pool = this.replicaPools.get(endpoint.name);
              if (!pool) {
                pool = new ConnectionPool(() => endpoint, login, poolOptions);
                this.replicaPools.set(endpoint.name, pool);
              }
              const chosen = pool;
              return (op) => chosen.use(op);
            }
          : undefined,
      cache: this.cache,
      cacheUsable: options.cacheUsable,
      tableWritten: options.tableWritten,
    });
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => options.log.error({ err }, 'memcached API listener error'));
  }

  /** The containers being served, by name. */
  get loaded(): ReadonlyMap<string, LoadedContainer> {
    return this.containers;
  }

  async start(): Promise<{ host: string; port: number }> {
    await this.loadContainers();
    const { host, port } = this.options.config.listen;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const sweep = this.options.config.expirySweepSeconds;
    if (sweep > 0) {
      this.sweepTimer = setInterval(() => void this.sweepExpired(), sweep * 1000);
      this.sweepTimer.unref();
    }
    const address = this.server.address() as net.AddressInfo;
    return { host: address.address, port: address.port };
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.pool.close();
    for (const p of this.replicaPools.values()) p.close();
  }

  /**
   * Reads the plugin's containers table (if configured) and checks every
   * container against the database. A database that cannot be reached now
   * leaves the config's containers unchecked and tries again later.
   */
  private async loadContainers(): Promise<void> {
    const config = this.options.config;
    let list: ContainerConfig[] = [...config.containers];
    try {
      const loaded = await this.pool.use(async (conn) => {
        if (config.containersTable) list = [...list, ...(await readPluginContainers(conn, config.containersTable))];
        const out = new Map<string, LoadedContainer>();
        for (const c of list) out.set(c.name, await checkContainer(conn, c));
        return out;
      });
      this.containers = loaded;
    } catch (err) {
      const message = (err as Error).message;
      // The database answered and the containers are wrong: that is a config error, not a wait.
      if (!(err instanceof PoolError)) throw new Error(`memcached_api: ${message}`);
      this.options.log.warn({ err: message, retry_ms: CONTAINER_RETRY_MS }, 'memcached API: cannot check the containers now; serving the configured ones unchecked');
      this.containers = new Map(config.containers.map((c) => [c.name, { sql: new ContainerSql(c), keyIndex: null, columnCount: null }]));
      this.retryTimer = setTimeout(() => void this.loadContainers().catch((e) => this.options.log.error({ err: (e as Error).message }, 'memcached API containers')), CONTAINER_RETRY_MS);
      this.retryTimer.unref();
    }
    const names = [...this.containers.keys()];
    this.defaultName = config.defaultContainer ?? (this.containers.has('default') ? 'default' : (names[0] ?? null));
  }

  private accept(socket: net.Socket): void {
    if (this.sockets.size >= this.options.config.maxConnections) {
      socket.end('SERVER_ERROR too many open connections\r\n');
      return;
    }
    this.sockets.add(socket);
    this.totalConnections++;
    this.options.observer.connection(1);
    socket.setNoDelay(true);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.options.observer.connection(-1);
    });
    const config = this.options.config;
    new MemcachedSession(socket, {
      store: this.store,
      container: (name) => this.containers.get(name)?.sql,
      defaultContainer: () => this.defaultContainer(),
      limits: { maxValueBytes: config.maxValueBytes, maxLineBytes: 64 * 1024 },
      allowFlush: config.allowFlush,
      flushAll: (delay) => this.flushAll(delay),
      saslRequired: config.sasl,
      authenticate: (user, password) => this.authenticate(user, password),
      stats: (group) => this.stats(group),
      version: this.options.version,
      observe: (command, container, outcome, seconds) => {
        this.count(command, outcome);
        this.options.observer.command(command, container, outcome, seconds);
      },
      onError: (err) => this.options.log.warn({ err: (err as Error).message }, 'memcached API session failed'),
    });
  }

  private defaultContainer(): ContainerSql {
    const c = this.defaultName === null ? undefined : this.containers.get(this.defaultName);
    if (!c) throw new MemcachedError('server', 'no container is configured');
    return c.sql;
  }

  /** SASL PLAIN against the proxy's users (the password as mysql.user would check it). */
  private authenticate(name: string, password: string): boolean {
    const user = this.options.findUser(name);
    if (!user) return false;
    if (user.emptyPassword) return password === '';
    const given = doubleSha1(password);
    return given.length === user.passwordDoubleSha1.length && timingSafeEqual(given, user.passwordDoubleSha1);
  }

  /** flush_all [delay]: the delay as memcached reads it (up to 30 days: seconds from now; beyond: a unix time). */
  private async flushAll(delay: number): Promise<void> {
    const run = async () => {
      for (const c of this.containers.values()) await this.store.flush(c.sql);
    };
    const nowSeconds = Math.floor(Date.now() / 1000);
    const at = delay <= 0 ? 0 : absoluteExpiry(delay, nowSeconds);
    if (at <= nowSeconds) return run();
    // Node's timers end at 2^31-1 ms (24.8 days): a later flush waits in steps.
    const step = () => {
      const left = at * 1000 - Date.now();
      if (left > 0) {
        this.flushTimer = setTimeout(step, Math.min(left, MAX_TIMER_MS));
        this.flushTimer.unref();
        return;
      }
      this.flushTimer = null;
      void run().catch((err) => this.options.log.warn({ err: (err as Error).message }, 'delayed flush_all failed'));
    };
    if (this.flushTimer) clearTimeout(this.flushTimer);
    step();
  }

  /** Deletes expired rows, a batch at a time, so that a table of sessions does not grow forever. */
  private async sweepExpired(): Promise<void> {
    // One sweep at a time: a slow one is not overtaken by the next.
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      await this.sweepOnce();
    } finally {
      this.sweeping = false;
    }
  }

  private async sweepOnce(): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    for (const c of this.containers.values()) {
      const statement = c.sql.deleteExpired(now, SWEEP_BATCH);
      if (!statement) continue;
      try {
        for (let round = 0; round < 100; round++) {
          const [r] = await this.pool.use((conn) => conn.queries([statement]));
          if (r.error) throw new Error(r.error.message);
          if ((r.ok?.affectedRows ?? 0) < SWEEP_BATCH) break;
        }
      } catch (err) {
        this.options.log.warn({ container: c.sql.container.name, err: (err as Error).message }, 'memcached API: sweeping expired rows failed; retrying at the next sweep');
      }
    }
  }

  private count(command: string, outcome: string): void {
    if (command === 'get' || command === 'gat') {
      this.counts.cmd_get++;
      if (outcome === 'miss') this.counts.get_misses++;
      else this.counts.get_hits++;
    } else if (command === 'touch') this.counts.cmd_touch++;
    else if (['set', 'add', 'replace', 'append', 'prepend', 'cas'].includes(command)) this.counts.cmd_set++;
  }

  private stats(group: string): [string, string][] | null {
    const c = this.options.config;
    if (group === 'settings') {
      return [
        ['maxconns', String(c.maxConnections)],
        ['tcpport', String(c.listen.port)],
        ['item_size_max', String(c.maxValueBytes)],
        ['cas_enabled', 'yes'],
        ['flush_enabled', c.allowFlush ? 'yes' : 'no'],
        ['sasl', c.sasl ? 'yes' : 'no'],
        ['read_from', c.readFrom],
      ];
    }
    if (group !== '') return null;
    const now = Date.now();
    return [
      ['pid', String(process.pid)],
      ['uptime', String(Math.floor((now - this.startedAt) / 1000))],
      ['time', String(Math.floor(now / 1000))],
      ['version', this.options.version],
      ['pointer_size', '64'],
      ['curr_connections', String(this.sockets.size)],
      ['total_connections', String(this.totalConnections)],
      ...Object.entries(this.counts).map(([k, v]) => [k, String(v)] as [string, string]),
      ['containers', String(this.containers.size)],
      ['cache_bytes', String(this.cache.bytes)],
      ['cache_items', String(this.cache.entries)],
      ['limit_maxbytes', String(this.options.config.cacheBytes)],
      ['backend_connections', String(this.pool.size)],
    ];
  }
}
