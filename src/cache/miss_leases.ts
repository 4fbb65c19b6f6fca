/**
 * Coalescing across worker threads: which thread is fetching a key now.
 *
 * A table of slots in shared memory, one per key hash (modulo the table):
 * a thread about to send a miss to the database takes the key's slot with
 * compare-and-exchange, and gives it back, waking the threads that wait on
 * it, once its result is stored or refused. Another thread that finds the
 * slot held for the same key waits (Atomics.waitAsync, bounded by
 * coalesce_wait_ms) and then looks the shared memory tier up again; one
 * that finds it held for another key (two keys on one slot) goes to the
 * database itself, without coalescing. A lease outlives a dead thread by
 * its deadline at most.
 */
import { fnv1a } from './fnv1a.js';

const SLOTS = 4096;

/** Atomics.waitAsync (Node 16+; TypeScript's ES2022 library does not declare it). */
type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
  timeoutMs: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export interface MissLeaseBuffers {
  tags: SharedArrayBuffer;
  deadlines: SharedArrayBuffer;
}

export function missLeaseBuffers(): MissLeaseBuffers {
  return { tags: new SharedArrayBuffer(SLOTS * 4), deadlines: new SharedArrayBuffer(SLOTS * 8) };
}

/** A key's slot, held by this thread. */
export interface MissLease {
  slot: number;
  tag: number;
}

export class MissLeases {
  private readonly tags: Int32Array;
  private readonly deadlines: Float64Array;

  constructor(buffers: MissLeaseBuffers) {
    this.tags = new Int32Array(buffers.tags);
    this.deadlines = new Float64Array(buffers.deadlines);
  }

  /**
   * Takes `key`'s slot for `ttlMs`: the lease; 'held' when another thread
   * fetches the same key (probably: the tag is a 32-bit hash); 'busy' when
   * the slot is another key's.
   */
  acquire(key: string, ttlMs: number): MissLease | 'held' | 'busy' {
    const hash = fnv1a(key);
    const slot = hash & (SLOTS - 1);
    const tag = hash | 1; // never 0, the free value
    const now = Date.now();
    const current = Atomics.load(this.tags, slot);
    // A holder past its deadline (a thread that died, or a query slower than the wait) is taken over.
    if (current !== 0 && now < this.deadlines[slot]) return current === tag ? 'held' : 'busy';
    if (Atomics.compareExchange(this.tags, slot, current, tag) !== current) return Atomics.load(this.tags, slot) === tag ? 'held' : 'busy';
    this.deadlines[slot] = now + ttlMs;
    return { slot, tag };
  }

  /** Gives the slot back and wakes the threads waiting on it. */
  release(lease: MissLease): void {
    if (Atomics.compareExchange(this.tags, lease.slot, lease.tag, 0) === lease.tag) Atomics.notify(this.tags, lease.slot);
  }

  /** Resolves once `key`'s slot is no longer held for it, or after `timeoutMs`: true when it was released in time. */
  async waitFor(key: string, timeoutMs: number): Promise<boolean> {
    const hash = fnv1a(key);
    const slot = hash & (SLOTS - 1);
    const result = waitAsync(this.tags, slot, hash | 1, timeoutMs);
    const outcome = result.async ? await result.value : result.value;
    return outcome !== 'timed-out';
  }
}
