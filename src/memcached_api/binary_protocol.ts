/**
 * The memcached binary protocol as a codec: frames in, MemcachedCommands out,
 * and response frames built from the store's answers. No sockets, no store.
 *
 * Every frame is a 24-byte big-endian header (magic, opcode, key length u16,
 * extras length u8, data type u8, vbucket (request) / status (response) u16,
 * total body length u32, opaque u32, cas u64) followed by extras, key, value.
 *
 * Quiet requests (the Q opcodes) ask the server to hold back the answers the
 * client does not need; which ones is decided by suppressesResponse():
 *   - GETQ/GETKQ/GATQ/GATKQ: a miss (Key not found) is held back, a hit goes out;
 *   - every other Q command: its success is held back (QUITQ included);
 *   - errors always go out, and NOOP is never quiet (clients send it to flush
 *     a pipeline of quiet commands and wait for its answer).
 * The caller applies the rule; the writers here always build the frame.
 */
import { MAX_KEY_BYTES, MemcachedError, StoreMode, type MemcachedCommand } from './commands.js';

export const enum BinaryOpcode {
  Get = 0x00,
  Set = 0x01,
  Add = 0x02,
  Replace = 0x03,
  Delete = 0x04,
  Increment = 0x05,
  Decrement = 0x06,
  Quit = 0x07,
  Flush = 0x08,
  GetQ = 0x09,
  Noop = 0x0a,
  Version = 0x0b,
  GetK = 0x0c,
  GetKQ = 0x0d,
  Append = 0x0e,
  Prepend = 0x0f,
  Stat = 0x10,
  SetQ = 0x11,
  AddQ = 0x12,
  ReplaceQ = 0x13,
  DeleteQ = 0x14,
  IncrementQ = 0x15,
  DecrementQ = 0x16,
  QuitQ = 0x17,
  FlushQ = 0x18,
  AppendQ = 0x19,
  PrependQ = 0x1a,
  Verbosity = 0x1b,
  Touch = 0x1c,
  GAT = 0x1d,
  GATQ = 0x1e,
  SaslListMechs = 0x20,
  SaslAuth = 0x21,
  SaslStep = 0x22,
  GATK = 0x23,
  GATKQ = 0x24,
}

export const enum BinaryStatus {
  NoError = 0x00,
  KeyNotFound = 0x01,
  KeyExists = 0x02,
  ValueTooLarge = 0x03,
  InvalidArguments = 0x04,
  ItemNotStored = 0x05,
  NonNumeric = 0x06,
  AuthError = 0x20,
  AuthContinue = 0x21,
  UnknownCommand = 0x81,
  OutOfMemory = 0x82,
  NotSupported = 0x83,
  InternalError = 0x84,
  Busy = 0x85,
  TemporaryFailure = 0x86,
}

const enum Magic { Request = 0x80, Response = 0x81 }

export const BINARY_HEADER_BYTES = 24;

/** Arith with this expiration fails on a missing key instead of creating it. */
const ARITH_NO_CREATE = 0xffffffff;

export interface BinaryFrame {
  opcode: number;
  opaque: number;
  cas: bigint;
  key: Buffer;
  extras: Buffer;
  value: Buffer;
  /** Bytes of the whole frame, header included: where the next frame starts. */
  length: number;
}

/**
 * A frame the stream cannot continue after (bad magic, lengths that contradict
 * each other, a body over the limit). `opcode` and `opaque` are the header's
 * when it was complete, so the error response can still echo them.
 */
export class BinaryFrameError extends MemcachedError {
  constructor(
    message: string,
    status: number,
    readonly opcode: number,
    readonly opaque: number,
  ) {
    super('client', message, status);
  }
}

/**
 * Reads one request frame at `offset`. Returns null until the whole frame is
 * in `buf`; key, extras and value are views into `buf`, not copies, so they are
 * only valid as long as the caller keeps those bytes untouched.
 */
