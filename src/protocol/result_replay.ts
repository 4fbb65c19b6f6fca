/**
 * Replays a recorded result-set response to another client.
 *
 * The query cache keeps a COM_QUERY / COM_STMT_EXECUTE response exactly as
 * the server sent it (frames with their 4-byte headers), recorded on a
 * backend connection that did or did not negotiate CLIENT_DEPRECATE_EOF.
 * The client it is served to later may have negotiated the other mode, may
 * have started its command with another sequence id and may be in another
 * transaction state. Rows are never decoded or re-encoded: only the frame
 * headers' sequence ids, the EOF after the column definitions and the
 * terminator change.
 *
 * Layout of one result set (MariaDB 10.11, checked against test/fixtures/mariadb.json):
 *
 *   classic:         column count | N definitions | EOF | rows | EOF
 *   DEPRECATE_EOF:   column count | N definitions |       rows | OK with header 0xFE
 *
 *   EOF:  FE warnings(2) status(2)                                 5-byte payload
 *   OK:   FE affected_rows(lenenc) last_insert_id(lenenc) status(2) warnings(2) [info, session state]
 *
 * MariaDB writes the terminator OK as exactly `FE 00 00 status warnings` (7
 * bytes) for a SELECT. The EOF after the definitions carries the same status
 * as the terminator (NO_INDEX_USED included) and a warning count of 0, even
 * when the terminator reports warnings, including warnings raised while
 * constants were folded before the metadata was sent.
 *
 * A row is told from a terminator by its first byte and length: 0xFE begins
 * a text row only when the row's first value is 16 MiB or longer, and then
 * the row's first frame is 0xFFFFFF bytes long, while a terminator is always
 * shorter. A binary row begins with 0x00. 0xFF begins an ERR (an error while
 * rows were being sent), never a row.
 */
import { MAX_FRAME_PAYLOAD, PacketHeader, ServerStatus } from './constants.js';
import { ProtocolError } from './payload_reader.js';

/** Verdict on a recorded response: can it be cached, and what did its terminator say. */
export type ResultInspection =
  | { cacheable: true; columns: number; rows: number; warnings: number; status: number; firstSeq: number }
  | { cacheable: false; reason: 'error' | 'not_result_set' | 'multiple_results' | 'cursor' | 'malformed' };

type FailureReason = Extract<ResultInspection, { cacheable: false }>['reason'];

export interface ReplayTarget {
  /** The client's CLIENT_DEPRECATE_EOF. */
  deprecateEof: boolean;
  /** Sequence id of the first response packet (the client's command's last seq + 1, mod 256). */
  firstSeq: number;
  /** Status flags to show in every EOF/OK of the replay, for the bits in `statusMask`; other bits stay as recorded. */
  status: number;
  statusMask: number;
  /** Warning count to show in the terminator(s). */
  warnings: number;
}

/** Precomputed facts about a recorded response that make replay O(1) when nothing changes. */
export interface ReplayInfo {
  /** Sequence id of the first frame. */
  firstSeq: number;
  /** Offset of the terminator's frame header (the terminator is the last frame). */
  terminatorOffset: number;
  /** Offset of the frame header of the EOF after the column definitions; -1 when recorded with DEPRECATE_EOF. */
  columnsEofOffset: number;
  /** Offset of the first row's frame header (of the terminator when there are no rows). */
  rowsOffset: number;
  /** Status flags of the terminator. */
  status: number;
  /** Warning count of the terminator. */
  warnings: number;
  /** Frames (headers, so sequence ids) in the response, continuation frames of 16 MiB+ packets included. */
  packets: number;
  /** Frames of the column count and the definitions: those before the column EOF, or before the rows. */
  headFrames: number;
  columns: number;
  rows: number;
  /** Absolute offsets in the wire of the terminator's status and warning count fields. */
  statusOffset: number;
  warningsOffset: number;
}

/** Bytes of a frame header. */
const HEADER = 4;
/** Frame (header included) of a classic EOF. */
const EOF_FRAME = HEADER + 5;
/** Frame (header included) of the OK that MariaDB sends as terminator under DEPRECATE_EOF: FE 00 00 status warnings. */
const OK_FRAME = HEADER + 7;

