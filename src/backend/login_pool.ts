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
import { performance } from 'node:perf_hooks';
import type { BackendEndpoint } from '../config/types.js';
import { Capability } from '../protocol/constants.js';
import { type BackendConnection, type BackendLogin, TRACKING_STATEMENTS } from './backend_connection.js';
import { loginKey } from './login_key.js';
import { PoolExhaustedError, type LoginPoolOptions } from './pool_limits.js';

/** What the pool reports, without knowing Prometheus. */
export interface LoginPoolObserver {
  /** A client got a kept connection instead of a backend login. */
  loginSaved(server: string): void;
  /** A connection handed back was kept, or closed (reset failed, pool full, database not restorable). */
  released(server: string, outcome: 'kept' | 'closed'): void;
  /** A new connection waited for a server at its limit: it got one, or its wait timed out. */
  waited(server: string, outcome: 'served' | 'timeout'): void;
  /** A connection made fit for another client: reset, handed over as it was (only plain reads ran), or reset for a first question about diagnostics. */
  resetOutcome(server: string, outcome: 'reset' | 'skipped' | 'on_demand'): void;
}

interface Waiter {
  /** Whose share it counts against ("server\u0001user"). */
  userKey: string;
  /** Ends its current sleep (set while it sleeps). */
  wake: (() => void) | null;
}

/** A reset that takes longer than this closes the connection instead. */
const RESET_DEADLINE_MS = 5000;
/** How long a lent connection waits for its session before it is reset for anyone (multiplexing). */
const PARK_MS = 100;
/** One sweep of lent connections this often while there are any: they are taken after PARK_MS to PARK_MS + SWEEP_MS. */
const SWEEP_MS = 25;

/**
 * A session that lends its connections at rest to the pool (multiplexing).
 * A lent connection stays with its session, unreset, until the pool takes
 * it: then `surrender` lets go of it (true), or says it is no longer lent
 * (false: the session closed or dropped it meanwhile, and the pool forgets it).
 */
export interface Lender {
  surrender(conn: BackendConnection): boolean;
}

interface Lent {
  conn: BackendConnection;
  key: string;
  login: BackendLogin;
  lender: Lender;
  /** performance.now() when it was lent. */
  since: number;
}

interface Idle {
  conn: BackendConnection;
  key: string;
  /** The login it was made with. */
  login: BackendLogin;
  timer: NodeJS.Timeout;
  /** When it became idle (the oldest goes first when a server needs room). */
  since: number;
  /** Its login's account. */
  user: string;
}

/** One server's connections in a pool: open, idle among them, and sessions waiting for one. */
export interface PoolUsage {
  open: number;
  idle: number;
  waiting: number;
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
  /**
   * Connections lent by their sessions between statements (multiplexing), in
   * the order they were lent: a lend costs two map operations, and the
   * session that takes its own back (the usual case) pays one more.
   */
  private readonly lent = new Map<BackendConnection, Lent>();
  /** Lent connections per server (counted as idle in usage()). */
  private readonly lentPerServer = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Sessions holding their login's connection before their first command, by server: asked to give it back under pressure. */
  private readonly reclaimers = new Map<string, Set<() => void>>();
  private closed = false;

  constructor(
    private options: LoginPoolOptions,
    private readonly observer: LoginPoolObserver,
  ) {}

  /** New limits (a reload): idle connections beyond them go at their next use or timeout. */
  reconfigure(options: LoginPoolOptions): void {
    this.options = options;
    // Raised limits may let waiters in.
    for (const server of this.waiting.keys()) this.wakeAll(server);
  }

  /** Per server: connections open (idle included), idle, and new connections waiting for one. */
  usage(server: string): PoolUsage {
    const idle = (this.perServer.get(server) ?? 0) + (this.lentPerServer.get(server) ?? 0);
    return { open: this.openPerServer.get(server) ?? 0, idle, waiting: this.waiting.get(server)?.length ?? 0 };
  }