export function readBinaryFrame(buf: Buffer, offset: number, maxBodyBytes: number): BinaryFrame | null {
  if (buf.length <= offset) return null;
  // Checked on the first byte so that a text client (or garbage) fails at once
  // instead of waiting for 24 bytes that may never come.
  if (buf[offset] !== Magic.Request) throw new BinaryFrameError('Bad magic', BinaryStatus.InvalidArguments, 0, 0);
  if (buf.length - offset < BINARY_HEADER_BYTES) return null;
  const opcode = buf[offset + 1];
  const keyLength = buf.readUInt16BE(offset + 2);
  const extrasLength = buf[offset + 4];
  const bodyLength = buf.readUInt32BE(offset + 8);
  const opaque = buf.readUInt32BE(offset + 12);
  if (keyLength + extrasLength > bodyLength) {
    throw new BinaryFrameError('Key and extras longer than the body', BinaryStatus.InvalidArguments, opcode, opaque);
  }
  // Checked before waiting for the body: a client announcing 4 GB must not make us buffer it.
  if (bodyLength > maxBodyBytes) throw new BinaryFrameError('Too large', BinaryStatus.ValueTooLarge, opcode, opaque);
  const length = BINARY_HEADER_BYTES + bodyLength;
  if (buf.length - offset < length) return null;
  const extrasStart = offset + BINARY_HEADER_BYTES;
  const keyStart = extrasStart + extrasLength;
  const valueStart = keyStart + keyLength;
  return {
    opcode,
    opaque,
    cas: buf.readBigUInt64BE(offset + 16),
    extras: buf.subarray(extrasStart, keyStart),
    key: buf.subarray(keyStart, valueStart),
    value: buf.subarray(valueStart, offset + length),
    length,
  };
}

export interface BinaryRequest {
  opcode: number;
  opaque: number;
  /** A Q opcode: see suppressesResponse(). */
  quiet: boolean;
  /** GETK/GETKQ/GATK/GATKQ: the answer carries the key. */
  returnsKey: boolean;
  command: MemcachedCommand;
}

/** Which parts of the body an opcode takes: a violation is Invalid arguments. */
interface Shape {
  /** Allowed extras lengths. */
  extras: readonly number[];
  key: 'required' | 'optional' | 'none';
  value: boolean;
}

const QUIET = new Set<number>([
  BinaryOpcode.GetQ, BinaryOpcode.GetKQ, BinaryOpcode.GATQ, BinaryOpcode.GATKQ,
  BinaryOpcode.SetQ, BinaryOpcode.AddQ, BinaryOpcode.ReplaceQ, BinaryOpcode.DeleteQ,
  BinaryOpcode.IncrementQ, BinaryOpcode.DecrementQ, BinaryOpcode.QuitQ, BinaryOpcode.FlushQ, BinaryOpcode.AppendQ, BinaryOpcode.PrependQ,
]);
const RETURNS_KEY = new Set<number>([BinaryOpcode.GetK, BinaryOpcode.GetKQ, BinaryOpcode.GATK, BinaryOpcode.GATKQ]);
/** The quiet requests whose miss, not whose success, is held back. */
const QUIET_GETS = new Set<number>([BinaryOpcode.GetQ, BinaryOpcode.GetKQ, BinaryOpcode.GATQ, BinaryOpcode.GATKQ]);

const invalid = () => new MemcachedError('client', 'Invalid arguments', BinaryStatus.InvalidArguments);

function checkShape(frame: BinaryFrame, shape: Shape): void {
  const keyLength = frame.key.length;
  if (!shape.extras.includes(frame.extras.length)) throw invalid();
  if (shape.key === 'required' && keyLength === 0) throw invalid();
  if (shape.key === 'none' && keyLength !== 0) throw invalid();
  if (keyLength > MAX_KEY_BYTES) throw invalid();
  if (!shape.value && frame.value.length !== 0) throw invalid();
}

