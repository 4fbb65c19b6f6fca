/**
 * Logged-in backend connections kept after their client left, so that the
 * next client of the same account gets one without a backend login: what
 * makes a PHP-style "connect, one query, disconnect" cost the database no
 * new thread and no authentication.
 *
 * A connection is kept only under the exact login it was made with (server,
 * user and password, database, character set, capabilities, TLS, tracking),
 * so it is indistinguishable from a fresh login of the same kind. Before it
 * is kept, COM_RESET_CONNECTION gives it a fresh session's state (MariaDB
 * rolls back, detaches a prepared XA transaction, releases GET_LOCK and table
 * locks, drops temporary tables, user variables and prepared statements, and
 * gives session variables their global values, the login's character set
 * included); the default database, which the reset keeps, is set back to the
 * login's; what the login's capabilities did to sql_mode (IGNORE_SPACE) and
 * wait_timeout (INTERACTIVE) is done again; and the proxy's tracking is set again, with the same statements a
 * fresh login runs (so even FOUND_ROWS() and ROW_COUNT() start as after one).
 * A connection whose reset fails, or that cannot get its login's database
 * back, is closed.
 */
import type { BackendEndpoint } from '../config/types.js';
import { Capability } from '../protocol/constants.js';
import { type BackendConnection, BackendError, type BackendLogin, TRACKING_STATEMENTS } from './backend_connection.js';

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

/** What the pool reports, without knowing Prometheus. */
export interface LoginPoolObserver {
  /** A client got a kept connection instead of a backend login. */
  loginSaved(server: string): void;
  /** A connection handed back was kept, or closed (reset failed, pool full, database not restorable). */
  released(server: string, outcome: 'kept' | 'closed'): void;
  /** A new connection waited for a server at its limit: it got one, or its wait timed out. */
  waited(server: string, outcome: 'served' | 'timeout'): void;
}

interface Waiter {
  wake(): void;
}

interface Idle {
  conn: BackendConnection;
  key: string;
  timer: NodeJS.Timeout;
  /** When it became idle (the oldest goes first when a server needs room). */
  since: number;
  /** Its login's account. */
  user: string;
}

export class LoginPool {
  /** Idle connections by login key, newest last. */
  private readonly idle = new Map<string, Idle[]>();
  private readonly perServer = new Map<string, number>();
  /** Connections open per server that this pool counts (handed out or idle). */
  private readonly openPerServer = new Map<string, number>();
  /** The same per server and account ("server\u0001user"). */
  private readonly openPerUser = new Map<string, number>();
  private readonly waiting = new Map<string, Waiter[]>();
  private closed = false;

  constructor(
    private options: LoginPoolOptions,
    private readonly observer: LoginPoolObserver,
  ) {}

  /** New limits (a reload): idle connections beyond them go at their next use or timeout. */
  reconfigure(options: LoginPoolOptions): void {
    this.options = options;
  }

  /** Idle connections per server name. */
  idleByServer(): ReadonlyMap<string, number> {
    return this.perServer;
  }

  /** Per server: connections open (idle included), idle, and new connections waiting for one. */
  usage(server: string): { open: number; idle: number; waiting: number } {
    return { open: this.openPerServer.get(server) ?? 0, idle: this.perServer.get(server) ?? 0, waiting: this.waiting.get(server)?.length ?? 0 };
  }