class Failure {
  constructor(
    readonly reason: FailureReason,
    readonly message: string,
  ) {}
}

/** Walks the frames of `wire` once, checking every header, and returns what replay needs to know. */
function analyse(wire: Buffer, deprecateEof: boolean): ReplayInfo | Failure {
  const len = wire.length;
  if (len < HEADER) return new Failure('malformed', `response of ${len} bytes has no complete frame header`);
  const firstSeq = wire[3];
  let frames = 0;

  /** Checks the frame header at `pos` (length fits, seq is the next one); returns its payload length or a Failure. */
  const frameAt = (pos: number): number | Failure => {
    if (pos + HEADER > len) return new Failure('malformed', `truncated frame header at offset ${pos}`);
    const plen = wire[pos] | (wire[pos + 1] << 8) | (wire[pos + 2] << 16);
    if (pos + HEADER + plen > len) {
      return new Failure('malformed', `frame at offset ${pos} declares ${plen} payload bytes, ${len - pos - HEADER} present`);
    }
    const want = (firstSeq + frames) & 0xff;
    if (wire[pos + 3] !== want) return new Failure('malformed', `frame at offset ${pos} has sequence id ${wire[pos + 3]}, expected ${want}`);
    frames++;
    return plen;
  };

  /** Skips one logical packet whose first frame at `pos` declares `plen` (already checked); returns the offset after it. */
  const skipContinuations = (pos: number, plen: number): number | Failure => {
    pos += HEADER + plen;
    while (plen === MAX_FRAME_PAYLOAD) {
      const next = frameAt(pos);
      if (next instanceof Failure) return next;
      plen = next;
      pos += HEADER + plen;
    }
    return pos;
  };

  // Column count: a lone length-encoded integer.
  const countLen = frameAt(0);
  if (countLen instanceof Failure) return countLen;
  if (countLen === 0) return new Failure('malformed', 'empty first packet');
  const first = wire[HEADER];
  if (first === PacketHeader.ERR) return new Failure('error', 'the response is an ERR packet');
  if (first === PacketHeader.OK) return new Failure('not_result_set', 'the response is an OK packet');
  if (first === PacketHeader.LOCAL_INFILE) return new Failure('not_result_set', 'the response is a LOCAL INFILE request');
  let columns: number;
  let lenencSize: number;
  if (first < 0xfb) {
    columns = first;
    lenencSize = 1;
  } else if (first === 0xfc) {
    columns = wire[HEADER + 1] | (wire[HEADER + 2] << 8);
    lenencSize = 3;
  } else if (first === 0xfd) {
    columns = wire[HEADER + 1] | (wire[HEADER + 2] << 8) | (wire[HEADER + 3] << 16);
    lenencSize = 4;
  } else {
    return new Failure('malformed', `first packet starts with 0x${first.toString(16)}: neither a column count, OK, ERR nor LOCAL INFILE`);
  }
  // A longer packet carries more than the count (MariaDB's metadata-follows flag under
  // MARIADB_CLIENT_CACHE_METADATA): definitions may then be missing, so the layout is unknown.
  if (countLen !== lenencSize) {
    return new Failure('malformed', `column count packet of ${countLen} bytes holds more than a ${lenencSize}-byte count`);
  }
  if (columns === 0) return new Failure('malformed', 'column count of 0');
  let pos = HEADER + countLen;

  for (let i = 0; i < columns; i++) {
    const plen = frameAt(pos);
    if (plen instanceof Failure) return plen;
    const b = plen > 0 ? wire[pos + HEADER] : -1;
    if (b === -1 || b === PacketHeader.EOF || b === PacketHeader.ERR) {
      return new Failure('malformed', `column definition ${i + 1} of ${columns} at offset ${pos} starts with ${b === -1 ? 'nothing' : `0x${b.toString(16)}`}`);
    }
    const next = skipContinuations(pos, plen);
    if (next instanceof Failure) return next;
    pos = next;
  }
  const headFrames = frames;

  let columnsEofOffset = -1;
  if (!deprecateEof) {
    const plen = frameAt(pos);
    if (plen instanceof Failure) return plen;
    if (plen !== 5 || wire[pos + HEADER] !== PacketHeader.EOF) {
      return new Failure('malformed', `expected a 5-byte EOF after the column definitions at offset ${pos}`);
    }
    columnsEofOffset = pos;
    pos += EOF_FRAME;
    const eofStatus = wire[columnsEofOffset + 7] | (wire[columnsEofOffset + 8] << 8);
    // With an open cursor the COM_STMT_EXECUTE response ends here: rows come with COM_STMT_FETCH.
    if (eofStatus & ServerStatus.CURSOR_EXISTS) return new Failure('cursor', 'the column EOF announces an open cursor');
  }
  const rowsOffset = pos;

  let rows = 0;
  for (;;) {
    if (pos >= len) return new Failure('malformed', 'the response ends without a terminator');
    const plen = frameAt(pos);
    if (plen instanceof Failure) return plen;
    const b = plen > 0 ? wire[pos + HEADER] : -1;
    if (plen < MAX_FRAME_PAYLOAD && (b === PacketHeader.EOF || b === PacketHeader.ERR)) break;
    if (b === -1) return new Failure('malformed', `empty row packet at offset ${pos}`);
    if (b === PacketHeader.ERR) return new Failure('malformed', `row at offset ${pos} starts with 0xff`);
    const next = skipContinuations(pos, plen);
    if (next instanceof Failure) return next;
    pos = next;
    rows++;
  }

  const terminatorOffset = pos;
  const tlen = wire[pos] | (wire[pos + 1] << 8) | (wire[pos + 2] << 16);
  if (wire[pos + HEADER] === PacketHeader.ERR) return new Failure('error', 'the server sent ERR while sending rows');
  const payloadStart = pos + HEADER;
  const payloadEnd = payloadStart + tlen;
  let statusOffset: number;
  let warningsOffset: number;
  if (!deprecateEof) {
    if (tlen !== 5) return new Failure('malformed', `terminator EOF at offset ${pos} has ${tlen} payload bytes, not 5`);
    warningsOffset = payloadStart + 1;
    statusOffset = payloadStart + 3;
  } else {
    let off = payloadStart + 1;
    for (let i = 0; i < 2; i++) {
      // affected rows, then last insert id
      const p = off < payloadEnd ? wire[off] : -1;
      if (p === -1 || p === 0xfb || p === 0xff) return new Failure('malformed', `terminator OK at offset ${pos} has no valid length-encoded integer at ${off}`);
      off += p < 0xfb ? 1 : p === 0xfc ? 3 : p === 0xfd ? 4 : 9;
    }
    if (off + 4 > payloadEnd) return new Failure('malformed', `terminator OK at offset ${pos} is too short for status and warnings`);
    statusOffset = off;
    warningsOffset = off + 2;
  }
  const status = wire[statusOffset] | (wire[statusOffset + 1] << 8);
  const warnings = wire[warningsOffset] | (wire[warningsOffset + 1] << 8);
  if (status & ServerStatus.MORE_RESULTS_EXISTS) return new Failure('multiple_results', 'the terminator announces more results');
  if (status & ServerStatus.CURSOR_EXISTS) return new Failure('cursor', 'the terminator announces an open cursor');
  if (payloadEnd !== len) return new Failure('malformed', `${len - payloadEnd} bytes follow the terminator`);

  return {
    firstSeq,
    terminatorOffset,
    columnsEofOffset,
    rowsOffset,
    status,
    warnings,
    packets: frames,
    headFrames,
    columns,
    rows,
    statusOffset,
    warningsOffset,
  };
}

