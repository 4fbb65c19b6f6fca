/**
 * Row images of rows events: which values of one column (a table's key) a
 * WRITE_ROWS / UPDATE_ROWS / DELETE_ROWS event touched, so a cache keyed by
 * that column can drop single entries instead of the whole table. Plain SQL
 * writes are covered too: with binlog_format=ROW every write becomes a rows
 * event.
 *
 * A rows event cannot be read alone: the preceding TABLE_MAP event gives each
 * column's type and type metadata (max length, precision, fractional seconds,
 * ...), and values are stored back to back without lengths for fixed-size
 * types. So locating column N means computing the stored length of every
 * present column of every row image; a column whose length this module cannot
 * compute makes the whole event unreadable (`null`: the caller invalidates the
 * table), never a guess.
 *
 * Layouts follow the MySQL/MariaDB replication documentation ("Table_map
 * event", "Rows events", "binary row image"). Every read is bounds checked and
 * a malformed event throws ProtocolError, like binlog_events.ts.
 */
import { inflateSync } from 'node:zlib';
import { ProtocolError } from '../protocol/payload_reader.js';
import {
  COMMON_HEADER_LENGTH,
  EventType,
  need,
  postHeaderLength,
  readHeader,
  readTableId,
  readTableMapHead,
  type BinlogFormat,
} from './binlog_events.js';

/** Column type codes as TABLE_MAP writes them (enum_field_types). */
export const enum ColumnType {
  DECIMAL = 0, TINY = 1, SHORT = 2, LONG = 3, FLOAT = 4, DOUBLE = 5, NULL = 6, TIMESTAMP = 7, LONGLONG = 8, INT24 = 9,
  DATE = 10, TIME = 11, DATETIME = 12, YEAR = 13, NEWDATE = 14, VARCHAR = 15, BIT = 16,
  TIMESTAMP2 = 17, DATETIME2 = 18, TIME2 = 19,
  /** MariaDB column compression (`... COMPRESSED` columns): metadata known, stored length not decoded here. */
  BLOB_COMPRESSED = 140, VARCHAR_COMPRESSED = 141,
  JSON = 245, NEWDECIMAL = 246, ENUM = 247, SET = 248, TINY_BLOB = 249, MEDIUM_BLOB = 250, LONG_BLOB = 251, BLOB = 252,
  VAR_STRING = 253, STRING = 254, GEOMETRY = 255,
}

/** One TABLE_MAP event, decoded for locating values in the rows events that follow it. */
export interface TableColumns {
  tableId: number;
  schema: string;
  table: string;
  /** ColumnType per column. */
  types: Uint8Array;
  /**
   * Type metadata per column. One-byte metadata as is; VARCHAR / VAR_STRING
   * max length as the little-endian u16 it is; every other two-byte metadata
   * (STRING / ENUM / SET real type and length, NEWDECIMAL precision and
   * scale, BIT bits and bytes) as first byte << 8 | second byte.
   */
  metadata: Uint16Array;
  /** 1 where the column is nullable. */
  nullable: Uint8Array;
  /**
   * How many leading columns have trustworthy metadata: all of them, unless a
   * type with an unknown metadata size appears (metadata of the columns from
   * it on cannot be split) or the sizes do not add up to the declared block.
   */
  decodableColumns: number;
}

/** Reads a length-encoded integer at `at` and leaves where it ends in `lengthEncodedEnd` (a module-level slot: no object per call). */
function readLength(buf: Buffer, at: number, end: number, what: string): number {
  if (at >= end) throw new ProtocolError(`binlog event too short for ${what}`);
  const first = buf[at];
  let size: number;
  let value: number;
  if (first < 0xfb) {
    size = 1;
    value = first;
  } else if (first === 0xfc || first === 0xfd) {
    size = first === 0xfc ? 3 : 4;
    if (at + size > end) throw new ProtocolError(`binlog event too short for ${what}`);
    value = buf.readUIntLE(at + 1, size - 1);
  } else {
    // 0xfe would be an 8-byte count: no column count or metadata block is that large.
    throw new ProtocolError(`invalid length-encoded ${what} prefix 0x${first.toString(16)}`);
  }
  lengthEncodedEnd = at + size;
  return value;
}
let lengthEncodedEnd = 0;

