/**
 * Configuration loader: YAML text -> validated, normalised WirecacheConfig.
 *
 * Every problem is reported as a ConfigError pointing at the file, line and
 * column of the offending YAML node and naming the field by its dotted path
 * (`users[1].password_hash`), so an operator can go straight to the mistake.
 *
 * Validation happens in two steps:
 *  1. a zod schema of strict objects checks the shape, types and ranges of
 *     every field (unknown keys are errors, so typos cannot be silently
 *     ignored) and fills in defaults;
 *  2. cross-field rules zod cannot express per field (unique names, exactly
 *     one primary, password vs password_hash) are checked by hand.
 * Zod issue paths are mapped back onto the YAML document to find positions.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Document,
} from 'yaml';
import * as z from 'zod';
import { compileRule, rulesFileSchema, rulesListSchema, type CacheRule, type RawRule } from '../cache/cache_rules.js';
import type { BackendConfig, CacheConfig, UserConfig, WirecacheConfig } from './types.js';

// ---------------------------------------------------------------------------
// Errors

/** One problem found in a config file. */
export interface ConfigIssue {
  /** The file name as given to loadConfig / parseConfig. */
  file: string;
  /** 1-based line, when the problem can be tied to a place in the file. */
  line?: number;
  /** 1-based column, when known. */
  column?: number;
  /** Dotted path of the field, e.g. `users[1].password_hash`; absent for syntax errors. */
  field?: string;
  /** What is wrong, without the location prefix. */
  message: string;
}

/** Formats one issue as `FILE:LINE:COL: field a.b: message`. */
export function formatConfigIssue(issue: ConfigIssue): string {
  let where = issue.file;
  if (issue.line !== undefined) {
    where += `:${issue.line}`;
    if (issue.column !== undefined) where += `:${issue.column}`;
  }
  const field = issue.field ? `field ${issue.field}: ` : '';
  return `${where}: ${field}${issue.message}`;
}

/**
 * An invalid or unreadable config file. `file`, `line`, `column`, `field` and
 * `reason` describe the first problem (the earliest in the file); `issues`
 * holds all of them, and `message` is every issue formatted, one per line.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly file: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly field: string | undefined;
  /** The first issue's message without the location prefix. */
  readonly reason: string;
  readonly issues: readonly ConfigIssue[];

  constructor(issues: ConfigIssue | readonly ConfigIssue[], options?: { cause?: unknown }) {
    const list = Array.isArray(issues) ? [...(issues as readonly ConfigIssue[])] : [issues as ConfigIssue];
    if (list.length === 0) throw new TypeError('ConfigError needs at least one issue');
    super(list.map(formatConfigIssue).join('\n'), options);
    const first = list[0];
    this.file = first.file;
    this.line = first.line;
    this.column = first.column;
    this.field = first.field;
    this.reason = first.message;
    this.issues = list;
  }
}

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
  queryStats: { maxDigests: 1000 },
  monitor: { intervalMs: 1000, checkTimeoutMs: 1000, failAfter: 3, recoverAfter: 3, heartbeatTable: 'wirecache.heartbeat' },
  routing: { maxReplicationLagSeconds: 10, consistency: 'session', consistencyWaitMs: 500 },
} as const;

/** Largest delay node's timers accept (ms); longer ones fire immediately. */
const MAX_TIMER_MS = 2_147_483_647;
const MAX_PACKET_MIN = 1024;
const MAX_PACKET_MAX = 1_073_741_824;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
const HASH_RE = /^\*[0-9a-fA-F]{40}$/;
const BACKEND_NAME_RE = /^[a-zA-Z0-9_-]+$/;

// ---------------------------------------------------------------------------
// Schema (snake_case, exactly as written in YAML)

/** Describes a value's YAML type without echoing it (it may be a secret). */
function describeType(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (input === null) return 'an empty value';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  if (typeof input === 'string') return 'a string';
  if (typeof input === 'number') return 'a number';
  if (typeof input === 'boolean') return 'a boolean';
  return typeof input;
}

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
      .regex(HASH_RE, { error: 'must be "*" followed by 40 hex digits' })
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

