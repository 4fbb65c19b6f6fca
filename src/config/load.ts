/**
 * Configuration loader: YAML text -> validated, normalised WirecacheConfig.
 *
 * Every problem is reported as a ConfigError pointing at the file, line and
 * column of the offending YAML node and naming the field by its dotted path
 * (`users[1].password_hash`), so an operator can go straight to the mistake.
 *
 * Validation happens in rounds, and one pass reports every error it can:
 *  1. YAML syntax (nothing else can run without a document);
 *  2. a zod schema of strict objects (schema.ts) checks the shape, types and
 *     ranges of every field and fills in defaults (validateYaml in
 *     yaml_locations.ts locates its issues);
 *  3. cross-field rules zod cannot express per field (unique names, exactly
 *     one primary, password vs password_hash) are checked here by hand;
 *  4. the cache rules: the rules file, rule names, routes.
 * With schema errors, rounds 3 and 4 still run on the top-level sections that
 * are valid on their own; a check that needs an invalid section is skipped.
 */
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import type { z } from 'zod';
import { compileRule, type CacheRule, type RawRule } from './rules.js';
import { hashedUser, isPasswordHash, plainUser } from './accounts.js';
import { loadRulesFile } from './rules_file.js';
import { CONFIG_DEFAULTS, rootSchema, type RawConfig } from './schema.js';
import type { BackendConfig, CacheConfig, MemcachedApiConfig, UserConfig, WirecacheConfig } from './types.js';
import {
  ConfigError,
  SchemaConfigError,
  formatFieldPath,
  sortIssues,
  validateYaml,
  type ConfigIssue,
  type Locator,
  type PathSegment,
} from './yaml_locations.js';

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
  let validated: { data: RawConfig; locator: Locator };
  try {
    validated = validateYaml(text, sourcePath, rootSchema, 'the config file is empty');
  } catch (err) {
    // Schema errors: the later rounds still run on the sections that are valid, so that one pass reports every error it can.
    if (!(err instanceof SchemaConfigError)) throw err;
    const { raw, invalid } = validSections(err.data);
    const later = laterRounds(raw, invalid, err.locator, sourcePath);
    throw new ConfigError([...sortIssues([...err.issues, ...later.crossField].map((issue, order) => ({ ...issue, order }))), ...later.rulesFile]);
  }
  const { data: raw, locator } = validated;
  const later = laterRounds(raw, new Set(), locator, sourcePath);
  if (later.crossField.length > 0 || later.rulesFile.length > 0) throw new ConfigError([...later.crossField, ...later.rulesFile]);
  const config = normalise(raw, resolvePath(sourcePath));
  if (raw.cache) config.cache = later.cache;
  return config;
}

/** Each top-level section of the file that passes the schema on its own (with its defaults), and the names of those that do not. */
function validSections(data: unknown): { raw: RawConfig; invalid: Set<string> } {
  const raw: Record<string, unknown> = {};
  const invalid = new Set<string>();
  const input = data !== null && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
  for (const [key, field] of Object.entries(rootSchema.shape)) {
    const parsed = (field as z.ZodType).safeParse(input[key]);
    if (parsed.success) raw[key] = parsed.data;
    else invalid.add(key);
  }
  return { raw: raw as RawConfig, invalid };
}

/**
 * Rounds 3 and 4, on the sections that passed the schema: cross-field checks
 * (sorted by position in the file), then the cache rules (the rules file,
 * rule names, routes). A check whose sections are not all valid is skipped:
 * its errors would only repeat the schema's.
 */
