import net from 'node:net';
import { createHash } from 'node:crypto';
import { nativePasswordToken } from '../src/auth/native_password.js';
import { Capability, NATIVE_PASSWORD_PLUGIN } from '../src/protocol/constants.js';
import { encodePacket, PacketFramer, type Packet } from '../src/protocol/framing.js';
import { buildHandshakeResponse, parseHandshakeV10, type HandshakeV10 } from '../src/protocol/handshake.js';
import { ResponseKind, ResponseScanner, ScanResult } from '../src/protocol/response_scanner.js';

/** Capabilities of a typical modern client (mysql2 / Connector/C alike). */
export const BASE_CLIENT_CAPS =
  Capability.CLIENT_MYSQL |
  Capability.FOUND_ROWS |
  Capability.LONG_FLAG |
  Capability.CONNECT_WITH_DB |
  Capability.LOCAL_FILES |
  Capability.PROTOCOL_41 |
  Capability.TRANSACTIONS |
  Capability.SECURE_CONNECTION |
  Capability.MULTI_STATEMENTS |
  Capability.MULTI_RESULTS |
  Capability.PS_MULTI_RESULTS |
  Capability.PLUGIN_AUTH |
  Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  Capability.SESSION_TRACK;

/**
 * A minimal MySQL client over a raw socket that returns the exact bytes of
 * each response: for byte-level comparisons (proxy vs direct) and for sending
 * what no well-behaved library would.
 */
export class RawClient {
  readonly socket: net.Socket;
  private readonly framer = new PacketFramer();
  private readonly scanner = new ResponseScanner();
  private pending: Buffer[] = [];
  private waiter: (() => void) | null = null;
  private closedErr: Error | null = null;
  greeting!: HandshakeV10;
  capabilities = 0;
  /** The server's OK to the login, as received. */
  loginOk: Buffer = Buffer.alloc(0);

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c) => {
      this.pending.push(c);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closedErr ??= new Error('connection closed');
      this.waiter?.();
    });
    socket.on('error', (e) => {
      this.closedErr = e;
      this.waiter?.();
    });
  }

  static async open(port: number): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  static async login(
    port: number,
    user: string,
    password: string,
    opts: { database?: string; deprecateEof?: boolean; extraCaps?: number; dropCaps?: number; mariaDbCapabilities?: number } = {},
  ): Promise<RawClient> {
    const c = await RawClient.open(port);
    const greetingPacket = await c.readPacket();
    c.greeting = parseHandshakeV10(greetingPacket.payload);
    let caps = (BASE_CLIENT_CAPS | (opts.extraCaps ?? 0)) & ~(opts.dropCaps ?? 0);
    if (opts.deprecateEof) caps |= Capability.DEPRECATE_EOF;
    if (!opts.database) caps &= ~Capability.CONNECT_WITH_DB;
    // MariaDB extended capabilities travel only when the CLIENT_MYSQL bit is clear.
    if (opts.mariaDbCapabilities) caps &= ~Capability.CLIENT_MYSQL;
    c.capabilities = caps & c.greeting.capabilities;
    const sha1 = password ? createHash('sha1').update(password).digest() : null;
    const response = buildHandshakeResponse({
      capabilities: caps,
      mariaDbCapabilities: opts.mariaDbCapabilities ?? 0,
      maxPacketSize: 1 << 30,
      characterSet: 45,
      user,
      authResponse: nativePasswordToken(sha1, c.greeting.scramble),
      database: opts.database ?? null,
      authPluginName: NATIVE_PASSWORD_PLUGIN,
      connectAttributes: null,
    });
    c.socket.write(encodePacket(response, 1));
    const reply = await c.readPacket();
    if (reply.payload[0] !== 0x00) {
      c.socket.destroy();
      throw new Error(`login failed: ${reply.payload.subarray(1).toString('latin1')}`);
    }
    c.loginOk = Buffer.from(reply.payload);
    return c;
  }

  private async waitData(timeoutMs: number): Promise<void> {
    if (this.pending.length > 0) return;
    if (this.closedErr) throw this.closedErr;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no data within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = () => {
        clearTimeout(t);
        this.waiter = null;
        resolve();
      };
    });
    if (this.pending.length === 0 && this.closedErr) throw this.closedErr;
  }

  async readPacket(timeoutMs = 10_000): Promise<Packet> {
    for (;;) {
      const p = this.framer.next();
      if (p) return p;
      await this.waitData(timeoutMs);
      for (const c of this.pending) this.framer.push(c);
      this.pending = [];
    }
  }

  /** Sends one command payload and returns the complete raw response (headers included). */
  async command(payload: Buffer, kind: ResponseKind, timeoutMs = 30_000): Promise<Buffer> {
    this.socket.write(encodePacket(payload, 0));
    return this.readResponse(kind, timeoutMs);
  }

  async readResponse(kind: ResponseKind, timeoutMs = 30_000): Promise<Buffer> {
    this.scanner.begin(kind, (this.capabilities & Capability.DEPRECATE_EOF) !== 0);
    const collected: Buffer[] = [];
    for (;;) {
      await this.waitData(timeoutMs);
      const chunks = this.pending;
      this.pending = [];
      for (let i = 0; i < chunks.length; i++) {
        const out: Buffer[] = [];
        const r = this.scanner.feed(chunks[i], out);
        collected.push(...out);
        if (r !== ScanResult.NeedMore) {
          const rest = chunks.slice(i + 1);
          if (this.scanner.consumed < chunks[i].length) rest.unshift(chunks[i].subarray(this.scanner.consumed));
          this.pending = rest;
          return Buffer.concat(collected);
        }
      }
    }
  }

  async query(sql: string, timeoutMs?: number): Promise<Buffer> {
    return this.command(Buffer.concat([Buffer.from([0x03]), Buffer.from(sql, 'utf8')]), ResponseKind.Query, timeoutMs);
  }

  /** Resolves when the server closes the connection (or rejects after timeoutMs). */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    if (this.socket.destroyed || this.closedErr) return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Everything received and not yet consumed, waiting up to timeoutMs for the first bytes. */
  async readAny(timeoutMs = 5000): Promise<Buffer> {
    try {
      await this.waitData(timeoutMs);
    } catch {
      return Buffer.alloc(0);
    }
    const out = Buffer.concat(this.pending);
    this.pending = [];
    return out;
  }

  close(): void {
    this.socket.destroy();
  }

  /** COM_QUIT, then waits for the server to close the connection. */
  async quit(): Promise<void> {
    this.socket.write(encodePacket(Buffer.from([0x01]), 0));
    await this.waitClosed();
  }
}
