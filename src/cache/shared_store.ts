/**
 * The memory tier shared by worker threads: entries off-heap in
 * SharedArrayBuffers, one copy for every thread, under one byte bound.
 *
 * Layout:
 *   - a ring of `capacity` bytes: records are appended at the write position
 *     and the oldest are overwritten when it wraps (first in, first out),
 *     except that a record served as a hit while in the oldest quarter of
 *     the ring is written again at the head (touch(); FIFO with reinsertion:
 *     an entry in use survives the laps, one copy per lap, and an entry
 *     nobody reads ages out, much as in an LRU);
 *   - an index: open addressing over 2^k slots (key hash, logical position of
 *     the record), probed PROBE slots from the key's hash;
 *   - a control block: the writers' lock and a sequence counter.
 *
 * Record (8-byte aligned): u32 length, u32 key length (UTF-16 units), u32
 * dead flag, u32 entry length, u32 CRC-32 of the key and the entry, u32 0,
 * the key as UTF-16 (padded to 8 bytes), then the entry as entry_codec.ts
 * encodes it for memcached.
 *
 * Writers (a miss being stored, a purge) take the lock and make the
 * sequence odd while they change anything. Readers take no lock: they read
 * the sequence, find and copy the record, and read the sequence again; a
 * change in between means a writer may have touched what they read, and the
 * read is retried (after RETRIES, a miss). A record is at logical position P
 * (bytes written since start); it is intact while P >= written - capacity.
 * JavaScript gives plain reads no ordering against the sequence's atomic
 * ones (on ARM64 they may be served out of order), so a copy also proves
 * itself: its key and entry must match the record's CRC-32, and the key is
 * compared on the copy.
 *
 * Decoding an entry costs a copy and some parsing: each thread keeps the
 * entries it decoded (by their logical position, which is never reused) in a
 * small LRU of its own, validated by the index on every read.
 */
import { isMainThread, threadId } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import { decodeEntry, encodeEntry } from './entry_codec.js';
import { fnv1a } from './fnv1a.js';
import { entryOverheadBytes, type CacheEntry, type CacheObserver } from './types.js';

const RECORD_HEADER = 24;
/** Slots probed from a key's hash, on reads and on writes. */
const PROBE = 8;
const RETRIES = 16;
/** Index slots per expected record (an average record of MIN_RECORD_GUESS bytes). */
const MIN_RECORD_GUESS = 256;
// Control block (Int32): the writers' lock, the sequence, entries indexed.
const LOCK = 0;
const SEQ = 1;
const ENTRIES = 2;
// Positions (Float64): bytes ever written (logical write position), oldest record kept.
const WRITTEN = 0;
const OLDEST = 1;
const DEAD = 1;
/** What this thread writes in the lock word: its thread id + 1 (0 is free). */
const LOCK_OWNER = threadId + 1;
/**
 * Longest wait for the writers' lock (a store holds it for microseconds, a
 * purge of a big tier longer). A worker thread waits little, as its event
 * loop stands still meanwhile: its store is skipped instead. The main
 * thread's purges wait longer.
 */
const LOCK_WAIT_MS = isMainThread ? 500 : 5;
/** A record served while older than this share of the ring (its oldest quarter) is written again at the head. */
const REINSERT_AGE = 0.75;

/** The SharedArrayBuffers of one store: made by the main thread, handed to each worker. */
export interface SharedStoreBuffers {
  control: SharedArrayBuffer;
  positions: SharedArrayBuffer;
  hashes: SharedArrayBuffer;
  slots: SharedArrayBuffer;
  ring: SharedArrayBuffer;
}

