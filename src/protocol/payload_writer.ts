/** Builds one packet payload from protocol primitives. */
export class PayloadWriter {
  private buf: Buffer;
  private length = 0;

  constructor(initialSize = 64) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.length++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16LE(v & 0xffff, this.length);
    this.length += 2;
    return this;
  }

  u24(v: number): this {
    this.ensure(3);
    this.buf.writeUIntLE(v & 0xffffff, this.length, 3);
    this.length += 3;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.length);
    this.length += 4;
    return this;
  }

  u64(v: bigint | number): this {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
    return this;
  }

  lenenc(v: number | bigint): this {
    const n = typeof v === 'bigint' ? v : BigInt(v);
    if (n < 0n) throw new RangeError('length-encoded integers are unsigned');
    if (n < 0xfbn) return this.u8(Number(n));
    if (n < 0x10000n) return this.u8(0xfc).u16(Number(n));
    if (n < 0x1000000n) return this.u8(0xfd).u24(Number(n));
    return this.u8(0xfe).u64(n);
  }

  bytes(b: Buffer | Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
    return this;
  }

  string(s: string, encoding: BufferEncoding = 'utf8'): this {
    return this.bytes(Buffer.from(s, encoding));
  }

  nulString(s: string | Buffer): this {
    return (typeof s === 'string' ? this.string(s) : this.bytes(s)).u8(0);
  }

  lenencBytes(b: Buffer): this {
    return this.lenenc(b.length).bytes(b);
  }

  lenencString(s: string): this {
    return this.lenencBytes(Buffer.from(s, 'utf8'));
  }

  /** The payload written so far (a copy-free view; do not write afterwards). */
  finish(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}
