/**
 * Invalidations that did not reach memcached yet, as every worker thread
 * sees them. A thread whose increment of a generation counter failed keeps
 * re-sending it, and until it lands no thread may trust memcached's value of
 * that counter: the write was acknowledged, and memcached still has the old
 * one. Each thread counts its own unsent names in a segment of shared memory
 * (by hashed slot: a slot shared by two names blocks both, which costs
 * misses, never a stale hit), so the main thread can drop the counts of a
 * thread that died, after invalidating everything in its place.
 */
import { fnv1a } from './fnv1a.js';

const SLOTS = 4096;

export function pendingBumpsBuffer(segments: number): SharedArrayBuffer {
  return new SharedArrayBuffer(SLOTS * 4 * segments);
}

export class PendingBumps {
  private readonly counts: Int32Array;
  private readonly segments: number;

  constructor(
    buffer: SharedArrayBuffer,
    /** This thread's segment. */
    private readonly segment: number,
  ) {
    this.counts = new Int32Array(buffer);
    this.segments = this.counts.length / SLOTS;
  }

  /** `name` waits to be re-sent by this thread (once per name until unmark()). */
  mark(name: string): void {
    Atomics.add(this.counts, this.segment * SLOTS + (fnv1a(name) & (SLOTS - 1)), 1);
  }

  unmark(name: string): void {
    Atomics.sub(this.counts, this.segment * SLOTS + (fnv1a(name) & (SLOTS - 1)), 1);
  }

  /** Whether any thread waits to re-send one of `names`. */
  anyPending(names: readonly string[]): boolean {
    for (const name of names) {
      const slot = fnv1a(name) & (SLOTS - 1);
      for (let s = 0; s < this.segments; s++) if (Atomics.load(this.counts, s * SLOTS + slot) > 0) return true;
    }
    return false;
  }

  /** A thread died: forgets its counts. True when it had any (its invalidations may never reach memcached). */
  clearSegment(segment: number): boolean {
    let any = false;
    for (let i = segment * SLOTS; i < (segment + 1) * SLOTS; i++) if (Atomics.exchange(this.counts, i, 0) !== 0) any = true;
    return any;
  }
}