/**
 * Checks that `wire` is exactly one complete result set (column count,
 * definitions, [EOF], rows, terminator) with no MORE_RESULTS_EXISTS and no
 * open cursor. Never throws.
 */
export function inspectResult(wire: Buffer, deprecateEof: boolean): ResultInspection {
  const r = analyse(wire, deprecateEof);
  if (r instanceof Failure) return { cacheable: false, reason: r.reason };
  return { cacheable: true, columns: r.columns, rows: r.rows, warnings: r.warnings, status: r.status, firstSeq: r.firstSeq };
}

/** Column names only a MariaDB sequence table has, as length-prefixed in a column definition. */
const SEQUENCE_COLUMNS = [Buffer.from('\x15next_not_cached_value', 'latin1'), Buffer.from('\x0bcycle_count', 'latin1')];

/**
 * Whether a recorded result has a column of a sequence table (`SELECT * FROM
 * seq`): NEXTVAL changes it without a statement the proxy sees as a write.
 * A byte search over the whole response; a row value with the same bytes
 * counts too, which only costs that result its caching.
 */
export function hasSequenceColumn(wire: Buffer): boolean {
  return SEQUENCE_COLUMNS.some((c) => wire.indexOf(c) >= 0);
}

/**
 * Walks `wire` once (O(frames)) and returns what replayResultWith needs.
 * Throws ProtocolError when `wire` is not a single complete result set.
 */
