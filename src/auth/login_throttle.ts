/**
 * Failed-login throttling per client address, as MySQL's max_connect_errors
 * but with a time limit: more than `maxFailures` failed logins within a
 * minute block the address for `blockMs`; a successful login clears its
 * count. Addresses are kept in an LRU bounded in entries, so a flood of
 * addresses cannot grow memory.
 */
import { LRUCache } from 'lru-cache';

const WINDOW_MS = 60_000;
/** Addresses remembered at once; the least recently seen is forgotten first. */
const MAX_ADDRESSES = 100_000;

interface AddressRecord {
  /** Start of the current one-minute window. */
  windowStart: number;
  failures: number;
  /** Blocked until this time (ms since epoch); 0 when not blocked. */
  blockedUntil: number;
}

export class LoginThrottle {
  private readonly records = new LRUCache<string, AddressRecord>({ max: MAX_ADDRESSES });

  /** `maxFailures` 0 turns throttling off. */
  constructor(
    private maxFailures: number,
    private blockMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** New limits (config reload): addresses already blocked stay blocked until their time is up. */
  configure(maxFailures: number, blockMs: number): void {
    this.maxFailures = maxFailures;
    this.blockMs = blockMs;
  }

  /** Milliseconds the address stays blocked, or 0. */
  blockedFor(address: string): number {
    const record = this.records.get(address);
    if (!record || record.blockedUntil === 0) return 0;
    const left = record.blockedUntil - this.now();
    if (left > 0) return left;
    this.records.delete(address);
    return 0;
  }

  /** A failed login from `address`; true when this failure blocks it. */
  failed(address: string): boolean {
    if (this.maxFailures === 0) return false;
    const now = this.now();
    let record = this.records.get(address);
    if (!record || now - record.windowStart >= WINDOW_MS) {
      record = { windowStart: now, failures: 0, blockedUntil: record?.blockedUntil ?? 0 };
      this.records.set(address, record);
    }
    record.failures++;
    if (record.failures > this.maxFailures && record.blockedUntil <= now) {
      record.blockedUntil = now + this.blockMs;
      return true;
    }
    return false;
  }

  /** A successful login: the address starts again from no failures. */
  succeeded(address: string): void {
    const record = this.records.get(address);
    if (record && record.blockedUntil <= this.now()) this.records.delete(address);
  }
}
