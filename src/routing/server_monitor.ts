/**
 * Health monitor of the backends: one long-lived connection per server,
 * checked every `intervalMs` (read_only, server_id, GTID position, replication
 * threads, lag), primary discovery from read_only, and a debounced "in read
 * rotation" flag per replica.
 *
 * Lag is measured with a heartbeat table: on the server believed to be the
 * primary the monitor upserts its own row (`proxy_id` is random per monitor
 * instance) with an increasing `seq`, and remembers in memory (a bounded ring)
 * when it wrote each seq, by its own monotonic clock. On a replica it reads
 * back its row: having the latest acknowledged seq means lag 0; otherwise the
 * lag is the age of the oldest write the replica does not have yet. No server
 * clocks are compared. Without a usable heartbeat (no table configured, the
 * write failed or was not allowed, or the replica has no row yet) the lag is
 * Seconds_Behind_Master.
 *
 * A round of checks probes every server in parallel, decides the primary,
 * writes a heartbeat on it, reads the heartbeat on the others, then updates
 * states and rotation flags and publishes new status snapshots.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import mysql from 'mysql2';
import type { Connection as CoreConnection, ResultSetHeader, RowDataPacket } from 'mysql2';
import type { Connection as PromiseConnection } from 'mysql2/promise';
import type { BackendConfig, MonitorConfig } from '../config/types.js';

export type ServerState = 'primary' | 'up' | 'lagging' | 'not_replicating' | 'down';

export interface ServerStatus {
  name: string;
  host: string;
  port: number;
  weight: number;
  configuredRole: 'primary' | 'replica';
  /** Instant state at the last check. */
  state: ServerState;
  /** The last check succeeded. */
  reachable: boolean;
  /** @@read_only at the last successful check. */
  readOnly: boolean | null;
  /** Slave_IO_Running and Slave_SQL_Running both 'Yes'; null when SHOW SLAVE STATUS is empty (not a replica) or unknown. */
  replicating: boolean | null;
  /** Replication lag in seconds (ms precision with the heartbeat); null when unknown, and for the primary. */
  lagSeconds: number | null;
  lagSource: 'heartbeat' | 'seconds_behind_master' | null;
  /** MariaDB @@global.gtid_current_pos (MySQL: @@global.gtid_executed) at the last successful check. */
  gtidPosition: string | null;
  serverId: number | null;
  /** Consecutive failed-or-unhealthy checks (reset to 0 by a good one). */
  consecutiveBad: number;
  consecutiveGood: number;
  /** May take reads (debounced: failAfter / recoverAfter). */
  inRotation: boolean;
  /** Why the last check was bad, human readable; null when it was good. */
  lastError: string | null;
  /** Date.now() of the last check; null before the first one. */
  lastCheckAt: number | null;
  flavor: 'mariadb' | 'mysql' | null;
}

export interface MonitorObserver {
  /** After every check of a server; `ok`: the server answered the check (it may still be unhealthy: see its state). */
  checkCompleted(server: string, ok: boolean, seconds: number): void;
  primaryChanged(from: string | null, to: string | null): void;
  stateChanged(server: string, from: ServerState, to: ServerState): void;
}

export const nullMonitorObserver: MonitorObserver = {
  checkCompleted() {},
  primaryChanged() {},
  stateChanged() {},
};

export interface MonitorLogger {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  debug?(o: object, m: string): void;
}

const silentLogger: MonitorLogger = { info() {}, warn() {} };

