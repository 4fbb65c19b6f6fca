/**
 * The config file's zod schema (snake_case, exactly as written in YAML):
 * strict objects check the shape, types and ranges of every field (unknown
 * keys are errors, so typos cannot be silently ignored) and fill in defaults.
 * Error texts never echo values of fields that may be secret.
 */
import * as z from 'zod';
import { rulesListSchema } from './rules.js';
import { PASSWORD_HASH_RE } from './accounts.js';
import { describeType } from './yaml_locations.js';

// ---------------------------------------------------------------------------
// Defaults and limits

export const CONFIG_DEFAULTS = {
  listen: { host: '127.0.0.1', port: 6033 },
  admin: { host: '127.0.0.1', port: 9104 },
  backendPort: 3306,
  backendWeight: 1,
  limits: { maxClientConnections: 1000, maxPacketBytes: 67_108_864, maxUserConnections: 0, loginFailuresPerMinute: 10, loginBlockSeconds: 60 },
  timeouts: {
    backendConnectMs: 5000,
    clientHandshakeMs: 10_000,
    clientReadMs: 30_000,
    clientIdleSeconds: 28_800,
    shutdownGraceMs: 30_000,
  },
  logLevel: 'info',
  cache: {
    mode: 'hinted',
    defaultTtlSeconds: 60,
    maxResultBytes: 1_048_576,
    coalesceWaitMs: 2000,
    memoryBytes: 268_435_456,
    memcachedTimeoutMs: 20,
    memcachedItemLimitBytes: 1_048_576,
    memcachedMaxItemsPerEntry: 16,
    memcachedKeyPrefix: 'wc',
  },
  serverVersion: '5.5.5-10.11.0-MariaDB-wirecache',
  workers: 'auto' as number | 'auto',
  queryStats: { maxDigests: 1000 },
  classifierCacheBytes: 67_108_864,
  monitor: { intervalMs: 1000, checkTimeoutMs: 1000, failAfter: 3, recoverAfter: 3, heartbeatTable: 'wirecache.heartbeat' },
  routing: { maxReplicationLagSeconds: 10, consistency: 'session', consistencyWaitMs: 500 },
  binlog: { maxDelayMs: 5000, onUnavailable: 'fail_closed' },
  pool: { maxIdle: 100, idleTimeoutSeconds: 60, maxConnections: 0, maxConnectionsPerUser: 0, queueTimeoutMs: 5000, multiplexing: true },
  memcachedApi: {
    listen: { host: '127.0.0.1', port: 11211 },
    connections: 8,
    maxConnections: 4096,
    maxValueBytes: 1_048_576,
    cacheBytes: 67_108_864,
    expirySweepSeconds: 60,
    operationTimeoutMs: 5000,
  },
} as const;

/** Largest delay node's timers accept (ms); longer ones fire immediately. */
const MAX_TIMER_MS = 2_147_483_647;
const MAX_PACKET_MIN = 1024;
const MAX_PACKET_MAX = 1_073_741_824;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
const BACKEND_NAME_RE = /^[a-zA-Z0-9_-]+$/;

// ---------------------------------------------------------------------------
// Schema (snake_case, exactly as written in YAML)


/** Describes a value including it, for fields that are never secret. */
function describeValue(input: unknown): string {
  if (typeof input === 'number' || typeof input === 'boolean') return String(input);
  if (typeof input === 'string') {
    const shown = input.length > 40 ? `${input.slice(0, 40)}...` : input;
    return JSON.stringify(shown);
  }
  return describeType(input);
}

type IssueInput = { input?: unknown };

/** Error function: "is required" for a missing field, else the given text. */
function msg(text: string, showValue = true) {
  return (iss: IssueInput): string =>
    iss.input === undefined
      ? 'is required'
      : `${text}, got ${showValue ? describeValue(iss.input) : describeType(iss.input)}`;
}