export function replayInfo(wire: Buffer, deprecateEof: boolean): ReplayInfo {
  const r = analyse(wire, deprecateEof);
  if (r instanceof Failure) throw new ProtocolError(`not a replayable result set (${r.reason}): ${r.message}`);
  return r;
}

/** The bytes to send to the client. Returns `wire` itself (no copy) when nothing differs; otherwise one new Buffer. Walks `wire` once. */
export function replayResult(wire: Buffer, recordedDeprecateEof: boolean, target: ReplayTarget): Buffer {
  return replayResultWith(wire, recordedDeprecateEof, replayInfo(wire, recordedDeprecateEof), target);
}

/**
 * replayResult with the ReplayInfo computed when `wire` was recorded.
 *
 * - Same mode, same first seq, same status under the mask, same warnings:
 *   `wire` itself, O(1).
 * - Same mode and first seq, other status or warnings: a copy with the
 *   status and warning bytes patched, O(1) apart from the copy.
 * - Otherwise: one preallocated Buffer of the exact output length, filled
 *   with large slices of `wire` (definitions, rows) and the rewritten EOFs or
 *   OK, then one pass over the output's headers to renumber sequence ids.
 *
 * The EOF after the definitions gets the terminator's (masked) status; its
 * warning count stays as recorded, capped at `target.warnings`, and is 0
 * when the EOF is added to a DEPRECATE_EOF recording, as MariaDB does.
 * Converting to DEPRECATE_EOF writes the terminator as `FE 00 00 status
 * warnings`; converting from it drops any info or session-state bytes the
 * recorded OK carried (an EOF has no room for them).
 *
 * `target.firstSeq` is taken mod 256, `status` and `statusMask` mod 65536,
 * `warnings` is clamped to 0..65535.
 * Throws ProtocolError when `info` does not describe `wire`.
 */
export function replayResultWith(wire: Buffer, recordedDeprecateEof: boolean, info: ReplayInfo, target: ReplayTarget): Buffer {
  checkInfo(wire, recordedDeprecateEof, info);
  const mask = target.statusMask & 0xffff;
  const statusBits = target.status & mask;
  const termStatus = (info.status & ~mask) | statusBits;
  const warnings = clampWarnings(target.warnings);
  const firstSeq = target.firstSeq & 0xff;
  const sameSeq = firstSeq === info.firstSeq;

  if (target.deprecateEof === recordedDeprecateEof) {
    const eof = info.columnsEofOffset;
    let eofStatus = 0;
    let eofWarnings = 0;
    let eofSame = true;
    if (eof >= 0) {
      const recStatus = wire[eof + 7] | (wire[eof + 8] << 8);
      const recWarnings = wire[eof + 5] | (wire[eof + 6] << 8);
      eofStatus = (recStatus & ~mask) | statusBits;
      eofWarnings = Math.min(recWarnings, warnings);
      eofSame = eofStatus === recStatus && eofWarnings === recWarnings;
    }
    const trailerSame = termStatus === info.status && warnings === info.warnings && eofSame;
    if (sameSeq && trailerSame) return wire;
    const out = Buffer.allocUnsafe(wire.length);
    wire.copy(out, 0);
    if (!trailerSame) {
      out.writeUInt16LE(termStatus, info.statusOffset);
      out.writeUInt16LE(warnings, info.warningsOffset);
      if (eof >= 0) {
        out.writeUInt16LE(eofWarnings, eof + 5);
        out.writeUInt16LE(eofStatus, eof + 7);
      }
    }
    if (!sameSeq) renumber(out, 0, firstSeq);
    return out;
  }

  const headEnd = recordedDeprecateEof ? info.rowsOffset : info.columnsEofOffset;
  const rowsLength = info.terminatorOffset - info.rowsOffset;
  let out: Buffer;
  if (!recordedDeprecateEof) {
    // classic -> DEPRECATE_EOF: drop the column EOF, the terminator becomes an OK.
    out = Buffer.allocUnsafe(headEnd + rowsLength + OK_FRAME);
    wire.copy(out, 0, 0, headEnd);
    wire.copy(out, headEnd, info.rowsOffset, info.terminatorOffset);
    const t = headEnd + rowsLength;
    out[t] = 7;
    out[t + 1] = 0;
    out[t + 2] = 0;
    out[t + 4] = PacketHeader.EOF;
    out[t + 5] = 0; // affected rows
    out[t + 6] = 0; // last insert id
    out.writeUInt16LE(termStatus, t + 7);
    out.writeUInt16LE(warnings, t + 9);
  } else {
    // DEPRECATE_EOF -> classic: add the column EOF, the terminator becomes an EOF.
    out = Buffer.allocUnsafe(headEnd + EOF_FRAME + rowsLength + EOF_FRAME);
    wire.copy(out, 0, 0, headEnd);
    writeEof(out, headEnd, 0, termStatus);
    wire.copy(out, headEnd + EOF_FRAME, info.rowsOffset, info.terminatorOffset);
    writeEof(out, headEnd + EOF_FRAME + rowsLength, warnings, termStatus);
  }
  // The definitions keep their sequence ids when the first one is unchanged; everything after shifts by one.
  if (sameSeq) renumber(out, headEnd, (firstSeq + info.headFrames) & 0xff);
  else renumber(out, 0, firstSeq);
  return out;
}

