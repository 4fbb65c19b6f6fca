/**
 * Accounts read from the primary's mysql.user (`users_from_database`), as
 * MaxScale does: users are created, changed and dropped on the server only,
 * and the proxy learns them every `refreshSeconds`. Accounts in the config
 * override these (ProxyServer looks the config up first).
 *
 * What is read: `SELECT * FROM mysql.user` on the current primary (a view over
 * mysql.global_priv in MariaDB 10.4+; a table in MySQL 5.7/8 and older
 * MariaDB), as `config.user`. `*` rather than a column list because the
 * columns differ between servers (`Password` and `is_role` exist in MariaDB
 * only).
 *
 * Which rows become accounts:
 * - plugin `mysql_native_password`, or `''` (MariaDB before 10.4), with a hash
 *   of the form `*` + 40 hex digits in authentication_string (or Password);
 *   both empty: an account without password (emptyPassword).
 * - Other plugins (unix_socket, ed25519, caching_sha2_password, ...) and
 *   native rows holding anything else (MariaDB's "invalid", a pre-4.1 hash)
 *   are skipped: the proxy verifies mysql_native_password scrambles only.
 * - Skipped as well: roles (`is_role = 'Y'`), the anonymous account (empty
 *   User) and locked accounts (`account_locked = 'Y'` in MySQL; in MariaDB
 *   10.4+ read from mysql.global_priv when config.user may, e.g. mariadb.sys,
 *   which has an empty password): the server would refuse them anyway.
 *   Accounts with an expired password are kept (the server decides).
 * - requireTls follows ssl_type: an account created with REQUIRE SSL (or
 *   X509, or a cipher/issuer/subject) may log in to the proxy only over TLS,
 *   as on the server.
 *
 * Host part: the proxy authenticates by name only (it cannot know which
 * host row the server will match for a client behind it). For a name with
 * several rows:
 * - a `'%'` row exists: it decides (an unusable `'%'` row skips the name);
 * - otherwise the usable rows (unusable ones are ignored) must all carry the
 *   same hash (or all be password-less): that one is used;
 * - if they differ the name is skipped as ambiguous, with one warning per
 *   name (again only if it becomes ambiguous again after being resolved).
 * Accepting a login at the proxy never grants more than the server does: the
 * backend login with the recovered SHA1(password) is still checked by the
 * server with its own host matching.
 *
 * Refresh: each successful read replaces the whole map at once (dropped
 * accounts disappear); a failed read keeps the previous map and logs one
 * warning per failure streak. The connection is reused between reads, and
 * reopened when it broke or when the primary endpoint changed (failover).
 * Nothing here throws from a timer or leaves a rejection unhandled.
 */
import mysql from 'mysql2/promise';
import { hashedUser, isPasswordHash, plainUser } from '../config/accounts.js';
import type { BackendEndpoint, UserConfig, UsersFromDatabaseConfig } from '../config/types.js';
import type { Logger } from '../logger.js';

/** How long start() waits for the first read; it keeps running (and retrying) afterwards. */
const START_BOUND_MS = 5000;
/** Connecting to the primary and the SELECT each. */
const CONNECT_TIMEOUT_MS = 5000;
const QUERY_TIMEOUT_MS = 5000;

const NATIVE_PLUGINS = new Set(['mysql_native_password', '']);

/** One row of mysql.user, column names as the server returned them. */
export type UserRow = Record<string, unknown>;

export interface SkippedAccount {
  user: string;
  host: string;
  reason: string;
}

export interface ParsedAccounts {
  users: Map<string, UserConfig>;
  /** Names with several hosts, no '%' row, and different passwords. */
  ambiguous: string[];
  /** Rows not usable by the proxy (other plugins, roles, locked...). */
  skipped: SkippedAccount[];
}

/** A column's text whatever its case in the result and whether the driver gave a string or bytes. */
function column(row: UserRow, name: string): string | undefined {
  let value = row[name];
  if (value === undefined) {
    const lower = name.toLowerCase();
    const key = Object.keys(row).find((k) => k.toLowerCase() === lower);
    if (key === undefined) return undefined;
    value = row[key];
  }
  if (value === null || value === undefined) return undefined;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return String(value);
}

type RowVerdict = { ok: true; user: UserConfig } | { ok: false; reason: string };

function rowAccount(row: UserRow, name: string): RowVerdict {
  if (column(row, 'is_role') === 'Y') return { ok: false, reason: 'role' };
  if (column(row, 'account_locked') === 'Y') return { ok: false, reason: 'account locked' };
  const plugin = column(row, 'plugin') ?? '';
  if (!NATIVE_PLUGINS.has(plugin)) return { ok: false, reason: `plugin ${plugin}` };
  const requireTls = (column(row, 'ssl_type') ?? '') !== '';
  const authString = column(row, 'authentication_string') ?? '';
  const password = column(row, 'Password') ?? '';
  const hash = isPasswordHash(authString) ? authString : isPasswordHash(password) ? password : null;
  if (hash !== null) return { ok: true, user: hashedUser(name, hash, requireTls) };
  // Both empty: an account without password.
  if (authString === '' && password === '') return { ok: true, user: plainUser(name, '', requireTls) };
  return { ok: false, reason: `${plugin || 'native'} password is not a "*"+40-hex hash` };
}

