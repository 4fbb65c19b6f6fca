/**
 * The query cache: looks entries up, records new ones, coalesces identical
 * misses, serves stale entries while one reader refreshes, and invalidates
 * through generation counters. Storage is process memory, memcached, or
 * memory in front of memcached. Callers hand it decisions from
 * cache_policy.ts and wire bytes; it never touches sockets.
 *
 * Race freedom: before a miss goes to the database the generations of
 * everything the result depends on are read; the entry records them, and it
 * is stored only if they are unchanged when the result is complete, and
 * served only while they still are. A write bumps its tables' generations
 * after the server acknowledged it, so a result that may have been read
 * before the write can never be stored or served after it.
 */
import type { CacheConfig } from '../config/types.js';
import { hasSequenceColumn, inspectResult } from '../protocol/result_replay.js';
import { decide, type CacheDecision, type CachePlan, type CacheRequest } from './cache_policy.js';
import type { ClassifiedStatement } from '../sql/classifier.js';
import { LocalGenerations, type Generations } from './generations.js';
import { MemcachedStore } from './memcached_store.js';
import { MemoryStore } from './memory_store.js';
import { SharedStore, sharedStoreBuffers, type SharedStoreBuffers } from './shared_store.js';
import { MissLeases, missLeaseBuffers, type MissLease, type MissLeaseBuffers } from './miss_leases.js';
import { PendingBumps, pendingBumpsBuffer } from './pending_bumps.js';
import type { CacheEntry, CacheObserver, RefusalReason } from './types.js';
import { SchemaCatalog, type FunctionName, type ViewDefinition } from './schema_catalog.js';

/** Status flags a replay may not repeat from the recording: the session decides them. */
export const SESSION_STATUS_MASK =
  0x0001 /* IN_TRANS */ | 0x0002 /* AUTOCOMMIT */ | 0x0008 /* MORE_RESULTS */ | 0x0200 /* NO_BACKSLASH_ESCAPES */ | 0x2000 /* IN_TRANS_READONLY */ | 0x8000; /* ANSI_QUOTES */
/** The terminator of a result with session-state changes: such a result is not replayable to other sessions. */
const SESSION_STATE_CHANGED = 0x4000;

export type LookupResult =
  | { kind: 'hit'; entry: CacheEntry }
  /** Not cached (or stale and this reader refreshes): send the query and record it with the ticket. */
  | { kind: 'miss'; ticket: MissTicket }
  /** The cache could not be used (memcached down): send the query without recording. */
  | { kind: 'bypass' };

/** A miss in progress: the generations it started from, and the readers waiting for it. */
export class MissTicket {
  /** Readers of the same key that wait for this result instead of sending their own query. */
  waiters: ((entry: CacheEntry | null) => void)[] = [];
  settled = false;

  constructor(
    readonly plan: CachePlan,
    readonly gens: number[],
    /** True when a stale entry is being refreshed (other readers get the stale copy meanwhile). */
    readonly refresh: boolean,
    /** With worker threads: this thread's hold on the key (the other threads wait for it). */
    readonly lease: MissLease | null = null,
  ) {}
}

/** Where the cache reports a tier going down and coming back (a pino logger fits). */
export interface CacheLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** One storage tier as GET /cache shows it (snake_case: it is served as is). */
export interface TierStatus {
  tier: 'memory' | 'memcached';
  state: 'up' | 'down' | 'closed';
  down_since: string | null;
  consecutive_failures?: number;
  servers?: string[];
}

/** What the caches of worker threads share: the generation counters and the memory tier (SharedStore). */
export interface CacheSharing {
  generations: SharedArrayBuffer;
  /** The memory tier's buffers (null: memcached storage alone). */
  store: SharedStoreBuffers | null;
  /** Bytes of decoded entries each thread keeps beside the shared tier. */
  decodedBytes: number;
  /** Which thread fetches which key now (coalescing across threads). */
  leases: MissLeaseBuffers;
  /** With memcached: the invalidations each thread has yet to send (one segment per worker, the main thread's last). */
  pendingBumps: SharedArrayBuffer;
  /** The thread this cache is in: a worker's index, or the worker count for the main thread. */
  thread: number;
}

/** Most bytes of decoded entries a worker thread keeps. */
const MAX_DECODED_BYTES = 32 * 1024 * 1024;