const NO_METADATA = new Set<number>([
  ColumnType.TINY, ColumnType.SHORT, ColumnType.INT24, ColumnType.LONG, ColumnType.LONGLONG, ColumnType.YEAR, ColumnType.DATE,
  ColumnType.NEWDATE, ColumnType.TIME, ColumnType.TIMESTAMP, ColumnType.DATETIME, ColumnType.NULL, ColumnType.DECIMAL,
]);
const ONE_BYTE_METADATA = new Set<number>([
  ColumnType.FLOAT, ColumnType.DOUBLE, ColumnType.TIMESTAMP2, ColumnType.DATETIME2, ColumnType.TIME2, ColumnType.TINY_BLOB,
  ColumnType.MEDIUM_BLOB, ColumnType.LONG_BLOB, ColumnType.BLOB, ColumnType.GEOMETRY, ColumnType.JSON, ColumnType.BLOB_COMPRESSED,
]);
const TWO_BYTE_METADATA = new Set<number>([
  ColumnType.VARCHAR, ColumnType.VAR_STRING, ColumnType.VARCHAR_COMPRESSED, ColumnType.NEWDECIMAL, ColumnType.BIT,
  ColumnType.STRING, ColumnType.ENUM, ColumnType.SET,
]);

/** Bytes of type metadata TABLE_MAP stores for `type`, or -1 when this module does not know the type. */
function metadataSize(type: number): number {
  if (NO_METADATA.has(type)) return 0;
  if (ONE_BYTE_METADATA.has(type)) return 1;
  return TWO_BYTE_METADATA.has(type) ? 2 : -1;
}

/** Parses a TABLE_MAP event: table id, names, column types, per-column metadata and the nullable bitmap. */
export function readTableColumns(event: Buffer, format: BinlogFormat): TableColumns {
  const header = readHeader(event);
  if (header.type !== EventType.TABLE_MAP) throw new ProtocolError(`binlog event type ${header.type} is not TABLE_MAP`);
  if (header.eventSize !== event.length) throw new ProtocolError(`binlog event size ${header.eventSize} does not match its packet (${event.length} bytes)`);
  const end = event.length - format.checksumBytes;
  const { tableId, schema, table, next } = readTableMapHead(event, format);
  let at = next;
  if (at > end) throw new ProtocolError('binlog TABLE_MAP names run into the checksum');

  const columnCount = readLength(event, at, end, 'TABLE_MAP column count');
  at = lengthEncodedEnd;
  if (at + columnCount > end) throw new ProtocolError('binlog event too short for TABLE_MAP column types');
  const types = Uint8Array.from(event.subarray(at, at + columnCount));
  at += columnCount;

  const metadataLength = readLength(event, at, end, 'TABLE_MAP metadata length');
  at = lengthEncodedEnd;
  const metadataEnd = at + metadataLength;
  if (metadataEnd > end) throw new ProtocolError('binlog event too short for TABLE_MAP metadata');
  const metadata = new Uint16Array(columnCount);
  let decodableColumns = columnCount;
  let m = at;
  for (let i = 0; i < columnCount; i++) {
    const size = metadataSize(types[i]);
    // An unknown type hides where the metadata of the columns after it starts; an overrun means a size here is wrong.
    if (size < 0 || m + size > metadataEnd) {
      decodableColumns = size < 0 ? i : 0;
      break;
    }
    if (size === 1) metadata[i] = event[m];
    else if (size === 2) {
      const type = types[i];
      const littleEndian = type === ColumnType.VARCHAR || type === ColumnType.VAR_STRING || type === ColumnType.VARCHAR_COMPRESSED;
      metadata[i] = littleEndian ? event.readUInt16LE(m) : event.readUInt16BE(m);
    }
    m += size;
  }
  // Sizes that do not add up mean a type's metadata is not what this module thinks: trust none of it.
  if (decodableColumns === columnCount && m !== metadataEnd) decodableColumns = 0;

  const nullBitmapLength = (columnCount + 7) >> 3;
  if (metadataEnd + nullBitmapLength > end) throw new ProtocolError('binlog event too short for TABLE_MAP null bitmap');
  const nullable = new Uint8Array(columnCount);
  for (let i = 0; i < columnCount; i++) nullable[i] = (event[metadataEnd + (i >> 3)] >> (i & 7)) & 1;
  // Optional metadata (binlog_row_metadata=MINIMAL/FULL) may follow; nothing here needs it.
  return { tableId, schema, table, types, metadata, nullable, decodableColumns };
}

/** Bytes per leftover decimal digit count (0..8) in the binary DECIMAL format: 9 digits fill 4 bytes. */
const DECIMAL_DIGIT_BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4];

function decimalBytes(digits: number): number {
  return Math.floor(digits / 9) * 4 + DECIMAL_DIGIT_BYTES[digits % 9];
}

/** How a column's value is stored: a fixed size, or a length prefix of 1..4 bytes before the content. */
const enum Stored { Unknown, Fixed, Prefixed }
/** Set by `storage`: the fixed size or the prefix width (module-level slots, so no object per value). */
let storedSize = 0;