function laterRounds(
  raw: RawConfig,
  invalid: ReadonlySet<string>,
  locator: Locator,
  sourcePath: string,
): { crossField: ConfigIssue[]; rulesFile: ConfigIssue[]; cache: CacheConfig | null } {
  const file = sourcePath;
  const issues: Array<ConfigIssue & { order: number }> = [];
  const problem = (path: PathSegment[], message: string) =>
    issues.push({ file, ...locator.locate(path), field: formatFieldPath(path), message, order: issues.length });
  const lineOf = (path: PathSegment[]) => locator.locate(path).line;
  const valid = (...sections: string[]) => sections.every((k) => !invalid.has(k));

  if (valid('backends', 'monitor')) checkBackends(raw, problem, lineOf);
  if (valid('users')) checkUsers(raw, problem, lineOf);
  if (valid('admin')) checkAdmin(raw, problem);
  if (valid('tls', 'backend_tls', 'auth', 'users', 'users_from_database', 'monitor')) checkSecurity(raw, problem, dirname(resolvePath(sourcePath)));
  if (valid('cache')) checkCache(raw, problem);
  if (valid('binlog', 'cache', 'monitor')) checkBinlog(raw, problem);
  if (valid('memcached_api')) checkMemcachedApi(raw, problem);

  const rulesFile: ConfigIssue[] = [];
  let cache: CacheConfig | null = null;
  if (raw.cache && valid('cache', 'backends')) {
    try {
      cache = normaliseCache(raw.cache, sourcePath, locator, raw.backends.map((b) => b.name));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      rulesFile.push(...err.issues);
    }
  }
  return { crossField: sortIssues(issues), rulesFile, cache };
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
    if (u.password !== undefined && isPasswordHash(u.password)) {
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
    classifierCacheBytes: raw.classifier_cache_bytes,
    sessionTracking: raw.session_tracking,
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
    memcachedApi: raw.memcached_api ? normaliseMemcachedApi(raw.memcached_api) : null,
    pool: {
      maxIdle: raw.pool.max_idle,
      idleTimeoutSeconds: raw.pool.idle_timeout_seconds,
      maxConnections: raw.pool.max_connections,
      maxConnectionsPerUser: raw.pool.max_connections_per_user,
      queueTimeoutMs: raw.pool.queue_timeout_ms,
      multiplexing: raw.pool.multiplexing,
    },
    binlog: {
      enabled: raw.binlog?.enabled === true ? 'on' : raw.binlog?.enabled === false ? 'off' : 'auto',
      user: raw.binlog?.user ?? raw.monitor?.user ?? null,
      password: raw.binlog?.user !== undefined ? (raw.binlog.password ?? '') : (raw.monitor?.password ?? ''),
      serverId: raw.binlog?.server_id ?? null,
      maxDelayMs: raw.binlog?.max_delay_ms ?? CONFIG_DEFAULTS.binlog.maxDelayMs,
      onUnavailable: raw.binlog?.on_unavailable ?? CONFIG_DEFAULTS.binlog.onUnavailable,
    },
    log: { level: raw.log.level },
    serverVersion: raw.server_version,
    workers: raw.workers === 'auto' ? autoWorkers() : raw.workers,
  };
}

/**
 * workers: auto. One worker thread per core but one: the main thread keeps
 * the monitor, the binlog reader, the admin and memcached APIs, and the
 * kernel's network processing needs a share too. On two cores that is the
 * main thread alone, measured faster there than two threads (docs/benchmarks.md).
 */
export function autoWorkers(cores = availableParallelism()): number {
  return Math.max(1, cores - 1);
}

function normaliseMemcachedApi(raw: NonNullable<RawConfig['memcached_api']>): MemcachedApiConfig {
  return {
    listen: { host: raw.listen.host, port: raw.listen.port },
    user: raw.user,
    password: raw.password,
    connections: raw.connections,
    maxConnections: raw.max_connections,
    readFrom: raw.read_from,
    allowFlush: raw.allow_flush,
    sasl: raw.sasl,
    maxValueBytes: raw.max_value_bytes,
    cacheBytes: raw.cache_bytes,
    expirySweepSeconds: raw.expiry_sweep_seconds,
    operationTimeoutMs: raw.operation_timeout_ms,
    containers: raw.containers.map((c) => {
      const [schema, table] = c.table.split('.');
      return {
        name: c.name,
        schema,
        table,
        keyColumn: c.key_column,
        valueColumns: c.value_columns,
        separator: c.separator,
        flagsColumn: c.flags_column ?? null,
        casColumn: c.cas_column ?? null,
        expiryColumn: c.expiry_column ?? null,
      };
    }),
    defaultContainer: raw.default_container ?? null,
    containersTable: raw.containers_table ?? null,
  };
}

/** memcached_api: containers need unique names, a known default, and some source. */
function checkMemcachedApi(raw: RawConfig, problem: Problem): void {
  const api = raw.memcached_api;
  if (!api) return;
  const names = new Set<string>();
  api.containers.forEach((c, i) => {
    if (names.has(c.name)) problem(['memcached_api', 'containers', i, 'name'], `duplicate container name "${c.name}"`);
    names.add(c.name);
  });
  if (api.containers.length === 0 && api.containers_table === undefined) {
    problem(['memcached_api', 'containers'], 'must list at least one container (or set containers_table)');
  }
  if (api.default_container !== undefined && api.containers_table === undefined && !names.has(api.default_container)) {
    problem(['memcached_api', 'default_container'], `names no container ("${api.default_container}")`);
  }
  if (api.listen.port !== 0 && api.listen.port === raw.listen.port && api.listen.host === raw.listen.host) {
    problem(['memcached_api', 'listen'], 'is the same address as listen');
  }
}

/** binlog.enabled: true needs a cache to invalidate and an account to replicate with. */
function checkBinlog(raw: RawConfig, problem: Problem): void {
  const binlog = raw.binlog;
  if (!binlog) return;
  if (binlog.enabled === true && !raw.cache) problem(['binlog', 'enabled'], 'true needs a cache section: the binlog reader only invalidates the cache');
  if (binlog.enabled === true && binlog.user === undefined && !raw.monitor) {
    problem(['binlog'], 'needs a user and password (or a monitor section whose account is used)');
  }
  if (binlog.password !== undefined && binlog.user === undefined) problem(['binlog', 'password'], 'is set without binlog.user');
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