const KEY_ONLY: Shape = { extras: [0], key: 'required', value: false };
const NOTHING: Shape = { extras: [0], key: 'none', value: false };
/** GAT* and TOUCH: the key and a 4-byte expiration. */
const KEY_AND_U32: Shape = { extras: [4], key: 'required', value: false };

/** Maps a frame to its command; throws MemcachedError (status Invalid arguments / Unknown command). */
export function decodeBinaryRequest(frame: BinaryFrame): BinaryRequest {
  const { opcode, extras, key, value, cas } = frame;
  const command = (shape: Shape, build: () => MemcachedCommand): BinaryRequest => {
    checkShape(frame, shape);
    return { opcode, opaque: frame.opaque, quiet: QUIET.has(opcode), returnsKey: RETURNS_KEY.has(opcode), command: build() };
  };
  switch (opcode) {
    case BinaryOpcode.Get:
    case BinaryOpcode.GetQ:
    case BinaryOpcode.GetK:
    case BinaryOpcode.GetKQ:
      // The binary protocol always answers with the item's cas.
      return command(KEY_ONLY, () => ({ kind: 'get', keys: [key], withCas: true, touch: null }));
    case BinaryOpcode.GAT:
    case BinaryOpcode.GATQ:
    case BinaryOpcode.GATK:
    case BinaryOpcode.GATKQ:
      return command(KEY_AND_U32, () => ({ kind: 'get', keys: [key], withCas: true, touch: extras.readUInt32BE(0) }));
    case BinaryOpcode.Set:
    case BinaryOpcode.SetQ:
    case BinaryOpcode.Add:
    case BinaryOpcode.AddQ:
    case BinaryOpcode.Replace:
    case BinaryOpcode.ReplaceQ:
      return command({ extras: [8], key: 'required', value: true }, () => {
        const add = opcode === BinaryOpcode.Add || opcode === BinaryOpcode.AddQ;
        // An add only succeeds when the item is absent, so there is no cas it could compare.
        if (add && cas !== 0n) throw invalid();
        const plain = add ? StoreMode.Add : opcode === BinaryOpcode.Set || opcode === BinaryOpcode.SetQ ? StoreMode.Set : StoreMode.Replace;
        // A cas on SET or REPLACE makes it a compare-and-swap. A cas can only match
        // an existing item, so "replace" adds nothing to it and both become Cas.
        const mode = cas !== 0n ? StoreMode.Cas : plain;
        return { kind: 'store', mode, key, flags: extras.readUInt32BE(0), exptime: extras.readUInt32BE(4), value, cas };
      });
    case BinaryOpcode.Append:
    case BinaryOpcode.AppendQ:
    case BinaryOpcode.Prepend:
    case BinaryOpcode.PrependQ:
      return command({ extras: [0], key: 'required', value: true }, () => ({
        kind: 'store',
        mode: opcode === BinaryOpcode.Append || opcode === BinaryOpcode.AppendQ ? StoreMode.Append : StoreMode.Prepend,
        key, flags: 0, exptime: 0, value, cas,
      }));
    case BinaryOpcode.Delete:
    case BinaryOpcode.DeleteQ:
      return command(KEY_ONLY, () => ({ kind: 'delete', key, cas }));
    case BinaryOpcode.Increment:
    case BinaryOpcode.IncrementQ:
    case BinaryOpcode.Decrement:
    case BinaryOpcode.DecrementQ:
      return command({ extras: [20], key: 'required', value: false }, () => {
        const exptime = extras.readUInt32BE(16);
        return {
          kind: 'arith', key,
          incr: opcode === BinaryOpcode.Increment || opcode === BinaryOpcode.IncrementQ,
          delta: extras.readBigUInt64BE(0),
          initial: exptime === ARITH_NO_CREATE ? null : extras.readBigUInt64BE(8),
          exptime,
        };
      });
    case BinaryOpcode.Touch:
      return command(KEY_AND_U32, () => ({ kind: 'touch', key, exptime: extras.readUInt32BE(0) }));
    case BinaryOpcode.Flush:
    case BinaryOpcode.FlushQ:
      return command({ extras: [0, 4], key: 'none', value: false }, () => ({ kind: 'flush', delay: extras.length ? extras.readUInt32BE(0) : 0 }));
    case BinaryOpcode.Version:
      return command(NOTHING, () => ({ kind: 'version' }));
    case BinaryOpcode.Noop:
      return command(NOTHING, () => ({ kind: 'noop' }));
    case BinaryOpcode.Quit:
    case BinaryOpcode.QuitQ:
      return command(NOTHING, () => ({ kind: 'quit' }));
    case BinaryOpcode.Stat:
      return command({ extras: [0], key: 'optional', value: false }, () => ({ kind: 'stats', group: key.toString('latin1') }));
    case BinaryOpcode.Verbosity:
      return command({ extras: [4], key: 'none', value: false }, () => ({ kind: 'verbosity' }));
    case BinaryOpcode.SaslListMechs:
      return command(NOTHING, () => ({ kind: 'sasl_list' }));
    case BinaryOpcode.SaslAuth:
    case BinaryOpcode.SaslStep:
      return command({ extras: [0], key: 'required', value: true }, () => ({ kind: 'sasl_auth', mechanism: key.toString('latin1'), data: value }));
    default:
      throw new MemcachedError('client', 'Unknown command', BinaryStatus.UnknownCommand);
  }
}

