/**
 * Reads protocol primitives from one packet payload. Every read checks bounds
 * and throws ProtocolError, so a truncated or hostile packet becomes a clean
 * error for that connection instead of reading past the buffer.
 */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

export class PayloadReader {
  constructor(
    readonly buf: Buffer,
    public offset = 0,
    readonly end = buf.length,
  ) {}

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number): void {
    if (this.offset + n > this.end) {
      throw new ProtocolError(`packet truncated: need ${n} bytes at offset ${this.offset}, have ${this.end - this.offset}`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.offset++];
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.offset);
    this.offset += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const v = this.buf.readUIntLE(this.offset, 3);
    this.offset += 3;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.offset);
    this.offset += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.offset);
    this.offset += 8;
    return v;
  }

  /**
   * Length-encoded integer. Values above 2^53 come back as a lossy number;
   * use lenencBigInt where the exact value matters (affected rows of a huge table).
   * Returns null for 0xFB, which encodes NULL in text rows.
   */
  lenencOrNull(): number | null {
    const first = this.u8();
    if (first < 0xfb) return first;
    switch (first) {
      case 0xfb:
        return null;
      case 0xfc:
        return this.u16();
      case 0xfd:
        return this.u24();
      case 0xfe:
        return Number(this.u64());
      default:
        throw new ProtocolError(`invalid length-encoded integer prefix 0x${first.toString(16)}`);
    }
  }

  lenenc(): number {
    const v = this.lenencOrNull();
    if (v === null) throw new ProtocolError('unexpected NULL marker where a length-encoded integer was expected');
    return v;
  }

  lenencBigInt(): bigint {
    const first = this.buf[this.offset];
    if (first === 0xfe) {
      this.offset++;
      return this.u64();
    }
    return BigInt(this.lenenc());
  }

  bytes(n: number): Buffer {
    if (n < 0) throw new ProtocolError(`negative length ${n}`);
    this.need(n);
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.offset += n;
  }

  lenencBytes(): Buffer {
    return this.bytes(this.lenenc());
  }

  lenencString(encoding: BufferEncoding = 'utf8'): string {
    return this.lenencBytes().toString(encoding);
  }

  /** A NUL-terminated string; a missing NUL is a protocol error. */
  nulBytes(): Buffer {
    const nul = this.buf.indexOf(0, this.offset);
    if (nul < 0 || nul >= this.end) throw new ProtocolError(`missing NUL terminator after offset ${this.offset}`);
    const v = this.buf.subarray(this.offset, nul);
    this.offset = nul + 1;
    return v;
  }

  nulString(encoding: BufferEncoding = 'utf8'): string {
    return this.nulBytes().toString(encoding);
  }

  /** A NUL-terminated string that may also run to the end of the packet (old clients omit the NUL). */
  nulOrEofString(encoding: BufferEncoding = 'utf8'): string {
    const nul = this.buf.indexOf(0, this.offset);
    const stop = nul < 0 || nul >= this.end ? this.end : nul;
    const v = this.buf.toString(encoding, this.offset, stop);
    this.offset = Math.min(stop + 1, this.end);
    return v;
  }

  restBytes(): Buffer {
    const v = this.buf.subarray(this.offset, this.end);
    this.offset = this.end;
    return v;
  }

  restString(encoding: BufferEncoding = 'utf8'): string {
    return this.restBytes().toString(encoding);
  }
}

/** Skips one length-encoded integer at `offset`, returning the offset after it (no bounds check beyond the prefix). */
export function skipLenenc(buf: Buffer, offset: number): number {
  const first = buf[offset];
  if (first < 0xfb) return offset + 1;
  if (first === 0xfc) return offset + 3;
  if (first === 0xfd) return offset + 4;
  if (first === 0xfe) return offset + 9;
  return offset + 1; // 0xfb (NULL) occupies one byte; 0xff is invalid and caught by callers
}