/** Types whose stored size depends on nothing but the type. */
const FIXED_SIZE = new Map<number, number>([
  [ColumnType.TINY, 1], [ColumnType.YEAR, 1], [ColumnType.SHORT, 2], [ColumnType.INT24, 3], [ColumnType.DATE, 3],
  [ColumnType.NEWDATE, 3], [ColumnType.TIME, 3], [ColumnType.LONG, 4], [ColumnType.TIMESTAMP, 4], [ColumnType.LONGLONG, 8],
  [ColumnType.DATETIME, 8],
]);

/** Classifies how a value of `type` with `meta` is stored in a row image. */
function storage(type: number, meta: number): Stored {
  let size = FIXED_SIZE.get(type) ?? -1;
  switch (type) {
    case ColumnType.FLOAT:
    case ColumnType.DOUBLE:
      // The metadata is the pack length (4 or 8).
      size = meta === 4 || meta === 8 ? meta : -1;
      break;
    case ColumnType.TIMESTAMP2:
    case ColumnType.DATETIME2:
    case ColumnType.TIME2: {
      // The metadata is the fractional-seconds digits (0..6): two digits per byte, rounded up.
      const wholePart = type === ColumnType.TIMESTAMP2 ? 4 : type === ColumnType.DATETIME2 ? 5 : 3;
      size = meta <= 6 ? wholePart + ((meta + 1) >> 1) : -1;
      break;
    }
    case ColumnType.NEWDECIMAL: {
      const precision = meta >> 8;
      const scale = meta & 0xff;
      size = precision === 0 || scale > precision ? -1 : decimalBytes(precision - scale) + decimalBytes(scale);
      break;
    }
    case ColumnType.BIT:
      // bits beyond whole bytes, then whole bytes: BIT(17) is (1, 2) and takes 3 bytes.
      size = (meta & 0xff) + ((meta >> 8) > 0 ? 1 : 0);
      break;
    case ColumnType.ENUM:
    case ColumnType.SET:
      size = meta & 0xff;
      break;
    case ColumnType.VARCHAR:
    case ColumnType.VAR_STRING:
      storedSize = meta > 255 ? 2 : 1;
      return Stored.Prefixed;
    case ColumnType.STRING: {
      // Real type in the first byte; CHAR longer than 255 bytes borrows two bits of it for the length (MySQL bug #37426).
      const first = meta >> 8;
      let realType = first;
      let maxLength = meta & 0xff;
      if ((first & 0x30) !== 0x30) {
        maxLength |= ((first & 0x30) ^ 0x30) << 4;
        realType = first | 0x30;
      }
      if (realType === ColumnType.ENUM || realType === ColumnType.SET) {
        size = maxLength;
        break;
      }
      if (realType !== ColumnType.STRING) return Stored.Unknown;
      storedSize = maxLength > 255 ? 2 : 1;
      return Stored.Prefixed;
    }
    case ColumnType.TINY_BLOB:
    case ColumnType.MEDIUM_BLOB:
    case ColumnType.LONG_BLOB:
    case ColumnType.BLOB:
    case ColumnType.GEOMETRY:
    case ColumnType.JSON:
      if (meta < 1 || meta > 4) return Stored.Unknown;
      storedSize = meta;
      return Stored.Prefixed;
    default:
      break;
  }
  if (size <= 0) return Stored.Unknown;
  storedSize = size;
  return Stored.Fixed;
}

/** Integer types, rendered as decimal text when they are the key column: their byte widths. */
const INTEGER_WIDTH = new Map<number, number>([
  [ColumnType.TINY, 1], [ColumnType.SHORT, 2], [ColumnType.INT24, 3], [ColumnType.LONG, 4], [ColumnType.LONGLONG, 8],
]);

/** String types whose content is returned as is (the key of a memcached-style table). */
const STRING_KEY_TYPES = new Set<number>([
  ColumnType.VARCHAR, ColumnType.VAR_STRING, ColumnType.TINY_BLOB, ColumnType.MEDIUM_BLOB, ColumnType.LONG_BLOB, ColumnType.BLOB,
]);

function isStringKey(type: number, meta: number): boolean {
  // CHAR counts, ENUM / SET (stored as STRING too, but their value is an index, not the text) do not.
  return STRING_KEY_TYPES.has(type) || (type === ColumnType.STRING && ((meta >> 8) | 0x30) === ColumnType.STRING);
}

function bitSet(buf: Buffer, bitmapAt: number, i: number): boolean {
  return ((buf[bitmapAt + (i >> 3)] >> (i & 7)) & 1) === 1;
}