/**
 * True when a quiet request's answer with this status is to be held back
 * (the rule in the header comment). Never for NOOP nor a non-quiet request.
 */
export function suppressesResponse(request: BinaryRequest, status: number): boolean {
  if (!request.quiet) return false;
  if (QUIET_GETS.has(request.opcode)) return status === BinaryStatus.KeyNotFound;
  return status === BinaryStatus.NoError;
}

/** What a response writer needs from its request: the opcode and opaque it echoes. */
export interface BinaryRequestHeader {
  opcode: number;
  opaque: number;
}

const EMPTY = Buffer.alloc(0);

/** One response frame: header + extras + key + value in a single Buffer. */
export function binaryResponse(
  opcode: number,
  opaque: number,
  status: number,
  parts: { cas?: bigint; extras?: Buffer; key?: Buffer; value?: Buffer } = {},
): Buffer {
  const extras = parts.extras ?? EMPTY;
  const key = parts.key ?? EMPTY;
  const value = parts.value ?? EMPTY;
  const bodyLength = extras.length + key.length + value.length;
  const out = Buffer.allocUnsafe(BINARY_HEADER_BYTES + bodyLength);
  out[0] = Magic.Response;
  out[1] = opcode;
  out.writeUInt16BE(key.length, 2);
  out[4] = extras.length;
  out[5] = 0; // data type: raw bytes, the only one defined
  out.writeUInt16BE(status, 6);
  out.writeUInt32BE(bodyLength, 8);
  out.writeUInt32BE(opaque, 12);
  out.writeBigUInt64BE(parts.cas ?? 0n, 16);
  let at = BINARY_HEADER_BYTES;
  at += extras.copy(out, at);
  at += key.copy(out, at);
  value.copy(out, at);
  return out;
}

function flagsExtras(flags: number): Buffer {
  const extras = Buffer.allocUnsafe(4);
  extras.writeUInt32BE(flags >>> 0, 0);
  return extras;
}

/** A get/gat hit: flags as extras, the item's cas, the key only for the K opcodes. */
export function binaryItem(request: BinaryRequest, item: { key: Buffer; flags: number; cas: bigint; value: Buffer }): Buffer {
  return binaryResponse(request.opcode, request.opaque, BinaryStatus.NoError, {
    cas: item.cas,
    extras: flagsExtras(item.flags),
    key: request.returnsKey ? item.key : undefined,
    value: item.value,
  });
}