/** How many heartbeat writes the monitor remembers (seq → when written). */
const HEARTBEAT_RING = 1000;
/** On the very first check of a replica, how long to wait for the first heartbeat row to arrive there. */
const FIRST_HEARTBEAT_WAIT_MS = 1000;
/** suspect(): at most one extra round per this many ms. */
const SUSPECT_MIN_GAP_MS = 100;
/** stop(): how long a graceful COM_QUIT may take before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;

class CheckTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${ms} ms`);
    this.name = 'CheckTimeout';
  }
}

/** Races `p` against a timer; `onTimeout` runs when the timer wins. `p`'s later rejection is handled. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      try {
        onTimeout?.();
      } finally {
        reject(new CheckTimeout(what, ms));
      }
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function describeError(e: unknown): string {
  if (e instanceof CheckTimeout) return e.message;
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return code !== undefined && !e.message.includes(String(code)) ? `${String(code)}: ${e.message}` : e.message;
  }
  return String(e);
}

const isFatal = (e: unknown): boolean => e instanceof CheckTimeout || (e as { fatal?: unknown } | null)?.fatal === true;
const errno = (e: unknown): number | undefined => (e as { errno?: number } | null)?.errno;

function destroyCore(core: CoreConnection): void {
  try {
    core.destroy();
  } catch {
    /* already closed */
  }
  // close() only half-closes (FIN): make sure the socket goes away even if the server never answers.
  try {
    (core as unknown as { stream?: { destroy?: () => void } }).stream?.destroy?.();
  } catch {
    /* ignore */
  }
}

const quoteIdent = (s: string): string => `\`${s.replace(/`/g, '``')}\``;

interface ReplicaInfo {
  io: string;
  sql: string;
  secondsBehind: number | null;
  lastIoError: string;
  lastSqlError: string;
}

interface ProbeResult {
  ok: boolean;
  error: string | null;
  readOnly: boolean | null;
  serverId: number | null;
  gtid: string | null;
  flavor: 'mariadb' | 'mysql' | null;
  /** undefined: unknown (SHOW SLAVE STATUS not allowed); null: not a replica. */
  replica: ReplicaInfo | null | undefined;
  ms: number;
}

interface Entry {
  cfg: BackendConfig;
  status: ServerStatus;
  core: CoreConnection | null;
  conn: PromiseConnection | null;
  /** Bumped whenever the connection is dropped: a connect or check of an older generation is stale. */
  gen: number;
  /** Flavor of the current connection (null until asked). */
  connFlavor: 'mariadb' | 'mysql' | null;
  /** Statement that worked for the replica status on this server. */
  replicaStatusSql: string | null;
  /** The heartbeat table was verified on the current connection. */
  hbReady: boolean;
  /** binlog_format allows the single-statement guarded heartbeat write (not STATEMENT). */
  hbGuarded: boolean;
  checked: boolean;
  warnedReplicaStatus: boolean;
}

export class ServerMonitor {
  /** This monitor's row in the heartbeat table. */
  readonly proxyId: string;

  private readonly entries = new Map<string, Entry>();
  private readonly order: Entry[] = [];
  private readonly cfg: MonitorConfig;
  private readonly maxLag: number;
  private readonly observer: MonitorObserver;
  private readonly log: MonitorLogger;
  private readonly listeners: ((from: string | null, to: string | null) => void)[] = [];
  private readonly hb: { schema: string; table: string; qualified: string } | null;
  private readonly hbPeriodMs: number;

  private primaryName: string | null;
  /** Last primary that was the unique writable server (or the configured one). */
  private lastKnownPrimary: string | null;
  private conflict: string[] = [];
  private conflictKey = '';

  private snapshot: ServerStatus[] = [];
  private byName = new Map<string, ServerStatus>();
  private targets: ServerStatus[] = [];

  // heartbeat writer
  private hbSeq = 0;
  private hbLatestSeq = 0;
  private readonly hbRing: { seq: number; at: number }[] = [];
  private hbOk = false;
  private hbFailReason: string | null = null;
  private hbInflight: Promise<void> | null = null;

  // scheduling
  private startPromise: Promise<void> | null = null;
  private stopPromise: Promise<void> | null = null;
  private stopped = false;
  private running: Promise<void> | null = null;
  private pending: Promise<void> | null = null;
  private roundTimer: NodeJS.Timeout | null = null;
  private hbTimer: NodeJS.Timeout | null = null;
  private suspectTimer: NodeJS.Timeout | null = null;
  private lastRoundEndedAt = -Infinity;

