/**
 * Classification of repeated statement texts, remembered (as MaxScale's
 * query classifier cache does): an application sends the same texts again
 * and again, and a cache hit should not pay for tokenizing its text each
 * time. Bounded in bytes, least recently used first out.
 *
 * A ClassifiedStatement is never changed once made, so one object serves
 * every session that sends the same text; its identity also lets the cache
 * remember its decision for it (QueryCache.decide).
 */
import { LRUCache } from 'lru-cache';
import { classify, type ClassifiedStatement } from './classifier.js';

/**
 * Heap one remembered statement takes: the object, its key and digest
 * texts, its table list, and the cache's decision kept for it (its plan,
 * key and tag strings). Measured about 1,070 bytes for a 35-character point
 * select whose session state is 100 characters long; a longer state adds
 * about 2 bytes per character (key and tag). Kept on the high side.
 */
const ENTRY_BASE_BYTES = 1280;
const BYTES_PER_CHARACTER = 6;

/** Texts longer than this are classified every time: a bulk INSERT or a generated IN list rarely repeats, and would push out many that do. */
export const MEMO_MAX_TEXT = 4096;

export interface StatementMemoStats {
  /** Texts found remembered. */
  hits: number;
  /** SELECT and SHOW texts not found: classified, and remembered when they fit (writes and long texts are not counted). */
  misses: number;
  entries: number;
  bytes: number;
}

export class StatementMemo {
  private readonly lru: LRUCache<string, ClassifiedStatement> | null;
  private hits = 0;
  private misses = 0;

  /** `maxBytes` 0: nothing is remembered. */
  constructor(maxBytes: number) {
    this.lru =
      maxBytes > 0
        ? new LRUCache<string, ClassifiedStatement>({
            maxSize: maxBytes,
            sizeCalculation: (_statement, text) => ENTRY_BASE_BYTES + BYTES_PER_CHARACTER * text.length,
          })
        : null;
  }

  /**
   * The classification of `text`: remembered when it was classified before.
   * Only SELECT and SHOW texts are kept: reads are what repeats, and what a
   * cache hit serves; a write is classified every time.
   */
  classify(text: string): ClassifiedStatement {
    const lru = this.lru;
    if (lru === null || text.length > MEMO_MAX_TEXT) return classify(text);
    let statement = lru.get(text);
    if (statement !== undefined) {
      this.hits++;
      return statement;
    }
    statement = classify(text);
    if (statement.type === 'select' || statement.type === 'show') {
      this.misses++;
      lru.set(text, statement);
    }
    return statement;
  }

  get stats(): StatementMemoStats {
    return { hits: this.hits, misses: this.misses, entries: this.lru?.size ?? 0, bytes: this.lru?.calculatedSize ?? 0 };
  }
}
