/**
 * Generation counters shared through memcached, with an in-process mirror:
 * what the memcached store uses to tell whether an entry is still current
 * for every proxy.
 */
import { LocalGenerations, type Generations } from './generations.js';
import type { PendingBumps } from './pending_bumps.js';

/** What MemcachedGenerations needs from the store. */
export interface CounterEngine {
  /**
   * Adds `amount` (0: just read) to each counter, creating a missing one at a
   * fresh value; resolves the values, or null on any failure (or store down).
   */
  counters(op: string, names: readonly string[], amount: number, countDown: boolean): Promise<number[] | null>;
  isClosed(): boolean;
}

/**
 * Generation counters in memcached (keys `<prefix>:g:<name>`, or `<prefix>:g:#<sha1 hex>`
 * for names that are long or hold other characters), shared by every proxy.
 *
 * A counter that is missing (never used, evicted, memcached restarted) is
 * created atomically at a fresh value (epoch µs + random): never a value an
 * older entry could have recorded. Reads and bumps both use INCR with an
 * initial value (amount 0 for a read): one round trip, no get/add race.
 *
 * bump() first bumps `local` (synchronously), then sends the increments. While
 * a bump of a name is in flight, or failed and waits to be re-sent, read() of
 * that name resolves null: this process never serves an entry its own write
 * has invalidated, even before memcached has the increment.
 */
export class MemcachedGenerations implements Generations {
  /** In-process mirror, bumped synchronously by bump() (for entries validated locally). */
  readonly local = new LocalGenerations();
  /** Bumps in flight, per name. */
  private readonly inFlight = new Map<string, number>();
  /** Names whose increment failed, with the sequence number of the latest failure. */
  private readonly unsent = new Map<string, number>();
  private unsentSeq = 0;
  private resendTimer: NodeJS.Timeout | null = null;
  private resendDelayMs: number;

  constructor(
    private readonly engine: CounterEngine,
    private readonly maxResendDelayMs: number,
    /** With worker threads: every thread's unsent names (read() resolves null for them in every thread). */
    private readonly shared: PendingBumps | null = null,
  ) {
    this.resendDelayMs = Math.min(50, maxResendDelayMs);
  }

  /** Names waiting for their increment to land in memcached (in flight or to be re-sent). */
  get pendingNames(): number {
    let n = this.unsent.size;
    for (const name of this.inFlight.keys()) if (!this.unsent.has(name)) n++;
    return n;
  }

  private blocked(names: readonly string[]): boolean {
    if (this.shared?.anyPending(names)) return true;
    if (this.inFlight.size === 0 && this.unsent.size === 0) return false;
    for (const name of names) if (this.inFlight.has(name) || this.unsent.has(name)) return true;
    return false;
  }

  private setUnsent(name: string, seq: number): void {
    if (!this.unsent.has(name)) this.shared?.mark(name);
    this.unsent.set(name, seq);
  }

  private deleteUnsent(name: string): void {
    if (this.unsent.delete(name)) this.shared?.unmark(name);
  }

  async read(names: readonly string[]): Promise<number[] | null> {
    try {
      if (names.length === 0) return [];
      if (this.blocked(names)) return null;
      const values = await this.engine.counters('gen_read', names, 0, true);
      // A bump issued while the read was on its way may have landed after it.
      if (values === null || this.blocked(names)) return null;
      return values;
    } catch {
      return null;
    }
  }

  async bump(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    try {
      this.local.bump(names);
      for (const name of names) this.inFlight.set(name, (this.inFlight.get(name) ?? 0) + 1);
      const failuresBefore = this.unsentSeq;
      let ok = false;
      try {
        ok = (await this.engine.counters('gen_bump', names, 1, true)) !== null;
      } finally {
        // An increment that landed after an earlier one failed covers it: no need to re-send.
        if (ok && this.unsent.size > 0) {
          for (const name of names) {
            const seq = this.unsent.get(name);
            if (seq !== undefined && seq <= failuresBefore) this.deleteUnsent(name);
          }
        }
        // Same synchronous step as the unsent bookkeeping below: no window where a read could pass.
        for (const name of names) {
          const n = (this.inFlight.get(name) ?? 1) - 1;
          if (n <= 0) this.inFlight.delete(name);
          else this.inFlight.set(name, n);
        }
        if (!ok) {
          for (const name of names) this.setUnsent(name, ++this.unsentSeq);
          this.scheduleResend();
        }
      }
    } catch {
      /* never rejects */
    }
  }

  private scheduleResend(): void {
    if (this.resendTimer !== null || this.engine.isClosed() || this.unsent.size === 0) return;
    this.resendTimer = setTimeout(() => {
      this.resendTimer = null;
      void this.resend();
    }, this.resendDelayMs);
    this.resendTimer.unref();
  }

  private async resend(): Promise<void> {
    if (this.engine.isClosed() || this.unsent.size === 0) return;
    const batch = [...this.unsent];
    const values = await this.engine.counters(
      'gen_bump',
      batch.map(([name]) => name),
      1,
      false,
    );
    if (values !== null) {
      // Only clear a name if no newer bump of it failed meanwhile.
      for (const [name, seq] of batch) if (this.unsent.get(name) === seq) this.deleteUnsent(name);
      this.resendDelayMs = Math.min(50, this.maxResendDelayMs);
    } else {
      this.resendDelayMs = Math.min(this.resendDelayMs * 2, this.maxResendDelayMs);
    }
    this.scheduleResend();
  }

  /** Stops re-sending (the store is closing). */
  stop(): void {
    if (this.resendTimer !== null) clearTimeout(this.resendTimer);
    this.resendTimer = null;
  }
}
