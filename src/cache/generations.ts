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

/** In-process counters: an unknown name reads as 0. */
export class LocalGenerations implements Generations {
  private readonly values = new Map<string, number>();

  /** Returns a new array each call (the caller keeps it in the entry it records). */
  read(names: readonly string[]): number[] {
    const n = names.length;
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.values.get(names[i]) ?? 0;
    return out;
  }

  /** Value of one counter (0 if never bumped). */
  get(name: string): number {
    return this.values.get(name) ?? 0;
  }

  bump(names: readonly string[]): void {
    for (const name of names) this.values.set(name, (this.values.get(name) ?? 0) + 1);
  }

  /** True when every `names[i]` still has the value `gens[i]` (the validity test of an entry). */
  matches(names: readonly string[], gens: readonly number[]): boolean {
    const n = names.length;
    if (gens.length !== n) return false;
    for (let i = 0; i < n; i++) if ((this.values.get(names[i]) ?? 0) !== gens[i]) return false;
    return true;
  }
}
