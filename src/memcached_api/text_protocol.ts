/**
 * The memcached text protocol: a parser over the connection's Buffer (one
 * command at a time, with offsets and subarrays) and the reply writers.
 *
 * A storage command's data block is read with its command line, so a command
 * is either whole or not yet arrived. A data block that is too large is still
 * consumed (and answered with SERVER_ERROR), as memcached does, so the next
 * command is read from the right place.
 */
import { MAX_KEY_BYTES, type MemcachedCommand, StoreMode } from './commands.js';

const CR = 0x0d;
const LF = 0x0a;

/** What one parse step found. */
export type TextParse =
  | { command: MemcachedCommand; noreply: boolean; length: number }
  /**
   * A reply that answers a bad command; `close` when the stream cannot be read
   * further; `discard`: bytes still to come that belong to it (a value too large to take).
   */
  | { error: string; length: number; close: boolean; discard?: number };

export interface TextLimits {
  /** Largest value a storage command may carry. */
  maxValueBytes: number;
  /** Longest command line (a get may carry many keys). */
  maxLineBytes: number;
}

const STORE_MODES: Record<string, StoreMode> = {
  set: StoreMode.Set,
  add: StoreMode.Add,
  replace: StoreMode.Replace,
  append: StoreMode.Append,
  prepend: StoreMode.Prepend,
  cas: StoreMode.Cas,
};

const BAD_FORMAT = 'CLIENT_ERROR bad command line format';
const U32_MAX = 0xffffffff;
const U64_MAX = (1n << 64n) - 1n;

/** Reads the command at `offset`; null until it has fully arrived. */
export function readTextCommand(buf: Buffer, offset: number, limits: TextLimits): TextParse | null {
  const lf = buf.indexOf(LF, offset);
  if (lf < 0) {
    if (buf.length - offset > limits.maxLineBytes) return { error: 'CLIENT_ERROR line too long', length: buf.length - offset, close: true };
    return null;
  }
  const lineEnd = lf > offset && buf[lf - 1] === CR ? lf - 1 : lf;
  const lineLength = lf + 1 - offset;
  if (lineLength > limits.maxLineBytes) return { error: 'CLIENT_ERROR line too long', length: lineLength, close: true };
  const words = splitWords(buf, offset, lineEnd);
  if (words.length === 0) return { error: 'ERROR', length: lineLength, close: false };
  const name = words[0].toString('latin1');
  const line = (error: string): TextParse => ({ error, length: lineLength, close: false });

  const mode = STORE_MODES[name];
  if (mode !== undefined) return readStorage(buf, lf + 1, lineLength, words, mode, limits);

  switch (name) {
    case 'get':
    case 'gets':
    case 'gat':
    case 'gats': {
      const touches = name.startsWith('gat');
      const first = touches ? 2 : 1;
      if (words.length <= first) return line('ERROR');
      const touch = touches ? signedInt(words[1]) : null;
      if (touches && touch === null) return line('CLIENT_ERROR invalid exptime argument');
      const keys = words.slice(first);
      if (keys.some((k) => k.length > MAX_KEY_BYTES)) return line(BAD_FORMAT);
      return { command: { kind: 'get', keys, withCas: name === 'gets' || name === 'gats', touch }, noreply: false, length: lineLength };
    }
    case 'delete': {
      const noreply = isNoreply(words);
      const n = words.length - (noreply ? 1 : 0);
      // memcached still accepts the old "delete <key> 0".
      if (n < 2 || n > 3 || (n === 3 && words[2].toString('latin1') !== '0')) {
        return line('CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]');
      }
      if (words[1].length > MAX_KEY_BYTES) return line(BAD_FORMAT);
      return { command: { kind: 'delete', key: words[1], cas: 0n }, noreply, length: lineLength };
    }
    case 'incr':
    case 'decr': {
      const noreply = isNoreply(words);
      if (words.length - (noreply ? 1 : 0) !== 3 || words[1].length > MAX_KEY_BYTES) return line('ERROR');
      const delta = unsigned64(words[2]);
      if (delta === null) return line('CLIENT_ERROR invalid numeric delta argument');
      return { command: { kind: 'arith', key: words[1], incr: name === 'incr', delta, initial: null, exptime: 0 }, noreply, length: lineLength };
    }
    case 'touch': {
      const noreply = isNoreply(words);
      if (words.length - (noreply ? 1 : 0) !== 3 || words[1].length > MAX_KEY_BYTES) return line('ERROR');
      const exptime = signedInt(words[2]);
      if (exptime === null) return line('CLIENT_ERROR invalid exptime argument');
      return { command: { kind: 'touch', key: words[1], exptime }, noreply, length: lineLength };
    }
    case 'flush_all': {
      const noreply = isNoreply(words);
      const n = words.length - (noreply ? 1 : 0);
      if (n > 2) return line('ERROR');
      const delay = n === 2 ? signedInt(words[1]) : 0;
      if (delay === null) return line(BAD_FORMAT);
      return { command: { kind: 'flush', delay }, noreply, length: lineLength };
    }
    case 'verbosity': {
      // As memcached: "verbosity noreply" (no level) is accepted, silently.
      const noreply = isNoreply(words);
      const n = words.length - (noreply ? 1 : 0);
      if (n !== 2 && !(noreply && n === 1)) return line('ERROR');
      return { command: { kind: 'verbosity' }, noreply, length: lineLength };
    }
    case 'version':
      return words.length === 1 ? { command: { kind: 'version' }, noreply: false, length: lineLength } : line('ERROR');
    case 'stats':
      return words.length <= 2
        ? { command: { kind: 'stats', group: words.length === 2 ? words[1].toString('latin1') : '' }, noreply: false, length: lineLength }
        : line('ERROR');
    case 'quit':
      return words.length === 1 ? { command: { kind: 'quit' }, noreply: false, length: lineLength } : line('ERROR');
    default:
      return line('ERROR');
  }
}