/** Buffers for a store of about `maxBytes` in all (ring plus index). */
export function sharedStoreBuffers(maxBytes: number): SharedStoreBuffers {
  // The index takes 12 bytes per slot, a slot per MIN_RECORD_GUESS/2 bytes of ring: about 5% of the bound.
  let slotCount = 1024;
  while (slotCount * (MIN_RECORD_GUESS / 2) < maxBytes) slotCount *= 2;
  const indexBytes = slotCount * 12;
  const ringBytes = Math.max(64 * 1024, Math.floor((maxBytes - indexBytes) / 8) * 8);
  const buffers = {
    control: new SharedArrayBuffer(16),
    positions: new SharedArrayBuffer(16),
    hashes: new SharedArrayBuffer(slotCount * 4),
    slots: new SharedArrayBuffer(slotCount * 8),
    ring: new SharedArrayBuffer(ringBytes),
  };
  new Float64Array(buffers.slots).fill(-1);
  return buffers;
}

export class SharedStore {
  private readonly control: Int32Array;
  private readonly positions: Float64Array;
  private readonly hashes: Int32Array;
  private readonly slotPositions: Float64Array;
  private readonly ring: Buffer;
  private readonly ringWords: Uint32Array;
  private readonly capacity: number;
  private readonly mask: number;
  /** Entries this thread decoded, with their keys, by logical position. */
  private readonly decoded: LRUCache<number, { key: string; entry: CacheEntry }>;
  /** Entries this thread wrote again at the head because they were served in the ring's oldest quarter. */
  reinserted = 0;
  /** The entry get() returned last, and where its record is. */
  private lastEntry: CacheEntry | null = null;
  private lastPosition = 0;

  constructor(
    readonly buffers: SharedStoreBuffers,
    private readonly observer: CacheObserver,
    /** Bytes of decoded entries this thread keeps (0: none). */
    decodedBytes: number,
  ) {
    this.control = new Int32Array(buffers.control);
    this.positions = new Float64Array(buffers.positions);
    this.hashes = new Int32Array(buffers.hashes);
    this.slotPositions = new Float64Array(buffers.slots);
    this.ring = Buffer.from(buffers.ring);
    this.ringWords = new Uint32Array(buffers.ring);
    this.capacity = buffers.ring.byteLength;
    this.mask = this.hashes.length - 1;
    this.decoded = new LRUCache<number, { key: string; entry: CacheEntry }>({
      maxSize: Math.max(1, decodedBytes),
      maxEntrySize: Math.max(1, decodedBytes),
      sizeCalculation: ({ key, entry }) => entry.wire.length + entryOverheadBytes(key, entry),
    });
  }

  /** The entry stored for `key`, unless absent, overwritten or past its expiresAt. */
  get(key: string): CacheEntry | undefined {
    const hash = fnv1a(key);
    for (let attempt = 0; attempt < RETRIES; attempt++) {
      const seq = Atomics.load(this.control, SEQ);
      if ((seq & 1) === 1) continue;
      let found: { position: number; entry: CacheEntry | null } | null;
      try {
        found = this.find(key, hash, true);
      } catch {
        found = null; // a record changed under the read: bounds read from it made no sense
      }
      if (Atomics.load(this.control, SEQ) !== seq) continue;
      if (found === null || found.entry === null) return undefined;
      const entry = found.entry;
      if (entry.expiresAt <= Date.now()) return undefined;
      if (!this.decoded.has(found.position)) this.decoded.set(found.position, { key, entry });
      this.lastEntry = entry;
      this.lastPosition = found.position;
      return entry;
    }
    return undefined;
  }

  /**
   * The slot and record of `key`: with `decode`, the entry too (from this
   * thread's decoded entries when it has that record's). Null when absent.
   */
  private find(key: string, hash: number, decode: boolean): { position: number; slot: number; entry: CacheEntry | null } | null {
    const written = this.positions[WRITTEN];
    for (let i = 0; i < PROBE; i++) {
      const slot = (hash + i) & this.mask;
      if (this.hashes[slot] !== hash) continue;
      const position = this.slotPositions[slot];
      if (position < 0 || position < written - this.capacity) continue;
      const offset = position % this.capacity;
      if (!decode) {
        if (this.keyAt(offset, key)) return { position, slot, entry: null };
        continue;
      }
      const cached = this.decoded.get(position);
      if (cached) {
        if (cached.key === key) return { position, slot, entry: cached.entry };
        continue;
      }
      const entry = this.copyOut(offset, key);
      if (entry) return { position, slot, entry };
    }
    return null;
  }

