import type { CacheRule } from './rules.js';

/** The validated, normalised configuration the rest of the proxy consumes. */
export interface BackendConfig {
  name: string;
  host: string;
  port: number;
  role: 'primary' | 'replica';
  weight: number;
}

/** Where to connect to one backend: what a session and the monitor need of a BackendConfig. */
export interface BackendEndpoint {
  name: string;
  host: string;
  port: number;
}

export interface UserConfig {
  name: string;
  /**
   * SHA1(SHA1(password)) as 20 bytes: what mysql.user stores after the "*".
   * Computed from `password` when a plain password was configured; empty for
   * an account with an empty password.
   */
  passwordDoubleSha1: Buffer;
  /** True when the account has no password at all. */
  emptyPassword: boolean;
  /**
   * SHA1(password) and SHA256(SHA256(password)), known only when the config
   * gives the plain password: caching_sha2_password's fast authentication
   * proves the SHA256 digest, and the backend login needs SHA1(password).
   * Null otherwise (learnt from the first full authentication instead).
   */
  passwordSha1: Buffer | null;
  sha256Stage2: Buffer | null;
  /** The user may log in only over TLS. */
  requireTls: boolean;
}

export interface TlsConfig {
  /** PEM certificate chain and private key files (absolute paths). */
  certFile: string;
  keyFile: string;
  /** Every client must use TLS (ERR 3159 otherwise). */
  requireTls: boolean;
}

export interface AuthConfig {
  /** The plugin the greeting proposes; clients asking for the other one are switched to it... see docs/security.md. */
  defaultPlugin: 'mysql_native_password' | 'caching_sha2_password';
  /** PEM RSA key pair for caching_sha2_password's password exchange without TLS; null: generated at start. */
  rsaPrivateKeyFile: string | null;
  rsaPublicKeyFile: string | null;
}

export interface UsersFromDatabaseConfig {
  /** Seconds between two reads of mysql.user on the primary. */
  refreshSeconds: number;
  /** Account that reads mysql.user (SELECT on mysql.user / mysql.global_priv). */
  user: string;
  password: string;
}

export interface WirecacheConfig {
  /** Absolute path the config was read from (for messages and reloads). */
  sourcePath: string;
  listen: { host: string; port: number };
  /** The HTTP admin API; `token` (a bearer token) is required when `host` is not a loopback address. */
  admin: { host: string; port: number; token: string | null };
  /** Client sessions' backend connections ask the server to report every change of session state. */
  sessionTracking: boolean;
  /** TLS from the proxy to the backends (client sessions' connections); null: plain. */
  backendTls: { caFile: string | null; verify: boolean } | null;
  /** TLS for clients; null: no TLS offered. */
  tls: TlsConfig | null;
  auth: AuthConfig;
  /** Accounts read from the primary's mysql.user besides the config's users; null: config users only. */
  usersFromDatabase: UsersFromDatabaseConfig | null;
  /** Per-digest statement statistics (GET /stats/queries); maxDigests 0 turns them off. */
  queryStats: { maxDigests: number };
  /** Bytes of remembered statement classifications (SELECT and SHOW texts), over all worker threads; 0: none. */
  classifierCacheBytes: number;
  backends: BackendConfig[];
  users: UserConfig[];
  limits: {
    maxClientConnections: number;
    /** Largest client packet (joined payload) accepted, like max_allowed_packet. */
    maxPacketBytes: number;
    /** Sessions one user may have at once; 0: no limit. */
    maxUserConnections: number;
    /** Failed logins from one client address within a minute before it is blocked; 0: never blocked. */
    loginFailuresPerMinute: number;
    /** How long a blocked address is refused. */
    loginBlockSeconds: number;
  };
  timeouts: {
    /** Connecting and logging in to a backend. */
    backendConnectMs: number;
    /** A client must finish its login within this time. */
    clientHandshakeMs: number;
    /**
     * A client packet that has started arriving must be complete within this
     * time (MySQL's net_read_timeout), so a truncated packet cannot hold a session.
     */
    clientReadMs: number;
    /** Close client sessions idle for longer than this; 0 disables. */
    clientIdleSeconds: number;
    /** On SIGTERM, how long queries in flight may run before sessions are closed. */
    shutdownGraceMs: number;
  };
  /** Health checks of every backend (replication, lag, read_only); null (no checks, no replicas used) without a monitor section. */
  monitor: MonitorConfig | null;
  /** Read/write split: where reads may go. */
  routing: RoutingConfig;
  /** The query cache; null when the config has no `cache` section. */
  cache: CacheConfig | null;
  /** Binlog-driven invalidation of the cache (a replication client on the primary). */
  binlog: BinlogConfig;
  /**
   * Backend connections kept after their client left, for the next client of
   * the same login (per server); maxIdle 0 keeps none. maxConnections (0: no
   * limit) bounds the client sessions' connections per server, and
   * maxConnectionsPerUser those of one account per server; a new one
   * waits up to queueTimeoutMs for room, then the client gets ERR 1040 (1203 for an account).
   */
  pool: {
    maxIdle: number;
    idleTimeoutSeconds: number;
    maxConnections: number;
    maxConnectionsPerUser: number;
    queueTimeoutMs: number;
    /** Between statements, a session's backend connections that hold nothing of it go back to the pool. */
    multiplexing: boolean;
  };
  /** The memcached-protocol front end over tables; null when the config has no `memcached_api` section. */
  memcachedApi: MemcachedApiConfig | null;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' };
  /** Version string announced to clients when no backend has been reached yet. */
  serverVersion: string;
  /** Event loops serving client connections: 1 is the main thread alone; above 1, worker threads (auto: the cores). */
  workers: number;
}