  /**
   * A connection for a session: a kept one of exactly this login, else a new
   * one from `connect`. At the server's limit it waits (FIFO) for a
   * connection to end, first closing an idle one of another login to make
   * room; after queue_timeout it fails with PoolExhaustedError (ERR 1040).
   */
  async acquire(endpoint: BackendEndpoint, login: BackendLogin, connect: () => Promise<BackendConnection>): Promise<BackendConnection> {
    const kept = this.take(endpoint, login);
    if (kept) return kept;
    const server = endpoint.name;
    const userKey = `${server}\u0001${login.user}`;
    const started = Date.now();
    let queued = false;
    for (;;) {
      // The account's share first (only its own idle connections can make room for it), then the server's.
      const full = this.userAtLimit(userKey) ? !this.closeOneIdle(server, login.user) : this.atLimit(server) ? !this.closeOneIdle(server, null) : false;
      if (!full) break;
      queued = true;
      const left = this.options.queueTimeoutMs - (Date.now() - started);
      if (left <= 0 || !(await this.waitForRoom(server, left))) {
        this.observer.waited(server, 'timeout');
        throw new PoolExhaustedError(endpoint, login.user, this.userAtLimit(userKey) ? this.options.maxConnectionsPerUser : null, this.options.maxConnectionsPerServer, Date.now() - started);
      }
      // A connection of this login may have come back meanwhile.
      const back = this.take(endpoint, login);
      if (back) {
        this.observer.waited(server, 'served');
        return back;
      }
    }
    if (queued) this.observer.waited(server, 'served');
    this.count(this.openPerServer, server, 1);
    this.count(this.openPerUser, userKey, 1);
    const ended = () => {
      this.count(this.openPerServer, server, -1);
      this.count(this.openPerUser, userKey, -1);
      this.waiting.get(server)?.shift()?.wake();
    };
    let conn: BackendConnection;
    try {
      conn = await connect();
    } catch (err) {
      ended();
      throw err;
    }
    conn.onEnd(ended);
    return conn;
  }

  private count(map: Map<string, number>, key: string, by: 1 | -1): void {
    const n = (map.get(key) ?? 0) + by;
    if (n > 0) map.set(key, n);
    else map.delete(key);
  }

  private atLimit(server: string): boolean {
    const max = this.options.maxConnectionsPerServer;
    return max > 0 && (this.openPerServer.get(server) ?? 0) >= max;
  }

  private userAtLimit(userKey: string): boolean {
    const max = this.options.maxConnectionsPerUser;
    return max > 0 && (this.openPerUser.get(userKey) ?? 0) >= max;
  }

  /** Closes the oldest idle connection to `server` (of `user`'s logins when given), if there is one. */
  private closeOneIdle(server: string, user: string | null): boolean {
    let oldest: Idle | null = null;
    for (const list of this.idle.values()) {
      for (const entry of list) {
        if (entry.conn.endpoint.name !== server || (user !== null && entry.user !== user)) continue;
        if (!oldest || entry.since < oldest.since) oldest = entry;
      }
    }
    if (!oldest) return false;
    this.remove(oldest);
    oldest.conn.quit();
    return true;
  }

