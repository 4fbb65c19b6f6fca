import type { ReplayInfo } from '../protocol/result_replay.js';

/**
 * Shapes shared by the query cache's parts: the recorded entry, the stores
 * that keep entries, the generation counters that invalidate them, and the
 * events the cache reports. Nothing here touches sockets or Prometheus.
 */

/** One recorded result set, replayable to any client. */
export interface CacheEntry {
  /**
   * The response exactly as the server sent it: packet headers included,
   * sequence ids as the server numbered them (from 1 for a one-frame command).
   */
  wire: Buffer;
  /** Whether the recording connection had CLIENT_DEPRECATE_EOF (decides the framing of `wire`). */
  deprecateEof: boolean;
  /**
   * Generation names the entry depends on (tables as "schema.table", the
   * global "*", the rule as "rule:<name>") and their values read before the
   * query went to the database. The entry is valid only while every one is unchanged.
   */
  deps: string[];
  gens: number[];
  /** Rule that cached it ("" for a hint or cache-everything mode): for per-rule metrics and purges. */
  rule: string;
  /** Epoch milliseconds. */
  createdAt: number;
  /** After this the entry is stale: served while one reader refreshes it. */
  softExpiresAt: number;
  /** After this the entry is gone. */
  expiresAt: number;
  /** Where the packets of `wire` are, computed on first replay (not stored in memcached). */
  replay?: ReplayInfo;
}

/** Bytes an entry takes in memory besides its wire bytes: object, arrays, strings (an estimate, kept on the high side). */
export function entryOverheadBytes(key: string, entry: CacheEntry): number {
  let bytes = 160 + key.length * 2 + entry.rule.length * 2;
  for (const d of entry.deps) bytes += 48 + d.length * 2;
  return bytes;
}

/** Why a result was not stored, or why a statement was not looked up: bounded label values for metrics. */
export type RefusalReason =
  | 'not_select'
  | 'locking_read'
  | 'select_into'
  | 'in_transaction'
  | 'non_deterministic'
  | 'multi_statement'
  | 'error'
  | 'warnings'
  | 'too_large'
  | 'not_result_set'
  | 'cursor'
  | 'long_data'
  | 'unknown_parameters'
  | 'concurrent_write'
  | 'session_state'
  | 'system_schema'
  | 'read_uncommitted'
  /** The session has sql_auto_is_null on: `WHERE id IS NULL` finds its last insert, once. */
  | 'sql_auto_is_null'
  /** A call of a stored function: it may read any table, or answer differently each time. */
  | 'stored_function'
  /** A read of a view whose definition the view reader could not read: its base tables are unknown. */
  | 'view'
  /** A column of a sequence table: NEXTVAL moves it without a write the proxy sees. */
  | 'sequence'
  /** Under ANSI_QUOTES or NO_BACKSLASH_ESCAPES, a text with `"` or `\`: the server reads it differently from the tokenizer. */
  | 'sql_mode_quoting'
  | 'store_unavailable'
  /** The binlog reader (fail_closed) is disconnected, catching up or behind: no hit served, nothing stored. */
  | 'binlog_unavailable';

/** What the cache reports; the metrics layer implements it. `rule` is a rule name, "hint" or "all". */
export interface CacheObserver {
  hit(rule: string, stale: boolean): void;
  miss(rule: string): void;
  stored(rule: string, bytes: number): void;
  refused(rule: string, reason: RefusalReason): void;
  /** A reader waited for another session's identical query instead of sending its own. */
  coalescedWait(rule: string, outcome: 'served' | 'timeout' | 'not_stored'): void;
  evicted(count: number): void;
  /** A write invalidated `table` ("*" for all). */
  invalidated(table: string): void;
  /** A memcached operation failed or ran over its time budget; the query went on without it. */
  memcachedProblem(operation: string, kind: 'error' | 'timeout' | 'down'): void;
}

export const nullCacheObserver: CacheObserver = {
  hit() {},
  miss() {},
  stored() {},
  refused() {},
  coalescedWait() {},
  evicted() {},
  invalidated() {},
  memcachedProblem() {},
};