export interface CacheConfig {
  /** hinted: only qc=on hints and rules with cache: true; all: every cacheable SELECT unless qc=off or a rule says no. */
  mode: 'hinted' | 'all';
  defaultTtlSeconds: number;
  /** Seconds after which an entry is served stale while one reader refreshes it; null: no stale serving. */
  defaultSoftTtlSeconds: number | null;
  maxResultBytes: number;
  /** Store results whose terminator reports warnings. */
  cacheResultsWithWarnings: boolean;
  /** Serve and store inside START TRANSACTION READ ONLY. */
  allowReadOnlyTransactions: boolean;
  /** How long identical concurrent misses wait for the first one's result before going to the database themselves. */
  coalesceWaitMs: number;
  storage: 'memory' | 'memcached' | 'tiered';
  memory: { maxBytes: number };
  memcached: { servers: string[]; timeoutMs: number; itemLimitBytes: number; maxItemsPerEntry: number; keyPrefix: string };
  /** The rules in order; from `rules_file` and/or inline `rules`. */
  rules: CacheRule[];
  /** Absolute path of the rules file, if any (for reloads and messages). */
  rulesFile: string | null;
}

export interface BinlogConfig {
  /** auto: on when a cache is configured, an account is known and it may replicate (else off, with one warning); on; off. */
  enabled: 'auto' | 'on' | 'off';
  /** Account with REPLICATION SLAVE (binlog.user, else the monitor's); null: none known (auto then stays off). */
  user: string | null;
  password: string;
  /** server_id the reader registers with on the primary; must differ from every server's. Null: one drawn at random at each start. */
  serverId: number | null;
  /** A transaction applied later than this after its commit counts as the reader being behind. */
  maxDelayMs: number;
  /** While the reader is disconnected or behind: fail_closed (no hits, nothing stored) or ttl_only (serve as before). */
  onUnavailable: 'fail_closed' | 'ttl_only';
}

export interface MonitorConfig {
  /** Account the monitor logs in with (mysql2) on every backend: needs REPLICATION CLIENT/SLAVE MONITOR, and write access to the heartbeat table. */
  user: string;
  password: string;
  /** Time between two checks of a server. */
  intervalMs: number;
  /** A check (connect plus its queries) that takes longer than this is a failed check. */
  checkTimeoutMs: number;
  /** Consecutive bad checks before a replica leaves the read rotation. */
  failAfter: number;
  /** Consecutive good checks before it comes back. */
  recoverAfter: number;
  /** `schema.table` the monitor writes on the primary and reads on replicas to measure lag; null: Seconds_Behind_Master only. */
  heartbeatTable: string | null;
}

export interface RoutingConfig {
  /** A replica lagging more than this takes no reads (after `monitor.failAfter` checks). */
  maxReplicationLagSeconds: number;
  /** eventual: any healthy replica; session: a session's reads see its own writes. */
  consistency: 'eventual' | 'session';
  /** How long a read waits for a replica to catch up with the session's last write before going to the primary instead. */
  consistencyWaitMs: number;
}

/** One memcached container: a name mapped to a table's key, value, flags, cas and expiry columns (as the InnoDB memcached plugin's). */
export interface ContainerConfig {
  name: string;
  schema: string;
  table: string;
  keyColumn: string;
  /** A value is these columns joined with `separator`. */
  valueColumns: string[];
  separator: string;
  flagsColumn: string | null;
  casColumn: string | null;
  /** Unix time in seconds after which the row is a miss (0: never). */
  expiryColumn: string | null;
}

export interface MemcachedApiConfig {
  listen: { host: string; port: number };
  /** Account the table operations run as (on the primary and replicas). */
  user: string;
  password: string;
  /** Backend connections kept to the primary (and to each replica with readFrom replicas). */
  connections: number;
  maxConnections: number;
  /** primary: misses read the primary; replicas: a replica that has applied the connection's last write. */
  readFrom: 'primary' | 'replicas';
  /** flush_all deletes every row of every container table; refused unless true. */
  allowFlush: boolean;
  /** Clients must authenticate with SASL PLAIN as one of the proxy's users: binary clients only (the text protocol is refused). */
  sasl: boolean;
  maxValueBytes: number;
  /** The in-process tier of items read from the primary; 0: none. */
  cacheBytes: number;
  /** How often expired rows are deleted; 0: never (they are still misses). */
  expirySweepSeconds: number;
  /** A table operation that takes longer is answered with SERVER_ERROR. */
  operationTimeoutMs: number;
  containers: ContainerConfig[];
  /** Name of the container used for keys without `@@container.`; null: the first. */
  defaultContainer: string | null;
  /** An InnoDB memcached plugin's containers table to read containers from at start. */
  containersTable: string | null;
}
