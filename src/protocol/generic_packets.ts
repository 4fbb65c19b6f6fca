import { Capability, PacketHeader, type ErrorSpec } from './constants.js';
import { PayloadReader, skipLenenc } from './payload_reader.js';
import { PayloadWriter } from './payload_writer.js';

export interface OkPacket {
  kind: 'ok';
  affectedRows: bigint;
  lastInsertId: bigint;
  status: number;
  warnings: number;
  info: string;
  /** Raw session-state-change data (CLIENT_SESSION_TRACK), when present. */
  sessionState?: Buffer;
}

export interface ErrPacket {
  kind: 'err';
  code: number;
  sqlState: string;
  message: string;
}

export interface EofPacket {
  kind: 'eof';
  warnings: number;
  status: number;
}

export function parseOk(payload: Buffer, capabilities: number): OkPacket {
  const r = new PayloadReader(payload);
  r.u8(); // 0x00, or 0xFE when it stands in for EOF
  const affectedRows = r.lenencBigInt();
  const lastInsertId = r.lenencBigInt();
  const status = r.remaining >= 2 ? r.u16() : 0;
  const warnings = r.remaining >= 2 ? r.u16() : 0;
  let info = '';
  let sessionState: Buffer | undefined;
  if (capabilities & Capability.SESSION_TRACK) {
    if (r.remaining > 0) info = r.lenencString();
    if (status & 0x4000 && r.remaining > 0) sessionState = r.lenencBytes();
  } else {
    info = r.restString();
  }
  return { kind: 'ok', affectedRows, lastInsertId, status, warnings, info, sessionState };
}

export function parseErr(payload: Buffer): ErrPacket {
  const r = new PayloadReader(payload);
  r.u8();
  const code = r.u16();
  let sqlState = 'HY000';
  if (r.remaining > 0 && payload[r.offset] === 0x23 /* # */) {
    r.u8();
    sqlState = r.bytes(5).toString('latin1');
  }
  return { kind: 'err', code, sqlState, message: r.restString() };
}

export function parseEof(payload: Buffer): EofPacket {
  const r = new PayloadReader(payload);
  r.u8();
  if (r.remaining < 4) return { kind: 'eof', warnings: 0, status: 0 };
  const warnings = r.u16();
  const status = r.u16();
  return { kind: 'eof', warnings, status };
}

/**
 * Status flags of a terminator (EOF, or OK standing in for it) or an OK packet.
 * Reads only what it needs, for use on the hot path.
 */
export function statusOfTerminator(payload: Buffer): number {
  return statusOfTerminatorAt(payload, 0, payload.length);
}

/** statusOfTerminator for a payload of `length` bytes at `start` inside a larger buffer (no view is created). */
export function statusOfTerminatorAt(buf: Buffer, start: number, length: number): number {
  if (buf[start] === PacketHeader.EOF && length < 9) {
    return length >= 5 ? buf[start + 3] | (buf[start + 4] << 8) : 0;
  }
  // OK layout: header, lenenc affected rows, lenenc insert id, status
  let off = start + 1;
  off = skipLenenc(buf, off);
  off = skipLenenc(buf, off);
  return off + 2 <= start + length ? buf[off] | (buf[off + 1] << 8) : 0;
}

/** Whether the OK packet at `start` reports a last insert id other than 0 (lenenc 0 is the single byte 0). */
export function hasInsertIdAt(buf: Buffer, start: number, length: number): boolean {
  const off = skipLenenc(buf, start + 1);
  return off < start + length && buf[off] !== 0;
}

/** Warning count of an OK or EOF terminator at `start` (0 when the packet is too short to hold one). */
export function warningsOfTerminatorAt(buf: Buffer, start: number, length: number): number {
  if (buf[start] === PacketHeader.EOF && length < 9) {
    return length >= 3 ? buf[start + 1] | (buf[start + 2] << 8) : 0;
  }
  let off = start + 1;
  off = skipLenenc(buf, off);
  off = skipLenenc(buf, off);
  return off + 4 <= start + length ? buf[off + 2] | (buf[off + 3] << 8) : 0;
}

export function buildErr(err: ErrorSpec | { code: number; sqlState: string }, message: string): Buffer {
  return new PayloadWriter(16 + message.length)
    .u8(PacketHeader.ERR)
    .u16(err.code)
    .u8(0x23)
    .string(err.sqlState.padEnd(5, '0').slice(0, 5), 'latin1')
    .string(message)
    .finish();
}

export function buildOk(opts: {
  affectedRows?: number | bigint;
  lastInsertId?: number | bigint;
  status: number;
  warnings?: number;
  /** Use 0xFE as the header: the OK that ends a result set under CLIENT_DEPRECATE_EOF. */
  asEof?: boolean;
}): Buffer {
  const w = new PayloadWriter(16)
    .u8(opts.asEof ? PacketHeader.EOF : PacketHeader.OK)
    .lenenc(opts.affectedRows ?? 0)
    .lenenc(opts.lastInsertId ?? 0)
    .u16(opts.status)
    .u16(opts.warnings ?? 0);
  return w.finish();
}

export function buildEof(status: number, warnings = 0): Buffer {
  return new PayloadWriter(5).u8(PacketHeader.EOF).u16(warnings).u16(status).finish();
}