function clampWarnings(n: number): number {
  if (!(n > 0)) return 0; // also NaN
  return n >= 0xffff ? 0xffff : Math.floor(n);
}

/** An EOF frame at `at` (its sequence id is set by renumber). */
function writeEof(out: Buffer, at: number, warnings: number, status: number): void {
  out[at] = 5;
  out[at + 1] = 0;
  out[at + 2] = 0;
  out[at + 4] = PacketHeader.EOF;
  out.writeUInt16LE(warnings, at + 5);
  out.writeUInt16LE(status, at + 7);
}

/** Sets consecutive sequence ids, from `seq`, on every frame from `pos` to the end of `out`. */
function renumber(out: Buffer, pos: number, seq: number): void {
  const len = out.length;
  while (pos + HEADER <= len) {
    out[pos + 3] = seq;
    seq = (seq + 1) & 0xff;
    pos += HEADER + (out[pos] | (out[pos + 1] << 8) | (out[pos + 2] << 16));
  }
  if (pos !== len) throw new ProtocolError(`frames overrun the replayed response (${pos} of ${len} bytes)`);
}

/** O(1) checks that `info` was computed for this `wire` in this mode: a mismatch would write headers in the wrong places. */
function checkInfo(wire: Buffer, deprecateEof: boolean, info: ReplayInfo): void {
  const t = info.terminatorOffset;
  const eof = info.columnsEofOffset;
  const ok =
    Number.isInteger(t) &&
    t >= 0 &&
    t + HEADER < wire.length &&
    t + HEADER + (wire[t] | (wire[t + 1] << 8) | (wire[t + 2] << 16)) === wire.length &&
    wire[t + HEADER] === PacketHeader.EOF &&
    wire[3] === info.firstSeq &&
    Number.isInteger(info.rowsOffset) &&
    info.rowsOffset >= HEADER &&
    info.rowsOffset <= t &&
    info.statusOffset > t + HEADER &&
    info.statusOffset + 2 <= wire.length &&
    info.warningsOffset > t + HEADER &&
    info.warningsOffset + 2 <= wire.length &&
    (deprecateEof
      ? eof === -1
      : Number.isInteger(eof) &&
        eof >= HEADER &&
        eof + EOF_FRAME === info.rowsOffset &&
        wire[eof] === 5 &&
        wire[eof + 1] === 0 &&
        wire[eof + 2] === 0 &&
        wire[eof + HEADER] === PacketHeader.EOF);
  if (!ok) throw new ProtocolError('ReplayInfo does not describe this response');
}