function sameSecret(a: UserConfig, b: UserConfig): boolean {
  return a.emptyPassword === b.emptyPassword && a.passwordDoubleSha1.equals(b.passwordDoubleSha1);
}

/** The proxy's accounts from mysql.user rows (see the file header for the rules). Pure: no logging. */
export function parseAccounts(rows: readonly UserRow[]): ParsedAccounts {
  const byName = new Map<string, { host: string; verdict: RowVerdict }[]>();
  const skipped: SkippedAccount[] = [];
  for (const row of rows) {
    const name = column(row, 'User') ?? '';
    const host = column(row, 'Host') ?? '';
    if (name === '') {
      skipped.push({ user: name, host, reason: 'anonymous account' });
      continue;
    }
    const verdict = rowAccount(row, name);
    if (!verdict.ok) skipped.push({ user: name, host, reason: verdict.reason });
    let list = byName.get(name);
    if (!list) byName.set(name, (list = []));
    list.push({ host, verdict });
  }
  const users = new Map<string, UserConfig>();
  const ambiguous: string[] = [];
  for (const [name, hosts] of byName) {
    const any = hosts.find((h) => h.host === '%');
    if (any) {
      if (any.verdict.ok) users.set(name, any.verdict.user);
      continue;
    }
    const usable = hosts.flatMap((h) => (h.verdict.ok ? [h.verdict.user] : []));
    if (usable.length === 0) continue;
    if (usable.every((u) => sameSecret(u, usable[0]!))) users.set(name, usable[0]!);
    else ambiguous.push(name);
  }
  return { users, ambiguous, skipped };
}

export class UserDirectory {
  private users = new Map<string, UserConfig>();
  private conn: mysql.Connection | null = null;
  /** host:port the connection was opened to. */
  private connKey = '';
  private timer: NodeJS.Timeout | null = null;
  /** Reads run one after another; refreshNow() queues behind a read in flight. */
  private queue: Promise<void> = Promise.resolve();
  private started = false;
  private stopped = false;
  /** In a streak of failed reads: only its first failure is a warning. */
  private failing = false;
  private loadedOnce = false;
  /** Ambiguous names already warned about (while they stay ambiguous). */
  private warnedAmbiguous = new Set<string>();
  /** mysql.global_priv is missing or not readable by config.user (told once). */
  private noGlobalPriv = false;

  constructor(
    readonly config: UsersFromDatabaseConfig,
    private readonly primary: () => BackendEndpoint,
    private readonly logger: Logger,
  ) {}

  /** Number of accounts currently known. */
  get size(): number {
    return this.users.size;
  }

  private readonly listeners: ((users: UserConfig[]) => void)[] = [];

  /** Every account read, after each read of mysql.user (worker threads get a copy). */
  onRead(listener: (users: UserConfig[]) => void): void {
    this.listeners.push(listener);
  }

  /** Every account read so far. */
  all(): UserConfig[] {
    return [...this.users.values()];
  }

  /** The account read from the database with exactly this name (case-sensitive, as MySQL). */
  find(name: string): UserConfig | undefined {
    return this.users.get(name);
  }