  /** The entry of the record at `offset`, copied out and checked against its CRC-32, if it is `key`'s. */
  private copyOut(offset: number, key: string): CacheEntry | null {
    const words = this.ringWords;
    const w = offset / 4;
    const length = words[w];
    const keyLength = words[w + 1];
    const bodyLength = words[w + 3];
    const crc = words[w + 4];
    if (keyLength !== key.length || words[w + 2] === DEAD) return null;
    const keyStart = offset + RECORD_HEADER;
    const start = keyStart + align8(keyLength * 2);
    if (start + bodyLength > offset + length || offset + length > this.capacity) return null;
    // A copy: the ring may be overwritten once the read is over.
    const copy = Buffer.allocUnsafe(keyLength * 2 + bodyLength);
    this.ring.copy(copy, 0, keyStart, keyStart + keyLength * 2);
    this.ring.copy(copy, keyLength * 2, start, start + bodyLength);
    if (crc32(copy) >>> 0 !== crc) return null;
    for (let i = 0, p = 0; i < keyLength; i++, p += 2) if (copy[p] + (copy[p + 1] << 8) !== key.charCodeAt(i)) return null;
    return decodeEntry([copy.subarray(keyLength * 2)]);
  }

  private keyAt(offset: number, key: string): boolean {
    const words = this.ringWords;
    if (words[offset / 4 + 1] !== key.length || words[offset / 4 + 2] === DEAD) return false;
    const ring = this.ring;
    let p = offset + RECORD_HEADER;
    for (let i = 0; i < key.length; i++, p += 2) if (ring[p] + (ring[p + 1] << 8) !== key.charCodeAt(i)) return false;
    return true;
  }

  /**
   * Stores `entry` under `key`, overwriting the oldest records as needed.
   * False, and nothing changed, when the entry is bigger than half the ring
   * or already expired, or the lock could not be taken (see write()).
   */
  set(key: string, entry: CacheEntry): boolean {
    return this.store(key, entry, LOCK_WAIT_MS, null);
  }

  /**
   * `entry`, just returned by get() for `key`, was served as a hit: if its
   * record is in the oldest quarter of the ring (about to be overwritten, yet
   * in use), it is written again at the head. Only while that record is
   * still the key's (a newer entry stored meanwhile is never replaced by
   * this older one), and only if no writer holds the lock now (a hit never
   * waits).
   */
  touch(key: string, entry: CacheEntry): void {
    if (entry !== this.lastEntry) return;
    const position = this.lastPosition;
    if (position >= this.positions[WRITTEN] - this.capacity * REINSERT_AGE) return;
    if (this.store(key, entry, 0, position)) this.reinserted++;
  }

