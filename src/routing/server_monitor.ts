/**
 * Health monitor of the backends: one long-lived connection per server,
 * checked every `intervalMs` (read_only, server_id, GTID position, replication
 * threads, lag), primary discovery from read_only, and a debounced "in read
 * rotation" flag per replica.
 *
 * Lag is measured with a heartbeat table (see heartbeat.ts). Without a usable
 * heartbeat (no table configured, the write failed or was not allowed, or the
 * replica has no row yet) the lag is Seconds_Behind_Master.
 *
 * A round of checks probes every server in parallel (monitored_server.ts),
 * decides the primary, writes a heartbeat on it, reads the heartbeat on the
 * others, then updates states and rotation flags and publishes new status
 * snapshots (server_status.ts).
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { BackendConfig, MonitorConfig } from '../config/types.js';
import { Heartbeat } from './heartbeat.js';
import { describeError, MonitoredServer, type MonitorContext } from './monitored_server.js';
import { nullMonitorObserver, type MonitorLogger, type MonitorObserver, type ServerState, type ServerStatus } from './server_status.js';
import type { MonitorSnapshot, MonitorView } from './mirrored_monitor.js';

const silentLogger: MonitorLogger = { info() {}, warn() {} };

/** On the very first check of a replica, how long to wait for the first heartbeat row to arrive there. */
const FIRST_HEARTBEAT_WAIT_MS = 1000;
/** suspect(): at most one extra round per this many ms. */
const SUSPECT_MIN_GAP_MS = 100;

export class ServerMonitor implements MonitorView {
  /** This monitor's row in the heartbeat table. */
  readonly proxyId: string;

  private readonly entries = new Map<string, MonitoredServer>();
  private readonly order: MonitoredServer[] = [];
  private readonly cfg: MonitorConfig;
  private readonly maxLag: number;
  private readonly observer: MonitorObserver;
  private readonly log: MonitorLogger;
  private readonly listeners: ((from: string | null, to: string | null) => void)[] = [];
  private readonly publishListeners: ((snapshot: MonitorSnapshot) => void)[] = [];
  private readonly hb: Heartbeat | null;
  private readonly hbPeriodMs: number;

  private primaryName: string | null;
  /** Last primary that was the unique writable server (or the configured one). */
  private lastKnownPrimary: string | null;
  private conflict: string[] = [];
  private conflictKey = '';

  private snapshot: ServerStatus[] = [];
  private byName = new Map<string, ServerStatus>();
  private targets: ServerStatus[] = [];

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
    const ctx: MonitorContext = { cfg: config, log: logger, stopped: () => this.stopped };
    for (const b of servers) {
      if (this.entries.has(b.name)) throw new Error(`duplicate backend name ${b.name}`);
      const e = new MonitoredServer(b, ctx);
      this.entries.set(b.name, e);
      this.order.push(e);
    }
    this.primaryName = servers.find((b) => b.role === 'primary')?.name ?? null;
    this.lastKnownPrimary = this.primaryName;
    this.hb = config.heartbeatTable
      ? new Heartbeat(config.heartbeatTable, {
          proxyId: this.proxyId,
          checkTimeoutMs: config.checkTimeoutMs,
          log: logger,
          stopped: () => this.stopped,
          primary: () => (this.primaryName === null ? undefined : this.entries.get(this.primaryName)),
          conflict: () => this.conflict.length > 0,
        })
      : null;
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
      await Promise.allSettled([this.running, this.pending, this.hb?.inflight ?? null, this.startPromise].filter((p) => p !== null));
      await Promise.all(this.order.map((e) => e.closeConn()));
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
    const probes = await Promise.all(entries.map((e) => e.probe()));
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
          if (this.hb && this.hb.ok) {
            const row = await this.hb.read(e, e.checked ? 0 : Math.min(this.cfg.checkTimeoutMs, FIRST_HEARTBEAT_WAIT_MS));
            if (row !== null) {
              e.status.lagSeconds = this.hb.lagOf(row.seq, row.at);
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
    const rotation: { name: string; joined: boolean }[] = [];
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
      const wasInRotation = s.inRotation;
      if (first) s.inRotation = good;
      else if (s.inRotation && !good && s.consecutiveBad >= failAfter) s.inRotation = false;
      else if (!s.inRotation && good && s.consecutiveGood >= recoverAfter) s.inRotation = true;
      s.state = state;
      s.lastError = error;
      s.lastCheckAt = now;
      e.checked = true;
      if (!first && from !== state) changes.push({ name: e.cfg.name, from, to: state });
      if (!first && wasInRotation !== s.inRotation && e.cfg.name !== this.primaryName) rotation.push({ name: e.cfg.name, joined: s.inRotation });
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
      const o = { server: c.name, from: c.from, to: c.to, error: s?.lastError ?? null, in_rotation: s?.inRotation };
      if (c.to === 'up' || c.to === 'primary') this.log.info(o, 'backend state changed');
      else this.log.warn(o, 'backend state changed');
      this.safely(() => this.observer.stateChanged(c.name, c.from, c.to));
    }
    // One line each time a replica leaves or rejoins the read rotation (after fail_after / recover_after checks in a row).
    for (const r of rotation) {
      const s = this.byName.get(r.name);
      const o = { server: r.name, state: s?.state, error: s?.lastError ?? null, lag_seconds: s?.lagSeconds ?? null, replicas_in_rotation: this.targets.length };
      if (r.joined) this.log.info(o, 'replica rejoined the read rotation');
      else this.log.warn(o, 'replica left the read rotation');
    }
    for (let i = 0; i < entries.length; i++) {
      const seconds = (probes[i].ms + extraMs[i]) / 1000;
      this.safely(() => this.observer.checkCompleted(entries[i].cfg.name, probes[i].ok, seconds));
    }
  }

  /** One heartbeat write on the primary (see heartbeat.ts); joins a write in flight. */
  private writeHeartbeat(): Promise<void> {
    return this.hb ? this.hb.write() : Promise.resolve();
  }

  private publish(): void {
    this.snapshot = this.order.map((e) => ({ ...e.status }));
    this.byName = new Map(this.snapshot.map((s) => [s.name, s]));
    this.targets = this.snapshot.filter((s) => s.name !== this.primaryName && s.inRotation);
    const published = this.published();
    for (const listener of this.publishListeners) this.safely(() => listener(published));
  }

  /** The current state as worker threads mirror it. */
  published(): MonitorSnapshot {
    return { servers: this.snapshot, primary: this.primaryName, conflict: [...this.conflict] };
  }

  /** Hears every new state (after each round): the worker threads' mirrors follow it. */
  onPublish(listener: (snapshot: MonitorSnapshot) => void): void {
    this.publishListeners.push(listener);
  }

  private safely(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.log.warn({ err: describeError(e) }, 'monitor listener threw');
    }
  }
}
