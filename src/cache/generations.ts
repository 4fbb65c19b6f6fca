/**
 * Generation counters: the invalidation mechanism of the query cache.
 *
 * Every cache entry records the values of the counters it depends on (its
 * tables as "schema.table", the global "*", its rule as "rule:<name>") as read
 * before its query went to the database. A write bumps the counters of the
 * tables it changed, so an entry is valid only while every counter it recorded
 * still has the recorded value. Counters only ever move forward: a value an
 * entry recorded is never read again once the counter has been bumped.
 */
import { fnv1a } from './fnv1a.js';

export interface Generations {
  /**
   * Current values of `names`, in order. Synchronous for the local
   * implementation; may be asynchronous (memcached). Never throws and never
   * rejects: on failure it resolves null, and the caller bypasses the cache.
   */
  read(names: readonly string[]): number[] | null | Promise<number[] | null>;
  /**
   * Increments each name. The memcached implementation resolves once the
   * increments landed (or failed: then the names are remembered and re-sent,
   * and until they land read() returns null for them so nothing stale is served).
   */
  bump(names: readonly string[]): void | Promise<void>;
}

/** Counters of the in-process store: 2^16 slots of two 32-bit words (512 KiB). */
export const GENERATION_SLOTS = 1 << 16;
/** Names remembered with their slot before the memo starts over (tables come and go). */
const SLOT_MEMO_LIMIT = 100_000;
const LOW_WORD = 2 ** 32;

/**
 * In-process counters, in shared memory: every worker thread reads and bumps
 * the same SharedArrayBuffer with Atomics, so a write acknowledged in one
 * worker is seen by the next lookup in every other one, with no message.
 *
 * A name maps to a slot by its FNV-1a hash. Two names that share a slot
 * share a counter: a write to one also invalidates entries of the other.
 * That costs misses, never a stale hit.
 *
 * A counter is two 32-bit words (Int32 Atomics: a BigInt64Array would
 * allocate a BigInt on every read of the hit path): the low word is
 * incremented, and the high one when the low one wraps. A reader reads high,
 * low, high, and again if the high word moved; values are exact below 2^53.
 */
export class LocalGenerations implements Generations {
  /** The counters; hand it to another worker's LocalGenerations to share them. */
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  private readonly slots = new Map<string, number>();
  /** Slots of each list of names matched so far, by list object (a list's names never change). */
  private readonly slotLists = new WeakMap<readonly string[], Int32Array>();

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(GENERATION_SLOTS * 8)) {
    if (buffer.byteLength !== GENERATION_SLOTS * 8) throw new RangeError(`generation counters need ${GENERATION_SLOTS * 8} bytes, got ${buffer.byteLength}`);
    this.buffer = buffer;
    this.words = new Int32Array(buffer);
  }

  /** Index of the low word of `name`'s counter (the high word follows it). */
  private slot(name: string): number {
    let slot = this.slots.get(name);
    if (slot === undefined) {
      if (this.slots.size >= SLOT_MEMO_LIMIT) this.slots.clear();
      slot = (fnv1a(name) & (GENERATION_SLOTS - 1)) * 2;
      this.slots.set(name, slot);
    }
    return slot;
  }

  private value(at: number): number {
    const words = this.words;
    for (;;) {
      const high = Atomics.load(words, at + 1);
      const low = Atomics.load(words, at) >>> 0;
      if (Atomics.load(words, at + 1) === high) return (high >>> 0) * LOW_WORD + low;
    }
  }

  /** Returns a new array each call (the caller keeps it in the entry it records). */
  read(names: readonly string[]): number[] {
    const n = names.length;
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(this.slot(names[i]));
    return out;
  }

  /** Value of one counter (0 if never bumped). */
  get(name: string): number {
    return this.value(this.slot(name));
  }

  bump(names: readonly string[]): void {
    for (const name of names) {
      const at = this.slot(name);
      // Atomics.add returns the old value: -1 (0xffffffff) means the low word just wrapped to 0.
      if (Atomics.add(this.words, at, 1) === -1) Atomics.add(this.words, at + 1, 1);
    }
  }

  /**
   * True when every `names[i]` still has the value `gens[i]` (the validity
   * test of an entry). The slots of a list are looked up once per list
   * object: the hit path passes the same interned list every time.
   */
  matches(names: readonly string[], gens: readonly number[]): boolean {
    const n = names.length;
    if (gens.length !== n) return false;
    let slots = this.slotLists.get(names);
    if (slots === undefined) {
      slots = new Int32Array(n);
      for (let i = 0; i < n; i++) slots[i] = this.slot(names[i]);
      this.slotLists.set(names, slots);
    }
    for (let i = 0; i < n; i++) if (this.value(slots[i]) !== gens[i]) return false;
    return true;
  }
}