  /** set(), waiting at most `lockWaitMs` for the lock (0: not at all); with `onlyOver`, only while the key's record is the one at that position. */
  private store(key: string, entry: CacheEntry, lockWaitMs: number, onlyOver: number | null): boolean {
    if (entry.expiresAt <= Date.now()) return false;
    const encoded = encodeEntry(entry, { maxValueBytes: this.capacity, maxItemsPerEntry: 1 });
    if (!encoded) return false;
    const body = encoded[0];
    const keyBytes = align8(key.length * 2);
    const length = align8(RECORD_HEADER + keyBytes + body.length);
    if (length > this.capacity / 2) return false;
    const hash = fnv1a(key);
    let replaced = false;
    const written = this.write(() => {
      const old = this.find(key, hash, false);
      if (onlyOver !== null && old?.position !== onlyOver) {
        replaced = true;
        return;
      }
      if (old) this.kill(old.position, old.slot);
      let position = this.positions[WRITTEN];
      // A record never wraps: the rest of the lap is skipped, behind a dead padding record when there is room for its header.
      const rest = this.capacity - (position % this.capacity);
      if (length > rest) {
        this.evictBefore(position + rest + length - this.capacity);
        if (rest >= RECORD_HEADER) this.writeHeader(position % this.capacity, rest, 0, DEAD);
        position += rest;
      } else {
        this.evictBefore(position + length - this.capacity);
      }
      const offset = position % this.capacity;
      let p = offset + RECORD_HEADER;
      for (let i = 0; i < key.length; i++, p += 2) {
        const c = key.charCodeAt(i);
        this.ring[p] = c & 0xff;
        this.ring[p + 1] = c >>> 8;
      }
      body.copy(this.ring, offset + RECORD_HEADER + keyBytes);
      const crc = crc32(body, crc32(this.ring.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + key.length * 2))) >>> 0;
      this.writeHeader(offset, length, key.length, 0, body.length, crc);
      this.positions[WRITTEN] = position + length;
      this.index(hash, position);
      Atomics.add(this.control, ENTRIES, 1);
    }, lockWaitMs);
    return written && !replaced;
  }

  private writeHeader(offset: number, length: number, keyLength: number, flag: number, bodyLength = 0, crc = 0): void {
    const words = this.ringWords;
    words[offset / 4] = length;
    words[offset / 4 + 1] = keyLength;
    words[offset / 4 + 2] = flag;
    words[offset / 4 + 3] = bodyLength;
    words[offset / 4 + 4] = crc;
    words[offset / 4 + 5] = 0;
  }

  /** Points a slot at the new record: a free or dead one among the probed, else the oldest of them. */
  private index(hash: number, position: number): void {
    const floor = this.positions[WRITTEN] - this.capacity;
    let victim = -1;
    let oldest = Infinity;
    for (let i = 0; i < PROBE; i++) {
      const slot = (hash + i) & this.mask;
      const at = this.slotPositions[slot];
      if (at < 0 || at < floor || !this.live(at)) {
        victim = slot;
        break;
      }
      if (at < oldest) {
        oldest = at;
        victim = slot;
      }
    }
    const displaced = this.slotPositions[victim];
    if (displaced >= 0 && displaced >= floor && this.live(displaced)) {
      // The index has no room near this hash: the oldest record there is lost (an eviction too).
      this.kill(displaced, victim);
      this.observer.evicted(1);
    }
    this.hashes[victim] = hash;
    this.slotPositions[victim] = position;
  }

  /** Whether the record at `position` is still indexed (not replaced, deleted or displaced). */
  private live(position: number): boolean {
    return this.ringWords[(position % this.capacity) / 4 + 2] !== DEAD;
  }

  /** Unindexes the record at `position` (found in `slot`). */
  private kill(position: number, slot: number): void {
    this.ringWords[(position % this.capacity) / 4 + 2] = DEAD;
    this.slotPositions[slot] = -1;
    Atomics.sub(this.control, ENTRIES, 1);
  }

  /** Walks the oldest records up to `floor` (the bytes about to be overwritten), counting those still indexed as evicted. */
  private evictBefore(floor: number): void {
    let oldest = this.positions[OLDEST];
    let evicted = 0;
    while (oldest < floor) {
      const offset = oldest % this.capacity;
      const rest = this.capacity - offset;
      const length = rest < RECORD_HEADER ? rest : this.ringWords[offset / 4];
      // Anything but a record's length here would be a bug: skip to the next lap rather than loop.
      if (rest >= RECORD_HEADER && (length < RECORD_HEADER || length > rest)) {
        oldest += rest;
        continue;
      }
      if (rest >= RECORD_HEADER && this.live(oldest)) {
        this.ringWords[offset / 4 + 2] = DEAD;
        if (this.ringWords[offset / 4 + 1] > 0 || length > RECORD_HEADER) {
          Atomics.sub(this.control, ENTRIES, 1);
          evicted++;
        }
      }
      oldest += length;
    }
    this.positions[OLDEST] = oldest;
    if (evicted > 0) this.observer.evicted(evicted);
  }

  /**
   * Runs `change` under the writers' lock (holding this thread's id) with
   * the sequence odd. False when the lock stays taken for `lockWaitMs`: its
   * holder was ended inside a write, and the main thread frees it
   * (recoverFrom()) once it hears of the end; blocking this thread meanwhile
   * could keep it from ever hearing.
   */
  private write(change: () => void, lockWaitMs = LOCK_WAIT_MS): boolean {
    let deadline = 0;
    for (;;) {
      const holder = Atomics.compareExchange(this.control, LOCK, 0, LOCK_OWNER);
      if (holder === 0) break;
      if (lockWaitMs === 0) return false;
      const now = Date.now();
      if (deadline === 0) deadline = now + lockWaitMs;
      else if (now > deadline) return false;
      Atomics.wait(this.control, LOCK, holder, 1);
    }
    Atomics.add(this.control, SEQ, 1);
    try {
      change();
    } finally {
      Atomics.add(this.control, SEQ, 1);
      Atomics.store(this.control, LOCK, 0);
      Atomics.notify(this.control, LOCK, 1);
    }
    return true;
  }

  /** A purge or a delete that could not take the lock. */
  private locked(): never {
    throw new Error(`the shared cache tier stayed locked for ${LOCK_WAIT_MS} ms (a worker thread ended inside a write); try again`);
  }

  /**
   * Worker thread `deadThreadId` ended. Ended from outside (Worker.terminate(),
   * which runs no finally block) inside a write, it left the lock held, the
   * sequence odd and a record or the index half written: every entry is
   * dropped and the lock freed. Returns whether it had to.
   */
  recoverFrom(deadThreadId: number): boolean {
    if (Atomics.compareExchange(this.control, LOCK, deadThreadId + 1, LOCK_OWNER) !== deadThreadId + 1) return false;
    if ((Atomics.load(this.control, SEQ) & 1) === 0) Atomics.add(this.control, SEQ, 1);
    this.slotPositions.fill(-1);
    Atomics.store(this.control, ENTRIES, 0);
    this.positions[OLDEST] = this.positions[WRITTEN];
    Atomics.add(this.control, SEQ, 1);
    Atomics.store(this.control, LOCK, 0);
    Atomics.notify(this.control, LOCK);
    return true;
  }

  delete(key: string): void {
    const hash = fnv1a(key);
    const done = this.write(() => {
      const found = this.find(key, hash, false);
      if (found) this.kill(found.position, found.slot);
    });
    if (!done) this.locked();
  }

  /** Deletes the entries for which `pred` is true (purge by table or rule): returns how many. */
  deleteWhere(pred: (entry: CacheEntry, key: string) => boolean): number {
    let dropped = 0;
    const done = this.write(() => {
      const floor = this.positions[WRITTEN] - this.capacity;
      for (let slot = 0; slot <= this.mask; slot++) {
        const position = this.slotPositions[slot];
        if (position < 0 || position < floor || !this.live(position)) continue;
        const offset = position % this.capacity;
        const keyLength = this.ringWords[offset / 4 + 1];
        const key = this.ring.toString('utf16le', offset + RECORD_HEADER, offset + RECORD_HEADER + keyLength * 2);
        const start = offset + RECORD_HEADER + align8(keyLength * 2);
        const entry = decodeEntry([this.ring.subarray(start, start + this.ringWords[offset / 4 + 3])]);
        if (entry && !pred(entry, key)) continue;
        this.kill(position, slot);
        dropped++;
      }
    });
    if (!done) this.locked();
    return dropped;
  }

  clear(): void {
    const done = this.write(() => {
      const floor = this.positions[WRITTEN] - this.capacity;
      for (let slot = 0; slot <= this.mask; slot++) {
        const position = this.slotPositions[slot];
        if (position >= 0 && position >= floor && this.live(position)) this.kill(position, slot);
        this.slotPositions[slot] = -1;
      }
    });
    if (!done) this.locked();
  }

  /** Bytes of the ring holding records not yet overwritten (indexed or not): never above the ring's size. */
  get bytes(): number {
    return Math.min(this.capacity, this.positions[WRITTEN] - this.positions[OLDEST]);
  }

  get entries(): number {
    return Atomics.load(this.control, ENTRIES);
  }
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
