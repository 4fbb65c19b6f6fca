/**
 * Binary log events, as a replica receives them after COM_BINLOG_DUMP: just
 * enough of each event to know which tables a transaction wrote and where
 * the stream stands (GTID, file rotation). Reads straight from the event
 * Buffer with offsets; rows are never decoded (a rows event only gives its
 * table id), so a large row event costs no more than a small one.
 *
 * Every event starts with the v4 common header (19 bytes):
 *   timestamp u32, type u8, server_id u32, event_size u32, log_pos u32, flags u16
 * and, when FORMAT_DESCRIPTION announced checksum algorithm 1 (CRC32), ends
 * with 4 checksum bytes that are not part of the body. The checksum itself is
 * not verified: the stream comes over TCP from the server, and the bytes only
 * name tables.
 *
 * Every read is bounds checked and throws ProtocolError: a malformed event
 * ends the reader's connection (which then reconnects), never the process.
 */
import { ProtocolError } from '../protocol/payload_reader.js';

export const enum EventType {
  QUERY = 2,
  STOP = 3,
  ROTATE = 4,
  FORMAT_DESCRIPTION = 15,
  XID = 16,
  TABLE_MAP = 19,
  WRITE_ROWS_V1 = 23,
  UPDATE_ROWS_V1 = 24,
  DELETE_ROWS_V1 = 25,
  INCIDENT = 26,
  HEARTBEAT = 27,
  WRITE_ROWS_V2 = 30,
  UPDATE_ROWS_V2 = 31,
  DELETE_ROWS_V2 = 32,
  MYSQL_GTID = 33,
  ANNOTATE_ROWS = 160,
  BINLOG_CHECKPOINT = 161,
  MARIADB_GTID = 162,
  GTID_LIST = 163,
  QUERY_COMPRESSED = 165,
  WRITE_ROWS_COMPRESSED_V1 = 166,
  UPDATE_ROWS_COMPRESSED_V1 = 167,
  DELETE_ROWS_COMPRESSED_V1 = 168,
  WRITE_ROWS_COMPRESSED_V2 = 169,
  UPDATE_ROWS_COMPRESSED_V2 = 170,
  DELETE_ROWS_COMPRESSED_V2 = 171,
}

export const COMMON_HEADER_LENGTH = 19;
/** FORMAT_DESCRIPTION's checksum_alg value for CRC32. */
export const CHECKSUM_CRC32 = 1;
/** MariaDB GTID event flag: the group is one statement with no BEGIN/COMMIT (DDL). */
export const GTID_FL_STANDALONE = 1;

/** The common header of one event. */
export interface EventHeader {
  /** Seconds since the epoch when the statement started on the primary (0 for artificial events and heartbeats). */
  timestamp: number;
  type: number;
  serverId: number;
  eventSize: number;
  logPos: number;
  flags: number;
}

/** What the reader keeps between events: the checksum setting and the post-header lengths from FORMAT_DESCRIPTION. */
export interface BinlogFormat {
  /** Trailing checksum bytes to ignore on every event (0 or 4). */
  checksumBytes: number;
  /** Post-header length per event type (index type - 1); empty until FORMAT_DESCRIPTION. */
  postHeaderLengths: Uint8Array;
}

/**
 * The format before FORMAT_DESCRIPTION arrives. The stream starts with an
 * artificial ROTATE that already carries a checksum when the server's
 * binlog_checksum is CRC32, so the reader passes what it asked the server for.
 */
export function initialFormat(crc32 = false): BinlogFormat {
  return { checksumBytes: crc32 ? 4 : 0, postHeaderLengths: new Uint8Array(0) };
}

export type BinlogEvent =
  | { kind: 'format'; header: EventHeader; serverVersion: string; checksumAlg: number }
  | { kind: 'rotate'; header: EventHeader; position: bigint; file: string }
  | { kind: 'gtid'; header: EventHeader; domain: number; serverId: number; seq: bigint; standalone: boolean }
  | { kind: 'gtid_list'; header: EventHeader; gtids: string[] }
  /** A MySQL GTID event: only its place in the stream matters here. */
  | { kind: 'mysql_gtid'; header: EventHeader }
  | { kind: 'query'; header: EventHeader; schema: string; sql: string }
  /** A compressed QUERY event: its text is not read, so it counts as an unknown write. */
  | { kind: 'query_compressed'; header: EventHeader }
  | { kind: 'table_map'; header: EventHeader; tableId: number; schema: string; table: string }
  | { kind: 'rows'; header: EventHeader; tableId: number }
  | { kind: 'xid'; header: EventHeader }
  | { kind: 'heartbeat'; header: EventHeader }
  /** Events lost on the primary (INCIDENT): everything must be invalidated. */
  | { kind: 'incident'; header: EventHeader }
  /** ANNOTATE_ROWS, BINLOG_CHECKPOINT, STOP and every type not listed: nothing to do. */
  | { kind: 'other'; header: EventHeader };

