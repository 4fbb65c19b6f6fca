import { ColumnType } from '../../src/protocol/constants.js';
import { UNSIGNED_FLAG, type ColumnDefinition } from './column_definition.js';
import { PayloadReader, ProtocolError } from '../../src/protocol/payload_reader.js';

/** A decoded binary-protocol value: numbers and bigints for integers, strings for temporal and decimal values, Buffers for strings and blobs. */
export type BinaryValue = null | number | bigint | string | Buffer;

/**
 * Decodes one ProtocolBinary::ResultsetRow: a 0x00 header, a NULL bitmap
 * with a 2-bit offset, then the non-NULL values in their binary encodings.
 * The relay never needs this (it forwards bytes); the cache and tests do.
 */
export function decodeBinaryRow(payload: Buffer, columns: readonly Pick<ColumnDefinition, 'type' | 'flags'>[]): BinaryValue[] {
  const r = new PayloadReader(payload);
  if (r.u8() !== 0x00) throw new ProtocolError('binary row must start with 0x00');
  const bitmap = r.bytes((columns.length + 7 + 2) >> 3);
  const values: BinaryValue[] = [];
  for (let i = 0; i < columns.length; i++) {
    const bit = i + 2;
    if (bitmap[bit >> 3] & (1 << (bit & 7))) {
      values.push(null);
      continue;
    }
    values.push(decodeValue(r, columns[i].type, (columns[i].flags & UNSIGNED_FLAG) !== 0));
  }
  if (r.remaining !== 0) throw new ProtocolError(`binary row has ${r.remaining} trailing bytes`);
  return values;
}

export function decodeValue(r: PayloadReader, type: number, unsigned: boolean): BinaryValue {
  switch (type) {
    case ColumnType.TINY: {
      const v = r.u8();
      return unsigned ? v : (v << 24) >> 24;
    }
    case ColumnType.SHORT:
    case ColumnType.YEAR: {
      const v = r.u16();
      return unsigned || type === ColumnType.YEAR ? v : (v << 16) >> 16;
    }
    case ColumnType.INT24:
    case ColumnType.LONG: {
      const v = r.u32();
      return unsigned ? v : v | 0;
    }
    case ColumnType.LONGLONG: {
      const v = r.u64();
      return unsigned ? v : BigInt.asIntN(64, v);
    }
    case ColumnType.FLOAT: {
      const b = r.bytes(4);
      return b.readFloatLE(0);
    }
    case ColumnType.DOUBLE: {
      const b = r.bytes(8);
      return b.readDoubleLE(0);
    }
    case ColumnType.DATE:
    case ColumnType.DATETIME:
    case ColumnType.TIMESTAMP:
    case ColumnType.NEWDATE:
      return decodeDateTime(r, type === ColumnType.DATE || type === ColumnType.NEWDATE);
    case ColumnType.TIME:
      return decodeTime(r);
    case ColumnType.NULL:
      return null;
    case ColumnType.DECIMAL:
    case ColumnType.NEWDECIMAL:
      return r.lenencString('latin1');
    default:
      // Strings, blobs, BIT, ENUM, SET, JSON, GEOMETRY: length-encoded bytes.
      return Buffer.from(r.lenencBytes());
  }
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function decodeDateTime(r: PayloadReader, dateOnly: boolean): string {
  const len = r.u8();
  if (len === 0) return dateOnly ? '0000-00-00' : '0000-00-00 00:00:00';
  const year = r.u16();
  const month = r.u8();
  const day = r.u8();
  let text = `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
  if (dateOnly) return text;
  let h = 0, m = 0, s = 0, us = -1;
  if (len >= 7) {
    h = r.u8();
    m = r.u8();
    s = r.u8();
  }
  if (len === 11) us = r.u32();
  text += ` ${pad(h)}:${pad(m)}:${pad(s)}`;
  return us >= 0 ? `${text}.${pad(us, 6)}` : text;
}

function decodeTime(r: PayloadReader): string {
  const len = r.u8();
  if (len === 0) return '00:00:00';
  const negative = r.u8() === 1;
  const days = r.u32();
  const h = r.u8() + days * 24;
  const m = r.u8();
  const s = r.u8();
  const us = len === 12 ? r.u32() : -1;
  const text = `${negative ? '-' : ''}${pad(h)}:${pad(m)}:${pad(s)}`;
  return us >= 0 ? `${text}.${pad(us, 6)}` : text;
}
