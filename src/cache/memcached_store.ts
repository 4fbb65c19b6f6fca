/**
 * The shared cache store: entries and generation counters in memcached (one or
 * several servers; memjs spreads keys over them by hash), via memjs.
 *
 * Nothing here ever throws or rejects, and nothing a client sees can come from
 * memcached: every operation has a time budget (`timeoutMs`, plus 1 ms per
 * 20 KB of entry moved) raced by our own timer, and one that runs over it, or fails,
 * resolves as a miss / failure and is reported through
 * `observer.memcachedProblem(op, 'timeout' | 'error')`. After `failureThreshold`
 * failures in a row the store marks itself down for `downBackoffMs` and answers
 * at once without network ('down' counted per bypassed operation); then one
 * operation goes through as a probe, and its success brings the store back.
 *
 * memjs notes (1.3.2, read from its source and checked against a real memcached):
 * - `retries: 0` really means one attempt (no retry_delay timers); `failover`
 *   stays off: moving a key to another server would make a generation counter
 *   read from a different server than the one its entries recorded.
 * - memjs' own `timeout` is a socket idle timer: it never fires while requests
 *   keep being written more often than it, so it cannot bound one operation.
 *   Hence our own timer on every operation; memjs' timeout (10x ours, at least
 *   0.5 s) only recycles a dead socket. When it does, the old socket's 'close'
 *   handler later orphans the new socket (leaked connection, requests without
 *   callbacks): see guardSocketClose.
 * - A memcached error status (e.g. "Value too large") rejects with an Error and
 *   is logged; a missing key is not an error (value null / `false` for add).
 * - Keys: entries `<prefix>:e:<sha1 base64url of the cache key>`, parts
 *   `<head key>:p<i>`, leases `<prefix>:l:<sha1>`, counters `<prefix>:g:<name>`.
 * - Item size: memcached refuses a value when item header + key + value exceed
 *   its -I (1 MiB by default); values are kept MEMCACHED_ITEM_OVERHEAD_BYTES below
 *   `itemLimitBytes`, which is memcached's -I.
 * - Connection refused fails every queued request within a millisecond or two
 *   (an `Error` with code ECONNREFUSED); a SIGSTOPped server accepts the TCP
 *   connection (kernel backlog) and never answers.
 * - memjs logs every failure through `options.logger.log` (console by default):
 *   we pass our own logger (silent unless `log` is given).
 * - `Client#increment` cannot be used for generation counters: it writes the
 *   initial value as a u32 (throws above 2^32) and decodes the 64-bit result as
 *   `(hi << 8) + lo`. Counters use our own binary INCR request through
 *   `Client#perform` (u64 amount/initial, decoded with readBigUInt64BE).
 * - memjs 1.3.2 has no multi-get: multi-key reads are parallel gets, which memjs
 *   pipelines on its one socket per server.
 */
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import memjs from 'memjs';
import type { Client as MemjsClient, Response as MemjsResponse, Server as MemjsServer } from 'memjs';
import {
  DEFAULT_ITEM_LIMIT_BYTES,
  DEFAULT_MAX_ITEMS_PER_ENTRY,
  assembleEntry,
  decodeHead,
  encodeEntry,
  itemCountFor,
  maxValueBytesFor,
  partKey,
  type CodecLimits,
} from './entry_codec.js';
import { MemcachedGenerations } from './memcached_generations.js';
import type { PendingBumps } from './pending_bumps.js';
import type { CacheEntry, CacheObserver } from './types.js';

export const DEFAULT_MEMCACHED_TIMEOUT_MS = 20;
const DEFAULT_FAILURE_THRESHOLD = 3;
const DEFAULT_DOWN_BACKOFF_MS = 1000;
/** Extra budget per byte moved: 1 ms per 20 KB (about 50 ms per MiB). */
const BYTES_PER_EXTRA_MS = 20_000;
/** memcached reads an expiry above 30 days as an absolute unix time. */
const MAX_RELATIVE_EXPIRY_S = 30 * 24 * 3600;
const OPCODE_INCREMENT = 0x05;