  /**
   * A connection for a session: a kept one of exactly this login, else a new
   * one from `connect`. At the server's limit it waits (FIFO) for a
   * connection to end, first closing an idle one of another login to make
   * room; after queue_timeout it fails with PoolExhaustedError (ERR 1040).
   */
  async acquire(endpoint: BackendEndpoint, login: BackendLogin, connect: () => Promise<BackendConnection>): Promise<BackendConnection> {
    const server = endpoint.name;
    const userKey = `${server}\u0001${login.user}`;
    // Another session's lent connection only at a limit: taking it costs a reset, and that session then takes
    // another's, and so on round (a new connection, while there is room, ends that).
    const atALimit = this.atLimit(server) || this.userAtLimit(userKey);
    const kept = this.take(endpoint, login) ?? (atALimit ? await this.takeParked(endpoint, login) : null);
    if (kept) return kept;
    const started = Date.now();
    let me: Waiter | null = null;
    try {
      for (;;) {
        // First come, first served: a waiter ahead that could use room goes first. The account's share is
        // checked before the server's (only its own idle connections can make room for it).
        const mustWait =
          this.someoneAhead(server, me) ||
          (this.userAtLimit(userKey) ? !this.closeOneIdle(server, login.user) : this.atLimit(server) && !this.closeOneIdle(server, null));
        if (!mustWait) break;
        if (!me) {
          me = { userKey, wake: null };
          this.waitersOf(server).push(me);
        }
        // A session that has not sent its first command yet gives its login's connection back (lent).
        if (this.reclaimOne(server)) {
          const given = await this.takeParked(endpoint, login);
          if (given) {
            this.observer.waited(server, 'served');
            return given;
          }
          continue;
        }
        const left = this.options.queueTimeoutMs - (Date.now() - started);
        if (left <= 0 || !(await this.sleep(me, left))) {
          this.observer.waited(server, 'timeout');
          throw new PoolExhaustedError(endpoint, login.user, this.userAtLimit(userKey) ? this.options.maxConnectionsPerUser : null, this.options.maxConnectionsPerServer, Date.now() - started);
        }
        // A connection of this login may have come back meanwhile.
        const back = this.take(endpoint, login) ?? (await this.takeParked(endpoint, login));
        if (back) {
          this.observer.waited(server, 'served');
          return back;
        }
      }
      if (me) this.observer.waited(server, 'served');
    } finally {
      if (me) {
        const list = this.waitersOf(server);
        list.splice(list.indexOf(me), 1);
      }
    }
    this.count(this.openPerServer, server, 1);
    this.count(this.openPerUser, userKey, 1);
    const ended = () => {
      this.count(this.openPerServer, server, -1);
      this.count(this.openPerUser, userKey, -1);
      this.wakeAll(server);
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

  /**
   * A session keeps its login's connection for its first command, which
   * nearly always follows at once; while it has not come, a connection
   * waiting for room on `server` may ask for it (`giveBack` lends it). The
   * returned function withdraws the offer.
   */
  offer(server: string, giveBack: () => void): () => void {
    let set = this.reclaimers.get(server);
    if (!set) {
      set = new Set();
      this.reclaimers.set(server, set);
    }
    set.add(giveBack);
    return () => {
      set.delete(giveBack);
      if (set.size === 0 && this.reclaimers.get(server) === set) this.reclaimers.delete(server);
    };
  }

  private reclaimOne(server: string): boolean {
    const set = this.reclaimers.get(server);
    if (!set) return false;
    for (const giveBack of set) {
      set.delete(giveBack);
      if (set.size === 0) this.reclaimers.delete(server);
      giveBack();
      return true;
    }
    return false;
  }

  private waitersOf(server: string): Waiter[] {
    let list = this.waiting.get(server);
    if (!list) {
      list = [];
      this.waiting.set(server, list);
    }
    return list;
  }

  /** A waiter before `me` (before everyone when `me` is null) that its own account's share does not block. */
  private someoneAhead(server: string, me: Waiter | null): boolean {
    for (const w of this.waiting.get(server) ?? []) {
      if (w === me) return false;
      if (!this.userAtLimit(w.userKey)) return true;
    }
    return false;
  }

  private sleep(me: Waiter, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        me.wake = null;
        resolve(false);
      }, timeoutMs);
      timer.unref();
      me.wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  /** Room may have appeared on `server`: every waiter looks again, in order (those still blocked keep their place). */
  private wakeAll(server: string): void {
    const waiters = this.waiting.get(server);
    if (waiters === undefined) return;
    for (const w of waiters) {
      const wake = w.wake;
      w.wake = null;
      wake?.();
    }
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

  /** Closes the oldest idle connection to `server` (of `user`'s logins when given), else a lent one, if there is one. */
  private closeOneIdle(server: string, user: string | null): boolean {
    let oldest: Idle | null = null;
    for (const list of this.idle.values()) {
      for (const entry of list) {
        if (entry.conn.endpoint.name !== server || (user !== null && entry.user !== user)) continue;
        if (!oldest || entry.since < oldest.since) oldest = entry;
      }
    }
    if (oldest) {
      this.remove(oldest);
      oldest.conn.quit();
      return true;
    }
    for (const entry of this.lent.values()) {
      if (entry.conn.endpoint.name !== server || (user !== null && entry.login.user !== user) || entry.conn.busy) continue;
      if (!this.takeLent(entry)) continue;
      entry.conn.quit();
      return true;
    }
    return false;
  }




  /** The newest kept (reset) connection made with exactly this login to this server, or null. */
  take(endpoint: BackendEndpoint, login: BackendLogin): BackendConnection | null {
    const key = loginKey(endpoint, login);
    for (;;) {
      const list = this.idle.get(key);
      if (!list || list.length === 0) return null;
      const entry = list[list.length - 1];
      this.remove(entry);
      if (entry.conn.closed) continue;
      this.observer.loginSaved(endpoint.name);
      return entry.conn;
    }
  }

  /** A connection another session lent under this login, reset first (one round trip); null when there is none. */
  private async takeParked(endpoint: BackendEndpoint, login: BackendLogin): Promise<BackendConnection | null> {
    const key = loginKey(endpoint, login);
    for (;;) {
      let found: Lent | null = null;
      for (const entry of this.lent.values()) {
        if (entry.key === key && !entry.conn.busy && this.takeLent(entry)) {
          found = entry;
          break;
        }
      }
      if (!found) return null;
      if (await this.cleanFor(found.conn, found.login)) {
        this.observer.released(endpoint.name, 'kept');
        this.observer.loginSaved(endpoint.name);
        return found.conn;
      }
      found.conn.destroy();
      this.observer.released(endpoint.name, 'closed');
    }
  }

  /**
   * Multiplexing: a session between statements lends `conn`, which stays
   * with it, unreset. The session takes it back as it is (reclaim) when it
   * needs it again; after PARK_MS, or when another session needs it first at
   * a limit, the pool takes it (the session surrenders it) and resets it.
   */
  lend(conn: BackendConnection, login: BackendLogin, lender: Lender): void {
    if (this.closed || conn.closed) return;
    const server = conn.endpoint.name;
    // Lent again without being taken back: it moves to the end, where the sweep expects the youngest.
    if (this.lent.delete(conn)) this.count(this.lentPerServer, server, -1);
    this.lent.set(conn, { conn, key: loginKey(conn.endpoint, login), login, lender, since: performance.now() });
    this.count(this.lentPerServer, server, 1);
    if (this.sweepTimer === null) {
      this.sweepTimer = setInterval(() => this.sweepLent(), SWEEP_MS);
      this.sweepTimer.unref();
    }
    // A new connection waiting for this server can have it (same login) or have it closed to make room.
    this.wakeAll(server);
  }

  /** `lender` takes back `conn`, which it lent and the pool has not taken: true when it was still lent. */
  reclaim(conn: BackendConnection, lender: Lender): boolean {
    const entry = this.lent.get(conn);
    if (entry === undefined || entry.lender !== lender) return false;
    this.lent.delete(conn);
    this.count(this.lentPerServer, conn.endpoint.name, -1);
    return true;
  }

  /** The pool takes a lent connection from its session: false when the session no longer had it (forgotten then). */
  private takeLent(entry: Lent): boolean {
    this.lent.delete(entry.conn);
    this.count(this.lentPerServer, entry.conn.endpoint.name, -1);
    return !entry.conn.closed && entry.lender.surrender(entry.conn);
  }

  /** Connections lent PARK_MS ago or more, not taken back: reset for anyone (or closed when the pool is full). */
  private sweepLent(): void {
    const now = performance.now();
    for (const entry of this.lent.values()) {
      // In the order they were lent: the rest are younger.
      if (now - entry.since < PARK_MS) break;
      // An internal statement of its session runs on it: the session is using it.
      if (entry.conn.busy) continue;
      if (this.takeLent(entry)) void this.release(entry.conn, entry.login);
    }
    if (this.lent.size === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  /**
   * A client left: resets `conn` and keeps it under `login`, or closes it.
   * The caller has already detached it from its session and has no command in flight on it.
   */
  release(conn: BackendConnection, login: BackendLogin): Promise<void> {
    const server = conn.endpoint.name;
    if (this.closed || conn.closed || this.options.maxIdlePerServer === 0 || (this.perServer.get(server) ?? 0) >= this.options.maxIdlePerServer) {
      conn.quit();
      this.observer.released(server, 'closed');
      return Promise.resolve();
    }
    return this.cleanFor(conn, login).then((ok) => {
      if (ok && !this.closed && !conn.closed && (this.perServer.get(server) ?? 0) < this.options.maxIdlePerServer) {
        this.keep(conn, loginKey(conn.endpoint, login), login);
        this.observer.released(server, 'kept');
      } else {
        conn.destroy();
        this.observer.released(server, 'closed');
      }
    });
  }

  /**
   * Makes `conn` fit for another client of `login`: reset, unless only plain
   * reads ran on it since its login or last reset (it is then as a fresh
   * login left it, but for the last read's diagnostics, which the next
   * client's first command either replaces or, asking about them, resets: see
   * BackendConnection.inheritedDiagnostics). False when the reset fails.
   */
  private cleanFor(conn: BackendConnection, login: BackendLogin): Promise<boolean> {
    if (!conn.dirty) {
      conn.inheritedDiagnostics = true;
      this.observer.resetOutcome(conn.endpoint.name, 'skipped');
      return Promise.resolve(!conn.closed);
    }
    this.observer.resetOutcome(conn.endpoint.name, 'reset');
    return this.resetWithin(conn, login);
  }

  /** A session's first statement on a connection handed over unreset asks about the diagnostics it inherited: the reset, now. */
  resetNow(conn: BackendConnection, login: BackendLogin): Promise<boolean> {
    this.observer.resetOutcome(conn.endpoint.name, 'on_demand');
    return this.resetWithin(conn, login);
  }

  /** The reset, false when it fails or takes too long: a dead or stopped server must not hold the connection, and its slot, for ever. */
  private resetWithin(conn: BackendConnection, login: BackendLogin): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), RESET_DEADLINE_MS);
      timer.unref();
    });
    return Promise.race([this.reset(conn, login), deadline]).then(
      (ok) => {
        clearTimeout(timer);
        return ok;
      },
      () => {
        clearTimeout(timer);
        return false;
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
    // Lent connections are their sessions' still: they close with them.
    this.lent.clear();
    this.lentPerServer.clear();
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
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
    for (const entry of this.lent.values()) if (entry.conn.endpoint.name === server && this.takeLent(entry)) entry.conn.quit();
  }

  /**
   * The reset and everything after it in one write and one round trip. The
   * checks are SELECTs that find no row when all is well, and come first: the
   * statements after them leave FOUND_ROWS() and ROW_COUNT() as a fresh login does.
   */
  private async reset(conn: BackendConnection, login: BackendLogin): Promise<boolean> {
    conn.resets++;
    const statements = [
      // The reset keeps the current role (MariaDB 10.11): only a connection without one is kept, so that no client
      // inherits another's role. (An account with a default role therefore gets no kept connections.)
      'SELECT 1 FROM DUAL WHERE CURRENT_ROLE() IS NOT NULL',
      // The reset keeps the default database: the login's comes back (a login without one cannot be restored).
      login.database === null ? 'SELECT 1 FROM DUAL WHERE DATABASE() IS NOT NULL' : `USE \`${login.database.replace(/`/g, '``')}\``,
    ];
    // Two things a login's capabilities do that the reset undoes (it gives every variable its global value).
    if (conn.capabilities & Capability.IGNORE_SPACE) statements.push("SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@session.sql_mode, ''), 'IGNORE_SPACE')");
    if (conn.capabilities & Capability.INTERACTIVE) statements.push('SET SESSION wait_timeout = @@global.interactive_timeout');
    // As a fresh login does (BackendConnection.connect): whatever the last client did to the tracking.
    const tracking = login.trackSession && (conn.capabilities & Capability.SESSION_TRACK) !== 0;
    if (tracking) statements.push(...TRACKING_STATEMENTS);
    const { error, results } = await conn.resetSession(statements);
    if (error || conn.closed) return false;
    const ours = results.slice(0, tracking ? -2 : undefined);
    if (ours.some((r) => r.error) || ours[0].rows.length > 0 || ours[1].rows.length > 0) return false;
    if (tracking) conn.trackingStarted(results[results.length - 2], results[results.length - 1]);
    conn.dirty = false;
    conn.inheritedDiagnostics = false;
    return true;
  }

  private keep(conn: BackendConnection, key: string, login: BackendLogin): void {
    const server = conn.endpoint.name;
    const entry: Idle = {
      conn,
      key,
      login,
      since: Date.now(),
      user: login.user,
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
    this.wakeAll(server);
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