function intIn(min: number, max: number) {
  const error = msg(`must be an integer between ${min} and ${max}`);
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

function positiveNumber() {
  const error = msg('must be a number greater than 0');
  return z.number({ error }).positive({ error }).max(1_000_000, { error: msg('must be at most 1000000') });
}

function hostField() {
  const error = msg('must be a non-empty host name or IP address');
  return z
    .string({ error })
    .min(1, { error })
    .max(255, { error })
    .regex(/^[^\s/]+$/, { error });
}

function endpoint(defaults: { host: string; port: number }) {
  return z
    .strictObject({
      host: hostField().default(defaults.host),
      port: intIn(0, 65535).default(defaults.port),
    }, { error: msg('must be a mapping with host and port', false) })
    .default({ ...defaults });
}

const backendSchema = z.strictObject(
  {
    name: z
      .string({ error: msg('must be a string', false) })
      .regex(BACKEND_NAME_RE, {
        error: msg('must be letters, digits, "_" or "-" only (at least one character)'),
      }),
    host: hostField(),
    port: intIn(1, 65535).default(CONFIG_DEFAULTS.backendPort),
    role: z.enum(['primary', 'replica'], { error: msg('must be "primary" or "replica"') }).optional(),
    weight: positiveNumber().default(CONFIG_DEFAULTS.backendWeight),
  },
  { error: msg('must be a mapping', false) },
);

const userSchema = z.strictObject(
  {
    name: z
      .string({ error: msg('must be a string', false) })
      .min(1, { error: msg('must not be empty') })
      .max(80, { error: msg('must be at most 80 characters') }),
    password: z
      .string({
        error: (iss) =>
          iss.input === null
            ? 'must be a string; write password: "" for an account without password'
            : `must be a string (quote it in YAML), got ${describeType(iss.input)}`,
      })
      .optional(),
    password_hash: z
      .string({ error: msg('must be "*" followed by 40 hex digits', false) })
      .regex(PASSWORD_HASH_RE, { error: 'must be "*" followed by 40 hex digits' })
      .optional(),
    require_tls: z.boolean({ error: msg('must be true or false') }).default(false),
  },
  { error: msg('must be a mapping', false) },
);


const memcachedServerSchema = z
  .string({ error: msg('must be "host:port"') })
  .regex(/^[^\s:/]+:\d{1,5}$/, { error: msg('must be "host:port"') });

const cacheSchema = z.strictObject(
  {
    mode: z.enum(['hinted', 'all'], { error: msg('must be "hinted" or "all"') }).default(CONFIG_DEFAULTS.cache.mode),
    default_ttl: intIn(1, 31_536_000).default(CONFIG_DEFAULTS.cache.defaultTtlSeconds),
    default_soft_ttl: intIn(0, 31_536_000).optional(),
    max_result_bytes: intIn(1, MAX_PACKET_MAX).default(CONFIG_DEFAULTS.cache.maxResultBytes),
    cache_results_with_warnings: z.boolean({ error: msg('must be true or false') }).default(false),
    allow_read_only_transactions: z.boolean({ error: msg('must be true or false') }).default(false),
    coalesce_wait_ms: intIn(0, 600_000).default(CONFIG_DEFAULTS.cache.coalesceWaitMs),
    storage: z
      .enum(['memory', 'memcached', 'tiered'], { error: msg('must be "memory", "memcached" or "tiered"') })
      .default('memory'),
    memory: z
      .strictObject(
        { max_bytes: intIn(1_048_576, Number.MAX_SAFE_INTEGER).default(CONFIG_DEFAULTS.cache.memoryBytes) },
        { error: msg('must be a mapping', false) },
      )
      .default({ max_bytes: CONFIG_DEFAULTS.cache.memoryBytes }),
    memcached: z
      .strictObject(
        {
          servers: z
            .array(memcachedServerSchema, { error: msg('must be a list of "host:port"', false) })
            .min(1, { error: 'must list at least one server' }),
          timeout_ms: intIn(1, 60_000).default(CONFIG_DEFAULTS.cache.memcachedTimeoutMs),
          item_limit_bytes: intIn(1024, 134_217_728).default(CONFIG_DEFAULTS.cache.memcachedItemLimitBytes),
          max_items_per_entry: intIn(1, 1024).default(CONFIG_DEFAULTS.cache.memcachedMaxItemsPerEntry),
          key_prefix: z
            .string({ error: msg('must be a string') })
            .regex(/^[A-Za-z0-9_.-]{1,32}$/, { error: msg('must be 1-32 letters, digits, "_", "." or "-"') })
            .default(CONFIG_DEFAULTS.cache.memcachedKeyPrefix),
        },
        { error: msg('must be a mapping', false) },
      )
      .optional(),
    rules_file: z.string({ error: msg('must be a path') }).min(1).optional(),
    rules: rulesListSchema.optional(),
  },
  { error: msg('must be a mapping', false) },
);

const monitorSchema = z.strictObject(
  {
    user: z.string({ error: msg('must be a string', false) }).min(1, { error: msg('must not be empty') }),
    password: z.string({ error: msg('must be a string (quote it in YAML); "" for none', false) }),
    interval_ms: intIn(100, 3_600_000).default(CONFIG_DEFAULTS.monitor.intervalMs),
    check_timeout_ms: intIn(50, 600_000).default(CONFIG_DEFAULTS.monitor.checkTimeoutMs),
    fail_after: intIn(1, 1000).default(CONFIG_DEFAULTS.monitor.failAfter),
    recover_after: intIn(1, 1000).default(CONFIG_DEFAULTS.monitor.recoverAfter),
    heartbeat_table: z
      .string({ error: msg('must be "schema.table", or null for none') })
      .regex(/^[A-Za-z0-9_$]{1,64}\.[A-Za-z0-9_$]{1,64}$/, { error: msg('must be "schema.table" (letters, digits, "_" or "$")') })
      .nullable()
      .default(CONFIG_DEFAULTS.monitor.heartbeatTable),
  },
  { error: msg('must be a mapping with user and password', false) },
);

const binlogSchema = z.strictObject(
  {
    enabled: z
      .union([z.literal('auto'), z.boolean()], { error: msg('must be auto, true or false') })
      .default('auto'),
    user: z.string({ error: msg('must be a string', false) }).min(1, { error: msg('must not be empty') }).optional(),
    password: z.string({ error: msg('must be a string (quote it in YAML); "" for none', false) }).optional(),
    server_id: intIn(1, 4_294_967_295).optional(),
    max_delay_ms: intIn(0, 3_600_000).default(CONFIG_DEFAULTS.binlog.maxDelayMs),
    on_unavailable: z
      .enum(['fail_closed', 'ttl_only'], { error: msg('must be "fail_closed" or "ttl_only"') })
      .default(CONFIG_DEFAULTS.binlog.onUnavailable),
  },
  { error: msg('must be a mapping', false) },
);

const routingSchema = z.strictObject(
  {
    max_replication_lag: z
      .number({ error: msg('must be a number of seconds') })
      .min(0, { error: msg('must be 0 or more') })
      .max(86_400, { error: msg('must be at most 86400') })
      .default(CONFIG_DEFAULTS.routing.maxReplicationLagSeconds),
    consistency: z
      .enum(['eventual', 'session'], { error: msg('must be "eventual" or "session"') })
      .default(CONFIG_DEFAULTS.routing.consistency),
    consistency_wait_ms: intIn(0, 60_000).default(CONFIG_DEFAULTS.routing.consistencyWaitMs),
  },
  { error: msg('must be a mapping', false) },
);

const pathField = () => z.string({ error: msg('must be a file path') }).min(1, { error: 'must be a file path' });

const tlsSchema = z.strictObject(
  {
    cert_file: pathField(),
    key_file: pathField(),
    require_tls: z.boolean({ error: msg('must be true or false') }).default(false),
  },
  { error: msg('must be a mapping with cert_file and key_file', false) },
);

const backendTlsSchema = z.strictObject(
  {
    ca_file: pathField().optional(),
    verify: z.boolean({ error: msg('must be true or false') }).default(true),
  },
  { error: msg('must be a mapping (backend_tls: {} turns TLS on with the system CAs)', false) },
);

const authSchema = z.strictObject(
  {
    default_plugin: z
      .enum(['mysql_native_password', 'caching_sha2_password'], { error: msg('must be "mysql_native_password" or "caching_sha2_password"') })
      .default('mysql_native_password'),
    rsa_private_key_file: pathField().optional(),
    rsa_public_key_file: pathField().optional(),
  },
  { error: msg('must be a mapping', false) },
);

const usersFromDatabaseSchema = z.strictObject(
  {
    refresh_seconds: intIn(1, 86_400).default(60),
    user: z.string({ error: msg('must be a string', false) }).min(1).optional(),
    password: z.string({ error: msg('must be a string (quote it in YAML)', false) }).optional(),
  },
  { error: msg('must be a mapping', false) },
);

const identifier = (what: string) =>
  z
    .string({ error: msg(`must be ${what}`) })
    .regex(/^[A-Za-z0-9_$]{1,64}$/, { error: msg(`must be ${what} (letters, digits, "_" or "$")`) });

const containerSchema = z.strictObject(
  {
    name: z
      .string({ error: msg('must be a string') })
      .regex(/^[A-Za-z0-9_-]{1,64}$/, { error: msg('must be 1-64 letters, digits, "_" or "-"') }),
    table: z
      .string({ error: msg('must be "schema.table"') })
      .regex(/^[A-Za-z0-9_$]{1,64}\.[A-Za-z0-9_$]{1,64}$/, { error: msg('must be "schema.table" (letters, digits, "_" or "$")') }),
    key_column: identifier('a column name'),
    value_columns: z
      .array(identifier('a column name'), { error: msg('must be a list of column names', false) })
      .min(1, { error: 'must list at least one column' }),
    separator: z.string({ error: msg('must be a string') }).min(1).max(8).default('|'),
    flags_column: identifier('a column name').optional(),
    cas_column: identifier('a column name').optional(),
    expiry_column: identifier('a column name').optional(),
  },
  { error: msg('must be a mapping with name, table, key_column and value_columns', false) },
);

const memcachedApiSchema = z.strictObject(
  {
    listen: endpoint(CONFIG_DEFAULTS.memcachedApi.listen),
    user: z.string({ error: msg('must be a string', false) }).min(1, { error: msg('must not be empty') }),
    password: z.string({ error: msg('must be a string (quote it in YAML); "" for none', false) }),
    connections: intIn(1, 1024).default(CONFIG_DEFAULTS.memcachedApi.connections),
    max_connections: intIn(1, 1_000_000).default(CONFIG_DEFAULTS.memcachedApi.maxConnections),
    read_from: z.enum(['primary', 'replicas'], { error: msg('must be "primary" or "replicas"') }).default('primary'),
    allow_flush: z.boolean({ error: msg('must be true or false') }).default(false),
    sasl: z.boolean({ error: msg('must be true or false') }).default(false),
    max_value_bytes: intIn(1, 67_108_864).default(CONFIG_DEFAULTS.memcachedApi.maxValueBytes),
    cache_bytes: intIn(0, Number.MAX_SAFE_INTEGER).default(CONFIG_DEFAULTS.memcachedApi.cacheBytes),
    expiry_sweep_seconds: intIn(0, 86_400).default(CONFIG_DEFAULTS.memcachedApi.expirySweepSeconds),
    operation_timeout_ms: intIn(1, 600_000).default(CONFIG_DEFAULTS.memcachedApi.operationTimeoutMs),
    default_container: z.string({ error: msg('must be a container name') }).optional(),
    containers: z.array(containerSchema, { error: msg('must be a list of containers', false) }).default([]),
    containers_table: z
      .string({ error: msg('must be "schema.table"') })
      .regex(/^[A-Za-z0-9_$]{1,64}\.[A-Za-z0-9_$]{1,64}$/, { error: msg('must be "schema.table"') })
      .optional(),
  },
  { error: msg('must be a mapping with user, password and containers', false) },
);

export const rootSchema = z.strictObject(
  {
    tls: tlsSchema.optional(),
    backend_tls: backendTlsSchema.optional(),
    session_tracking: z.boolean({ error: msg('must be true or false', false) }).default(true),
    auth: authSchema.default({ default_plugin: 'mysql_native_password' }),
    users_from_database: usersFromDatabaseSchema.optional(),
    monitor: monitorSchema.optional(),
    binlog: binlogSchema.optional(),
    routing: routingSchema.default({
      max_replication_lag: CONFIG_DEFAULTS.routing.maxReplicationLagSeconds,
      consistency: CONFIG_DEFAULTS.routing.consistency,
      consistency_wait_ms: CONFIG_DEFAULTS.routing.consistencyWaitMs,
    }),
    listen: endpoint(CONFIG_DEFAULTS.listen),
    admin: z
      .strictObject(
        {
          host: hostField().default(CONFIG_DEFAULTS.admin.host),
          port: intIn(0, 65535).default(CONFIG_DEFAULTS.admin.port),
          token: z
            .string({ error: msg('must be a string (quote it in YAML)', false) })
            .min(16, { error: 'must be at least 16 characters' })
            .regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII without spaces' })
            .optional(),
        },
        { error: msg('must be a mapping with host, port and token', false) },
      )
      .default({ ...CONFIG_DEFAULTS.admin }),
    query_stats: z
      .strictObject(
        { max_digests: intIn(0, 100_000).default(CONFIG_DEFAULTS.queryStats.maxDigests) },
        { error: msg('must be a mapping', false) },
      )
      .default({ max_digests: CONFIG_DEFAULTS.queryStats.maxDigests }),
    classifier_cache_bytes: intIn(0, 68_719_476_736).default(CONFIG_DEFAULTS.classifierCacheBytes),
    backends: z
      .array(backendSchema, { error: msg('must be a list of backends', false) })
      .min(1, { error: 'must list at least one backend' }),
    users: z
      .array(userSchema, { error: msg('must be a list of users', false) })
      .min(1, { error: 'must list at least one user' }),
    limits: z
      .strictObject(
        {
          max_client_connections: intIn(1, 1_000_000).default(CONFIG_DEFAULTS.limits.maxClientConnections),
          max_packet_bytes: intIn(MAX_PACKET_MIN, MAX_PACKET_MAX).default(CONFIG_DEFAULTS.limits.maxPacketBytes),
          max_user_connections: intIn(0, 1_000_000).default(CONFIG_DEFAULTS.limits.maxUserConnections),
          login_failures_per_minute: intIn(0, 1_000_000).default(CONFIG_DEFAULTS.limits.loginFailuresPerMinute),
          login_block_seconds: intIn(1, 86_400).default(CONFIG_DEFAULTS.limits.loginBlockSeconds),
        },
        { error: msg('must be a mapping', false) },
      )
      .default({
        max_client_connections: CONFIG_DEFAULTS.limits.maxClientConnections,
        max_packet_bytes: CONFIG_DEFAULTS.limits.maxPacketBytes,
        max_user_connections: CONFIG_DEFAULTS.limits.maxUserConnections,
        login_failures_per_minute: CONFIG_DEFAULTS.limits.loginFailuresPerMinute,
        login_block_seconds: CONFIG_DEFAULTS.limits.loginBlockSeconds,
      }),
    timeouts: z
      .strictObject(
        {
          backend_connect_ms: intIn(1, MAX_TIMER_MS).default(CONFIG_DEFAULTS.timeouts.backendConnectMs),
          client_handshake_ms: intIn(1, MAX_TIMER_MS).default(CONFIG_DEFAULTS.timeouts.clientHandshakeMs),
          client_read_ms: intIn(1, MAX_TIMER_MS).default(CONFIG_DEFAULTS.timeouts.clientReadMs),
          client_idle_seconds: intIn(0, Math.floor(MAX_TIMER_MS / 1000)).default(
            CONFIG_DEFAULTS.timeouts.clientIdleSeconds,
          ),
          shutdown_grace_ms: intIn(0, MAX_TIMER_MS).default(CONFIG_DEFAULTS.timeouts.shutdownGraceMs),
        },
        { error: msg('must be a mapping', false) },
      )
      .default({
        backend_connect_ms: CONFIG_DEFAULTS.timeouts.backendConnectMs,
        client_handshake_ms: CONFIG_DEFAULTS.timeouts.clientHandshakeMs,
        client_read_ms: CONFIG_DEFAULTS.timeouts.clientReadMs,
        client_idle_seconds: CONFIG_DEFAULTS.timeouts.clientIdleSeconds,
        shutdown_grace_ms: CONFIG_DEFAULTS.timeouts.shutdownGraceMs,
      }),
    cache: cacheSchema.optional(),
    memcached_api: memcachedApiSchema.optional(),
    pool: z
      .strictObject(
        {
          max_idle: intIn(0, 100_000).default(CONFIG_DEFAULTS.pool.maxIdle),
          idle_timeout_seconds: intIn(1, 86_400).default(CONFIG_DEFAULTS.pool.idleTimeoutSeconds),
          max_connections: intIn(0, 1_000_000).default(CONFIG_DEFAULTS.pool.maxConnections),
          max_connections_per_user: intIn(0, 1_000_000).default(CONFIG_DEFAULTS.pool.maxConnectionsPerUser),
          queue_timeout_ms: intIn(0, MAX_TIMER_MS).default(CONFIG_DEFAULTS.pool.queueTimeoutMs),
          multiplexing: z.boolean({ error: msg('must be true or false', false) }).default(CONFIG_DEFAULTS.pool.multiplexing),
        },
        { error: msg('must be a mapping', false) },
      )
      .default({
        max_idle: CONFIG_DEFAULTS.pool.maxIdle,
        idle_timeout_seconds: CONFIG_DEFAULTS.pool.idleTimeoutSeconds,
        max_connections: CONFIG_DEFAULTS.pool.maxConnections,
        max_connections_per_user: CONFIG_DEFAULTS.pool.maxConnectionsPerUser,
        queue_timeout_ms: CONFIG_DEFAULTS.pool.queueTimeoutMs,
        multiplexing: CONFIG_DEFAULTS.pool.multiplexing,
      }),
    log: z
      .strictObject(
        {
          level: z
            .enum(LOG_LEVELS, { error: msg(`must be one of ${LOG_LEVELS.join(', ')}`) })
            .default(CONFIG_DEFAULTS.logLevel),
        },
        { error: msg('must be a mapping', false) },
      )
      .default({ level: CONFIG_DEFAULTS.logLevel }),
    workers: z
      .union([z.literal('auto'), intIn(1, 256)], { error: msg('must be auto or an integer between 1 and 256') })
      .default(CONFIG_DEFAULTS.workers),
    server_version: z
      .string({ error: msg('must be a string (quote it in YAML)', false) })
      .min(1, { error: msg('must not be empty') })
      .max(250, { error: msg('must be at most 250 characters') })
      .regex(/^[^\0]*$/, { error: 'must not contain NUL characters' })
      .default(CONFIG_DEFAULTS.serverVersion),
  },
  { error: (iss) => `the config must be a YAML mapping of options, got ${describeType(iss.input)}` },
);

export type RawConfig = z.output<typeof rootSchema>;