  constructor(
    servers: BackendConfig[],
    config: MonitorConfig,
    maxReplicationLagSeconds: number,
    observer: MonitorObserver = nullMonitorObserver,
    logger: MonitorLogger = silentLogger,
  ) {
    this.cfg = config;
    this.maxLag = maxReplicationLagSeconds;
    this.observer = observer;
    this.log = logger;
    this.proxyId = `${os.hostname().slice(0, 40)}-${process.pid}-${randomBytes(4).toString('hex')}`.slice(0, 64);
    for (const b of servers) {
      if (this.entries.has(b.name)) throw new Error(`duplicate backend name ${b.name}`);
      const e: Entry = {
        cfg: b,
        status: {
          name: b.name,
          host: b.host,
          port: b.port,
          weight: b.weight,
          configuredRole: b.role,
          state: 'down',
          reachable: false,
          readOnly: null,
          replicating: null,
          lagSeconds: null,
          lagSource: null,
          gtidPosition: null,
          serverId: null,
          consecutiveBad: 0,
          consecutiveGood: 0,
          inRotation: false,
          lastError: null,
          lastCheckAt: null,
          flavor: null,
        },
        core: null,
        conn: null,
        gen: 0,
        connFlavor: null,
        replicaStatusSql: null,
        hbReady: false,
        hbGuarded: true,
        checked: false,
        warnedReplicaStatus: false,
      };
      this.entries.set(b.name, e);
      this.order.push(e);
    }
    this.primaryName = servers.find((b) => b.role === 'primary')?.name ?? null;
    this.lastKnownPrimary = this.primaryName;
    if (config.heartbeatTable) {
      const dot = config.heartbeatTable.indexOf('.');
      const schema = dot > 0 ? config.heartbeatTable.slice(0, dot) : 'wirecache';
      const table = dot > 0 ? config.heartbeatTable.slice(dot + 1) : config.heartbeatTable;
      this.hb = { schema, table, qualified: `${quoteIdent(schema)}.${quoteIdent(table)}` };
    } else {
      this.hb = null;
    }
    this.hbPeriodMs = Math.max(100, Math.floor(config.intervalMs / 4));
    this.publish();
  }

  // -------------------------------------------------------------------------
  // public API

  /** One full round of checks, then a round every intervalMs. Resolves after the first round, even if servers are down. */
  start(): Promise<void> {
    if (this.startPromise) return this.startPromise;
    this.startPromise = (async () => {
      await this.runRound();
      if (this.stopped) return;
      this.roundTimer = setInterval(() => {
        if (!this.running && !this.pending) void this.runRound();
      }, this.cfg.intervalMs);
      this.roundTimer.unref();
      if (this.hb) {
        this.hbTimer = setInterval(() => void this.writeHeartbeat(), this.hbPeriodMs);
        this.hbTimer.unref();
      }
    })();
    return this.startPromise;
  }

  /** Stops the timers, waits for a round in flight, closes every connection. Idempotent. */
  stop(): Promise<void> {
    if (this.stopPromise) return this.stopPromise;
    this.stopped = true;
    for (const t of [this.roundTimer, this.hbTimer]) if (t) clearInterval(t);
    if (this.suspectTimer) clearTimeout(this.suspectTimer);
    this.roundTimer = this.hbTimer = this.suspectTimer = null;
    this.stopPromise = (async () => {
      await Promise.allSettled([this.running, this.pending, this.hbInflight, this.startPromise].filter((p) => p !== null));
      await Promise.all(this.order.map((e) => this.closeConn(e)));
    })();
    return this.stopPromise;
  }

  /** One round now (waits for a round in flight first, so the result reflects the state after the call). */
  checkNow(): Promise<void> {
    return this.runRound();
  }

  /** Status snapshots of every configured server, in configuration order (replaced after each round). */
  servers(): readonly ServerStatus[] {
    return this.snapshot;
  }

  server(name: string): ServerStatus | undefined {
    return this.byName.get(name);
  }

  /** The primary (see the class comment); null while several servers are writable at once. */
  primary(): ServerStatus | null {
    return this.primaryName === null ? null : (this.byName.get(this.primaryName) ?? null);
  }

  /** Names of the reachable servers that are writable at once when more than one is; [] otherwise. */
  writableConflict(): string[] {
    return [...this.conflict];
  }