  private waitForRoom(server: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const list = this.waiting.get(server) ?? [];
      const waiter: Waiter = {
        wake: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        const at = list.indexOf(waiter);
        if (at >= 0) list.splice(at, 1);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      list.push(waiter);
      this.waiting.set(server, list);
    });
  }


  /** A kept connection made with exactly this login to this server, or null. */
  take(endpoint: BackendEndpoint, login: BackendLogin): BackendConnection | null {
    const key = loginKey(endpoint, login);
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const entry = list.pop() as Idle;
      if (list.length === 0) this.idle.delete(key);
      this.forget(entry);
      if (entry.conn.closed) continue;
      this.observer.loginSaved(endpoint.name);
      return entry.conn;
    }
    return null;
  }

  /**
   * A client left: resets `conn` and keeps it under `login`, or closes it.
   * The caller has already detached it from its session and has no command in flight on it.
   */
  release(conn: BackendConnection, login: BackendLogin): void {
    const server = conn.endpoint.name;
    if (this.closed || conn.closed || this.options.maxIdlePerServer === 0 || (this.perServer.get(server) ?? 0) >= this.options.maxIdlePerServer) {
      conn.quit();
      this.observer.released(server, 'closed');
      return;
    }
    void this.reset(conn, login).then(
      (ok) => {
        if (ok && !this.closed && !conn.closed && (this.perServer.get(server) ?? 0) < this.options.maxIdlePerServer) {
          this.keep(conn, loginKey(conn.endpoint, login), login.user);
          this.observer.released(server, 'kept');
        } else {
          conn.quit();
          this.observer.released(server, 'closed');
        }
      },
      () => {
        conn.destroy();
        this.observer.released(server, 'closed');
      },
    );
  }

  /** Closes every idle connection (shutdown), and keeps none from now on. */
  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) {
      for (const entry of list) {
        clearTimeout(entry.timer);
        entry.conn.quit();
      }
    }
    this.idle.clear();
    this.perServer.clear();
  }

  /** Closes the idle connections to `server` (it went down, or is no longer what it was). */
  dropServer(server: string): void {
    for (const [key, list] of this.idle) {
      const keep = list.filter((entry) => {
        if (entry.conn.endpoint.name !== server) return true;
        clearTimeout(entry.timer);
        entry.conn.quit();
        return false;
      });
      if (keep.length > 0) this.idle.set(key, keep);
      else this.idle.delete(key);
    }
    this.perServer.delete(server);
  }

  /** The reset and everything after it in one write and one round trip. */
  private async reset(conn: BackendConnection, login: BackendLogin): Promise<boolean> {
    // The reset keeps the default database: the login's comes back (a login without one cannot be restored).
    const statements = [login.database === null ? 'SELECT DATABASE() IS NULL' : `USE \`${login.database.replace(/`/g, '``')}\``];
    // Two things a login's capabilities do that the reset undoes (it gives every variable its global value).
    if (conn.capabilities & Capability.IGNORE_SPACE) statements.push("SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@session.sql_mode, ''), 'IGNORE_SPACE')");
    if (conn.capabilities & Capability.INTERACTIVE) statements.push('SET SESSION wait_timeout = @@global.interactive_timeout');
    // As a fresh login does (BackendConnection.connect): whatever the last client did to the tracking.
    const tracking = login.trackSession && (conn.capabilities & Capability.SESSION_TRACK) !== 0;
    if (tracking) statements.push(...TRACKING_STATEMENTS);
    const { error, results } = await conn.resetSession(statements);
    if (error || conn.closed) return false;
    const [check] = results;
    if (results.slice(0, tracking ? -2 : undefined).some((r) => r.error)) return false;
    if (login.database === null && check.rows[0]?.[0] !== '1') return false;
    if (tracking) conn.trackingStarted(results[results.length - 2], results[results.length - 1]);
    return true;
  }

  private keep(conn: BackendConnection, key: string, user: string): void {
    const server = conn.endpoint.name;
    const entry: Idle = {
      conn,
      key,
      since: Date.now(),
      user,
      timer: setTimeout(() => {
        this.remove(entry);
        conn.quit();
      }, this.options.idleTimeoutMs),
    };
    entry.timer.unref();
    // The server may end an idle connection (wait_timeout, a restart, KILL): it then leaves the pool.
    // Anything it sends meanwhile (an error before it closes) would be read as the next client's reply.
    conn.attach(
      () => {
        this.remove(entry);
        conn.destroy();
      },
      () => this.remove(entry),
    );
    const list = this.idle.get(key) ?? [];
    list.push(entry);
    this.idle.set(key, list);
    this.perServer.set(server, (this.perServer.get(server) ?? 0) + 1);
    // A new connection waiting for this server can have it (same login) or have it closed to make room.
    this.waiting.get(server)?.shift()?.wake();
  }

  private remove(entry: Idle): void {
    const list = this.idle.get(entry.key);
    const at = list?.indexOf(entry) ?? -1;
    if (!list || at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) this.idle.delete(entry.key);
    this.forget(entry);
  }

  /** Bookkeeping of an entry leaving the pool (taken or removed). */
  private forget(entry: Idle): void {
    clearTimeout(entry.timer);
    const server = entry.conn.endpoint.name;
    const n = (this.perServer.get(server) ?? 1) - 1;
    if (n > 0) this.perServer.set(server, n);
    else this.perServer.delete(server);
    entry.conn.detach();
  }
}

/** Everything a login decides about the session it makes. */
function loginKey(endpoint: BackendEndpoint, login: BackendLogin): string {
  return [
    endpoint.host,
    endpoint.port,
    login.user,
    login.passwordSha1?.toString('hex') ?? '',
    login.database ?? '\0',
    login.characterSet,
    login.capabilities,
    login.mariaDbCapabilities,
    login.tls ? `tls:${login.tls.verify}` : 'plain',
    login.trackSession ? 'track' : 'plain',
  ].join('\u0001');
}