function countBits(buf: Buffer, bitmapAt: number, columnCount: number): number {
  let n = 0;
  for (let i = 0; i < columnCount; i++) if (bitSet(buf, bitmapAt, i)) n++;
  return n;
}

/** Why a walk gave up: the event holds a value whose length or key text this module cannot tell. */
const CANNOT_TELL = -1;

/**
 * Reads one row image starting at `at` in `rows` and appends the value of
 * `columnIndex` (unless NULL) to `out`. Returns where the image ends, or
 * CANNOT_TELL.
 */
function readImage(rows: Buffer, at: number, end: number, bitmaps: Buffer, presentAt: number, presentCount: number,
  columns: TableColumns, columnIndex: number, out: Buffer[]): number {
  const nullsAt = at;
  at += (presentCount + 7) >> 3;
  if (at > end) throw new ProtocolError('binlog row image truncated in its null bitmap');
  const columnCount = columns.types.length;
  for (let c = 0, present = 0; c < columnCount; c++) {
    if (!bitSet(bitmaps, presentAt, c)) continue;
    const isNull = bitSet(rows, nullsAt, present);
    present++;
    if (isNull) continue;
    if (c >= columns.decodableColumns) return CANNOT_TELL;
    const type = columns.types[c];
    const meta = columns.metadata[c];
    const how = storage(type, meta);
    if (how === Stored.Unknown) return CANNOT_TELL;
    let valueAt = at;
    let valueEnd: number;
    if (how === Stored.Fixed) {
      valueEnd = at + storedSize;
    } else {
      if (at + storedSize > end) throw new ProtocolError('binlog row image truncated in a length prefix');
      valueAt = at + storedSize;
      valueEnd = valueAt + rows.readUIntLE(at, storedSize);
    }
    if (valueEnd > end) throw new ProtocolError(`binlog row image truncated in column ${c}`);
    if (c === columnIndex) {
      const width = INTEGER_WIDTH.get(type);
      if (width !== undefined) {
        // Signedness is not in TABLE_MAP (without binlog_row_metadata): with the
        // top bit clear signed and unsigned read alike, with it set they differ.
        if (rows[valueEnd - 1] & 0x80) return CANNOT_TELL;
        out.push(Buffer.from(width === 8 ? rows.readBigUInt64LE(valueAt).toString() : String(rows.readUIntLE(valueAt, width))));
      } else if (isStringKey(type, meta)) {
        out.push(rows.subarray(valueAt, valueEnd));
      } else {
        return CANNOT_TELL;
      }
    }
    at = valueEnd;
  }
  return at;
}

/**
 * MariaDB compressed rows events (log_bin_compress) compress only the rows
 * part: one header byte (0x80 | width of the size), the uncompressed size
 * big-endian in that many bytes, then a zlib stream.
 */
function inflateRows(event: Buffer, at: number, end: number): Buffer {
  if (at >= end) throw new ProtocolError('binlog compressed rows event has no rows');
  const head = event[at];
  const sizeWidth = head & 0x07;
  if ((head & 0x80) === 0 || sizeWidth < 1 || sizeWidth > 4) throw new ProtocolError(`binlog compressed rows header 0x${head.toString(16)} is invalid`);
  if (at + 1 + sizeWidth > end) throw new ProtocolError('binlog compressed rows event truncated in its size');
  const size = event.readUIntBE(at + 1, sizeWidth);
  let rows: Buffer;
  try {
    // The declared size bounds the output: a hostile stream cannot inflate without limit.
    rows = inflateSync(event.subarray(at + 1 + sizeWidth, end), { maxOutputLength: Math.max(size, 1) });
  } catch (err) {
    throw new ProtocolError(`binlog compressed rows do not inflate: ${(err as Error).message}`);
  }
  if (rows.length !== size) throw new ProtocolError(`binlog compressed rows inflate to ${rows.length} bytes, not ${size}`);
  return rows;
}

/**
 * The raw values of column `columnIndex` in every row image of a rows event
 * (WRITE / UPDATE / DELETE, v1 and v2, and MariaDB's compressed variants): for
 * UPDATE the before and the after image of each row, in event order. Strings
 * (VARCHAR, CHAR, BLOB / TEXT family) come back as their content without the
 * length prefix, as views into `event` (or into the inflated rows of a
 * compressed event: copy them to keep them); integers (TINYINT .. BIGINT) as decimal text. A NULL in that column
 * contributes nothing.
 *
 * Returns null when the event cannot be read for that column, and the caller
 * must treat the whole table as written:
 *  - `columnIndex` is outside the table, or the column is absent from a
 *    columns-present bitmap (binlog_row_image=MINIMAL/NOBLOB);
 *  - a present, non-NULL column has a type whose stored length is not computed
 *    here (every image must be walked to its end to reach the next one);
 *  - the key column is not a string or integer type, or is an integer with its
 *    top bit set (negative if signed, or above the signed maximum if unsigned:
 *    TABLE_MAP does not say which).
 * Throws ProtocolError for malformed events and for a table map of another table.
 */