/**
 * Shared memory for `workers` threads' caches, within cache.memory.max_bytes
 * in all: each thread's decoded entries (an eighth of the bound at most,
 * over all threads) and the shared tier (the rest).
 */
export function createCacheSharing(config: CacheConfig, workers: number): CacheSharing {
  const generations = new LocalGenerations().buffer;
  const shared = { generations, leases: missLeaseBuffers(), pendingBumps: pendingBumpsBuffer(workers + 1), thread: workers };
  if (config.storage === 'memcached') return { ...shared, store: null, decodedBytes: 0 };
  const decodedBytes = Math.min(MAX_DECODED_BYTES, Math.floor(config.memory.maxBytes / 8 / workers));
  return { ...shared, store: sharedStoreBuffers(config.memory.maxBytes - decodedBytes * workers), decodedBytes };
}

/** A memory tier: one thread's LRU (MemoryStore) or the worker threads' shared ring (SharedStore). */
type MemoryTier = Pick<MemoryStore, 'get' | 'touch' | 'set' | 'delete' | 'deleteWhere' | 'clear' | 'bytes' | 'entries'>;

export interface CacheStats {
  entries: number;
  bytes: number;
}

export class QueryCache {
  private readonly memory: MemoryTier | null;
  private readonly remote: MemcachedStore | null;
  private readonly generations: Generations;
  /** What worker threads share of this cache (null: one thread). */
  readonly sharing: CacheSharing | null;
  private readonly leases: MissLeases | null;
  /** With worker threads and memcached: every thread's invalidations not yet in memcached. */
  private pendingBumps: PendingBumps | null = null;
  /** The primary's views and their base tables (filled by the view reader): reads of a view depend on its base tables. */
  readonly views = new SchemaCatalog();
  /** The last decision for each statement object, and the tag, config and catalog version it was made under. */
  private readonly decisions = new WeakMap<ClassifiedStatement, { tag: string; config: CacheConfig; catalog: number; decision: CacheDecision }>();
  /** Misses in flight by key: identical readers wait on them. */
  private readonly inflight = new Map<string, MissTicket>();
  /**
   * Fail-closed switch, set by the binlog reader's owner: while it returns
   * true, lookups go to the database without the cache and nothing is stored
   * (refusal `binlog_unavailable`), because writes made beside the proxy may
   * not have been invalidated.
   */
  private suspended: (() => boolean) | null = null;

  constructor(
    public config: CacheConfig,
    private readonly observer: CacheObserver,
    log: CacheLog | null = null,
    sharing: CacheSharing | null = null,
  ) {
    this.sharing = sharing;
    // Memory storage alone: with memcached, lookups and refreshes take memcached's leases.
    this.leases = sharing && config.storage === 'memory' ? new MissLeases(sharing.leases) : null;
    this.memory =
      config.storage === 'memcached'
        ? null
        : sharing?.store
          ? new SharedStore(sharing.store, observer, sharing.decodedBytes)
          : new MemoryStore({ maxBytes: config.memory.maxBytes, observer });
    this.remote =
      config.storage === 'memory'
        ? null
        : new MemcachedStore({
            servers: config.memcached.servers,
            timeoutMs: config.memcached.timeoutMs,
            itemLimitBytes: config.memcached.itemLimitBytes,
            maxItemsPerEntry: config.memcached.maxItemsPerEntry,
            keyPrefix: config.memcached.keyPrefix,
            pendingBumps: sharing ? (this.pendingBumps = new PendingBumps(sharing.pendingBumps, sharing.thread)) : null,
            observer,
            onStateChange: (change) => {
              const servers = config.memcached.servers;
              if (change.state === 'down') {
                log?.warn({ tier: 'memcached', servers, operation: change.operation, reason: change.reason, failures: change.failures }, 'cache tier down: memcached is bypassed until it answers again');
              } else {
                log?.info({ tier: 'memcached', servers, down_ms: change.downMs }, 'cache tier back up: memcached answers again');
              }
            },
          });
    this.generations = this.remote ? this.remote.generations : new LocalGenerations(sharing?.generations);
  }

