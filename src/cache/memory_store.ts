/**
 * The in-process cache store: an LRU bounded by bytes (lru-cache's maxSize).
 *
 * An entry counts its wire bytes plus entryOverheadBytes(key, entry). The
 * caller hands over compact buffers (a `wire` that is a view into a larger
 * pooled buffer would keep that whole buffer alive while only its view is
 * counted: the caller copies such views before set()).
 *
 * Expiry is checked on get() against entry.expiresAt (one Date.now()): lru-cache's
 * own TTL tracking is not enabled, so an expired entry keeps its bytes until it
 * is read, evicted by newer entries, or removed by deleteWhere().
 */
import { LRUCache } from 'lru-cache';
import { entryOverheadBytes, type CacheEntry, type CacheObserver } from './types.js';

export const DEFAULT_MEMORY_MAX_BYTES = 256 * 1024 * 1024;

/** Bytes an entry is charged in the memory store. */
export function memoryEntryBytes(key: string, entry: CacheEntry): number {
  return entry.wire.length + entryOverheadBytes(key, entry);
}

export class MemoryStore {
  private readonly lru: LRUCache<string, CacheEntry>;
  private readonly maxBytes: number;

  constructor(opts: { maxBytes?: number; observer: CacheObserver }) {
    const maxBytes = Math.floor(opts.maxBytes ?? DEFAULT_MEMORY_MAX_BYTES);
    if (!(maxBytes >= 1)) throw new RangeError(`MemoryStore maxBytes must be >= 1 (got ${String(opts.maxBytes)})`);
    this.maxBytes = maxBytes;
    const observer = opts.observer;
    this.lru = new LRUCache<string, CacheEntry>({
      maxSize: maxBytes,
      maxEntrySize: maxBytes,
      sizeCalculation: (entry, key) => memoryEntryBytes(key, entry),
      allowStale: false,
      ttlAutopurge: false,
      dispose: (_entry, _key, reason) => {
        if (reason === 'evict') observer.evicted(1);
      },
    });
  }

  /** The entry, or undefined if absent or past its expiresAt. Marks it most recently used. */
  get(key: string): CacheEntry | undefined {
    const entry = this.lru.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.lru.delete(key);
      return undefined;
    }
    return entry;
  }

  /** `entry` was served as a hit: nothing to do here, get() already made it the most recently used. */
  touch(_key: string, _entry: CacheEntry): void {}

  /**
   * Stores `entry` (evicting least recently used entries as needed). False, and
   * nothing changed, when the entry alone is bigger than maxBytes or already expired.
   */
  set(key: string, entry: CacheEntry): boolean {
    const size = memoryEntryBytes(key, entry);
    if (size > this.maxBytes) return false;
    if (entry.expiresAt <= Date.now()) return false;
    this.lru.set(key, entry, { size });
    return true;
  }

  delete(key: string): void {
    this.lru.delete(key);
  }

  /** Deletes entries for which `pred` is true (purge by table/rule): returns how many. */
  deleteWhere(pred: (entry: CacheEntry, key: string) => boolean): number {
    const doomed: string[] = [];
    // Iterating while deleting is allowed by lru-cache, but collecting first keeps it obviously safe.
    for (const [key, entry] of this.lru.entries()) if (pred(entry, key)) doomed.push(key);
    for (const key of doomed) this.lru.delete(key);
    return doomed.length;
  }

  clear(): void {
    this.lru.clear();
  }

  /** Bytes charged by the stored entries (never above maxBytes). */
  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get entries(): number {
    return this.lru.size;
  }
}