/**
 * A get/gat miss. memcached answers the K opcodes with the key and no message
 * (the client needs the key to tell which of its pipelined gets missed), the
 * others with "Not found".
 */
export function binaryMiss(request: BinaryRequest, key: Buffer): Buffer {
  if (request.returnsKey) return binaryResponse(request.opcode, request.opaque, BinaryStatus.KeyNotFound, { key });
  return binaryError(request, BinaryStatus.KeyNotFound, 'Not found');
}

/** An error: no cas, the message as the value (what memcached's clients show). */
export function binaryError(request: BinaryRequestHeader, status: number, message: string): Buffer {
  return binaryResponse(request.opcode, request.opaque, status, { value: Buffer.from(message, 'utf8') });
}

/** memcached's own messages for each error status, for callers with nothing more specific to say. */
const STATUS_MESSAGES = new Map<number, string>([
  [BinaryStatus.KeyNotFound, 'Not found'], [BinaryStatus.KeyExists, 'Data exists for key.'],
  [BinaryStatus.ValueTooLarge, 'Too large.'], [BinaryStatus.InvalidArguments, 'Invalid arguments'],
  [BinaryStatus.ItemNotStored, 'Not stored.'], [BinaryStatus.NonNumeric, 'Non-numeric server-side value for incr or decr'],
  [BinaryStatus.AuthError, 'Auth failure.'], [BinaryStatus.UnknownCommand, 'Unknown command'],
  [BinaryStatus.OutOfMemory, 'Out of memory'], [BinaryStatus.NotSupported, 'Not supported'],
  [BinaryStatus.Busy, 'Busy'], [BinaryStatus.TemporaryFailure, 'Temporary failure'],
]);

export function binaryStatusMessage(status: number): string {
  return STATUS_MESSAGES.get(status) ?? 'Internal error';
}

/** An incr/decr result: the new value as 8 big-endian bytes. */
export function binaryArith(request: BinaryRequestHeader, value: bigint, cas: bigint): Buffer {
  const body = Buffer.allocUnsafe(8);
  body.writeBigUInt64BE(BigInt.asUintN(64, value), 0);
  return binaryResponse(request.opcode, request.opaque, BinaryStatus.NoError, { cas, value: body });
}

/** One frame per statistic (key = name, value = value), then the empty frame that ends the list. */
export function binaryStats(request: BinaryRequestHeader, pairs: readonly (readonly [string, string])[]): Buffer {
  const frames = pairs.map(([name, value]) =>
    binaryResponse(request.opcode, request.opaque, BinaryStatus.NoError, { key: Buffer.from(name, 'utf8'), value: Buffer.from(value, 'utf8') }),
  );
  frames.push(binaryResponse(request.opcode, request.opaque, BinaryStatus.NoError));
  return Buffer.concat(frames);
}

export function binaryVersion(request: BinaryRequestHeader, version: string): Buffer {
  return binaryResponse(request.opcode, request.opaque, BinaryStatus.NoError, { value: Buffer.from(version, 'utf8') });
}

/**
 * An empty success: store (cas = the stored item's), delete, flush, noop,
 * quit, verbosity (cas 0 unless the caller has one to report).
 */
export function binarySuccess(request: BinaryRequestHeader, cas: bigint = 0n): Buffer {
  return binaryResponse(request.opcode, request.opaque, BinaryStatus.NoError, { cas });
}

/** A touch success: memcached answers like a get hit without the value (flags as extras, the item's cas). */
export function binaryTouched(request: BinaryRequestHeader, item: { flags: number; cas: bigint }): Buffer {
  return binaryResponse(request.opcode, request.opaque, BinaryStatus.NoError, { cas: item.cas, extras: flagsExtras(item.flags) });
}
