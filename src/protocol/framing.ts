import { MAX_FRAME_PAYLOAD } from './constants.js';
import { ProtocolError } from './payload_reader.js';

const EMPTY = Buffer.alloc(0);

/** One logical packet: a payload joined from one or more frames. */
export interface Packet {
  /** Sequence id of the packet's first frame. */
  seq: number;
  /** Sequence id of its last frame (differs from seq for payloads of 16 MiB and more). */
  lastSeq: number;
  payload: Buffer;
  /**
   * The packet exactly as it arrived (header included) when it was one frame
   * in one chunk: it can be forwarded without framing it again.
   */
  wire: Buffer | null;
}

export class PacketTooLargeError extends ProtocolError {
  override name = 'PacketTooLargeError';
  constructor(
    readonly limit: number,
    /** Sequence id of the frame whose header crossed the limit: the server answers with the next one. */
    readonly seq: number,
  ) {
    super(`packet larger than the ${limit}-byte limit`);
  }
}

/** Bytes on the wire for a payload of this length, headers included. */
export function framedLength(payloadLength: number): number {
  const frames = Math.floor(payloadLength / MAX_FRAME_PAYLOAD) + 1;
  return payloadLength + frames * 4;
}

/**
 * Frames a payload with sequence ids starting at `seq`. A payload of
 * 0xFFFFFF bytes or more is split; one that is an exact multiple of 0xFFFFFF
 * gets an empty trailing frame so the reader knows it ended.
 */
export function encodePacket(payload: Buffer, seq: number): Buffer {
  const out = Buffer.allocUnsafe(framedLength(payload.length));
  writeFrames(out, 0, payload, seq);
  return out;
}

/** Frames several payloads into one buffer (one socket write), with consecutive sequence ids. Returns the next seq too. */
export function encodePackets(payloads: Buffer[], seq: number): { bytes: Buffer; nextSeq: number } {
  let total = 0;
  for (const p of payloads) total += framedLength(p.length);
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const p of payloads) {
    const r = writeFrames(out, offset, p, seq);
    offset = r.offset;
    seq = r.nextSeq;
  }
  return { bytes: out, nextSeq: seq };
}

function writeFrames(out: Buffer, offset: number, payload: Buffer, seq: number): { offset: number; nextSeq: number } {
  let pos = 0;
  for (;;) {
    const len = Math.min(MAX_FRAME_PAYLOAD, payload.length - pos);
    out.writeUIntLE(len, offset, 3);
    out[offset + 3] = seq & 0xff;
    payload.copy(out, offset + 4, pos, pos + len);
    offset += 4 + len;
    pos += len;
    seq = (seq + 1) & 0xff;
    if (len < MAX_FRAME_PAYLOAD) return { offset, nextSeq: seq };
  }
}

/**
 * Cuts a byte stream into logical packets. Frames of a split payload are
 * joined; everything else is returned as views of the input without copying.
 * A payload whose declared size passes `limit` raises PacketTooLargeError
 * as soon as its frames announce it, before the bytes are buffered.
 */
export class PacketFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Frames of a split payload collected so far. */
  private parts: Buffer[] = [];
  private partsLength = 0;
  private partsSeq = 0;

  /** Largest joined payload accepted; may change between packets (it grows after a client logs in). */
  constructor(public limit = 1 << 30) {}

  get bufferedBytes(): number {
    return this.buffered + this.partsLength;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Returns the next complete packet, or null until more bytes arrive. */
  next(): Packet | null {
    for (;;) {
      if (this.buffered < 4) return null;
      const header = this.peek(4);
      const len = header[0] | (header[1] << 8) | (header[2] << 16);
      const seq = header[3];
      if (this.partsLength + len > this.limit) throw new PacketTooLargeError(this.limit, seq);
      if (this.buffered < 4 + len) return null;
      const first = this.chunks[0];
      if (len < MAX_FRAME_PAYLOAD && this.parts.length === 0 && first.length >= 4 + len) {
        // The common case: a whole small packet inside one chunk. A view, no copy.
        const wire = first.subarray(0, 4 + len);
        this.take(4 + len);
        return { seq, lastSeq: seq, payload: wire.subarray(4), wire };
      }
      this.consume(4);
      const frame = this.take(len);
      if (len === MAX_FRAME_PAYLOAD) {
        if (this.parts.length === 0) this.partsSeq = seq;
        this.parts.push(frame);
        this.partsLength += len;
        continue;
      }
      if (this.parts.length === 0) return { seq, lastSeq: seq, payload: frame, wire: null };
      this.parts.push(frame);
      const payload = Buffer.concat(this.parts, this.partsLength + len);
      const firstSeq = this.partsSeq;
      this.parts = [];
      this.partsLength = 0;
      return { seq: firstSeq, lastSeq: seq, payload, wire: null };
    }
  }

  /** Bytes received but not yet returned as packets (for handing a stream over to another reader). */
  drainRaw(): Buffer {
    const out = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    return out;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length >= n) return first;
    return Buffer.concat(this.chunks, this.buffered).subarray(0, n);
  }

  private consume(n: number): void {
    this.take(n);
  }

  private take(n: number): Buffer {
    if (n === 0) return EMPTY;
    this.buffered -= n;
    const first = this.chunks[0];
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      const want = n - filled;
      if (c.length <= want) {
        c.copy(out, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, filled, 0, want);
        this.chunks[0] = c.subarray(want);
        filled += want;
      }
    }
    return out;
  }
}
