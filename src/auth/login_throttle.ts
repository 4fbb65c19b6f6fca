/**
 * Failed-login throttling by key (a client address, or an account name), as
 * MySQL's max_connect_errors but with a time limit: more than `maxFailures`
 * failed logins within a minute block the key for `blockMs`. A successful
 * login clears nothing: a guesser who slips in a valid login of their own
 * between guesses is counted all the same. Keys are kept in an LRU bounded
 * in entries, so a flood of addresses or names cannot grow memory.
 */
import { LRUCache } from 'lru-cache';

const WINDOW_MS = 60_000;
/** Keys remembered at once; the least recently seen is forgotten first. */
const MAX_KEYS = 100_000;

interface KeyRecord {
  /** Start of the current one-minute window. */
  windowStart: number;
  failures: number;
  /** Blocked until this time (ms since epoch); 0 when not blocked. */
  blockedUntil: number;
}

export class LoginThrottle {
  private readonly records = new LRUCache<string, KeyRecord>({ max: MAX_KEYS });

  /** `maxFailures` 0 turns throttling off. */
  constructor(
    private maxFailures: number,
    private blockMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** New limits (config reload): keys already blocked stay blocked until their time is up. */
  configure(maxFailures: number, blockMs: number): void {
    this.maxFailures = maxFailures;
    this.blockMs = blockMs;
  }

  /** Milliseconds the key stays blocked, or 0. */
  blockedFor(key: string): number {
    const record = this.records.get(key);
    if (!record || record.blockedUntil === 0) return 0;
    const left = record.blockedUntil - this.now();
    if (left > 0) return left;
    this.records.delete(key);
    return 0;
  }

  /** A failed login for `key`; true when this failure blocks it. */
  failed(key: string): boolean {
    if (this.maxFailures === 0) return false;
    const now = this.now();
    let record = this.records.get(key);
    if (!record || now - record.windowStart >= WINDOW_MS) {
      record = { windowStart: now, failures: 0, blockedUntil: record?.blockedUntil ?? 0 };
      this.records.set(key, record);
    }
    record.failures++;
    if (record.failures > this.maxFailures && record.blockedUntil <= now) {
      record.blockedUntil = now + this.blockMs;
      return true;
    }
    return false;
  }

  /** When `key`'s block ends (Date.now() time), or 0. */
  blockedUntil(key: string): number {
    return this.blockedFor(key) > 0 ? this.records.get(key)!.blockedUntil : 0;
  }

  /** Every key blocked now, with the end of its block. */
  blocks(): { key: string; until: number }[] {
    const out: { key: string; until: number }[] = [];
    const now = this.now();
    for (const [key, record] of this.records.entries()) if (record.blockedUntil > now) out.push({ key, until: record.blockedUntil });
    return out;
  }

  /** Applies a block decided by the throttle of another thread (worker threads follow the main thread's). */
  block(key: string, until: number): void {
    const record = this.records.get(key) ?? { windowStart: this.now(), failures: 0, blockedUntil: 0 };
    record.blockedUntil = Math.max(record.blockedUntil, until);
    this.records.set(key, record);
  }
}
