/**
 * Binary form of a CacheEntry in memcached, split over several items when it is
 * bigger than one memcached item may be.
 *
 * Head item (little endian):
 *
 *   0   'W' 'C' 'E'           magic
 *   3   u8   version          (CODEC_VERSION; anything else decodes as null)
 *   4   u8   flags            bit 0: deprecateEof
 *   5   u8   reserved (0)
 *   6   u16  itemCount        head + parts (1 when not split)
 *   8   u32  wireLength       total wire bytes over all items
 *   12  u32  crc32            of the whole wire
 *   16  f64  createdAt
 *   24  f64  softExpiresAt
 *   32  f64  expiresAt
 *   40  u16  ruleLength, then the rule (utf8)
 *   ..  u16  depCount, then per dep: u16 nameLength, name (utf8), f64 generation
 *   ..  the first wire bytes (as many as fit in the item)
 *
 * Part items (keys `<headKey>:p1`, `:p2`, ...) hold the following wire bytes,
 * nothing else. A reader that finds a part missing, or parts whose total length
 * or crc32 disagrees with the head (a concurrent rewrite, an eviction), treats
 * the entry as a miss. Generations are doubles: exact up to 2^53.
 *
 * Decoding never throws: malformed input gives null.
 */
import { crc32 } from 'node:zlib';
import type { CacheEntry } from './types.js';

export const CODEC_VERSION = 1;
const MAGIC0 = 0x57; // W
const MAGIC1 = 0x43; // C
const MAGIC2 = 0x45; // E
/** Bytes up to and including the rule length field. */
const FIXED_HEADER = 42;
const MAX_U16 = 0xffff;

/** memcached's default item size limit (-I 1m): key, item header and value together. */
export const DEFAULT_ITEM_LIMIT_BYTES = 1024 * 1024;
/** Room left in an item for memcached's item header, CAS, flags and a key (at most 250 bytes). */
export const MEMCACHED_ITEM_OVERHEAD_BYTES = 1024;
export const DEFAULT_MAX_ITEMS_PER_ENTRY = 16;

/** Largest value to write into an item of a memcached whose item size limit is `itemLimitBytes`. */
export function maxValueBytesFor(itemLimitBytes: number): number {
  return Math.max(256, Math.floor(itemLimitBytes) - MEMCACHED_ITEM_OVERHEAD_BYTES);
}

export interface CodecLimits {
  /** Largest value stored in one memcached item (see maxValueBytesFor). */
  maxValueBytes: number;
  /** Entries needing more items than this are not stored. */
  maxItemsPerEntry: number;
}

/** Everything of an entry but its wire, plus what is needed to put the wire back together. */
export interface DecodedHead {
  meta: Omit<CacheEntry, 'wire'>;
  /** Items of the entry, head included (1 = not split). */
  itemCount: number;
  wireLength: number;
  crc: number;
  /** Wire bytes carried by the head item (a view into the input buffer). */
  first: Buffer;
}

/** Key of part `i` (1-based) of the entry stored under `headKey`. */
export function partKey(headKey: string, i: number): string {
  return `${headKey}:p${i}`;
}

function headerLength(entry: CacheEntry): number | null {
  if (entry.deps.length !== entry.gens.length || entry.deps.length > MAX_U16) return null;
  const ruleLen = Buffer.byteLength(entry.rule, 'utf8');
  if (ruleLen > MAX_U16) return null;
  let len = FIXED_HEADER + ruleLen + 2;
  for (const d of entry.deps) {
    const n = Buffer.byteLength(d, 'utf8');
    if (n > MAX_U16) return null;
    len += 2 + n + 8;
  }
  return len;
}

/** Items (values, head first) that `entry` needs; null when it cannot be stored within `limits`. */
export function itemCountFor(entry: CacheEntry, limits: CodecLimits): number | null {
  const hl = headerLength(entry);
  if (hl === null || hl > limits.maxValueBytes) return null;
  const inHead = Math.min(entry.wire.length, limits.maxValueBytes - hl);
  const rest = entry.wire.length - inHead;
  const count = 1 + Math.ceil(rest / limits.maxValueBytes);
  return count > limits.maxItemsPerEntry || count > MAX_U16 ? null : count;
}

/**
 * Encodes `entry` into memcached values: [head, part1, part2, ...]. Parts are
 * views into entry.wire (no copy). Null when the entry needs more than
 * maxItemsPerEntry items or its header alone does not fit in one item.
 */