  /**
   * A reloaded config: rules, mode, TTLs and limits apply to the next
   * statement. Storage (kind, sizes, memcached servers) stays as started;
   * returns the names of the options that changed there and need a restart.
   */
  reconfigure(next: CacheConfig): string[] {
    const fixed: string[] = [];
    if (next.storage !== this.config.storage) fixed.push('cache.storage');
    if (next.memory.maxBytes !== this.config.memory.maxBytes) fixed.push('cache.memory.max_bytes');
    if (JSON.stringify(next.memcached) !== JSON.stringify(this.config.memcached)) fixed.push('cache.memcached');
    this.config = { ...next, storage: this.config.storage, memory: this.config.memory, memcached: this.config.memcached };
    return fixed;
  }

  /** Installs (or, with null, removes) the fail-closed switch: see `suspended`. */
  suspendWhen(condition: (() => boolean) | null): void {
    this.suspended = condition;
  }

  /** Whether the fail-closed switch holds the cache off now. */
  get isSuspended(): boolean {
    return this.suspended?.() === true;
  }

  /**
   * Invalidations must be done before a write is acknowledged: other proxies
   * read the counters in memcached, and other worker threads read the shared
   * ones, as soon as the client has its reply.
   */
  get sharedInvalidation(): boolean {
    return this.remote !== null || this.sharing !== null;
  }

  /** Whether anything could choose `statement` for caching (a hint, the mode, or some rule). */
  mayCache(statement: ClassifiedStatement): boolean {
    return statement.hints.cache === 'on' || (statement.hints.cache === null && this.config.mode === 'all') || this.config.rules.length > 0;
  }

  /**
   * The decision for a statement (with the rule that matched, which routing
   * uses too); refusals of
   * statements that were chosen for caching are counted. `refusal` is a
   * reason the caller already knows (a cursor, long data).
   */
  decide(req: CacheRequest, refusal: RefusalReason | null = null): CacheDecision {
    // Only reads are worth remembering: a write is never cached, and its statement object is seldom seen twice.
    const remember = req.tag !== undefined && (req.statement.type === 'select' || req.statement.type === 'show');
    const decision = remember ? this.remembered(req, req.tag!) : decide(this.config, req, this.views);
    if (!decision.cache) {
      if (decision.reason) this.observer.refused(decision.label, decision.reason);
      return decision;
    }
    if (refusal) {
      this.observer.refused(decision.label, refusal);
      return { cache: false, rule: decision.rule, label: decision.label, reason: refusal };
    }
    return decision;
  }

  /**
   * The decision for a statement the session sent before (a remembered
   * classification, a prepared statement) under the same tag, the same
   * config and the same schema catalog: made once, then given again. Its
   * key is then the same string each time, whose hash the store's map has
   * already computed. An execution's parameters go last in the key: only
   * they are appended.
   */
  private remembered(req: CacheRequest, tag: string): CacheDecision {
    const catalog = this.views.version;
    let memo = this.decisions.get(req.statement);
    if (memo === undefined || memo.tag !== tag || memo.config !== this.config || memo.catalog !== catalog) {
      const decision = decide(this.config, req.params === '' ? req : { ...req, params: '' }, this.views);
      if (memo === undefined) {
        memo = { tag, config: this.config, catalog, decision };
        this.decisions.set(req.statement, memo);
      } else {
        memo.tag = tag;
        memo.config = this.config;
        memo.catalog = catalog;
        memo.decision = decision;
      }
    }
    const decision = memo.decision;
    return req.params === '' || !decision.cache ? decision : { ...decision, key: decision.key + req.params };
  }

  /** Each storage tier and its state: memory is always up; memcached is down while it is bypassed. */
  get tiers(): TierStatus[] {
    const tiers: TierStatus[] = [];
    if (this.memory) tiers.push({ tier: 'memory', state: 'up', down_since: null });
    if (this.remote) {
      const st = this.remote.status;
      tiers.push({ tier: 'memcached', state: st.state, down_since: st.downSince, consecutive_failures: st.consecutiveFailures, servers: this.config.memcached.servers });
    }
    return tiers;
  }

  /**
   * Worker `index` ended. Invalidations it had not yet sent to memcached may
   * never arrive: everything is invalidated in its place (this thread sends
   * it, and re-sends it until memcached has it).
   */
  threadEnded(index: number): void {
    if (this.pendingBumps?.clearSegment(index)) void this.invalidate(null);
  }