export function rowsColumnValues(event: Buffer, format: BinlogFormat, columns: TableColumns, columnIndex: number): Buffer[] | null {
  const header = readHeader(event);
  if (header.eventSize !== event.length) throw new ProtocolError(`binlog event size ${header.eventSize} does not match its packet (${event.length} bytes)`);
  const type = header.type;
  const isV1 = type >= EventType.WRITE_ROWS_V1 && type <= EventType.DELETE_ROWS_V1;
  const isV2 = type >= EventType.WRITE_ROWS_V2 && type <= EventType.DELETE_ROWS_V2;
  const isCompressedV1 = type >= EventType.WRITE_ROWS_COMPRESSED_V1 && type <= EventType.DELETE_ROWS_COMPRESSED_V1;
  const isCompressedV2 = type >= EventType.WRITE_ROWS_COMPRESSED_V2 && type <= EventType.DELETE_ROWS_COMPRESSED_V2;
  if (!isV1 && !isV2 && !isCompressedV1 && !isCompressedV2) throw new ProtocolError(`binlog event type ${type} is not a rows event`);
  const isUpdate = type === EventType.UPDATE_ROWS_V1 || type === EventType.UPDATE_ROWS_V2
    || type === EventType.UPDATE_ROWS_COMPRESSED_V1 || type === EventType.UPDATE_ROWS_COMPRESSED_V2;
  const hasExtraData = isV2 || isCompressedV2;
  const compressed = isCompressedV1 || isCompressedV2;
  const end = event.length - format.checksumBytes;
  if (end < COMMON_HEADER_LENGTH) throw new ProtocolError('binlog event shorter than its checksum');
  const post = postHeaderLength(format, type, hasExtraData ? 10 : 8);
  const tableId = readTableId(event, COMMON_HEADER_LENGTH, post);
  if (tableId !== columns.tableId) throw new ProtocolError(`binlog rows event for table id ${tableId} read with the map of table id ${columns.tableId}`);
  let at = COMMON_HEADER_LENGTH + post;
  if (hasExtraData) {
    // The post-header ends with the extra-data length, which counts its own two bytes.
    need(event, at, 'rows event extra data length');
    const extraLength = event.readUInt16LE(at - 2);
    if (extraLength < 2) throw new ProtocolError(`binlog rows event extra data length ${extraLength} is invalid`);
    at += extraLength - 2;
  }
  if (at > end) throw new ProtocolError('binlog rows event header runs into the checksum');

  const columnCount = readLength(event, at, end, 'rows event column count');
  at = lengthEncodedEnd;
  if (columnCount !== columns.types.length) {
    throw new ProtocolError(`binlog rows event has ${columnCount} columns, its table map ${columns.types.length}`);
  }
  const bitmapLength = (columnCount + 7) >> 3;
  const beforeAt = at;
  const afterAt = isUpdate ? at + bitmapLength : at;
  at += isUpdate ? 2 * bitmapLength : bitmapLength;
  if (at > end) throw new ProtocolError('binlog event too short for the columns-present bitmaps');
  if (columnIndex < 0 || columnIndex >= columnCount) return null;
  if (!bitSet(event, beforeAt, columnIndex) || !bitSet(event, afterAt, columnIndex)) return null;
  const beforeCount = countBits(event, beforeAt, columnCount);
  const afterCount = isUpdate ? countBits(event, afterAt, columnCount) : beforeCount;

  let rows = event;
  let rowsEnd = end;
  if (compressed) {
    rows = inflateRows(event, at, end);
    at = 0;
    rowsEnd = rows.length;
  }
  const values: Buffer[] = [];
  // Each image has at least one present column, so its null bitmap is at least one byte: the loop always advances.
  while (at < rowsEnd) {
    at = readImage(rows, at, rowsEnd, event, beforeAt, beforeCount, columns, columnIndex, values);
    if (at === CANNOT_TELL) return null;
    if (isUpdate) {
      if (at >= rowsEnd) throw new ProtocolError('binlog UPDATE row has no after image');
      at = readImage(rows, at, rowsEnd, event, afterAt, afterCount, columns, columnIndex, values);
      if (at === CANNOT_TELL) return null;
    }
  }
  return values;
}