export interface MemcachedStoreOptions {
  /** "host:port" of each server. */
  servers: string[];
  /** Budget of one operation (one round trip), default 20. */
  timeoutMs?: number;
  /**
   * memcached's item size limit (its -I), default 1 MiB. Values written are at
   * most this minus MEMCACHED_ITEM_OVERHEAD_BYTES (1 KiB) for the key and item header.
   */
  itemLimitBytes?: number;
  /** Entries needing more items than this are not stored (default 16). */
  maxItemsPerEntry?: number;
  /** With worker threads: the invalidations every thread still has to send. */
  pendingBumps?: PendingBumps | null;
  /** Prefix of every key, default "wc" ([A-Za-z0-9_.:-], at most 64 characters): keys are `<prefix>:e:...`, `<prefix>:g:...`. */
  keyPrefix?: string;
  observer: CacheObserver;
  /** Failures in a row after which the store is marked down (default 3). */
  failureThreshold?: number;
  /** How long the store stays down before one probe operation is let through (default 1000). */
  downBackoffMs?: number;
  /** Receives memjs' log lines; default: dropped. */
  log?: (message: string) => void;
  /** Called once when the store is marked down, and once when an operation succeeds again (e.g. to log it). */
  onStateChange?: (change: TierStateChange) => void;
}

/** The store went down (after `failures` failures in a row, the last one `reason`), or came back after `downMs`. */
export type TierStateChange =
  | { state: 'down'; operation: string; reason: 'error' | 'timeout'; failures: number }
  | { state: 'up'; downMs: number };

/** What /cache shows of the store. */
export interface MemcachedTierStatus {
  state: 'up' | 'down' | 'closed';
  /** When it was marked down (ISO time), while down. */
  downSince: string | null;
  consecutiveFailures: number;
}

const FAIL: unique symbol = Symbol('memcached failure');
type Failure = typeof FAIL;

/** How an operation may proceed: not at all (store down), normally, or as the probe of a down store. */
const enum Gate {
  Bypass = 0,
  Normal = 1,
  Probe = 2,
}

const SAFE_NAME = /^[A-Za-z0-9_.:*-]{1,200}$/;
const SAFE_PREFIX = /^[A-Za-z0-9_.:-]{0,64}$/;

function sha1(data: string, encoding: 'hex' | 'base64url'): string {
  return createHash('sha1').update(data, 'utf8').digest(encoding);
}

/** A value no counter can have reached by increments: far above any increment count, different after every restart. */
function freshCounterValue(): number {
  return Date.now() * 1000 + Math.floor(Math.random() * 1000);
}

function compactCopy(buf: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(buf.length);
  buf.copy(copy);
  return copy;
}

/** The memjs Server internals guardSocketClose touches (memjs 1.3.x). */
interface MemjsServerInternals {
  _socket?: Socket;
  connected: boolean;
  timeoutSet: boolean;
  sock(sasl: boolean, go: (socket: Socket) => void): void;
}

/**
 * Works around a memjs 1.3.2 bug: a socket's 'close' handler clears
 * `server._socket` whichever socket is current. When an old socket (ended
 * after memjs' response timeout, e.g. while memcached was SIGSTOPped) closes
 * after a new one was opened, the new one is orphaned: never closed again (one
 * leaked connection per stall) and its queued requests never sent. The handler
 * is replaced by one that only resets the server's state if the closing socket
 * is still the current one.
 */
function guardSocketClose(server: MemjsServer): void {
  const srv = server as unknown as MemjsServerInternals;
  const original = srv.sock;
  if (typeof original !== 'function') return;
  srv.sock = function guardedSock(this: MemjsServerInternals, sasl: boolean, go: (socket: Socket) => void): void {
    const before = this._socket;
    original.call(this, sasl, go);
    const sock = this._socket;
    if (sock === undefined || sock === before) return;
    sock.removeAllListeners('close');
    sock.on('close', () => {
      if (this._socket !== sock) return;
      this.connected = false;
      if (this.timeoutSet) {
        sock.setTimeout(0);
        this.timeoutSet = false;
      }
      this._socket = undefined;
    });
  };
}

