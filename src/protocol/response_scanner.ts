import { MAX_FRAME_PAYLOAD, PacketHeader, ServerStatus } from './constants.js';
import { hasInsertIdAt, statusOfTerminatorAt, warningsOfTerminatorAt } from './generic_packets.js';
import { ProtocolError } from './payload_reader.js';

/** How a backend answers a command; decides the shape the scanner expects. */
export const enum ResponseKind {
  /** COM_QUERY, COM_STMT_EXECUTE, COM_PROCESS_INFO: OK | ERR | LOCAL INFILE | result sets. */
  Query,
  /** COM_STMT_PREPARE: statement OK, parameter and column definitions | ERR. */
  Prepare,
  /** COM_STMT_FETCH: binary rows and a terminator | ERR. */
  Fetch,
  /** COM_FIELD_LIST: column definitions and a terminator | ERR. */
  FieldList,
  /** Exactly one packet: OK, ERR, EOF or a plain string (COM_STATISTICS). */
  Single,
}

export const enum ScanResult {
  /** The response continues in later chunks. */
  NeedMore,
  /** The last packet of the response has been seen. */
  Done,
  /** The server sent a LOCAL INFILE request: the client must now send the file. */
  LocalInfile,
}

const enum State {
  First,
  Columns,
  ColumnsEof,
  Rows,
  PrepareParams,
  PrepareParamsEof,
  PrepareColumns,
  PrepareColumnsEof,
  FieldList,
  Infile,
  Done,
}

export interface PrepareOkInfo {
  statementId: number;
  columns: number;
  params: number;
}

/**
 * Follows one response through a raw byte stream, packet header by packet
 * header, to find where it ends. Bytes are not copied: each chunk is handed
 * back in `out` as is (or as a slice), so rows of any size stream straight
 * through. Only small control packets (OK, ERR, EOF, column counts) are read;
 * when one straddles two chunks its bytes are held back until complete, which
 * also lets `onPrepareOk` rewrite a statement id in place before it is sent.
 *
 * A text row whose first byte is 0xFE is told from a terminator by length:
 * such a row starts with an 8-byte length prefix of a 16 MiB+ value, so its
 * first frame is always 0xFFFFFF long, while a terminator is always shorter.
 */
export class ResponseScanner {
  private state = State.Done;
  private kind = ResponseKind.Single;
  private deprecateEof = false;
  private remainingDefs = 0;
  private prepareColumns = 0;
  /** Payload bytes of the current frame still to pass through untouched. */
  private frameRemaining = 0;
  /** The next frame continues a payload split at 0xFFFFFF bytes. */
  private continuation = false;
  /** Bytes held back from the previous chunk: an incomplete header or control packet. */
  private held: Buffer | null = null;

  /** Status flags of the last OK/EOF seen (IN_TRANS, AUTOCOMMIT, ...). */
  lastStatus = 0;
  /** Whether the current response carried status flags at all (an ERR or a COM_STATISTICS string does not). */
  statusSeen = false;
  /** Warning count of the last OK/EOF seen. */
  lastWarnings = 0;
  /** An OK of this response reported a generated AUTO_INCREMENT id: LAST_INSERT_ID() now names it, on this connection only. */
  insertIdSeen = false;
  /** Error code when the response ended in ERR, else 0. */
  errorCode = 0;
  /** Rows seen in the response (all result sets). */
  rows = 0;
  /** Result sets seen in the response. */
  resultSets = 0;
  /** Bytes of the response seen so far. */
  bytes = 0;

  /** Called with the statement-OK payload of a COM_STMT_PREPARE response; may patch it in place. */
  onPrepareOk: ((payload: Buffer, info: PrepareOkInfo) => void) | null = null;

  /**
   * Called with each OK or terminator whose status has SESSION_STATE_CHANGED
   * (`plainEof`: a 5-byte EOF, which carries the flag but no entries). It
   * returns the payload to send instead, or null to send it as it is. Only
   * these packets pay for it: the flag is one bit test.
   */
  onSessionState: ((payload: Buffer, plainEof: boolean) => Buffer | null) | null = null;
  /** A control packet's replacement, set by onControl for feed to emit. */
  private replacement: Buffer | null = null;

  get active(): boolean {
    return this.state !== State.Done;
  }

  begin(kind: ResponseKind, deprecateEof: boolean): void {
    if (this.held) throw new ProtocolError('response scanner restarted with bytes held back');
    this.kind = kind;
    this.deprecateEof = deprecateEof;
    this.state = kind === ResponseKind.Fetch ? State.Rows : kind === ResponseKind.FieldList ? State.FieldList : State.First;
    this.frameRemaining = 0;
    this.continuation = false;
    this.errorCode = 0;
    this.lastWarnings = 0;
    this.insertIdSeen = false;
    this.statusSeen = false;
    this.rows = 0;
    this.resultSets = 0;
    this.bytes = 0;
  }

  /** After the client has sent its LOCAL INFILE data, the server answers with OK or ERR. */
  resumeAfterInfile(): void {
    if (this.state !== State.Infile) throw new ProtocolError('not waiting for LOCAL INFILE data');
    this.state = State.First;
  }