/** Throws ProtocolError unless `buf` holds at least `end` bytes (`what` names the part being read). */
export function need(buf: Buffer, end: number, what: string): void {
  if (end > buf.length) throw new ProtocolError(`binlog event too short for ${what} (${buf.length} bytes, need ${end})`);
}

export function readHeader(event: Buffer): EventHeader {
  need(event, COMMON_HEADER_LENGTH, 'the common header');
  return {
    timestamp: event.readUInt32LE(0),
    type: event[4],
    serverId: event.readUInt32LE(5),
    eventSize: event.readUInt32LE(9),
    logPos: event.readUInt32LE(13),
    flags: event.readUInt16LE(17),
  };
}

/** A 6-byte little-endian table id (ids above 2^48 do not exist in practice; 4-byte ids on very old servers). */
export function readTableId(event: Buffer, at: number, postHeaderLength: number): number {
  if (postHeaderLength === 6) {
    need(event, at + 4, 'the table id');
    return event.readUInt32LE(at);
  }
  need(event, at + 6, 'the table id');
  return event.readUIntLE(at, 6);
}

/** The post-header length FORMAT_DESCRIPTION announced for `type`, or `fallback` before it arrived. */
export function postHeaderLength(format: BinlogFormat, type: number, fallback: number): number {
  const n = format.postHeaderLengths[type - 1];
  return n === undefined || n === 0 ? fallback : n;
}

/**
 * Parses one event (the bytes after the OK byte of a dump packet). Updates
 * `format` on FORMAT_DESCRIPTION, which the following events depend on.
 */
export function parseEvent(event: Buffer, format: BinlogFormat): BinlogEvent {
  const header = readHeader(event);
  if (header.eventSize !== event.length) {
    throw new ProtocolError(`binlog event size ${header.eventSize} does not match its packet (${event.length} bytes)`);
  }
  const type = header.type;
  if (type === EventType.FORMAT_DESCRIPTION) return parseFormat(event, header, format);
  // Every other event: the body ends before the checksum.
  const end = event.length - format.checksumBytes;
  if (end < COMMON_HEADER_LENGTH) throw new ProtocolError('binlog event shorter than its checksum');
  const body = COMMON_HEADER_LENGTH;
  switch (type) {
    case EventType.ROTATE: {
      need(event, body + 8, 'ROTATE');
      return {
        kind: 'rotate',
        header,
        position: event.readBigUInt64LE(body),
        file: event.toString('latin1', body + 8, end),
      };
    }
    case EventType.MARIADB_GTID: {
      need(event, body + 13, 'GTID');
      const seq = event.readBigUInt64LE(body);
      const domain = event.readUInt32LE(body + 8);
      const flags = event[body + 12];
      return { kind: 'gtid', header, domain, serverId: header.serverId, seq, standalone: (flags & GTID_FL_STANDALONE) !== 0 };
    }
    case EventType.GTID_LIST: {
      need(event, body + 4, 'GTID_LIST');
      const count = event.readUInt32LE(body) & 0x0fffffff;
      need(event, body + 4 + count * 16, 'GTID_LIST entries');
      const gtids: string[] = [];
      for (let i = 0, at = body + 4; i < count; i++, at += 16) {
        gtids.push(`${event.readUInt32LE(at)}-${event.readUInt32LE(at + 4)}-${event.readBigUInt64LE(at + 8)}`);
      }
      return { kind: 'gtid_list', header, gtids };
    }
    case EventType.MYSQL_GTID:
      return { kind: 'mysql_gtid', header };
    case EventType.QUERY: {
      // Post-header: thread_id u32, exec_time u32, schema_length u8, error_code u16, status_vars_length u16 (MySQL 5.0+: 13 bytes).
      const post = postHeaderLength(format, type, 13);
      need(event, body + 13, 'QUERY');
      const schemaLength = event[body + 8];
      const statusLength = event.readUInt16LE(body + 11);
      const schemaAt = body + post + statusLength;
      need(event, schemaAt + schemaLength + 1, 'QUERY schema');
      if (schemaAt + schemaLength + 1 > end) throw new ProtocolError('binlog QUERY event schema runs into the checksum');
      return {
        kind: 'query',
        header,
        // Statement text is read as latin1 (one character per byte), as the classifier expects.
        schema: event.toString('latin1', schemaAt, schemaAt + schemaLength),
        sql: event.toString('latin1', schemaAt + schemaLength + 1, end),
      };
    }
    case EventType.QUERY_COMPRESSED:
      return { kind: 'query_compressed', header };
    case EventType.TABLE_MAP: {
      const { tableId, schema, table } = readTableMapHead(event, format);
      return { kind: 'table_map', header, tableId, schema, table };
    }
    case EventType.WRITE_ROWS_V1:
    case EventType.UPDATE_ROWS_V1:
    case EventType.DELETE_ROWS_V1:
    case EventType.WRITE_ROWS_V2:
    case EventType.UPDATE_ROWS_V2:
    case EventType.DELETE_ROWS_V2:
    case EventType.WRITE_ROWS_COMPRESSED_V1:
    case EventType.UPDATE_ROWS_COMPRESSED_V1:
    case EventType.DELETE_ROWS_COMPRESSED_V1:
    case EventType.WRITE_ROWS_COMPRESSED_V2:
    case EventType.UPDATE_ROWS_COMPRESSED_V2:
    case EventType.DELETE_ROWS_COMPRESSED_V2:
      return { kind: 'rows', header, tableId: readTableId(event, body, postHeaderLength(format, type, 8)) };
    case EventType.XID:
      return { kind: 'xid', header };
    case EventType.HEARTBEAT:
      return { kind: 'heartbeat', header };
    case EventType.INCIDENT:
      return { kind: 'incident', header };
    default:
      return { kind: 'other', header };
  }
}