/** set/add/replace/append/prepend/cas: the line, then `<bytes>` of data and CRLF. */
function readStorage(buf: Buffer, dataAt: number, lineLength: number, words: Buffer[], mode: StoreMode, limits: TextLimits): TextParse | null {
  const noreply = isNoreply(words);
  const expected = mode === StoreMode.Cas ? 6 : 5;
  const n = words.length - (noreply ? 1 : 0);
  if (n !== expected) return { error: 'ERROR', length: lineLength, close: false };
  const bytes = signedInt(words[4]);
  const flags = unsigned64(words[2]);
  const exptime = signedInt(words[3]);
  const cas = mode === StoreMode.Cas ? unsigned64(words[5]) : 0n;
  // As memcached: a bad command line is answered alone, and what follows it is read as the next command.
  if (bytes === null || bytes < 0 || words[1].length > MAX_KEY_BYTES || flags === null || flags > U32_MAX || exptime === null || cas === null) {
    return { error: BAD_FORMAT, length: lineLength, close: false };
  }
  const total = lineLength + bytes + 2;
  if (bytes > limits.maxValueBytes) {
    // Answered at once; its data block is dropped as it arrives (never buffered), so the stream stays in step.
    const here = Math.min(buf.length - dataAt, bytes + 2);
    return { error: 'SERVER_ERROR object too large for cache', length: lineLength + here, close: false, discard: bytes + 2 - here };
  }
  if (buf.length - dataAt < bytes + 2) return null;
  if (buf[dataAt + bytes] !== CR || buf[dataAt + bytes + 1] !== LF) return { error: 'CLIENT_ERROR bad data chunk', length: total, close: false };
  const value = buf.subarray(dataAt, dataAt + bytes);
  return { command: { kind: 'store', mode, key: words[1], flags: Number(flags), exptime, value, cas: cas as bigint }, noreply, length: total };
}

function splitWords(buf: Buffer, start: number, end: number): Buffer[] {
  const words: Buffer[] = [];
  let at = start;
  while (at < end) {
    while (at < end && buf[at] === 0x20) at++;
    if (at >= end) break;
    let stop = at;
    while (stop < end && buf[stop] !== 0x20) stop++;
    words.push(buf.subarray(at, stop));
    at = stop;
  }
  return words;
}

function isNoreply(words: Buffer[]): boolean {
  return words.length > 1 && words[words.length - 1].toString('latin1') === 'noreply';
}

function signedInt(word: Buffer): number | null {
  const text = word.toString('latin1');
  if (!/^-?\d{1,10}$/.test(text)) return null;
  const n = Number(text);
  return n >= -0x80000000 && n <= U32_MAX ? n : null;
}

function unsigned64(word: Buffer): bigint | null {
  const text = word.toString('latin1');
  if (!/^\d{1,20}$/.test(text)) return null;
  const n = BigInt(text);
  return n <= U64_MAX ? n : null;
}

// Replies ------------------------------------------------------------------

const CRLF = Buffer.from('\r\n');
const END = Buffer.from('END\r\n');

/** One reply line. */
export function textLine(text: string): Buffer {
  return Buffer.from(`${text}\r\n`, 'latin1');
}

/** A get's hits, in order (misses are null and skipped), then END: built in one buffer. */
export function textItems(items: readonly ({ key: Buffer; flags: number; cas: bigint; value: Buffer } | null)[], withCas: boolean): Buffer {
  const heads: string[] = [];
  let size = END.length;
  for (const item of items) {
    if (!item) continue;
    const head = withCas ? ` ${item.flags} ${item.value.length} ${item.cas}\r\n` : ` ${item.flags} ${item.value.length}\r\n`;
    heads.push(head);
    size += 6 + item.key.length + head.length + item.value.length + 2;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  let h = 0;
  for (const item of items) {
    if (!item) continue;
    at += out.write('VALUE ', at, 'latin1');
    at += item.key.copy(out, at);
    at += out.write(heads[h++], at, 'latin1');
    at += item.value.copy(out, at);
    at += CRLF.copy(out, at);
  }
  END.copy(out, at);
  return out;
}

/** stats: one STAT line per pair, then END. */
export function textStats(pairs: readonly (readonly [string, string])[]): Buffer {
  return Buffer.from(`${pairs.map(([k, v]) => `STAT ${k} ${v}\r\n`).join('')}END\r\n`, 'latin1');
}