/** memcached expiry for an entry expiring at `expiresAt` (epoch ms); null when already expired. */
export function memcachedExpiry(expiresAt: number, now = Date.now()): number | null {
  const ms = expiresAt - now;
  if (!(ms > 0)) return null;
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  return seconds <= MAX_RELATIVE_EXPIRY_S ? seconds : Math.ceil(expiresAt / 1000);
}

export class MemcachedStore {
  readonly generations: MemcachedGenerations;
  private readonly client: MemjsClient;
  private readonly observer: CacheObserver;
  private readonly timeoutMs: number;
  private readonly limits: CodecLimits;
  private readonly prefix: string;
  private readonly failureThreshold: number;
  private readonly downBackoffMs: number;
  private consecutiveFailures = 0;
  /** 0 while up; else the time (epoch ms) after which one probe may go through. */
  private downUntil = 0;
  private probing = false;
  private isClosed = false;
  /** Epoch ms of the change to down, while down. */
  private downSince = 0;
  private readonly onStateChange: ((change: TierStateChange) => void) | undefined;

  constructor(opts: MemcachedStoreOptions) {
    if (opts.servers.length === 0) throw new Error('MemcachedStore: no servers');
    const prefix = opts.keyPrefix ?? 'wc';
    if (!SAFE_PREFIX.test(prefix)) throw new Error(`MemcachedStore: invalid key prefix ${JSON.stringify(prefix)}`);
    this.prefix = prefix === '' || prefix.endsWith(':') ? prefix : `${prefix}:`;
    this.observer = opts.observer;
    this.timeoutMs = Math.max(1, opts.timeoutMs ?? DEFAULT_MEMCACHED_TIMEOUT_MS);
    this.limits = {
      maxValueBytes: maxValueBytesFor(opts.itemLimitBytes ?? DEFAULT_ITEM_LIMIT_BYTES),
      maxItemsPerEntry: Math.max(1, Math.floor(opts.maxItemsPerEntry ?? DEFAULT_MAX_ITEMS_PER_ENTRY)),
    };
    this.failureThreshold = Math.max(1, opts.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD);
    this.downBackoffMs = Math.max(1, opts.downBackoffMs ?? DEFAULT_DOWN_BACKOFF_MS);
    this.onStateChange = opts.onStateChange;
    const log = opts.log;
    const socketTimeoutS = Math.max(0.5, (this.timeoutMs * 10) / 1000);
    this.client = memjs.Client.create(opts.servers.join(','), {
      retries: 0,
      failover: false,
      timeout: socketTimeoutS,
      conntimeout: socketTimeoutS,
      keepAlive: true,
      logger: {
        log: (...args: unknown[]) => {
          if (log) log(args.map(String).join(' '));
        },
      },
    });
    for (const server of this.client.servers) guardSocketClose(server);
    this.generations = new MemcachedGenerations(
      {
        counters: (op, names, amount, countDown) => this.counters(op, names, amount, countDown),
        isClosed: () => this.isClosed,
      },
      this.downBackoffMs,
      opts.pendingBumps ?? null,
    );
  }

  /** False while marked down (or closed): operations are answered without network. */
  get available(): boolean {
    return !this.isClosed && this.downUntil === 0;
  }

  /** Up, down (operations bypass it until a probe succeeds) or closed. */
  get status(): MemcachedTierStatus {
    return {
      state: this.isClosed ? 'closed' : this.downUntil === 0 ? 'up' : 'down',
      downSince: this.downUntil !== 0 && this.downSince > 0 ? new Date(this.downSince).toISOString() : null,
      consecutiveFailures: this.consecutiveFailures,
    };
  }