  /**
   * Scans `chunk`; pushes the bytes to forward onto `out`. Returns the result
   * and sets `consumed` to the bytes of `chunk` that belong to this response
   * (anything after the response's last packet is left to the caller).
   */
  consumed = 0;

  feed(input: Buffer, out: Buffer[]): ScanResult {
    let chunk = input;
    let heldLength = 0;
    if (this.held) {
      heldLength = this.held.length;
      chunk = Buffer.concat([this.held, input]);
      this.held = null;
    }
    let pos = 0;
    let emitStart = 0;
    const len = chunk.length;
    let result = ScanResult.NeedMore;
    while (pos < len) {
      if (this.frameRemaining > 0) {
        const n = Math.min(this.frameRemaining, len - pos);
        pos += n;
        this.frameRemaining -= n;
        continue;
      }
      if (this.state === State.Done || this.state === State.Infile) break;
      if (len - pos < 5 && !(len - pos === 4 && chunk[pos] === 0 && chunk[pos + 1] === 0 && chunk[pos + 2] === 0)) {
        // Header or first payload byte not here yet: hold the tail back.
        this.holdTail(chunk, pos, emitStart, out);
        pos = emitStart = len;
        break;
      }
      const plen = chunk[pos] | (chunk[pos + 1] << 8) | (chunk[pos + 2] << 16);
      if (this.continuation) {
        this.continuation = plen === MAX_FRAME_PAYLOAD;
        pos += 4;
        this.frameRemaining = plen;
        continue;
      }
      const first = plen > 0 ? chunk[pos + 4] : -1;
      if (this.isControl(first, plen)) {
        if (pos + 4 + plen > len) {
          this.holdTail(chunk, pos, emitStart, out);
          pos = emitStart = len;
          break;
        }
        const start = pos + 4;
        pos += 4 + plen;
        const r = this.onControl(chunk, start, plen);
        if (this.replacement !== null) {
          // The packet goes out rewritten: what precedes it, then its header (same sequence id) with the new payload.
          if (start - 4 > emitStart) out.push(chunk.subarray(emitStart, start - 4));
          // One buffer for header and payload: one write to the client, as for the packet it replaces.
          const framed = Buffer.allocUnsafe(4 + this.replacement.length);
          framed.writeUIntLE(this.replacement.length, 0, 3);
          framed[3] = chunk[start - 1];
          this.replacement.copy(framed, 4);
          out.push(framed);
          this.replacement = null;
          emitStart = pos;
        }
        if (r !== ScanResult.NeedMore) {
          result = r;
          break;
        }
      } else {
        this.onData();
        pos += 4;
        this.frameRemaining = plen;
        this.continuation = plen === MAX_FRAME_PAYLOAD;
      }
    }
    if (pos > emitStart) out.push(emitStart === 0 && pos === len ? chunk : chunk.subarray(emitStart, pos));
    this.consumed = Math.max(0, pos - heldLength);
    this.bytes += this.consumed;
    // A response can end with a data packet (the last definition of a prepare under DEPRECATE_EOF):
    // it is done only once that packet's last byte has gone through.
    if (result === ScanResult.NeedMore && this.state === State.Done && this.frameRemaining === 0 && !this.continuation) {
      result = ScanResult.Done;
    }
    return result;
  }

  private holdTail(chunk: Buffer, pos: number, emitStart: number, out: Buffer[]): void {
    if (pos > emitStart) out.push(chunk.subarray(emitStart, pos));
    this.held = Buffer.from(chunk.subarray(pos));
  }

  /** Packets that must be read whole: everything whose content decides the next state. */
  private isControl(first: number, plen: number): boolean {
    switch (this.state) {
      case State.Rows:
      case State.FieldList:
        return first === PacketHeader.ERR || (first === PacketHeader.EOF && plen < MAX_FRAME_PAYLOAD);
      case State.Columns:
      case State.PrepareParams:
      case State.PrepareColumns:
        return false;
      default:
        return true;
    }
  }

  /** A packet that only moves counters forward (a column definition or a row). */
  private onData(): void {
    switch (this.state) {
      case State.Rows:
        this.rows++;
        return;
      case State.FieldList:
        return;
      case State.Columns:
        if (--this.remainingDefs === 0) this.state = this.deprecateEof ? State.Rows : State.ColumnsEof;
        return;
      case State.PrepareParams:
        if (--this.remainingDefs === 0) {
          if (!this.deprecateEof) this.state = State.PrepareParamsEof;
          else this.startPrepareColumns();
        }
        return;
      case State.PrepareColumns:
        if (--this.remainingDefs === 0) this.state = this.deprecateEof ? State.Done : State.PrepareColumnsEof;
        return;
      default:
        throw new ProtocolError(`unexpected data packet in scanner state ${this.state}`);
    }
  }

  private startPrepareColumns(): void {
    if (this.prepareColumns > 0) {
      this.remainingDefs = this.prepareColumns;
      this.state = State.PrepareColumns;
    } else {
      this.state = State.Done;
    }
  }

