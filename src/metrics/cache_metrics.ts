/**
 * The query cache's Prometheus metrics: implements CacheObserver on top of
 * CounterFamily, so a cache hit costs a Map lookup and an addition.
 * Label values are bounded: rules come from the config (plus "hint" and
 * "all"), reasons and outcomes are fixed sets, and table names are capped.
 */
import { Gauge, type Registry } from 'prom-client';
import type { CacheObserver, RefusalReason } from '../cache/types.js';
import { BoundedLabel } from './bounded_label.js';
import { CounterFamily } from './counter_family.js';

const MAX_TABLE_LABELS = 500;
const MAX_RULE_LABELS = 200;

export class CacheMetrics implements CacheObserver {
  private readonly hits: CounterFamily;
  private readonly staleHits: CounterFamily;
  private readonly misses: CounterFamily;
  private readonly stores: CounterFamily;
  private readonly storedBytes: CounterFamily;
  private readonly refusals: CounterFamily;
  private readonly coalesced: CounterFamily;
  private readonly evictions: CounterFamily;
  private readonly invalidations: CounterFamily;
  private readonly memcached: CounterFamily;
  private readonly rules = new BoundedLabel(MAX_RULE_LABELS);
  private readonly tables = new BoundedLabel(MAX_TABLE_LABELS);
  private stats: (() => { entries: number; bytes: number }) | null = null;

  constructor(registry: Registry) {
    const f = (name: string, help: string, labels: string[]) => new CounterFamily(registry, name, help, labels);
    this.hits = f('wirecache_cache_hits_total', 'Queries answered from the cache (stale hits included), by rule ("hint" for /*qc=on*/, "all" for cache-everything mode).', ['rule']);
    this.staleHits = f('wirecache_cache_stale_hits_total', 'Hits served past the soft TTL while one reader refreshed the entry, by rule.', ['rule']);
    this.misses = f('wirecache_cache_misses_total', 'Cacheable queries not found in the cache (sent to the database), by rule.', ['rule']);
    this.stores = f('wirecache_cache_stores_total', 'Results recorded into the cache, by rule.', ['rule']);
    this.storedBytes = f('wirecache_cache_stored_bytes_total', 'Bytes of results recorded into the cache, by rule.', ['rule']);
    this.refusals = f('wirecache_cache_refused_total', 'Statements or results chosen for caching but not cached, by rule and reason.', ['rule', 'reason']);
    this.coalesced = f('wirecache_cache_coalesced_waits_total', 'Readers that waited for an identical query in flight instead of sending their own, by rule and outcome (served, not_stored, timeout).', ['rule', 'outcome']);
    this.evictions = f('wirecache_cache_evictions_total', 'Entries evicted from the memory tier to stay under its byte limit.', []);
    this.invalidations = f('wirecache_cache_invalidations_total', 'Invalidations by written table ("*" for writes whose tables are unknown and for purges of everything); purges by table count under the table.', ['table']);
    this.memcached = f('wirecache_cache_memcached_problems_total', 'memcached operations that failed, ran over their time budget, or were skipped while it was down, by operation and kind.', ['operation', 'kind']);
    this.evictions.inc([], 0);
    const self = this;
    new Gauge({
      name: 'wirecache_cache_entries',
      help: 'Entries in the memory tier of the cache.',
      registers: [registry],
      collect() {
        this.set(self.stats?.().entries ?? 0);
      },
    });
    new Gauge({
      name: 'wirecache_cache_bytes',
      help: 'Bytes held by the memory tier of the cache (result bytes plus per-entry overhead).',
      registers: [registry],
      collect() {
        this.set(self.stats?.().bytes ?? 0);
      },
    });
  }

  /** Where the entry and byte gauges read from. */
  watch(stats: () => { entries: number; bytes: number }): void {
    this.stats = stats;
  }

  /** Exports every rule's series as 0 from the start, so rate() works at once. */
  knownRules(names: readonly string[]): void {
    for (const n of ['hint', 'all', ...names]) {
      const rule = this.rule(n);
      this.hits.inc([rule], 0);
      this.misses.inc([rule], 0);
      this.stores.inc([rule], 0);
    }
  }

  private rule(name: string): string {
    return this.rules.value(name);
  }

  /** Current value of a counter series, for tests and the admin API. */
  value(metric: 'hits' | 'misses' | 'stores' | 'staleHits', rule: string): number {
    return this[metric].get([rule]);
  }

  refusedCount(rule: string, reason: RefusalReason): number {
    return this.refusals.get([rule, reason]);
  }

  hit(rule: string, stale: boolean): void {
    const r = this.rule(rule);
    this.hits.inc([r]);
    if (stale) this.staleHits.inc([r]);
  }

  miss(rule: string): void {
    this.misses.inc([this.rule(rule)]);
  }

  stored(rule: string, bytes: number): void {
    const r = this.rule(rule);
    this.stores.inc([r]);
    this.storedBytes.inc([r], bytes);
  }

  refused(rule: string, reason: RefusalReason): void {
    this.refusals.inc([this.rule(rule), reason]);
  }

  coalescedWait(rule: string, outcome: 'served' | 'timeout' | 'not_stored'): void {
    this.coalesced.inc([this.rule(rule), outcome]);
  }

  evicted(count: number): void {
    this.evictions.inc([], count);
  }

  invalidated(table: string): void {
    this.invalidations.inc([this.tables.value(table)]);
  }

  memcachedProblem(operation: string, kind: 'error' | 'timeout' | 'down'): void {
    this.memcached.inc([operation, kind]);
  }
}