const rootSchema = z.strictObject(
  {
    tls: tlsSchema.optional(),
    backend_tls: backendTlsSchema.optional(),
    auth: authSchema.default({ default_plugin: 'mysql_native_password' }),
    users_from_database: usersFromDatabaseSchema.optional(),
    monitor: monitorSchema.optional(),
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
    server_version: z
      .string({ error: msg('must be a string (quote it in YAML)', false) })
      .min(1, { error: msg('must not be empty') })
      .max(250, { error: msg('must be at most 250 characters') })
      .regex(/^[^\0]*$/, { error: 'must not contain NUL characters' })
      .default(CONFIG_DEFAULTS.serverVersion),
  },
  { error: (iss) => `the config must be a YAML mapping of options, got ${describeType(iss.input)}` },
);

type RawConfig = z.output<typeof rootSchema>;
type PathSegment = string | number;

/** Default zod messages for anything without a schema-level message. */
function fallbackMessage(iss: { code: string; input?: unknown; expected?: unknown }): string {
  if (iss.code === 'invalid_type') {
    return iss.input === undefined ? 'is required' : `must be ${String(iss.expected)}, got ${describeType(iss.input)}`;
  }
  return 'is invalid';
}

/** Keys a strict object in the schema accepts at `path`, for "did you mean". */
function knownKeysAt(root: z.core.$ZodType, path: readonly PathSegment[]): string[] {
  const unwrap = (s: z.core.$ZodType): z.core.$ZodType => {
    for (;;) {
      const def = s._zod.def as { type: string; innerType?: z.core.$ZodType };
      if ((def.type === 'default' || def.type === 'optional') && def.innerType) s = def.innerType;
      else return s;
    }
  };
  const walk = (start: z.core.$ZodType, rest: readonly PathSegment[]): string[] => {
    const schema = unwrap(start);
    const def = schema._zod.def as {
      type: string;
      shape?: Record<string, z.core.$ZodType>;
      element?: z.core.$ZodType;
      options?: z.core.$ZodType[];
    };
    // A union (a rules file is a list or a mapping with "rules"): the first option the path fits.
    if (def.type === 'union' && def.options) {
      for (const option of def.options) {
        const keys = walk(option, rest);
        if (keys.length > 0) return keys;
      }
      return [];
    }
    if (rest.length === 0) return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
    const [seg, ...tail] = rest;
    if (def.type === 'object' && typeof seg === 'string' && def.shape?.[seg]) return walk(def.shape[seg], tail);
    if (def.type === 'array' && typeof seg === 'number' && def.element) return walk(def.element, tail);
    return [];
  };
  return walk(root, path);
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

function suggestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best !== undefined && bestDist <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** `users[1].password_hash`; odd keys are quoted: `limits["a b"]`. */
export function formatFieldPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Mapping paths to YAML positions

interface Located {
  line: number;
  column: number;
}

export class Locator {
  constructor(
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  private pos(offset: number): Located {
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  private nodeStart(node: unknown): number | undefined {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? range[0] : undefined;
  }

  private deref(node: unknown): unknown {
    return isAlias(node) ? (node.resolve(this.doc) ?? node) : node;
  }

  /**
   * Position of the node at `path`. With `keyOf`, position of that key in the
   * mapping at `path` (unknown keys). Falls back to the nearest existing
   * parent, preferring the key that introduces it ("listen:") over its value.
   */
  locate(path: readonly PathSegment[], keyOf?: string): Located {
    let node: unknown = this.doc.contents;
    let best: number | undefined = this.nodeStart(node);
    const full = keyOf === undefined ? path : [...path, keyOf];
    for (let i = 0; i < full.length; i++) {
      const seg = full[i];
      const last = i === full.length - 1;
      node = this.deref(node);
      if (isMap(node)) {
        const pair = node.items.find(
          (p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg),
        );
        if (!pair) break;
        const keyStart = this.nodeStart(pair.key);
        if (last && keyOf !== undefined) {
          best = keyStart ?? best;
          break;
        }
        const value = pair.value;
        const scalarValue = isScalar(value) && value.value !== null;
        // A scalar value is reported where it is; an empty value, a mapping
        // or list (which may start lines below), or a missing key further
        // down is reported at the key that introduces it.
        best = (last && scalarValue ? this.nodeStart(value) : undefined) ?? keyStart ?? best;
        node = value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined) break;
        best = this.nodeStart(item) ?? best;
        node = item;
      } else {
        break;
      }
    }
    return best === undefined ? { line: 1, column: 1 } : this.pos(best);
  }

  at(offset: number): Located {
    return this.pos(offset);
  }
}

// ---------------------------------------------------------------------------
// Public API

/** SHA1(SHA1(password)): what MySQL stores (hex, after "*") for mysql_native_password. */
export function doubleSha1(password: string | Buffer): Buffer {
  const once = createHash('sha1').update(password).digest();
  return createHash('sha1').update(once).digest();
}

/** The configured user with exactly this name (MySQL user names are case-sensitive). */
export function findUser(config: Pick<WirecacheConfig, 'users'>, name: string): UserConfig | undefined {
  return config.users.find((u) => u.name === name);
}


/**
 * Parses YAML `text` and validates it against `schema`: syntax errors, unknown
 * aliases, then zod issues, each located at its file, line and column. Throws
 * ConfigError; returns the parsed data and a locator for further checks.
 */
export function validateYaml<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
  emptyMessage: string,
): { data: z.output<S>; locator: Locator } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const locator = new Locator(doc, lineCounter);

  // 1. YAML syntax.
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        file,
        ...locator.at(e.pos[0]),
        message:
          e.code === 'MULTIPLE_DOCS'
            ? 'YAML syntax error: the file must be a single YAML document (remove the extra "---")'
            : `YAML syntax error: ${e.message}`,
      })),
    );
  }
  const aliasIssues: ConfigIssue[] = [];
  visit(doc, {
    Alias(_key, node) {
      if (!node.resolve(doc)) {
        const start = node.range?.[0];
        aliasIssues.push({
          file,
          ...(start === undefined ? {} : locator.at(start)),
          message:
            `YAML syntax error: unknown alias "*${node.source}"; a value starting with "*" ` +
            `must be quoted, e.g. password_hash: "*${node.source}"`,
        });
      }
    },
  });
  if (aliasIssues.length > 0) throw new ConfigError(aliasIssues);
  if (doc.contents === null) {
    throw new ConfigError({ file, line: 1, column: 1, message: emptyMessage });
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError({ file, line: 1, column: 1, message: `YAML error: ${(err as Error).message}` });
  }

  // 2. Shape, types, ranges.
  const parsed = schema.safeParse(data, { error: fallbackMessage });
  if (!parsed.success) {
    const issues: Array<ConfigIssue & { order: number }> = [];
    for (const iss of parsed.error.issues) {
      const path = iss.path.filter((p): p is PathSegment => typeof p !== 'symbol');
      if (iss.code === 'unrecognized_keys') {
        const known = knownKeysAt(schema, path);
        for (const key of iss.keys) {
          const hint = suggestKey(key, known);
          issues.push({
            file,
            ...locator.locate(path, key),
            field: formatFieldPath([...path, key]),
            message: `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
            order: issues.length,
          });
        }
      } else {
        issues.push({
          file,
          ...locator.locate(path),
          field: path.length ? formatFieldPath(path) : undefined,
          message: iss.message,
          order: issues.length,
        });
      }
    }
    throw new ConfigError(sortIssues(issues));
  }
  return { data: parsed.data, locator };
}

/** Reads and validates a YAML config file. Throws ConfigError. */
export function loadConfig(path: string): WirecacheConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : (err as Error).message;
    throw new ConfigError({ file: path, message: `cannot read config: ${why}` }, { cause: err });
  }
  return parseConfig(text, path);
}

/**
 * Validates YAML config text. `sourcePath` is used in error messages as given
 * and stored, made absolute, as `sourcePath` in the result. Throws ConfigError.
 */
export function parseConfig(text: string, sourcePath: string): WirecacheConfig {
  const { data: raw, locator } = validateYaml(text, sourcePath, rootSchema, 'the config file is empty');
  const file = sourcePath;
  // 3. Cross-field rules.
  const issues: Array<ConfigIssue & { order: number }> = [];
  const problem = (path: PathSegment[], message: string) =>
    issues.push({ file, ...locator.locate(path), field: formatFieldPath(path), message, order: issues.length });
  const lineOf = (path: PathSegment[]) => locator.locate(path).line;

  checkBackends(raw, problem, lineOf);
  checkUsers(raw, problem, lineOf);
  checkAdmin(raw, problem);
  checkSecurity(raw, problem, dirname(resolvePath(sourcePath)));
  checkCache(raw, problem);
  if (issues.length > 0) throw new ConfigError(sortIssues(issues));

  const config = normalise(raw, resolvePath(sourcePath));
  if (raw.cache) config.cache = normaliseCache(raw.cache, sourcePath, locator, raw.backends.map((b) => b.name));
  return config;
}

function sortIssues(issues: Array<ConfigIssue & { order: number }>): ConfigIssue[] {
  return issues
    .sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0) || a.order - b.order)
    .map(({ order: _order, ...issue }) => issue);
}

type Problem = (path: PathSegment[], message: string) => void;

function checkBackends(raw: RawConfig, problem: Problem, lineOf: (p: PathSegment[]) => number): void {
  const seen = new Map<string, number>();
  raw.backends.forEach((b, i) => {
    const first = seen.get(b.name);
    if (first !== undefined) {
      problem(['backends', i, 'name'], `duplicate backend name "${b.name}" (first used at line ${lineOf(['backends', first, 'name'])})`);
    } else {
      seen.set(b.name, i);
    }
  });
  const multiple = raw.backends.length > 1;
  let primary: number | undefined;
  raw.backends.forEach((b, i) => {
    const role = b.role ?? (multiple ? undefined : 'primary');
    if (role === undefined) {
      problem(['backends', i, 'role'], 'is required when more than one backend is configured ("primary" or "replica")');
    } else if (role === 'primary') {
      if (primary === undefined) primary = i;
      else
        problem(
          ['backends', i, 'role'],
          `only one backend may be primary; backends[${primary}] (line ${lineOf(['backends', primary])}) already is`,
        );
    }
  });
  if (primary === undefined && raw.backends.every((b) => b.role !== undefined || !multiple)) {
    problem(['backends'], 'exactly one backend must have role: primary');
  }
  if (multiple && !raw.monitor) {
    problem(['backends'], 'more than one backend needs a monitor section (monitor.user and monitor.password) to check their health and replication');
  }
}

/** TLS and RSA files must be readable now, not at the first client; users_from_database needs an account. */
function checkSecurity(raw: RawConfig, problem: Problem, baseDir: string): void {
  const readable = (path: PathSegment[], file: string | undefined) => {
    if (file === undefined) return;
    try {
      readFileSync(resolvePath(baseDir, file));
    } catch (err) {
      problem(path, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  if (raw.tls) {
    readable(['tls', 'cert_file'], raw.tls.cert_file);
    readable(['tls', 'key_file'], raw.tls.key_file);
  }
  readable(['backend_tls', 'ca_file'], raw.backend_tls?.ca_file);
  readable(['auth', 'rsa_private_key_file'], raw.auth.rsa_private_key_file);
  readable(['auth', 'rsa_public_key_file'], raw.auth.rsa_public_key_file);
  if ((raw.auth.rsa_private_key_file === undefined) !== (raw.auth.rsa_public_key_file === undefined)) {
    problem(['auth'], 'give both rsa_private_key_file and rsa_public_key_file, or neither (a pair is generated at start)');
  }
  raw.users.forEach((u, i) => {
    if (u.require_tls && !raw.tls) problem(['users', i, 'require_tls'], 'needs a tls section (cert_file, key_file)');
  });
  const fromDb = raw.users_from_database;
  if (fromDb && fromDb.user === undefined && !raw.monitor) {
    problem(['users_from_database'], 'needs a user and password (or a monitor section whose account is used)');
  }
}

/** The admin API changes the proxy (purge, reload) and shows its traffic: beyond loopback it needs a token. */
function checkAdmin(raw: RawConfig, problem: Problem): void {
  if (raw.admin.token === undefined && !isLoopback(raw.admin.host)) {
    problem(['admin', 'host'], `is not a loopback address: set admin.token (a bearer token of at least 16 characters) to expose the admin API on ${raw.admin.host}`);
  }
}

/** 127.0.0.0/8, ::1 and localhost: the admin API is reachable from this machine only. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function checkUsers(raw: RawConfig, problem: Problem, lineOf: (p: PathSegment[]) => number): void {
  const seen = new Map<string, number>();
  raw.users.forEach((u, i) => {
    const first = seen.get(u.name);
    if (first !== undefined) {
      problem(['users', i, 'name'], `duplicate user name "${u.name}" (first defined at line ${lineOf(['users', first, 'name'])})`);
    } else {
      seen.set(u.name, i);
    }
    const hasPassword = u.password !== undefined;
    const hasHash = u.password_hash !== undefined;
    if (hasPassword && hasHash) {
      problem(['users', i, 'password_hash'], 'give either password or password_hash, not both');
    } else if (!hasPassword && !hasHash) {
      problem(['users', i], 'needs a password or a password_hash (password: "" for an account without password)');
    }
  });
}

function normalise(raw: RawConfig, sourcePath: string): WirecacheConfig {
  const multiple = raw.backends.length > 1;
  const backends: BackendConfig[] = raw.backends.map((b) => ({
    name: b.name,
    host: b.host,
    port: b.port,
    role: b.role ?? (multiple ? 'replica' : 'primary'),
    weight: b.weight,
  }));
  const users: UserConfig[] = raw.users.map((u) => {
    const requireTls = u.require_tls;
    if (u.password !== undefined && HASH_RE.test(u.password)) {
      // As in ProxySQL: a password in mysql.user's "*" + 40-hex form is that hash, not a plain password.
      return hashedUser(u.name, u.password, requireTls);
    }
    if (u.password !== undefined) return plainUser(u.name, u.password, requireTls);
    return hashedUser(u.name, u.password_hash as string, requireTls);
  });
  return {
    sourcePath,
    listen: { host: raw.listen.host, port: raw.listen.port },
    admin: { host: raw.admin.host, port: raw.admin.port, token: raw.admin.token ?? null },
    queryStats: { maxDigests: raw.query_stats.max_digests },
    backendTls: raw.backend_tls
      ? { caFile: raw.backend_tls.ca_file === undefined ? null : resolvePath(dirname(sourcePath), raw.backend_tls.ca_file), verify: raw.backend_tls.verify }
      : null,
    tls: raw.tls
      ? {
          certFile: resolvePath(dirname(sourcePath), raw.tls.cert_file),
          keyFile: resolvePath(dirname(sourcePath), raw.tls.key_file),
          requireTls: raw.tls.require_tls,
        }
      : null,
    auth: {
      defaultPlugin: raw.auth.default_plugin,
      rsaPrivateKeyFile: raw.auth.rsa_private_key_file === undefined ? null : resolvePath(dirname(sourcePath), raw.auth.rsa_private_key_file),
      rsaPublicKeyFile: raw.auth.rsa_public_key_file === undefined ? null : resolvePath(dirname(sourcePath), raw.auth.rsa_public_key_file),
    },
    usersFromDatabase: raw.users_from_database
      ? {
          refreshSeconds: raw.users_from_database.refresh_seconds,
          user: raw.users_from_database.user ?? raw.monitor!.user,
          password: raw.users_from_database.user !== undefined ? (raw.users_from_database.password ?? '') : raw.monitor!.password,
        }
      : null,
    backends,
    users,
    limits: {
      maxClientConnections: raw.limits.max_client_connections,
      maxUserConnections: raw.limits.max_user_connections,
      loginFailuresPerMinute: raw.limits.login_failures_per_minute,
      loginBlockSeconds: raw.limits.login_block_seconds,
      maxPacketBytes: raw.limits.max_packet_bytes,
    },
    timeouts: {
      backendConnectMs: raw.timeouts.backend_connect_ms,
      clientHandshakeMs: raw.timeouts.client_handshake_ms,
      clientReadMs: raw.timeouts.client_read_ms,
      clientIdleSeconds: raw.timeouts.client_idle_seconds,
      shutdownGraceMs: raw.timeouts.shutdown_grace_ms,
    },
    monitor: raw.monitor
      ? {
          user: raw.monitor.user,
          password: raw.monitor.password,
          intervalMs: raw.monitor.interval_ms,
          checkTimeoutMs: raw.monitor.check_timeout_ms,
          failAfter: raw.monitor.fail_after,
          recoverAfter: raw.monitor.recover_after,
          heartbeatTable: raw.monitor.heartbeat_table,
        }
      : null,
    routing: {
      maxReplicationLagSeconds: raw.routing.max_replication_lag,
      consistency: raw.routing.consistency,
      consistencyWaitMs: raw.routing.consistency_wait_ms,
    },
    cache: null,
    log: { level: raw.log.level },
    serverVersion: raw.server_version,
  };
}

/** An account known by its mysql.user hash ("*" + 40 hex digits). */
export function hashedUser(name: string, hash: string, requireTls = false): UserConfig {
  return { name, passwordDoubleSha1: Buffer.from(hash.slice(1), 'hex'), emptyPassword: false, passwordSha1: null, sha256Stage2: null, requireTls };
}

/** An account with its plain password: every digest any plugin needs is known. */
export function plainUser(name: string, password: string, requireTls = false): UserConfig {
  if (password === '') return { name, passwordDoubleSha1: Buffer.alloc(0), emptyPassword: true, passwordSha1: null, sha256Stage2: null, requireTls };
  const sha1 = createHash('sha1').update(password).digest();
  const sha256 = createHash('sha256').update(password).digest();
  return {
    name,
    passwordDoubleSha1: createHash('sha1').update(sha1).digest(),
    emptyPassword: false,
    passwordSha1: sha1,
    sha256Stage2: createHash('sha256').update(sha256).digest(),
    requireTls,
  };
}

function checkCache(raw: RawConfig, problem: Problem): void {
  const cache = raw.cache;
  if (!cache) return;
  if (cache.storage !== 'memory' && !cache.memcached) {
    problem(['cache', 'storage'], `storage "${cache.storage}" needs a cache.memcached section with servers`);
  }
  if (cache.default_soft_ttl !== undefined && cache.default_soft_ttl > cache.default_ttl) {
    problem(['cache', 'default_soft_ttl'], 'must not be longer than default_ttl');
  }
}

/**
 * Reads a rules file and validates it (errors point into that file). Rule
 * names must be unique across the file and the config's inline rules.
 */
export function loadRulesFile(path: string): { raw: RawRule[]; sources: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError({ file: path, message: `cannot read rules file: ${(err as Error).message}` }, { cause: err });
  }
  // A list, or a mapping with "rules": validated against the shape it has, so errors name the real field.
  const isList = isSeq(parseDocument(text).contents);
  const { data, locator } = validateYaml(text, path, isList ? rulesListSchema : rulesFileSchema, 'the rules file is empty');
  const list = Array.isArray(data) ? data : data.rules;
  const prefix = Array.isArray(data) ? [] : ['rules'];
  return { raw: list, sources: list.map((_, i) => `${path}:${locator.locate([...prefix, i]).line}`) };
}

function normaliseCache(
  raw: NonNullable<RawConfig['cache']>,
  sourcePath: string,
  locator: Locator,
  backendNames: string[],
): CacheConfig {
  const rulesFile = raw.rules_file === undefined ? null : resolvePath(dirname(resolvePath(sourcePath)), raw.rules_file);
  const entries: { rule: RawRule; source: string; file: string; path: PathSegment[]; locate: Locator | null }[] = [];
  raw.rules?.forEach((rule, i) =>
    entries.push({ rule, source: `${sourcePath}:${locator.locate(['cache', 'rules', i]).line}`, file: sourcePath, path: ['cache', 'rules', i], locate: locator }),
  );
  if (rulesFile) {
    const loaded = loadRulesFile(rulesFile);
    loaded.raw.forEach((rule, i) => entries.push({ rule, source: loaded.sources[i], file: rulesFile, path: [i], locate: null }));
  }
  const issues: ConfigIssue[] = [];
  const seen = new Map<string, string>();
  for (const e of entries) {
    const where = e.source.slice(e.source.lastIndexOf(':') + 1);
    const first = seen.get(e.rule.name);
    if (first) issues.push({ file: e.file, line: Number(where), field: formatFieldPath([...e.path, 'name']), message: `duplicate rule name "${e.rule.name}" (first defined at ${first})` });
    else seen.set(e.rule.name, e.source);
    const route = e.rule.route;
    if (route !== undefined && route !== 'primary' && route !== 'replica' && !backendNames.includes(route)) {
      issues.push({ file: e.file, line: Number(where), field: formatFieldPath([...e.path, 'route']), message: `must be "primary", "replica" or a backend name (${backendNames.join(', ')}), got ${JSON.stringify(route)}` });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  const rules: CacheRule[] = entries.map((e) => compileRule(e.rule, e.source));
  const mc = raw.memcached;
  return {
    mode: raw.mode,
    defaultTtlSeconds: raw.default_ttl,
    defaultSoftTtlSeconds: raw.default_soft_ttl ?? null,
    maxResultBytes: raw.max_result_bytes,
    cacheResultsWithWarnings: raw.cache_results_with_warnings,
    allowReadOnlyTransactions: raw.allow_read_only_transactions,
    coalesceWaitMs: raw.coalesce_wait_ms,
    storage: raw.storage,
    memory: { maxBytes: raw.memory.max_bytes },
    memcached: {
      servers: mc?.servers ?? [],
      timeoutMs: mc?.timeout_ms ?? CONFIG_DEFAULTS.cache.memcachedTimeoutMs,
      itemLimitBytes: mc?.item_limit_bytes ?? CONFIG_DEFAULTS.cache.memcachedItemLimitBytes,
      maxItemsPerEntry: mc?.max_items_per_entry ?? CONFIG_DEFAULTS.cache.memcachedMaxItemsPerEntry,
      keyPrefix: mc?.key_prefix ?? CONFIG_DEFAULTS.cache.memcachedKeyPrefix,
    },
    rules,
    rulesFile,
  };
}
