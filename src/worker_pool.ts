/**
 * The main thread's side of the worker threads (`workers:` above 1): starts
 * them on the shared listening socket, restarts one that dies, and is the
 * one place for what runs once per process. The main thread's proxy keeps
 * the monitor, the binlog reader, the view reader, accounts from the
 * database and the login throttles; their news is posted to every worker,
 * and the workers' questions (a binlog wait, a KILL of another worker's
 * session, a max_user_connections place) are answered here.
 */
import { closeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { WirecacheConfig } from './config/types.js';
import type { Logger } from './logger.js';
import type { ProxyServer } from './proxy_server.js';
import { SharedListener } from './workers/shared_listener.js';
import { reviveBuffers, Rpc, type FromWorker, type MainQuestion, type SessionInfo, type ToWorker, type WorkerQuestion, type WorkerStart } from './workers/messages.js';

/** How long a restarted worker waits after its predecessor died (a worker that dies at once must not spin). */
const RESTART_DELAY_MS = 200;
const MAX_RESTART_DELAY_MS = 10_000;

/**
 * The worker thread's module. Run from the TypeScript sources (the tests),
 * the threads run the build of the same tree (npm run build), as Node
 * cannot load .ts in a worker by itself.
 */
function workerEntry(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../dist/worker_thread.js', here) : new URL('./worker_thread.js', here);
}

/** What the pool reports (metrics). */
export interface WorkerPoolObserver {
  workerRestarted(): void;
}

interface Slot {
  index: number;
  worker: Worker | null;
  rpc: Rpc | null;
  ready: boolean;
  /** Sessions of each account holding a max_user_connections place. */
  users: Map<string, number>;
  restartDelayMs: number;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly sessionCounts: Int32Array;
  private readonly nextIds: Uint32Array;
  private readonly binlogFlags: Int32Array | null;
  private stopping = false;
  private config: WirecacheConfig;

  private constructor(
    private readonly listener: SharedListener,
    private readonly count: number,
    config: WirecacheConfig,
    private readonly proxy: ProxyServer,
    private readonly logger: Logger,
    private readonly observer: WorkerPoolObserver,
    private readonly prettyLogs: boolean,
  ) {
    this.config = config;
    this.sessionCounts = new Int32Array(new SharedArrayBuffer(4 * count));
    this.nextIds = new Uint32Array(new SharedArrayBuffer(4 * count));
    this.binlogFlags = proxy.binlog ? new Int32Array(new SharedArrayBuffer(8)) : null;
    for (let i = 0; i < count; i++) this.slots.push({ index: i, worker: null, rpc: null, ready: false, users: new Map(), restartDelayMs: RESTART_DELAY_MS });
    this.follow();
  }

  /** Opens the shared listening socket and starts `count` workers on it; resolves when all listen. */
  static async start(count: number, config: WirecacheConfig, proxy: ProxyServer, logger: Logger, observer: WorkerPoolObserver, prettyLogs: boolean): Promise<WorkerPool> {
    const listener = await SharedListener.open(config.listen.host, config.listen.port);
    const pool = new WorkerPool(listener, count, config, proxy, logger, observer, prettyLogs);
    try {
      await Promise.all(pool.slots.map((slot) => pool.spawn(slot)));
    } catch (err) {
      await pool.stop(0);
      throw err;
    }
    logger.info({ host: listener.address.address, port: listener.address.port, workers: count }, 'listening for MySQL clients');
    return pool;
  }

  get address(): { address: string; port: number } {
    return this.listener.address;
  }

  /** Client sessions open in every worker. */
  get sessions(): number {
    let n = 0;
    for (let i = 0; i < this.count; i++) n += Atomics.load(this.sessionCounts, i);
    return n;
  }

  /** Client sessions open in worker `index`. */
  sessionsOf(index: number): number {
    return Atomics.load(this.sessionCounts, index);
  }

  /** The main thread's news, posted to every worker as it comes. */
  private follow(): void {
    const proxy = this.proxy;
    proxy.monitor?.onPublish((snapshot) => this.broadcast({ type: 'monitor', snapshot }));
    proxy.onSchema((schema) => this.broadcast({ type: 'schema', schema }));
    proxy.databaseUsers?.onRead((users) => this.broadcast({ type: 'users', users }));
    proxy.logins.onBlock((block) => this.broadcast({ type: 'blocked', ...block }));
    const flags = this.binlogFlags;
    if (flags && proxy.binlog) {
      proxy.binlog.onHealthChange((current, unhealthy) => {
        Atomics.store(flags, 0, current ? 1 : 0);
        Atomics.store(flags, 1, unhealthy ? 1 : 0);
      });
    }
  }

  private spawn(slot: Slot): Promise<void> {
    const proxy = this.proxy;
    const needsRsa = this.config.auth.defaultPlugin === 'caching_sha2_password';
    const start: WorkerStart = {
      index: slot.index,
      count: this.count,
      config: this.config,
      listenFd: this.listener.forWorker(),
      cacheSharing: proxy.cache?.sharing ?? null,
      binlogFlags: (this.binlogFlags?.buffer as SharedArrayBuffer | undefined) ?? null,
      sessionCounts: this.sessionCounts.buffer as SharedArrayBuffer,
      nextIds: this.nextIds.buffer as SharedArrayBuffer,
      blocks: proxy.logins.blocks(),
      monitor: proxy.monitor?.published() ?? null,
      databaseUsers: proxy.databaseUsers?.all() ?? [],
      schema: proxy.schema,
      rsaKeys: needsRsa ? proxy.rsaKeyPair() : null,
      prettyLogs: this.prettyLogs,
    };
    let worker: Worker;
    try {
      worker = new Worker(workerEntry(), { workerData: start });
    } catch (err) {
      closeSync(start.listenFd);
      throw err;
    }
    const threadId = worker.threadId;
    const rpc = new Rpc(worker);
    slot.worker = worker;
    slot.rpc = rpc;
    slot.ready = false;
    return new Promise<void>((resolve, reject) => {
      worker.on('message', (message: FromWorker) => {
        if (message.type === 'ready') {
          slot.ready = true;
          resolve();
        } else this.heard(slot, rpc, message);
      });
      worker.on('error', (err) => this.logger.error({ err, worker: slot.index }, 'worker thread failed'));
      worker.on('exit', (code) => {
        rpc.fail('worker thread ended');
        const wasReady = slot.ready;
        slot.worker = null;
        slot.rpc = null;
        slot.ready = false;
        // Its sessions are gone: their places in the limits with them.
        Atomics.store(this.sessionCounts, slot.index, 0);
        // Invalidations it had not sent to memcached yet are made in its place.
        proxy.cache?.threadEnded(slot.index);
        // Ended inside a write to the shared tier, it left the tier locked and half written.
        if (proxy.cache?.recoverFromThread(threadId)) this.logger.warn({ worker: slot.index }, 'the worker thread ended inside a write to the shared cache tier: its entries were dropped');
        slot.users.clear();
        if (!wasReady) reject(new Error(`worker ${slot.index} ended before it listened (exit code ${code})`));
        if (this.stopping) return;
        // A thread that fails again before it listens waits longer each time (up to MAX_RESTART_DELAY_MS).
        slot.restartDelayMs = wasReady ? RESTART_DELAY_MS : Math.min(MAX_RESTART_DELAY_MS, slot.restartDelayMs * 2);
        this.logger.error({ worker: slot.index, exit_code: code, restart_in_ms: slot.restartDelayMs }, 'worker thread ended; its client sessions are lost; starting a new one');
        this.observer.workerRestarted();
        this.restartLater(slot);
      });
    });
  }

  private restartLater(slot: Slot): void {
    setTimeout(() => {
      if (this.stopping) return;
      let started: Promise<void>;
      try {
        started = this.spawn(slot);
      } catch (err) {
        // No thread could be made (no memory, no descriptor): tried again later.
        this.logger.error({ err, worker: slot.index }, 'worker thread restart failed');
        slot.restartDelayMs = Math.min(MAX_RESTART_DELAY_MS, slot.restartDelayMs * 2);
        this.restartLater(slot);
        return;
      }
      started.catch((err: Error) => this.logger.error({ err, worker: slot.index }, 'worker thread restart failed'));
    }, slot.restartDelayMs).unref();
  }

  private heard(slot: Slot, rpc: Rpc, raw: FromWorker): void {
    const message = reviveBuffers(raw);
    switch (message.type) {
      case 'suspect':
        this.proxy.monitor?.suspect(message.server);
        break;
      case 'login_failed':
        this.proxy.loginFailed(message.address, message.user);
        break;
      case 'count_user':
        slot.users.set(message.user, (slot.users.get(message.user) ?? 0) + 1);
        break;
      case 'release_user': {
        const n = slot.users.get(message.user) ?? 0;
        if (n <= 1) slot.users.delete(message.user);
        else slot.users.set(message.user, n - 1);
        break;
      }
      case 'proxy_write':
        for (const listener of this.writeListeners) listener(message.tables);
        break;
      case 'request':
        rpc.answer(message.id, () => this.answer(slot, message.question));
        break;
      case 'reply':
        rpc.answered(message);
        break;
    }
  }

  private answer(slot: Slot, question: MainQuestion): unknown {
    switch (question.kind) {
      case 'binlog_wait':
        return this.proxy.binlog ? this.proxy.binlog.waitFor(question.gtid, question.timeoutMs) : false;
      case 'schema_changed':
        return this.proxy.views?.refresh();
      case 'reserve_user': {
        let n = 0;
        for (const s of this.slots) n += s.users.get(question.user) ?? 0;
        if (n >= question.limit) return false;
        slot.users.set(question.user, (slot.users.get(question.user) ?? 0) + 1);
        return true;
      }
      case 'find_session':
        return this.findSession(slot, question.targetId);
      case 'kill_thread':
        return this.firstAnswer<number>(slot, question.targetId, { kind: 'kill_thread', targetId: question.targetId, scope: question.scope, user: question.user });
      case 'session_action': {
        const owner = this.slots[question.worker];
        return owner ? this.ask<void>(owner, { kind: 'session_action', id: question.id, action: question.action }) : undefined;
      }
    }
  }

  /** The session a KILL names, in a worker other than the asking one. */
  private findSession(asking: Slot, targetId: number): Promise<SessionInfo | null> {
    return this.firstAnswer<SessionInfo>(asking, targetId, { kind: 'find_session', targetId });
  }

  /** Asks the workers that may hold session `targetId` (the owner of a proxy id; any other for a backend thread id): the first answer that is not null. */
  private async firstAnswer<T>(asking: Slot, targetId: number, question: WorkerQuestion): Promise<T | null> {
    const owner = this.proxy.ownerOf(targetId, this.count);
    const candidates = this.slots.filter((s) => s !== asking && (owner < 0 || s.index === owner));
    const answers = await Promise.all(candidates.map((s) => this.ask<T | null>(s, question).catch(() => null)));
    return answers.find((a) => a !== null) ?? null;
  }

  private ask<T>(slot: Slot, question: WorkerQuestion): Promise<T> {
    if (!slot.rpc || !slot.ready) return Promise.reject(new Error(`worker ${slot.index} is not running`));
    return slot.rpc.ask<T>(question);
  }

  /** Asks every running worker; a worker that fails to answer (it died meanwhile) is left out. */
  async gather<T>(question: WorkerQuestion): Promise<T[]> {
    const answers = await Promise.all(this.slots.map((s) => this.ask<T>(s, question).then((v) => ({ v }), () => null)));
    return answers.filter((a): a is { v: Awaited<T> } => a !== null).map((a) => a.v as T);
  }

  private broadcast(message: ToWorker): void {
    for (const slot of this.slots) slot.worker?.postMessage(message);
  }

  private readonly writeListeners: ((tables: readonly string[] | null) => void)[] = [];

  /** Hears every write made through a worker's SQL sessions (the memcached API's cache tier follows them). */
  onProxyWrite(listener: (tables: readonly string[] | null) => void): void {
    this.writeListeners.push(listener);
  }

  /** A reloaded config (already applied to the main thread's proxy) reaches every worker. */
  reload(config: WirecacheConfig): void {
    this.config = config;
    this.broadcast({ type: 'reload', config });
  }

  /** A worker's thread, for tests that end one (as a crash would). */
  thread(index: number): Worker | null {
    return this.slots[index]?.worker ?? null;
  }

  /** Drains every worker (no new connections; commands in flight finish within graceMs), then closes the listener. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const exits = this.slots.map((slot) => {
      const worker = slot.worker;
      if (!worker) return Promise.resolve();
      return new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage({ type: 'shutdown', graceMs } satisfies ToWorker);
        // A worker that does not end after its grace period is ended.
        setTimeout(() => void worker.terminate(), graceMs + 5000).unref();
      });
    });
    await Promise.all(exits);
    this.listener.close();
  }
}
