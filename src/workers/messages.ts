/**
 * What the main thread and the worker threads say to each other
 * (src/worker_pool.ts, src/worker_thread.ts): plain objects, copied by
 * postMessage's structured clone. Requests carry an id and are answered by
 * one reply with that id (class Rpc).
 */
import type { MessagePort } from 'node:worker_threads';
import type { Worker } from 'node:worker_threads';
import type { PrimarySchema } from '../cache/schema_catalog.js';
import type { CacheSharing } from '../cache/query_cache.js';
import type { UserConfig, WirecacheConfig, BackendEndpoint } from '../config/types.js';
import type { MonitorSnapshot } from '../routing/mirrored_monitor.js';
import type { DigestRecord } from '../session/query_stats.js';

/** What a worker thread starts with (its workerData). */
export interface WorkerStart {
  index: number;
  count: number;
  config: WirecacheConfig;
  listenFd: number;
  cacheSharing: CacheSharing | null;
  /** [current, unhealthy] of the main thread's binlog reader, 0 or 1 each; null without a reader. */
  binlogFlags: SharedArrayBuffer | null;
  /** Client sessions open per worker (one Int32 slot each). */
  sessionCounts: SharedArrayBuffer;
  /** Each worker's next connection id (one Uint32 slot each). */
  nextIds: SharedArrayBuffer;
  /** Login blocks in force: a restarted worker applies them at once. */
  blocks: { kind: 'address' | 'account'; key: string; until: number }[];
  monitor: MonitorSnapshot | null;
  databaseUsers: UserConfig[];
  schema: PrimarySchema | null;
  rsaKeys: { publicKeyPem: Buffer; privateKey: import('node:crypto').KeyObject } | null;
  /** Log lines for a person (as the main thread's), or JSON. */
  prettyLogs: boolean;
}

/** A session of a worker, as another worker's KILL asks for it. */
export interface SessionInfo {
  worker: number;
  id: number;
  user: string | null;
  backendThreads: { endpoint: BackendEndpoint; threadId: number }[];
}

export type SessionAction = { kind: 'kill_pending'; on: boolean } | { kind: 'killed'; idle: boolean; reason: string };

/** Questions the main thread asks a worker. */
export type WorkerQuestion =
  | { kind: 'metrics' }
  | { kind: 'query_stats' }
  | { kind: 'query_stats_reset' }
  | { kind: 'cache_counts' }
  | { kind: 'pool_usage' }
  | { kind: 'find_session'; targetId: number }
  | { kind: 'kill_thread'; targetId: number; scope: 'connection' | 'query'; user: string | null }
  | { kind: 'session_action'; id: number; action: SessionAction };

/** Questions a worker asks the main thread. */
export type MainQuestion =
  | { kind: 'binlog_wait'; gtid: string; timeoutMs: number }
  | { kind: 'schema_changed' }
  | { kind: 'reserve_user'; user: string; limit: number }
  | { kind: 'find_session'; targetId: number }
  | { kind: 'kill_thread'; targetId: number; scope: 'connection' | 'query'; user: string | null }
  /** Done in worker `worker` before the answer: a KILL's target knows of it before the server acts. */
  | { kind: 'session_action'; worker: number; id: number; action: SessionAction };

export type ToWorker =
  | { type: 'monitor'; snapshot: MonitorSnapshot }
  | { type: 'schema'; schema: PrimarySchema }
  | { type: 'users'; users: UserConfig[] }
  | { type: 'blocked'; kind: 'address' | 'account'; key: string; until: number }
  | { type: 'reload'; config: WirecacheConfig }
  | { type: 'shutdown'; graceMs: number }
  | { type: 'request'; id: number; question: WorkerQuestion }
  | { type: 'reply'; id: number; value: unknown; error?: string };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'suspect'; server: string }
  | { type: 'login_failed'; address: string; user: string }
  | { type: 'count_user'; user: string }
  | { type: 'release_user'; user: string }
  | { type: 'proxy_write'; tables: string[] | null }
  | { type: 'request'; id: number; question: MainQuestion }
  | { type: 'reply'; id: number; value: unknown; error?: string };

/** A worker's query statistics, to be summed. */
export interface QueryStatsPart {
  records: DigestRecord[];
  evicted: number;
}

type Port = Pick<MessagePort, 'postMessage'> | Pick<Worker, 'postMessage'>;

/** How long a question waits for its answer (beyond its own wait, for a binlog wait) before it fails. */
const ANSWER_TIMEOUT_MS = 10_000;

/**
 * Requests over a port, each answered by one reply; unanswered ones fail
 * after ANSWER_TIMEOUT_MS, or when the other side goes away (a thread whose
 * event loop is stuck must not hang the others).
 */
export class Rpc {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();

  constructor(private readonly port: Port) {}

  ask<T>(question: WorkerQuestion | MainQuestion): Promise<T> {
    const id = this.nextId++;
    const timeoutMs = ANSWER_TIMEOUT_MS + ('timeoutMs' in question ? question.timeoutMs : 0);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${question.kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.port.postMessage({ type: 'request', id, question });
    });
  }

  /** A reply arrived. */
  answered(message: { id: number; value: unknown; error?: string }): void {
    const waiter = this.pending.get(message.id);
    if (!waiter) return;
    this.pending.delete(message.id);
    clearTimeout(waiter.timer);
    if (message.error !== undefined) waiter.reject(new Error(message.error));
    else waiter.resolve(reviveBuffers(message.value));
  }

  /** Answers a request with `answer`'s value (or its error). */
  answer(id: number, answer: () => unknown): void {
    let result: unknown;
    try {
      result = answer();
    } catch (err) {
      this.port.postMessage({ type: 'reply', id, value: null, error: (err as Error).message });
      return;
    }
    void Promise.resolve(result).then(
      (value) => this.port.postMessage({ type: 'reply', id, value }),
      (err: Error) => this.port.postMessage({ type: 'reply', id, value: null, error: err.message }),
    );
  }

  /** The other side is gone: every request in flight fails. */
  fail(reason: string): void {
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(reason));
    }
    this.pending.clear();
  }
}

/**
 * Structured clone turns a Buffer into a plain Uint8Array: the config's
 * password digests and the like become Buffers again (in place, recursively).
 */
export function reviveBuffers<T>(value: T): T {
  return revive(value, new Set()) as T;
}

function revive(value: unknown, seen: Set<object>): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (seen.has(value)) return value;
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = revive(value[i], seen);
  } else if (value instanceof Map) {
    for (const [k, v] of value) value.set(k, revive(v, seen));
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = revive(record[key], seen);
  }
  return value;
}