  /** Worker thread `threadId` ended: if it held the shared memory tier's lock, the tier is emptied and freed (SharedStore.recoverFrom). */
  recoverFromThread(threadId: number): boolean {
    return this.memory instanceof SharedStore && this.memory.recoverFrom(threadId);
  }

  get stats(): CacheStats {
    return { entries: this.memory?.entries ?? 0, bytes: this.memory?.bytes ?? 0 };
  }

  close(): void {
    this.remote?.close();
  }

  /**
   * Looks `plan.key` up. Synchronous with memory storage; a Promise with
   * memcached. A reader that finds an identical miss in flight waits for it
   * (up to coalesce_wait_ms) and then either gets its entry or misses itself.
   */
  lookup(plan: CachePlan): LookupResult | Promise<LookupResult> {
    if (this.suspended?.()) {
      this.observer.refused(plan.label, 'binlog_unavailable');
      return BYPASS;
    }
    if (this.remote) return this.lookupRemote(plan);
    const local = this.generations as LocalGenerations;
    const entry = this.memory!.get(plan.key);
    // The hit path compares counters in place; only a miss reads them into the array its entry will keep.
    if (entry && sameDeps(entry.deps, plan.deps) && local.matches(plan.deps, entry.gens)) {
      if (Date.now() < entry.softExpiresAt) {
        // Valid and fresh: the shared tier keeps it from being overwritten soon (a stale one is being refreshed).
        this.memory!.touch(plan.key, entry);
        return this.hit(plan, entry, false);
      }
      if (this.inflight.has(plan.key)) return this.hit(plan, entry, true);
      // One refresher across the worker threads too: the others keep serving the stale copy.
      const lease = this.leases?.acquire(plan.key, Math.max(1000, this.config.coalesceWaitMs)) ?? null;
      if (lease === 'held') return this.hit(plan, entry, true);
      return this.startMiss(plan, local.read(plan.deps), true, lease === 'busy' ? null : lease);
    }
    return this.missOrWait(plan, local.read(plan.deps));
  }

  /**
   * Another worker thread is fetching this key: wait for it (up to
   * coalesce_wait_ms), then serve what it stored, or go to the database
   * without recording.
   */
  private async waitForOtherThread(plan: CachePlan): Promise<LookupResult> {
    const released = await this.leases!.waitFor(plan.key, this.config.coalesceWaitMs);
    const entry = released ? this.memory!.get(plan.key) : undefined;
    if (entry && sameDeps(entry.deps, plan.deps) && (this.generations as LocalGenerations).matches(plan.deps, entry.gens) && Date.now() < entry.softExpiresAt) {
      this.observer.coalescedWait(plan.label, 'served');
      this.observer.hit(plan.label, false);
      return { kind: 'hit', entry };
    }
    this.observer.coalescedWait(plan.label, released ? 'not_stored' : 'timeout');
    this.observer.miss(plan.label);
    return BYPASS;
  }

  private async lookupRemote(plan: CachePlan): Promise<LookupResult> {
    const remote = this.remote!;
    const local = this.memory?.get(plan.key);
    const [gens, fetched] = await Promise.all([
      this.generations.read(plan.deps),
      local ? Promise.resolve(local) : remote.get(plan.key),
    ]);
    if (gens === null) {
      this.observer.refused(plan.label, 'store_unavailable');
      return { kind: 'bypass' };
    }
    const entry = fetched && sameGenerations(fetched, plan.deps, gens) ? fetched : undefined;
    if (entry) {
      if (!local && this.memory) this.memory.set(plan.key, entry);
      if (Date.now() < entry.softExpiresAt) return this.hit(plan, entry, false);
      if (this.inflight.has(plan.key)) return this.hit(plan, entry, true);
      // One refresher across every proxy sharing this memcached: the others keep serving the stale copy.
      const leaseSeconds = Math.max(1, Math.ceil(Math.min(entry.expiresAt - Date.now(), 30_000) / 1000));
      if (!(await remote.acquireLease(plan.key, leaseSeconds))) return this.hit(plan, entry, true);
      return this.startMiss(plan, gens, true);
    }
    return this.missOrWait(plan, gens);
  }

  private hit(plan: CachePlan, entry: CacheEntry, stale: boolean): LookupResult {
    this.observer.hit(plan.label, stale);
    return { kind: 'hit', entry };
  }