  /**
   * First read, awaited at most START_BOUND_MS; never throws. Whatever its
   * outcome, reads repeat every refreshSeconds until stop().
   */
  async start(): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    let bound: NodeJS.Timeout | undefined;
    const first = this.refreshNow();
    await Promise.race([
      first,
      new Promise<void>((resolve) => {
        bound = setTimeout(() => {
          this.logger.warn({ waited_ms: START_BOUND_MS }, 'users from database: first read of mysql.user still running; starting without it');
          resolve();
        }, START_BOUND_MS);
        bound.unref();
      }),
    ]);
    clearTimeout(bound);
  }

  /** Stops refreshing and closes the connection; waits for a read in flight to end. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.closeConnection();
    await this.queue;
    // A connection opened by the read that was in flight is closed by that read itself (it checks `stopped`).
    this.closeConnection();
  }

  /** Reads mysql.user now (after any read in flight). Never rejects; on failure the previous accounts stay. */
  refreshNow(): Promise<void> {
    const run = this.queue.then(() => this.load());
    this.queue = run;
    return run;
  }

  private schedule(): void {
    if (this.stopped || !this.started) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.refreshNow();
    }, this.config.refreshSeconds * 1000);
    this.timer.unref();
  }

  private async load(): Promise<void> {
    if (this.stopped) return;
    let endpoint: BackendEndpoint | undefined;
    try {
      endpoint = this.primary();
      const conn = await this.connection(endpoint);
      const [result] = await conn.query({ sql: 'SELECT * FROM mysql.user', timeout: QUERY_TIMEOUT_MS });
      const rows = result as UserRow[];
      await this.markLocked(conn, rows);
      this.apply(parseAccounts(rows), endpoint);
    } catch (err) {
      // The connection may be half-broken (timeout, killed): start afresh next time.
      this.closeConnection();
      if (!this.stopped) {
        const fields = { err: (err as Error).message, primary: endpoint?.name, keptAccounts: this.users.size };
        if (!this.failing) this.logger.warn(fields, 'users from database: reading mysql.user failed; keeping the accounts known so far, retrying');
        else this.logger.debug(fields, 'users from database: reading mysql.user failed again');
      }
      this.failing = true;
    } finally {
      this.schedule();
    }
  }

  /**
   * MariaDB 10.4+'s mysql.user view has no account_locked column: the lock is
   * in mysql.global_priv's JSON. Read it there when the reader may (only
   * SELECT on the view is required; without access the locks are not known,
   * and the server still refuses a locked account at the backend login).
   */
  private async markLocked(conn: mysql.Connection, rows: UserRow[]): Promise<void> {
    if (this.noGlobalPriv || rows.length === 0 || 'account_locked' in rows[0]! || !('is_role' in rows[0]!)) return;
    let locked: UserRow[];
    try {
      const [result] = await conn.query({
        sql: "SELECT User, Host FROM mysql.global_priv WHERE JSON_VALUE(Priv, '$.account_locked') IN ('1', 'true')",
        timeout: QUERY_TIMEOUT_MS,
      });
      locked = result as UserRow[];
    } catch (err) {
      const errno = (err as { errno?: number }).errno;
      // No such table, no access: not an error of the read itself.
      if (errno === 1146 || errno === 1142 || errno === 1044 || errno === 1143) {
        this.noGlobalPriv = true;
        this.logger.debug({ err: (err as Error).message }, 'users from database: mysql.global_priv not readable; locked accounts are not recognised');
        return;
      }
      throw err;
    }
    const keys = new Set(locked.map((r) => `${column(r, 'User')}@${column(r, 'Host')}`));
    for (const row of rows) if (keys.has(`${column(row, 'User')}@${column(row, 'Host')}`)) row.account_locked = 'Y';
  }

  private apply(parsed: ParsedAccounts, endpoint: BackendEndpoint): void {
    for (const s of parsed.skipped) this.logger.debug({ user: s.user, host: s.host, reason: s.reason }, 'users from database: account skipped');
    const ambiguous = new Set(parsed.ambiguous);
    for (const name of ambiguous) {
      if (this.warnedAmbiguous.has(name)) continue;
      this.logger.warn({ user: name }, 'users from database: account has several hosts with different passwords and no \'%\' host; skipped');
    }
    this.warnedAmbiguous = ambiguous;
    const previous = this.users.size;
    this.users = parsed.users;
    for (const listener of this.listeners) listener(this.all());
    const fields = { accounts: parsed.users.size, primary: endpoint.name };
    if (this.failing) this.logger.info(fields, 'users from database: mysql.user read again');
    else if (!this.loadedOnce) this.logger.info(fields, 'users from database: accounts loaded from mysql.user');
    else if (previous !== parsed.users.size) this.logger.info({ ...fields, before: previous }, 'users from database: accounts changed');
    else this.logger.debug(fields, 'users from database: refreshed');
    this.failing = false;
    this.loadedOnce = true;
  }

  /** The open connection to `endpoint`, or a new one (the old one closed) when there is none or the primary changed. */
  private async connection(endpoint: BackendEndpoint): Promise<mysql.Connection> {
    const key = `${endpoint.host}:${endpoint.port}`;
    if (this.conn && this.connKey === key) return this.conn;
    this.closeConnection();
    const conn = await mysql.createConnection({
      host: endpoint.host,
      port: endpoint.port,
      user: this.config.user,
      password: this.config.password,
      connectTimeout: CONNECT_TIMEOUT_MS,
    });
    // A connection error between reads (server restart, KILL) must not become an uncaught 'error' event.
    conn.on('error', (err: Error) => {
      this.logger.debug({ err: err.message }, 'users from database: connection to the primary lost');
      if (this.conn === conn) this.closeConnection();
    });
    if (this.stopped) {
      conn.destroy();
      throw new Error('stopped');
    }
    this.conn = conn;
    this.connKey = key;
    return conn;
  }

  private closeConnection(): void {
    const conn = this.conn;
    this.conn = null;
    this.connKey = '';
    if (conn) conn.destroy();
  }
}