  /** Items `entry` takes in memcached, or null if it cannot be stored (too large: count refused 'too_large'). */
  itemsFor(entry: CacheEntry): number | null {
    return itemCountFor(entry, this.limits);
  }

  /** The memcached key of the head item of cache key `key`. */
  entryKey(key: string): string {
    return `${this.prefix}e:${sha1(key, 'base64url')}`;
  }

  /** The memcached key of generation counter `name`. */
  generationKey(name: string): string {
    return SAFE_NAME.test(name) ? `${this.prefix}g:${name}` : `${this.prefix}g:#${sha1(name, 'hex')}`;
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    try {
      const gate = this.gate('get', true);
      if (gate === Gate.Bypass) return undefined;
      const headKey = this.entryKey(key);
      const r = await this.call('get', gate, this.timeoutMs, () => this.client.get(headKey));
      if (r === FAIL || r.value === null) return undefined;
      const head = decodeHead(r.value);
      if (head === null || head.meta.expiresAt <= Date.now()) return undefined;
      if (head.itemCount === 1) {
        const entry = assembleEntry(head);
        // The wire would be a view into memjs' receive buffer: give the caller a compact copy it may keep.
        if (entry !== null) entry.wire = compactCopy(entry.wire);
        return entry ?? undefined;
      }
      if (head.itemCount > this.limits.maxItemsPerEntry) return undefined;
      const gate2 = this.gate('get', true);
      if (gate2 === Gate.Bypass) return undefined;
      const keys: string[] = [];
      for (let i = 1; i < head.itemCount; i++) keys.push(partKey(headKey, i));
      const parts = await this.call('get', gate2, this.budget(head.wireLength), () =>
        Promise.all(keys.map((k) => this.client.get(k).then((p) => p.value))),
      );
      if (parts === FAIL) return undefined;
      return assembleEntry(head, parts) ?? undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Stores `entry` until its expiresAt (memcached seconds, at least 1). False
   * when not stored: too large (see itemsFor), already expired, store down, or
   * any item failed to be written.
   */
  async set(key: string, entry: CacheEntry): Promise<boolean> {
    try {
      const expires = memcachedExpiry(entry.expiresAt);
      if (expires === null) return false;
      const items = encodeEntry(entry, this.limits);
      if (items === null) return false;
      const gate = this.gate('set', true);
      if (gate === Gate.Bypass) return false;
      const headKey = this.entryKey(key);
      const r = await this.call('set', gate, this.budget(entry.wire.length), () =>
        Promise.all(items.map((v, i) => this.client.set(i === 0 ? headKey : partKey(headKey, i), v, { expires }))),
      );
      return r !== FAIL && r.every((ok) => ok === true);
    } catch {
      return false;
    }
  }

  /** Deletes the head item (parts of a split entry are left to expire: without their head they are never read). */
  async delete(key: string): Promise<void> {
    try {
      const gate = this.gate('delete', true);
      if (gate === Gate.Bypass) return;
      const headKey = this.entryKey(key);
      await this.call('delete', gate, this.timeoutMs, () => this.client.delete(headKey));
    } catch {
      /* never rejects */
    }
  }

  /**
   * memcached `add` of a short-lived lease key: true for exactly one caller
   * across all proxies until it expires. False when someone else holds it, and
   * also when memcached is down or fails (no lease can be granted then).
   */
  async acquireLease(key: string, seconds: number): Promise<boolean> {
    try {
      const gate = this.gate('lease', true);
      if (gate === Gate.Bypass) return false;
      const leaseKey = `${this.prefix}l:${sha1(key, 'base64url')}`;
      const expires = Math.max(1, Math.ceil(seconds));
      const r = await this.call('lease', gate, this.timeoutMs, () => this.client.add(leaseKey, '1', { expires }));
      return r === true;
    } catch {
      return false;
    }
  }

  /** Closes the connections; later operations resolve at once as misses/failures. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.generations.stop();
    try {
      this.client.close();
    } catch {
      /* ignore */
    }
  }

  // -------------------------------------------------------------------------
  // internals