  private missOrWait(plan: CachePlan, gens: number[]): LookupResult | Promise<LookupResult> {
    const leader = this.inflight.get(plan.key);
    if (!leader && this.leases && this.config.coalesceWaitMs > 0) {
      const lease = this.leases.acquire(plan.key, this.config.coalesceWaitMs);
      if (lease === 'held') return this.waitForOtherThread(plan);
      return this.startMiss(plan, gens, false, lease === 'busy' ? null : lease);
    }
    if (!leader || this.config.coalesceWaitMs === 0) return this.startMiss(plan, gens, false);
    return new Promise<LookupResult>((resolve) => {
      const timer = setTimeout(() => {
        done(null, 'timeout');
      }, this.config.coalesceWaitMs);
      timer.unref();
      let finished = false;
      const done = (entry: CacheEntry | null, outcome: 'served' | 'timeout' | 'not_stored') => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        this.observer.coalescedWait(plan.label, outcome);
        if (entry) {
          this.observer.hit(plan.label, false);
          resolve({ kind: 'hit', entry });
        } else {
          // Go to the database without recording: the leader's result was refused or is late.
          this.observer.miss(plan.label);
          resolve({ kind: 'bypass' });
        }
      };
      leader.waiters.push((entry) => done(entry, entry ? 'served' : 'not_stored'));
    });
  }

  private startMiss(plan: CachePlan, gens: number[], refresh: boolean, lease: MissLease | null = null): LookupResult {
    this.observer.miss(plan.label);
    const ticket = new MissTicket(plan, gens, refresh, lease);
    this.inflight.set(plan.key, ticket);
    return { kind: 'miss', ticket };
  }

  /**
   * The response for a miss is complete: store it if it is a single result
   * set with nothing that forbids it and nothing it depends on changed since
   * the ticket was taken. `wire` must be compact (not a view into a bigger
   * buffer): it is kept as it is. `tooLarge` says the recording was dropped.
   */
  complete(ticket: MissTicket, wire: Buffer | null, deprecateEof: boolean): void | Promise<void> {
    const plan = ticket.plan;
    const refused = (reason: RefusalReason) => {
      this.observer.refused(plan.label, reason);
      this.settle(ticket, null);
    };
    if (wire === null) return refused('too_large');
    if (this.suspended?.()) return refused('binlog_unavailable');
    const verdict = inspectResult(wire, deprecateEof);
    if (!verdict.cacheable) return refused(verdict.reason === 'multiple_results' ? 'multi_statement' : verdict.reason === 'malformed' ? 'not_result_set' : verdict.reason);
    if (verdict.warnings > 0 && !this.config.cacheResultsWithWarnings) return refused('warnings');
    if (verdict.status & SESSION_STATE_CHANGED) return refused('session_state');
    if (hasSequenceColumn(wire)) return refused('sequence');
    // A read-only transaction may read an older snapshot than the counters say: serve from the cache, never store.
    if (plan.readOnlyTransaction) return refused('in_transaction');
    const now = Date.now();
    const entry: CacheEntry = {
      wire,
      deprecateEof,
      deps: plan.deps,
      gens: ticket.gens,
      rule: plan.rule?.name ?? '',
      createdAt: now,
      softExpiresAt: now + plan.softTtlMs,
      expiresAt: now + plan.ttlMs,
    };
    const current = this.generations.read(plan.deps);
    if (current instanceof Promise) return current.then((gens) => this.store(ticket, entry, gens));
    return this.store(ticket, entry, current);
  }

  private store(ticket: MissTicket, entry: CacheEntry, current: number[] | null): void | Promise<void> {
    const plan = ticket.plan;
    if (current === null) {
      this.observer.refused(plan.label, 'store_unavailable');
      this.settle(ticket, null);
      return;
    }
    if (!sameGenerations(entry, plan.deps, current)) {
      this.observer.refused(plan.label, 'concurrent_write');
      this.settle(ticket, null);
      return;
    }
    if (!this.memory && this.remote!.itemsFor(entry) === null) {
      this.observer.refused(plan.label, 'too_large');
      this.settle(ticket, null);
      return;
    }
    if (this.memory && !this.memory.set(plan.key, entry)) {
      this.observer.refused(plan.label, 'too_large');
      this.settle(ticket, null);
      return;
    }
    // Waiters are served from the new entry at once.
    this.settle(ticket, entry);
    if (!this.remote) {
      this.observer.stored(plan.label, entry.wire.length);
      return;
    }
    if (this.memory) this.observer.stored(plan.label, entry.wire.length);
    return this.remote.set(plan.key, entry).then((ok) => {
      // With memcached alone, a store counts once memcached has it.
      if (this.memory) return;
      if (ok) this.observer.stored(plan.label, entry.wire.length);
      else this.observer.refused(plan.label, 'store_unavailable');
    });
  }

  /** The miss ended in a way that must not be stored (the statement failed): counted, waiters go themselves. */
  refuse(ticket: MissTicket, reason: RefusalReason): void {
    this.observer.refused(ticket.plan.label, reason);
    this.settle(ticket, null);
  }

  /** The miss ended without a storable result (error, client gone, backend lost). */
  abandon(ticket: MissTicket): void {
    this.settle(ticket, null);
  }

  private settle(ticket: MissTicket, entry: CacheEntry | null): void {
    if (ticket.settled) return;
    ticket.settled = true;
    if (this.inflight.get(ticket.plan.key) === ticket) this.inflight.delete(ticket.plan.key);
    // After the store: the threads that wake find the entry.
    if (ticket.lease) this.leases?.release(ticket.lease);
    for (const w of ticket.waiters) w(entry);
    ticket.waiters.length = 0;
  }

  /**
   * A write changed `tables` ("schema.table"; null: unknown, so everything).
   * Resolves once every proxy sharing the storage will see it.
   */
  invalidate(tables: readonly string[] | null, source: 'proxy' | 'binlog' | 'memcached_api' = 'proxy'): void | Promise<void> {
    const names = tables === null ? ['*'] : tables;
    for (const t of names) this.observer.invalidated(t);
    if (source === 'proxy') for (const listener of this.writeListeners) listener(tables);
    return this.generations.bump(names);
  }

  private readonly writeListeners: ((tables: readonly string[] | null) => void)[] = [];

  /** A write through another worker thread's sessions (its cache bumped the shared counters): only the listeners hear of it. */
  proxyWroteElsewhere(tables: readonly string[] | null): void {
    for (const listener of this.writeListeners) listener(tables);
  }

  /**
   * Hears every invalidation for a write made through the proxy's SQL
   * sessions (not those from the binlog reader or the memcached API, which
   * tell their own caches): the memcached API's cache tier follows SQL writes
   * through wirecache at once, without waiting for the binlog.
   */
  onProxyWrite(listener: (tables: readonly string[] | null) => void): void {
    this.writeListeners.push(listener);
  }

  /**
   * A new list of the primary's views: entries that read a view which
   * appeared, changed or went away were stored without (or with other) base
   * tables among their dependencies, so they are invalidated.
   */
  replaceSchema(views: readonly ViewDefinition[], functions: readonly FunctionName[]): void | Promise<void> {
    this.views.replaceFunctions(functions);
    const changed = this.views.replace(views);
    if (changed.length > 0) return this.invalidate(changed);
  }

  /**
   * Manual purge: everything, one table, or one rule's entries. Returns the
   * entries dropped from memory. The counters are bumped first: even if
   * dropping the entries fails (a shared tier left locked), none is served.
   */
  async purge(target: { all: true } | { table: string } | { rule: string }): Promise<number> {
    if ('all' in target) {
      await this.invalidate(null);
      const dropped = this.memory?.entries ?? 0;
      this.memory?.clear();
      return dropped;
    }
    if ('table' in target) {
      const name = target.table.toLowerCase();
      await this.invalidate([name]);
      return this.memory?.deleteWhere((e) => e.deps.includes(name)) ?? 0;
    }
    await this.generations.bump([`rule:${target.rule}`]);
    return this.memory?.deleteWhere((e) => e.rule === target.rule) ?? 0;
  }
}

const BYPASS: LookupResult = { kind: 'bypass' };

function sameDeps(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when `gens` (read now for `deps`) equals what the entry recorded. */
function sameGenerations(entry: CacheEntry, deps: readonly string[], gens: readonly number[]): boolean {
  if (!sameDeps(entry.deps, deps)) return false;
  const recorded = entry.gens;
  for (let i = 0; i < recorded.length; i++) if (recorded[i] !== gens[i]) return false;
  return true;
}