  /** A control packet: `length` payload bytes at `start` in `buf` (read in place: no view on the hot path). */
  private onControl(buf: Buffer, start: number, length: number): ScanResult {
    const first = length > 0 ? buf[start] : -1;
    if (first === PacketHeader.ERR && this.state !== State.Done) {
      this.errorCode = length >= 3 ? buf[start + 1] | (buf[start + 2] << 8) : 0;
      this.state = State.Done;
      return ScanResult.Done;
    }
    switch (this.state) {
      case State.First:
        if (this.kind === ResponseKind.Single) {
          if (first === PacketHeader.OK || first === PacketHeader.EOF) {
            this.lastStatus = statusOfTerminatorAt(buf, start, length);
            this.lastWarnings = warningsOfTerminatorAt(buf, start, length);
            this.statusSeen = true;
            this.stateChange(buf, start, length, first === PacketHeader.EOF && length < 9);
          }
          this.state = State.Done;
          return ScanResult.Done;
        }
        if (this.kind === ResponseKind.Prepare) return this.onPrepareOkPacket(buf.subarray(start, start + length));
        if (first === PacketHeader.OK) return this.endOfResult(buf, start, length);
        if (first === PacketHeader.LOCAL_INFILE) {
          this.state = State.Infile;
          return ScanResult.LocalInfile;
        }
        this.remainingDefs = readColumnCount(buf, start, length);
        this.resultSets++;
        this.state = this.remainingDefs > 0 ? State.Columns : State.Rows;
        return ScanResult.NeedMore;
      case State.ColumnsEof:
        this.lastStatus = statusOfTerminatorAt(buf, start, length);
        this.statusSeen = true;
        this.stateChange(buf, start, length, true);
        // An EOF that announces an open cursor ends the COM_STMT_EXECUTE response: rows come with COM_STMT_FETCH.
        if (this.lastStatus & ServerStatus.CURSOR_EXISTS) {
          this.state = State.Done;
          return ScanResult.Done;
        }
        this.state = State.Rows;
        return ScanResult.NeedMore;
      case State.Rows:
      case State.FieldList:
        return this.endOfResult(buf, start, length);
      case State.PrepareParamsEof:
        this.stateChange(buf, start, length, true);
        this.startPrepareColumns();
        return (this.state as State) === State.Done ? ScanResult.Done : ScanResult.NeedMore;
      case State.PrepareColumnsEof:
        this.stateChange(buf, start, length, true);
        this.state = State.Done;
        return ScanResult.Done;
      default:
        throw new ProtocolError(`unexpected control packet 0x${first.toString(16)} in scanner state ${this.state}`);
    }
  }

  /** OK after a statement, or the terminator of a result set: more results follow if the server says so. */
  private endOfResult(buf: Buffer, start: number, length: number): ScanResult {
    this.lastStatus = statusOfTerminatorAt(buf, start, length);
    this.lastWarnings = warningsOfTerminatorAt(buf, start, length);
    this.statusSeen = true;
    if (buf[start] === PacketHeader.OK && hasInsertIdAt(buf, start, length)) this.insertIdSeen = true;
    this.stateChange(buf, start, length, buf[start] === PacketHeader.EOF && length < 9);
    if (this.kind === ResponseKind.Query && this.lastStatus & ServerStatus.MORE_RESULTS_EXISTS) {
      this.state = State.First;
      return ScanResult.NeedMore;
    }
    this.state = State.Done;
    return ScanResult.Done;
  }

  /** A terminator that says the session state changed goes to onSessionState, which may rewrite it. */
  private stateChange(buf: Buffer, start: number, length: number, plainEof: boolean): void {
    if (this.onSessionState === null || length < 5) return;
    const status = plainEof ? buf[start + 3] | (buf[start + 4] << 8) : statusOfTerminatorAt(buf, start, length);
    if (!(status & ServerStatus.SESSION_STATE_CHANGED)) return;
    this.replacement = this.onSessionState(buf.subarray(start, start + length), plainEof);
  }

  private onPrepareOkPacket(payload: Buffer): ScanResult {
    if (payload[0] !== PacketHeader.OK || payload.length < 9) {
      throw new ProtocolError('malformed COM_STMT_PREPARE response');
    }
    const info: PrepareOkInfo = {
      statementId: payload.readUInt32LE(1),
      columns: payload.readUInt16LE(5),
      params: payload.readUInt16LE(7),
    };
    this.onPrepareOk?.(payload, info);
    this.prepareColumns = info.columns;
    if (info.params > 0) {
      this.remainingDefs = info.params;
      this.state = State.PrepareParams;
    } else {
      this.startPrepareColumns();
    }
    return this.state === State.Done ? ScanResult.Done : ScanResult.NeedMore;
  }
}

function readColumnCount(buf: Buffer, start: number, length: number): number {
  const first = buf[start];
  if (first < 0xfb) return first;
  if (first === 0xfc && length >= 3) return buf[start + 1] | (buf[start + 2] << 8);
  if (first === 0xfd && length >= 4) return buf[start + 1] | (buf[start + 2] << 8) | (buf[start + 3] << 16);
  throw new ProtocolError(`malformed column count packet (first byte 0x${first.toString(16)})`);
}