  /** Servers other than the primary that are in the read rotation. */
  readTargets(): ServerStatus[] {
    return [...this.targets];
  }

  onPrimaryChange(listener: (from: string | null, to: string | null) => void): void {
    this.listeners.push(listener);
  }

  /** The proxy saw a connection to `name` fail: check again now rather than at the next interval (the K rule still applies). */
  suspect(name: string): void {
    if (this.stopped || !this.startPromise || !this.entries.has(name) || this.suspectTimer) return;
    const wait = Math.max(0, this.lastRoundEndedAt + SUSPECT_MIN_GAP_MS - performance.now());
    this.log.debug?.({ server: name }, 'backend suspected, checking now');
    this.suspectTimer = setTimeout(() => {
      this.suspectTimer = null;
      void this.runRound();
    }, wait);
    this.suspectTimer.unref();
  }

  // -------------------------------------------------------------------------
  // rounds

  private runRound(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.pending) return this.pending;
    if (this.running) {
      const p: Promise<void> = this.running.then(() => {
        if (this.pending === p) this.pending = null;
        return this.runRound();
      });
      this.pending = p;
      return p;
    }
    const r: Promise<void> = this.round()
      .catch((e: unknown) => {
        this.log.warn({ err: describeError(e) }, 'monitor round failed');
      })
      .finally(() => {
        this.lastRoundEndedAt = performance.now();
        if (this.running === r) this.running = null;
      });
    this.running = r;
    return r;
  }

  private async round(): Promise<void> {
    const entries = this.order;
    const probes = await Promise.all(entries.map((e) => this.probe(e)));
    if (this.stopped) return;

    // 1. what every server said
    for (let i = 0; i < entries.length; i++) {
      const s = entries[i].status;
      const p = probes[i];
      s.reachable = p.ok;
      if (p.ok) {
        s.readOnly = p.readOnly;
        s.serverId = p.serverId;
        s.gtidPosition = p.gtid;
        s.flavor = p.flavor;
        if (p.replica !== undefined) s.replicating = p.replica === null ? null : p.replica.io === 'Yes' && p.replica.sql === 'Yes';
      }
      s.lagSeconds = null;
      s.lagSource = null;
    }

    // 2. primary discovery
    const writable = entries.filter((e) => e.status.reachable && e.status.readOnly === false).map((e) => e.cfg.name);
    const previousPrimary = this.primaryName;
    if (writable.length === 1) {
      this.primaryName = writable[0];
      this.lastKnownPrimary = writable[0];
    } else if (writable.length > 1) {
      this.primaryName = null;
    } else {
      this.primaryName = this.lastKnownPrimary;
    }
    this.conflict = writable.length > 1 ? writable : [];
    const conflictKey = this.conflict.join(',');
    if (conflictKey !== '' && conflictKey !== this.conflictKey) {
      this.log.warn({ servers: this.conflict }, 'several backends are writable (read_only=OFF) at once: refusing to pick a primary');
    } else if (conflictKey === '' && this.conflictKey !== '') {
      this.log.info({ primary: this.primaryName }, 'writable conflict resolved');
    }
    this.conflictKey = conflictKey;

    // 3. heartbeat on the primary
    if (this.hb) await this.writeHeartbeat();
    if (this.stopped) return;

    // 4. lag of the other servers
    const extraMs = new Array<number>(entries.length).fill(0);
    await Promise.all(
      entries.map(async (e, i) => {
        const p = probes[i];
        if (!p.ok || e.cfg.name === this.primaryName) return;
        const t0 = performance.now();
        try {
          if (this.hb && this.hbOk) {
            const row = await this.readHeartbeat(e, e.checked ? 0 : Math.min(this.cfg.checkTimeoutMs, FIRST_HEARTBEAT_WAIT_MS));
            if (row !== null) {
              e.status.lagSeconds = this.lagOf(row.seq, row.at);
              e.status.lagSource = 'heartbeat';
              return;
            }
          }
          const sbm = p.replica?.secondsBehind ?? null;
          if (sbm !== null) {
            e.status.lagSeconds = sbm;
            e.status.lagSource = 'seconds_behind_master';
          }
        } catch (err) {
          // the server stopped answering between the probe and the heartbeat read
          p.ok = false;
          p.error = `heartbeat read: ${describeError(err)}`;
          e.status.reachable = false;
        } finally {
          extraMs[i] = performance.now() - t0;
        }
      }),
    );
    if (this.stopped) return;

    // 5. states and rotation
    const now = Date.now();
    const failAfter = Math.max(1, this.cfg.failAfter);
    const recoverAfter = Math.max(1, this.cfg.recoverAfter);
    const changes: { name: string; from: ServerState; to: ServerState }[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      const s = e.status;
      const p = probes[i];
      const from = s.state;
      const first = !e.checked;
      let error: string | null = null;
      let state: ServerState;
      if (!p.ok) {
        state = 'down';
        error = p.error ?? 'check failed';
      } else if (e.cfg.name === this.primaryName) {
        state = 'primary';
      } else if (s.replicating === false) {
        state = 'not_replicating';
        const r = p.replica;
        const why = [r?.lastIoError, r?.lastSqlError].filter((x) => x !== undefined && x !== '').join('; ');
        error = `replication stopped: ${why !== '' ? why : `Slave_IO_Running=${r?.io ?? '?'}, Slave_SQL_Running=${r?.sql ?? '?'}`}`;
      } else if (s.lagSeconds !== null && s.lagSeconds > this.maxLag) {
        state = 'lagging';
        error = `lag ${s.lagSeconds.toFixed(1)} s > ${this.maxLag} s`;
      } else {
        state = 'up';
      }
      const good = state === 'up' || state === 'primary';
      if (good) {
        s.consecutiveGood++;
        s.consecutiveBad = 0;
      } else {
        s.consecutiveBad++;
        s.consecutiveGood = 0;
      }
      if (first) s.inRotation = good;
      else if (s.inRotation && !good && s.consecutiveBad >= failAfter) s.inRotation = false;
      else if (!s.inRotation && good && s.consecutiveGood >= recoverAfter) s.inRotation = true;
      s.state = state;
      s.lastError = error;
      s.lastCheckAt = now;
      e.checked = true;
      if (!first && from !== state) changes.push({ name: e.cfg.name, from, to: state });
    }
    this.publish();

    // 6. tell the world
    if (previousPrimary !== this.primaryName) {
      this.log.info({ from: previousPrimary, to: this.primaryName }, 'primary changed');
      this.safely(() => this.observer.primaryChanged(previousPrimary, this.primaryName));
      for (const l of this.listeners) this.safely(() => l(previousPrimary, this.primaryName));
    }
    for (const c of changes) {
      const s = this.byName.get(c.name);
      const o = { server: c.name, from: c.from, to: c.to, error: s?.lastError ?? null, inRotation: s?.inRotation };
      if (c.to === 'up' || c.to === 'primary') this.log.info(o, 'backend state changed');
      else this.log.warn(o, 'backend state changed');
      this.safely(() => this.observer.stateChanged(c.name, c.from, c.to));
    }
    for (let i = 0; i < entries.length; i++) {
      const seconds = (probes[i].ms + extraMs[i]) / 1000;
      this.safely(() => this.observer.checkCompleted(entries[i].cfg.name, probes[i].ok, seconds));
    }
  }

  private publish(): void {
    this.snapshot = this.order.map((e) => ({ ...e.status }));
    this.byName = new Map(this.snapshot.map((s) => [s.name, s]));
    this.targets = this.snapshot.filter((s) => s.name !== this.primaryName && s.inRotation);
  }

  private safely(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.log.warn({ err: describeError(e) }, 'monitor listener threw');
    }
  }

  // -------------------------------------------------------------------------
  // connections and checks

  private async getConn(e: Entry): Promise<PromiseConnection> {
    if (e.conn) return e.conn;
    const gen = e.gen;
    const core = mysql.createConnection({
      host: e.cfg.host,
      port: e.cfg.port,
      user: this.cfg.user,
      password: this.cfg.password,
      connectTimeout: this.cfg.checkTimeoutMs,
      multipleStatements: false,
    });
    // Attached before anything can happen: an 'error' without listener would crash the process.
    core.on('error', (err: unknown) => {
      this.log.debug?.({ server: e.cfg.name, err: describeError(err) }, 'monitor connection error');
      if (e.core === core) this.dropConn(e);
      else destroyCore(core);
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: unknown): void => {
        core.removeListener('connect', onConnect);
        reject(err);
      };
      const onConnect = (): void => {
        core.removeListener('error', onError);
        resolve();
      };
      core.once('error', onError);
      core.once('connect', onConnect);
    }).catch((err: unknown) => {
      destroyCore(core);
      throw err;
    });
    if (this.stopped || e.gen !== gen) {
      // the check that wanted it timed out meanwhile (or we are stopping)
      destroyCore(core);
      throw new Error('connection abandoned');
    }
    e.core = core;
    e.conn = core.promise();
    e.connFlavor = null;
    e.hbReady = false;
    return e.conn;
  }

  /** Forgets (and destroys) the connection; with `gen`, only if it is still that generation's. */
  private dropConn(e: Entry, gen?: number): void {
    if (gen !== undefined && gen !== e.gen) return;
    e.gen++;
    const core = e.core;
    e.core = null;
    e.conn = null;
    e.hbReady = false;
    if (core) destroyCore(core);
  }

  private async closeConn(e: Entry): Promise<void> {
    const core = e.core;
    e.gen++;
    e.core = null;
    e.conn = null;
    if (!core) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => {
        try {
          core.end(() => resolve());
        } catch {
          resolve();
        }
      }),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    destroyCore(core);
  }

  private async probe(e: Entry): Promise<ProbeResult> {
    const t0 = performance.now();
    const gen = e.gen;
    try {
      const r = await withTimeout(this.doProbe(e), this.cfg.checkTimeoutMs, 'check', () => this.dropConn(e, gen));
      r.ms = performance.now() - t0;
      return r;
    } catch (err) {
      if (isFatal(err)) this.dropConn(e, gen);
      return {
        ok: false,
        error: describeError(err),
        readOnly: null,
        serverId: null,
        gtid: null,
        flavor: null,
        replica: undefined,
        ms: performance.now() - t0,
      };
    }
  }

  private async doProbe(e: Entry): Promise<ProbeResult> {
    const conn = await this.getConn(e);
    if (e.connFlavor === null) {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT @@version AS ver');
      e.connFlavor = /mariadb/i.test(String(rows[0]?.ver ?? '')) ? 'mariadb' : 'mysql';
    }
    const flavor = e.connFlavor;
    const gtidVar = flavor === 'mariadb' ? '@@global.gtid_current_pos' : '@@global.gtid_executed';
    const [vars] = await conn.query<RowDataPacket[]>(
      `SELECT @@global.read_only AS ro, @@server_id AS sid, @@version AS ver, ${gtidVar} AS gtid`,
    );
    const v = vars[0] ?? {};
    const replica = await this.replicaStatus(e, conn, flavor);
    const gtid = v.gtid === null || v.gtid === undefined ? null : String(v.gtid).replace(/\s+/g, '');
    return {
      ok: true,
      error: null,
      readOnly: Number(v.ro) !== 0,
      serverId: v.sid === null || v.sid === undefined ? null : Number(v.sid),
      gtid,
      flavor,
      replica,
      ms: 0,
    };
  }

  private async replicaStatus(e: Entry, conn: PromiseConnection, flavor: 'mariadb' | 'mysql'): Promise<ReplicaInfo | null | undefined> {
    const candidates = e.replicaStatusSql
      ? [e.replicaStatusSql]
      : flavor === 'mariadb'
        ? ['SHOW SLAVE STATUS']
        : ['SHOW REPLICA STATUS', 'SHOW SLAVE STATUS'];
    let lastErr: unknown;
    for (const sql of candidates) {
      let rows: RowDataPacket[];
      try {
        [rows] = await conn.query<RowDataPacket[]>(sql);
      } catch (err) {
        if (isFatal(err)) throw err;
        lastErr = err;
        if (errno(err) === 1064) continue; // syntax: try the older statement
        break;
      }
      e.replicaStatusSql = sql;
      const r = rows[0];
      if (r === undefined) return null;
      const str = (a: unknown, b: unknown): string => String(a ?? b ?? '');
      const sbm = r.Seconds_Behind_Master ?? r.Seconds_Behind_Source ?? null;
      return {
        io: str(r.Slave_IO_Running, r.Replica_IO_Running),
        sql: str(r.Slave_SQL_Running, r.Replica_SQL_Running),
        secondsBehind: sbm === null ? null : Number(sbm),
        lastIoError: str(r.Last_IO_Error, ''),
        lastSqlError: str(r.Last_SQL_Error, ''),
      };
    }
    if (!e.warnedReplicaStatus) {
      e.warnedReplicaStatus = true;
      this.log.warn(
        { server: e.cfg.name, err: describeError(lastErr) },
        'cannot read the replication status (the monitor user needs REPLICATION CLIENT / SLAVE MONITOR)',
      );
    }
    return undefined;
  }

  // -------------------------------------------------------------------------
  // heartbeat

  private writeHeartbeat(): Promise<void> {
    if (this.stopped || !this.hb) return Promise.resolve();
    if (this.hbInflight) return this.hbInflight;
    const p = this.doWriteHeartbeat()
      .catch((err: unknown) => this.setHeartbeat(false, describeError(err), true))
      .finally(() => {
        if (this.hbInflight === p) this.hbInflight = null;
      });
    this.hbInflight = p;
    return p;
  }

  private async doWriteHeartbeat(): Promise<void> {
    const p = this.primaryName === null ? undefined : this.entries.get(this.primaryName);
    const skip =
      p === undefined
        ? 'no primary'
        : this.conflict.length > 0
          ? 'several servers are writable'
          : !p.status.reachable || p.conn === null
            ? 'primary unreachable'
            : p.status.readOnly !== false
              ? 'primary is read_only'
              : null;
    if (skip !== null || p === undefined || p.conn === null) {
      this.setHeartbeat(false, skip ?? 'no primary', false);
      return;
    }
    const gen = p.gen;
    try {
      // No connection drop on timeout: the next check of the primary decides about it.
      const wrote = await withTimeout(this.writeOn(p, p.conn), this.cfg.checkTimeoutMs, 'heartbeat write');
      if (wrote) this.setHeartbeat(true, null, false);
      else this.setHeartbeat(false, `${p.cfg.name} is read_only`, false);
    } catch (err) {
      if (isFatal(err) && !(err instanceof CheckTimeout)) this.dropConn(p, gen);
      this.setHeartbeat(false, `heartbeat write on ${p.cfg.name} failed: ${describeError(err)}`, true);
    }
  }

  /** Writes the next seq on `p`; false (nothing written) when the server is read_only. */
  private async writeOn(p: Entry, conn: PromiseConnection): Promise<boolean> {
    const hb = this.hb;
    if (!hb) return false;
    if (!p.hbReady) {
      const [rows] = await conn.query<RowDataPacket[]>(
        'SELECT @@global.read_only AS ro, @@session.binlog_format AS bf, ' +
          '(SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?) AS n',
        [hb.schema, hb.table],
      );
      const r = rows[0] ?? {};
      if (Number(r.ro) !== 0) return false;
      if (Number(r.n) === 0) {
        // Only when missing: CREATE ... IF NOT EXISTS is binlogged even when the object exists.
        await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(hb.schema)}`);
        await conn.query(
          `CREATE TABLE IF NOT EXISTS ${hb.qualified} (proxy_id VARCHAR(64) PRIMARY KEY, seq BIGINT NOT NULL, written_at_us BIGINT NOT NULL) ENGINE=InnoDB`,
        );
        this.log.info({ server: p.cfg.name, table: `${hb.schema}.${hb.table}` }, 'created the heartbeat table');
      }
      // With statement-based binlogging the guarded INSERT ... SELECT would be replayed
      // on read-only replicas and insert nothing there.
      p.hbGuarded = String(r.bf ?? '').toUpperCase() !== 'STATEMENT';
      p.hbReady = true;
    }
    const seq = ++this.hbSeq;
    const at = performance.now();
    const values = [this.proxyId, seq, Date.now() * 1000];
    let res: ResultSetHeader;
    if (p.hbGuarded) {
      // read_only is checked by the statement itself: a SUPER account could write
      // on a read-only server, which would break GTID replication.
      [res] = await conn.query<ResultSetHeader>(
        `INSERT INTO ${hb.qualified} (proxy_id, seq, written_at_us) SELECT ?, ?, ? FROM DUAL WHERE @@global.read_only = 0 ` +
          'ON DUPLICATE KEY UPDATE seq = VALUES(seq), written_at_us = VALUES(written_at_us)',
        values,
      );
    } else {
      const [ro] = await conn.query<RowDataPacket[]>('SELECT @@global.read_only AS ro');
      if (Number(ro[0]?.ro) !== 0) return false;
      [res] = await conn.query<ResultSetHeader>(
        `INSERT INTO ${hb.qualified} (proxy_id, seq, written_at_us) VALUES (?, ?, ?) ` +
          'ON DUPLICATE KEY UPDATE seq = VALUES(seq), written_at_us = VALUES(written_at_us)',
        values,
      );
    }
    if (res.affectedRows === 0) return false;
    this.hbRing.push({ seq, at });
    if (this.hbRing.length > HEARTBEAT_RING) this.hbRing.shift();
    this.hbLatestSeq = seq;
    return true;
  }

  private setHeartbeat(ok: boolean, reason: string | null, isError: boolean): void {
    if (ok) {
      if (!this.hbOk && this.hbFailReason !== null) this.log.info({}, 'heartbeat writes work again: lag measured with the heartbeat');
      this.hbOk = true;
      this.hbFailReason = null;
      return;
    }
    this.hbOk = false;
    if (reason !== this.hbFailReason) {
      const o = { reason, table: this.hb ? `${this.hb.schema}.${this.hb.table}` : null };
      if (isError) this.log.warn(o, 'heartbeat not written: lag falls back to Seconds_Behind_Master');
      else this.log.debug?.(o, 'heartbeat not written: lag falls back to Seconds_Behind_Master');
    }
    this.hbFailReason = reason;
  }

  /**
   * This monitor's heartbeat seq on `e` (and when it was read), or null when
   * the server has no row (or no table) yet. Waits up to `waitMs` for a row to
   * appear (first check only). Throws when the server does not answer.
   */
  private async readHeartbeat(e: Entry, waitMs: number): Promise<{ seq: number; at: number } | null> {
    const hb = this.hb;
    if (!hb) return null;
    const deadline = performance.now() + waitMs;
    for (;;) {
      const conn = e.conn;
      if (!conn) throw new Error('connection lost');
      const gen = e.gen;
      let rows: RowDataPacket[];
      try {
        [rows] = await withTimeout(
          conn.query<RowDataPacket[]>(`SELECT seq FROM ${hb.qualified} WHERE proxy_id = ?`, [this.proxyId]),
          this.cfg.checkTimeoutMs,
          'heartbeat read',
          () => this.dropConn(e, gen),
        );
      } catch (err) {
        if (isFatal(err)) {
          this.dropConn(e, gen);
          throw err;
        }
        // 1146 no such table, 1049 no such database (not replicated yet), 1142 no privilege...
        rows = [];
      }
      const at = performance.now();
      if (rows[0] !== undefined) return { seq: Number(rows[0].seq), at };
      if (at >= deadline || this.stopped || !this.hbOk) return null;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Lag in seconds of a replica that has heartbeat `seq` at time `at` (performance.now()). */
  private lagOf(seq: number, at: number): number {
    if (seq >= this.hbLatestSeq) return 0;
    // the oldest write the replica does not have (the ring is in seq order)
    const missing = this.hbRing.find((w) => w.seq > seq) ?? this.hbRing[this.hbRing.length - 1];
    if (missing === undefined) return 0;
    return Math.max(0, Math.round(at - missing.at)) / 1000;
  }
}