/**
 * FORMAT_DESCRIPTION: binlog_version u16, server_version char[50],
 * create_timestamp u32, header_length u8, post-header lengths (one per event
 * type), then checksum_alg u8 and the 4 checksum bytes (servers since MySQL
 * 5.6.1 / MariaDB 5.3 always end it with these five bytes).
 */
function parseFormat(event: Buffer, header: EventHeader, format: BinlogFormat): BinlogEvent {
  const body = COMMON_HEADER_LENGTH;
  need(event, body + 57 + 5, 'FORMAT_DESCRIPTION');
  const version = event.toString('latin1', body + 2, body + 52).replace(/\0.*$/s, '');
  const headerLength = event[body + 56];
  if (headerLength !== COMMON_HEADER_LENGTH) throw new ProtocolError(`binlog common header of ${headerLength} bytes is not supported`);
  const checksumAlg = event[event.length - 5];
  format.checksumBytes = checksumAlg === CHECKSUM_CRC32 ? 4 : 0;
  format.postHeaderLengths = Uint8Array.from(event.subarray(body + 57, event.length - 5));
  return { kind: 'format', header, serverVersion: version, checksumAlg };
}

/**
 * The head of a TABLE_MAP event: its table id and names (each a length u8,
 * the bytes, then a 0 terminator). `next` is the offset after the table
 * name's terminator, where the column count starts.
 */
export function readTableMapHead(event: Buffer, format: BinlogFormat): { tableId: number; schema: string; table: string; next: number } {
  const post = postHeaderLength(format, EventType.TABLE_MAP, 8);
  const tableId = readTableId(event, COMMON_HEADER_LENGTH, post);
  let at = COMMON_HEADER_LENGTH + post;
  need(event, at + 1, 'TABLE_MAP schema');
  const schemaLength = event[at];
  need(event, at + 1 + schemaLength + 2, 'TABLE_MAP table');
  const schema = event.toString('utf8', at + 1, at + 1 + schemaLength);
  at += 1 + schemaLength + 1;
  const tableLength = event[at];
  need(event, at + 1 + tableLength, 'TABLE_MAP table name');
  const table = event.toString('utf8', at + 1, at + 1 + tableLength);
  return { tableId, schema, table, next: at + 1 + tableLength + 1 };
}