  private budget(bytes: number): number {
    return this.timeoutMs + Math.ceil(bytes / BYTES_PER_EXTRA_MS);
  }

  /** May an operation go to memcached now? Counts 'down' for a bypassed one when `countDown`. */
  private gate(op: string, countDown: boolean): Gate {
    if (this.isClosed) return Gate.Bypass;
    if (this.downUntil === 0) return Gate.Normal;
    if (!this.probing && Date.now() >= this.downUntil) {
      this.probing = true;
      return Gate.Probe;
    }
    if (countDown) this.observer.memcachedProblem(op, 'down');
    return Gate.Bypass;
  }

  private succeeded(gate: Gate): void {
    if (gate === Gate.Probe) this.probing = false;
    this.consecutiveFailures = 0;
    if (this.downUntil !== 0) {
      this.downUntil = 0;
      const downMs = Date.now() - this.downSince;
      this.downSince = 0;
      this.notify({ state: 'up', downMs });
    }
  }

  private notify(change: TierStateChange): void {
    try {
      this.onStateChange?.(change);
    } catch {
      /* a listener never breaks the store */
    }
  }

  private failed(op: string, gate: Gate, kind: 'error' | 'timeout'): void {
    this.observer.memcachedProblem(op, kind);
    if (gate === Gate.Probe) this.probing = false;
    this.consecutiveFailures++;
    if (gate === Gate.Probe || this.consecutiveFailures >= this.failureThreshold) {
      const wasUp = this.downUntil === 0;
      this.downUntil = Date.now() + this.downBackoffMs;
      if (wasUp && !this.isClosed) {
        this.downSince = Date.now();
        this.notify({ state: 'down', operation: op, reason: kind, failures: this.consecutiveFailures });
      }
    }
  }

  /** Runs `start` against the budget: its value, or FAIL (counted) on error or timeout. Never rejects. */
  private call<T>(op: string, gate: Gate, budgetMs: number, start: () => Promise<T>): Promise<T | Failure> {
    return new Promise<T | Failure>((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.failed(op, gate, 'timeout');
        resolve(FAIL);
      }, budgetMs);
      let p: Promise<T>;
      try {
        p = start();
      } catch {
        settled = true;
        clearTimeout(timer);
        this.failed(op, gate, 'error');
        resolve(FAIL);
        return;
      }
      p.then(
        (v) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          this.succeeded(gate);
          resolve(v);
        },
        () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          this.failed(op, gate, 'error');
          resolve(FAIL);
        },
      );
    });
  }

  private async counters(op: string, names: readonly string[], amount: number, countDown: boolean): Promise<number[] | null> {
    const gate = this.gate(op, countDown);
    if (gate === Gate.Bypass) return null;
    const r = await this.call(op, gate, this.timeoutMs, () =>
      Promise.all(names.map((name) => this.incr(this.generationKey(name), amount, freshCounterValue()))),
    );
    return r === FAIL ? null : r;
  }

  /** Binary INCR with a u64 initial value (created, never expiring, when missing); resolves the new value. */
  private incr(key: string, amount: number, initial: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const client = this.client;
      client.incrSeq();
      const seq = client.seq;
      const extras = Buffer.alloc(20);
      extras.writeBigUInt64BE(BigInt(amount), 0);
      extras.writeBigUInt64BE(BigInt(initial), 8);
      extras.writeUInt32BE(0, 16);
      const request = memjs.Utils.makeRequestBuffer(OPCODE_INCREMENT, key, extras, '', seq);
      client.perform(key, request, seq, (err: Error | null, response?: MemjsResponse) => {
        if (err || !response) {
          reject(err ?? new Error('memcached: no response'));
          return;
        }
        if (response.header.status !== 0 || response.val.length !== 8) {
          reject(new Error(`memcached INCR ${key}: status ${response.header.status}`));
          return;
        }
        resolve(Number(response.val.readBigUInt64BE(0)));
      });
    });
  }
}