export function encodeEntry(entry: CacheEntry, limits: CodecLimits): Buffer[] | null {
  const hl = headerLength(entry);
  const itemLimit = Math.floor(limits.maxValueBytes);
  if (hl === null || hl > itemLimit || entry.wire.length > 0xffffffff) return null;
  const wire = entry.wire;
  const inHead = Math.min(wire.length, itemLimit - hl);
  const rest = wire.length - inHead;
  const itemCount = 1 + Math.ceil(rest / itemLimit);
  if (itemCount > limits.maxItemsPerEntry || itemCount > MAX_U16) return null;

  const head = Buffer.allocUnsafe(hl + inHead);
  head[0] = MAGIC0;
  head[1] = MAGIC1;
  head[2] = MAGIC2;
  head[3] = CODEC_VERSION;
  head[4] = entry.deprecateEof ? 1 : 0;
  head[5] = 0;
  head.writeUInt16LE(itemCount, 6);
  head.writeUInt32LE(wire.length, 8);
  head.writeUInt32LE(crc32(wire) >>> 0, 12);
  head.writeDoubleLE(entry.createdAt, 16);
  head.writeDoubleLE(entry.softExpiresAt, 24);
  head.writeDoubleLE(entry.expiresAt, 32);
  let off = 40;
  const ruleLen = head.write(entry.rule, off + 2, 'utf8');
  head.writeUInt16LE(ruleLen, off);
  off += 2 + ruleLen;
  head.writeUInt16LE(entry.deps.length, off);
  off += 2;
  for (let i = 0; i < entry.deps.length; i++) {
    const n = head.write(entry.deps[i], off + 2, 'utf8');
    head.writeUInt16LE(n, off);
    off += 2 + n;
    head.writeDoubleLE(entry.gens[i], off);
    off += 8;
  }
  wire.copy(head, off, 0, inHead);

  const items: Buffer[] = [head];
  for (let start = inHead; start < wire.length; start += itemLimit) {
    items.push(wire.subarray(start, Math.min(wire.length, start + itemLimit)));
  }
  return items;
}

/** Parses a head item; null for anything that is not a head of this codec version. */
export function decodeHead(buf: Buffer | null | undefined): DecodedHead | null {
  try {
    if (!buf || buf.length < FIXED_HEADER + 2) return null;
    if (buf[0] !== MAGIC0 || buf[1] !== MAGIC1 || buf[2] !== MAGIC2 || buf[3] !== CODEC_VERSION) return null;
    const flags = buf[4];
    if ((flags & ~1) !== 0 || buf[5] !== 0) return null;
    const itemCount = buf.readUInt16LE(6);
    const wireLength = buf.readUInt32LE(8);
    const crc = buf.readUInt32LE(12);
    const createdAt = buf.readDoubleLE(16);
    const softExpiresAt = buf.readDoubleLE(24);
    const expiresAt = buf.readDoubleLE(32);
    if (itemCount < 1 || !Number.isFinite(createdAt) || !Number.isFinite(softExpiresAt) || !Number.isFinite(expiresAt)) {
      return null;
    }
    let off = 40;
    const ruleLen = buf.readUInt16LE(off);
    off += 2;
    if (off + ruleLen + 2 > buf.length) return null;
    const rule = buf.toString('utf8', off, off + ruleLen);
    off += ruleLen;
    const depCount = buf.readUInt16LE(off);
    off += 2;
    const deps = new Array<string>(depCount);
    const gens = new Array<number>(depCount);
    for (let i = 0; i < depCount; i++) {
      if (off + 2 > buf.length) return null;
      const n = buf.readUInt16LE(off);
      off += 2;
      if (off + n + 8 > buf.length) return null;
      deps[i] = buf.toString('utf8', off, off + n);
      off += n;
      gens[i] = buf.readDoubleLE(off);
      off += 8;
    }
    const first = buf.subarray(off);
    if (first.length > wireLength) return null;
    if (itemCount === 1 && first.length !== wireLength) return null;
    if (itemCount > 1 && first.length === wireLength) return null;
    return {
      meta: { deprecateEof: (flags & 1) === 1, deps, gens, rule, createdAt, softExpiresAt, expiresAt },
      itemCount,
      wireLength,
      crc,
      first,
    };
  } catch {
    return null;
  }
}

/**
 * Puts an entry back together from its head and its parts (parts[0] is item 1).
 * Null when a part is missing, or the lengths or crc32 disagree with the head.
 * For an entry that is not split, the returned wire is a view into the head buffer.
 */
export function assembleEntry(head: DecodedHead, parts: readonly (Buffer | null | undefined)[] = []): CacheEntry | null {
  try {
    if (parts.length !== head.itemCount - 1) return null;
    let wire: Buffer;
    if (parts.length === 0) {
      wire = head.first;
    } else {
      let total = head.first.length;
      for (const p of parts) {
        if (!p || p.length === 0) return null;
        total += p.length;
      }
      if (total !== head.wireLength) return null;
      wire = Buffer.concat([head.first, ...(parts as Buffer[])], total);
    }
    if (wire.length !== head.wireLength || crc32(wire) >>> 0 !== head.crc) return null;
    return { wire, ...head.meta };
  } catch {
    return null;
  }
}

/** Decodes [head, part1, ...] in one go (null for anything malformed or incomplete). */
export function decodeEntry(items: readonly (Buffer | null | undefined)[]): CacheEntry | null {
  const head = decodeHead(items[0]);
  if (head === null) return null;
  return assembleEntry(head, items.slice(1));
}
