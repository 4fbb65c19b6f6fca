import net from 'node:net';
import tls from 'node:tls';
import { nativePasswordToken } from '../auth/native_password.js';
import { Capability, NATIVE_PASSWORD_PLUGIN, PacketHeader } from '../protocol/constants.js';
import { encodePacket, PacketFramer, type Packet } from '../protocol/framing.js';
import { parseErr, parseOk, type ErrPacket, type OkPacket } from '../protocol/generic_packets.js';
import {
  buildHandshakeResponse,
  buildSslRequest,
  parseAuthSwitchRequest,
  parseHandshakeV10,
  type HandshakeV10,
} from '../protocol/handshake.js';
import { PayloadReader, ProtocolError } from '../protocol/payload_reader.js';
import {
  parseTrackingView,
  PROXY_TRACKING_SQL,
  TRACKING_VIEW_SQL,
  type ClientTrackingView,
} from '../protocol/session_track.js';
import type { BackendEndpoint } from '../config/types.js';

/** TLS to the backends: off, or on with an optional CA check. */
export interface BackendTls {
  /** PEM CA bundle to verify the server's certificate with; null: the system's. */
  ca: Buffer | null;
  /** Verify the server's certificate (chain and host name). */
  verify: boolean;
}

export interface BackendLogin {
  user: string;
  /** SHA1(password) recovered from the client's scramble reply; null for an empty password. */
  passwordSha1: Buffer | null;
  database: string | null;
  characterSet: number;
  /** Capabilities the client negotiated with the proxy; the backend gets the same ones. */
  capabilities: number;
  mariaDbCapabilities: number;
  connectAttributes: [string, string][] | null;
  /** TLS to the backend, or null for none. */
  tls: BackendTls | null;
  /** Ask the server to report session-state changes (CLIENT_SESSION_TRACK and the proxy's session_track_* settings). */
  trackSession: boolean;
}

/** Why a backend connection could not be used; `serverError` is set when the server itself refused. */
export class BackendError extends Error {
  override name = 'BackendError';
  constructor(
    message: string,
    readonly endpoint: BackendEndpoint,
    readonly serverError: ErrPacket | null = null,
  ) {
    super(message);
  }
}

/** Collected reply to an internal query: the OK/ERR, or the text rows of a result set. */
export interface InternalResult<T = string> {
  ok: OkPacket | null;
  error: ErrPacket | null;
  rows: (T | null)[][];
}

type DataHandler = (chunk: Buffer) => void;

/**
 * One logged-in connection to a MySQL/MariaDB server. After login the owner
 * (a client session) receives the raw byte stream through `onData` and
 * relays it; the connection itself only frames packets during login and
 * internal queries the proxy sends on its own behalf.
 */
export class BackendConnection {
  /** The server's handshake: version, thread id, capabilities. */
  greeting!: HandshakeV10;
  /** Capabilities in force on this connection. */
  capabilities = 0;
  /** The backend's OK to the login (forwarded to the client for transparency). */
  loginOk!: Buffer;
  /**
   * The server reports every change of session state on this connection
   * (CLIENT_SESSION_TRACK with the proxy's settings). False when tracking is
   * off or the server refused the settings: the session then follows state from SQL text.
   */
  tracksState = false;
  /** The session_track_* settings the login had before the proxy changed them: what a tracking client expects. */
  loginTrackingView: ClientTrackingView | null = null;
  private dataHandler: DataHandler | null = null;
  private closeHandler: ((err: Error | null) => void) | null = null;
  closed = false;
  /** Internal statements (the proxy's own) waiting for their reply on this connection. */
  private internalReads = 0;

  /** A session's preparation of this connection in progress (replaying state, preparing, waiting for a GTID). */
  holds = 0;
  /** Counts the login pool's resets. */
  resets = 0;
  /**
   * Since its login or its last reset, something other than a plain read
   * ran here (a write, a SET, a prepare, any statement of the proxy's own):
   * the login pool resets it before another client gets it. Plain reads
   * leave nothing of a session behind, so a connection that ran only those
   * goes to the next client of its login without the reset's round trip and
   * its work on the server.
   */
  dirty = false;
  /**
   * Handed to this client without a reset: the diagnostics of the previous
   * client's last read (its warnings, FOUND_ROWS(), ROW_COUNT()) are still
   * here until a command of this client runs. A first statement that asks
   * about them gets the connection reset first, as a fresh login would answer.
   */
  inheritedDiagnostics = false;

  /** The proxy is reading the reply to one of its own statements here, or preparing it: the connection is not at rest. */
  get busy(): boolean {
    return this.internalReads > 0 || this.holds > 0;
  }

  private constructor(
    readonly endpoint: BackendEndpoint,
    public socket: net.Socket,
  ) {
    this.listenTo(socket);
  }

  private listenTo(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.dataHandler?.(chunk));
    socket.on('error', (err) => this.markClosed(err));
    socket.on('close', () => this.markClosed(null));
  }

  /** The connection runs over TLS. */
  encrypted = false;

  /** After the SSLRequest: the same TCP connection continues inside TLS. */
  private async startTls(options: BackendTls): Promise<void> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    const secure = tls.connect({
      socket: raw,
      servername: net.isIP(this.endpoint.host) ? undefined : this.endpoint.host,
      ca: options.ca ?? undefined,
      rejectUnauthorized: options.verify,
    });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.encrypted = true;
    this.listenTo(secure);
  }

  get threadId(): number {
    return this.greeting.connectionId;
  }

  /** Connects and logs in, or rejects with a BackendError within `timeoutMs`. */
  static async connect(endpoint: BackendEndpoint, login: BackendLogin, timeoutMs: number): Promise<BackendConnection> {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port, noDelay: true });
    const conn = new BackendConnection(endpoint, socket);
    const timer = setTimeout(() => socket.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    try {
      await conn.login(login);
      if (conn.capabilities & Capability.SESSION_TRACK && login.trackSession) await conn.startTracking();
      // The login's own statements are what a fresh login is.
      conn.dirty = false;
      return conn;
    } catch (err) {
      socket.destroy();
      if (err instanceof BackendError) throw err;
      throw new BackendError(
        `backend '${endpoint.name}' (${endpoint.host}:${endpoint.port}) unavailable: ${(err as Error).message}`,
        endpoint,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads only the server's greeting, then disconnects: learns version and capabilities without a login. */
  static async probe(endpoint: BackendEndpoint, timeoutMs: number): Promise<HandshakeV10> {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port });
    const conn = new BackendConnection(endpoint, socket);
    const timer = setTimeout(() => socket.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    try {
      const packets = conn.packetReader();
      const first = await packets.next();
      if (first.payload[0] === PacketHeader.ERR) throw new Error(parseErr(first.payload).message);
      return parseHandshakeV10(first.payload);
    } finally {
      clearTimeout(timer);
      socket.destroy();
    }
  }

  private readonly endListeners: (() => void)[] = [];
  private endFired = false;

  /** Calls `listener` once when the connection ends, whoever ends it (the server, destroy, quit). */
  onEnd(listener: () => void): void {
    if (this.endFired) listener();
    else this.endListeners.push(listener);
  }

  private fireEnd(): void {
    if (this.endFired) return;
    this.endFired = true;
    for (const l of this.endListeners.splice(0)) l();
  }

  private markClosed(err: Error | null): void {
    this.fireEnd();
    if (this.closed) return;
    this.closed = true;
    const handler = this.closeHandler;
    this.closeHandler = null;
    handler?.(err);
  }

  /** Hands the raw stream to the owner. */
  attach(onData: DataHandler, onClose: (err: Error | null) => void): void {
    this.dataHandler = onData;
    this.closeHandler = onClose;
    if (this.closed) onClose(null);
  }

  write(bytes: Buffer): boolean {
    return this.socket.write(bytes);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.closeHandler = null;
    this.socket.destroy();
    this.closed = true;
    this.fireEnd();
  }

  /** Politely ends the session on the server (COM_QUIT) and closes. */
  quit(): void {
    if (this.closed) return;
    this.closeHandler = null;
    this.socket.end(encodePacket(Buffer.from([0x01]), 0));
    this.closed = true;
    this.fireEnd();
  }

  /**
   * An async packet reader over this connection, used while the proxy talks
   * to the backend itself (login, internal queries). Rejects when the socket closes.
   */
  private packetReader(): { next(): Promise<Packet>; release(): Buffer } {
    this.internalReads++;
    const framer = new PacketFramer();
    let waiting: { resolve: (p: Packet) => void; reject: (e: Error) => void } | null = null;
    let failure: Error | null = null;
    const pump = () => {
      if (!waiting) return;
      try {
        const p = framer.next();
        if (p) {
          const w = waiting;
          waiting = null;
          w.resolve(p);
        } else if (failure) {
          const w = waiting;
          waiting = null;
          w.reject(failure);
        }
      } catch (err) {
        const w = waiting!;
        waiting = null;
        w.reject(err as Error);
      }
    };
    const previousData = this.dataHandler;
    this.dataHandler = (chunk) => {
      framer.push(chunk);
      pump();
    };
    const previousClose = this.closeHandler;
    this.closeHandler = (err) => {
      failure = err ?? new Error('connection closed by the server');
      pump();
      previousClose?.(err);
    };
    if (this.closed) failure = new Error('connection closed by the server');
    return {
      next: () =>
        new Promise<Packet>((resolve, reject) => {
          waiting = { resolve, reject };
          pump();
        }),
      // Hands the stream back to whoever owned it before.
      release: () => {
        this.internalReads--;
        this.dataHandler = previousData;
        this.closeHandler = previousClose;
        return framer.drainRaw();
      },
    };
  }

  private async login(login: BackendLogin): Promise<void> {
    let packets = this.packetReader();
    const first = await packets.next();
    if (first.payload[0] === PacketHeader.ERR) {
      const err = parseErr(first.payload);
      throw new BackendError(`backend '${this.endpoint.name}' refused the connection: ${err.message}`, this.endpoint, err);
    }
    this.greeting = parseHandshakeV10(first.payload);
    const serverCaps = this.greeting.capabilities;
    let caps = (login.capabilities & serverCaps) | Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION;
    caps |= serverCaps & Capability.PLUGIN_AUTH;
    caps &= ~(Capability.SSL | Capability.COMPRESS);
    if (login.database) caps |= Capability.CONNECT_WITH_DB & serverCaps;
    else caps &= ~Capability.CONNECT_WITH_DB;
    // Attributes only shape the handshake response, so they can be sent whether or not the client sent any.
    if (login.connectAttributes) caps |= Capability.CONNECT_ATTRS & serverCaps;
    // The proxy learns what each statement changed from the server's reports, whether or not the client asked for them.
    if (login.trackSession) caps |= Capability.SESSION_TRACK & serverCaps;
    this.capabilities = caps;
    const mariaDbCaps = caps & Capability.CLIENT_MYSQL ? 0 : login.mariaDbCapabilities & this.greeting.mariaDbCapabilities;

    const response = buildHandshakeResponse({
      capabilities: caps,
      mariaDbCapabilities: mariaDbCaps,
      maxPacketSize: 0x40000000,
      // The handshake has one byte for it; a collation id above 255 is set after login (see ClientSession).
      characterSet: login.characterSet <= 0xff ? login.characterSet : this.greeting.characterSet,
      user: login.user,
      authResponse: nativePasswordToken(login.passwordSha1, this.greeting.scramble),
      database: login.database,
      authPluginName: NATIVE_PASSWORD_PLUGIN,
      connectAttributes: login.connectAttributes,
    });
    let seq = (first.seq + 1) & 0xff;
    if (login.tls) {
      if (!(serverCaps & Capability.SSL)) {
        throw new BackendError(`backend '${this.endpoint.name}' does not offer TLS, which backend_tls requires`, this.endpoint);
      }
      const request = buildSslRequest({ capabilities: caps, maxPacketSize: 0x40000000, characterSet: login.characterSet <= 0xff ? login.characterSet : this.greeting.characterSet, mariaDbCapabilities: mariaDbCaps });
      this.socket.write(encodePacket(request, seq));
      seq = (seq + 1) & 0xff;
      // The login's packet reader listens on the TCP socket: it is handed over to the TLS socket.
      packets.release();
      try {
        await this.startTls(login.tls);
      } catch (err) {
        throw new BackendError(`backend '${this.endpoint.name}' TLS handshake failed: ${(err as Error).message}`, this.endpoint);
      }
      packets = this.packetReader();
    }
    this.socket.write(encodePacket(response, seq));
    for (;;) {
      const reply = await packets.next();
      seq = (reply.lastSeq + 1) & 0xff;
      const kind = reply.payload[0];
      if (kind === PacketHeader.OK) {
        this.loginOk = Buffer.from(reply.payload);
        const leftover = packets.release();
        if (leftover.length > 0) throw new ProtocolError('backend sent data after its login OK');
        return;
      }
      if (kind === PacketHeader.ERR) {
        const err = parseErr(reply.payload);
        throw new BackendError(
          `backend '${this.endpoint.name}' refused login for '${login.user}': ${err.message}`,
          this.endpoint,
          err,
        );
      }
      if (kind === PacketHeader.EOF) {
        const sw = parseAuthSwitchRequest(reply.payload);
        if (sw.pluginName !== NATIVE_PASSWORD_PLUGIN) {
          throw new BackendError(
            `backend '${this.endpoint.name}' asks for auth plugin '${sw.pluginName}' for '${login.user}'; wirecache logs in with mysql_native_password`,
            this.endpoint,
          );
        }
        this.socket.write(encodePacket(nativePasswordToken(login.passwordSha1, sw.pluginData), seq));
        continue;
      }
      throw new BackendError(
        `backend '${this.endpoint.name}' sent an unexpected login packet 0x${kind.toString(16)}`,
        this.endpoint,
      );
    }
  }

  /**
   * Prepares a client's statement on this connection for the proxy (the
   * client prepared it on another server): returns the server's id and
   * discards the parameter and column definitions, which the client already has.
   */
  async prepare(sql: Buffer): Promise<InternalPrepare> {
    this.dirty = true;
    const packets = this.packetReader();
    try {
      this.socket.write(encodePacket(Buffer.concat([COM_STMT_PREPARE_BYTE, sql]), 0));
      const first = await packets.next();
      if (first.payload[0] === PacketHeader.ERR) return { statementId: 0, error: parseErr(first.payload) };
      if (first.payload[0] !== PacketHeader.OK || first.payload.length < 12) throw new ProtocolError('unexpected reply to COM_STMT_PREPARE');
      const statementId = first.payload.readUInt32LE(1);
      const columns = first.payload.readUInt16LE(5);
      const params = first.payload.readUInt16LE(7);
      const eofs = this.capabilities & Capability.DEPRECATE_EOF ? 0 : (params > 0 ? 1 : 0) + (columns > 0 ? 1 : 0);
      for (let i = 0; i < params + columns + eofs; i++) await packets.next();
      return { statementId, error: null };
    } finally {
      packets.release();
    }
  }

  /**
   * COM_RESET_CONNECTION: the server rolls back, drops temporary tables,
   * user variables and prepared statements, and gives session variables their
   * global values, without a new login; then `then`, in the same write.
   * Resolves the reset's ERR (null on OK) and the statements' results.
   */
  async resetSession(then: readonly string[] = []): Promise<{ error: ErrPacket | null; results: InternalResult[] }> {
    // One write: the reset and the statements after it (the server runs them in order).
    const [reset, ...results] = await this.pipeline([COM_RESET_CONNECTION_BYTE, ...then.map(queryPayload)], readTextRow);
    return { error: reset.error, results };
  }

  /** Takes the raw stream back from its owner (a session leaving the connection to a pool). */
  detach(): void {
    this.dataHandler = null;
    this.closeHandler = null;
    this.socket.removeAllListeners('drain');
    // Paused for a slow client that has gone: a reply is read again (the reset's, a kept connection's).
    this.socket.resume();
  }

  /** COM_STMT_CLOSE for a statement the proxy prepared here (the server sends no reply). */
  closeStatement(statementId: number): void {
    if (this.closed) return;
    const payload = Buffer.alloc(5);
    payload[0] = 0x19;
    payload.writeUInt32LE(statementId, 1);
    this.socket.write(encodePacket(payload, 0));
  }

  /**
   * Runs a statement on this connection for the proxy itself (for example
   * KILL on behalf of a client). Only call while no client command is in flight.
   */
  async query(sql: string | Buffer): Promise<InternalResult> {
    return (await this.queries([sql]))[0];
  }

  /** Sends statements in one write and reads their results in order: one round trip for all. */
  async queries(sqls: readonly (string | Buffer)[]): Promise<InternalResult[]> {
    return this.pipeline(sqls.map(queryPayload), readTextRow);
  }

  /** As queries(), with every column value as the server's bytes (binary-safe; the memcached API's values). */
  async queriesAsBytes(sqls: readonly (string | Buffer)[]): Promise<InternalResult<Buffer>[]> {
    return this.pipeline(sqls.map(queryPayload), readByteRow);
  }

  /** Sends `commands` (whole command payloads) in one write and reads their replies in order. */
  private async pipeline<T>(commands: readonly Buffer[], readRow: (payload: Buffer) => (T | null)[]): Promise<InternalResult<T>[]> {
    this.dirty = true;
    const packets = this.packetReader();
    try {
      const frames = commands.map((c) => encodePacket(c, 0));
      this.socket.write(frames.length === 1 ? frames[0] : Buffer.concat(frames));
      const results: InternalResult<T>[] = [];
      for (let i = 0; i < commands.length; i++) results.push(await this.readResult(packets, readRow));
      return results;
    } finally {
      packets.release();
    }
  }

  /** Runs a statement and drops its rows as they arrive (a cached read run again only for its diagnostics). */
  async run(sql: string | Buffer): Promise<InternalResult> {
    this.dirty = true;
    const packets = this.packetReader();
    try {
      this.socket.write(encodePacket(queryPayload(sql), 0));
      return await this.readResult(packets, null);
    } finally {
      packets.release();
    }
  }

  /** Reads one statement's result; `readRow` null drops the rows as they arrive. */
  private async readResult<T>(packets: { next(): Promise<Packet> }, readRow: ((payload: Buffer) => (T | null)[]) | null): Promise<InternalResult<T>> {
    const result: InternalResult<T> = { ok: null, error: null, rows: [] };
    const first = await packets.next();
    if (first.payload[0] === PacketHeader.OK) {
      result.ok = parseOk(first.payload, this.capabilities);
      return result;
    }
    if (first.payload[0] === PacketHeader.ERR) {
      result.error = parseErr(first.payload);
      return result;
    }
    // A result set: skip the column definitions (and their EOF), then read text rows to the terminator.
    const columns = new PayloadReader(first.payload).lenenc();
    for (let i = 0; i < columns; i++) await packets.next();
    if (!(this.capabilities & Capability.DEPRECATE_EOF)) await packets.next();
    let p = await packets.next();
    let failed: ErrPacket | null = null;
    while (!(p.payload[0] === PacketHeader.EOF && p.payload.length < 0xffffff)) {
      if (p.payload[0] === PacketHeader.ERR) {
        failed = parseErr(p.payload);
        break;
      }
      if (readRow) result.rows.push(readRow(p.payload));
      p = await packets.next();
    }
    if (failed) return { ok: null, error: failed, rows: [] };
    return result;
  }

  /**
   * Reads the login's tracking settings (what a client that tracks state
   * expects to be told) and sets the proxy's, in one round trip. A server
   * that refuses them leaves the connection untracked.
   */
  async startTracking(): Promise<void> {
    const [view, set] = await this.queries(TRACKING_STATEMENTS);
    this.trackingStarted(view, set);
  }

  /** What the login's TRACKING_STATEMENTS answered (also run by the login pool after a reset). */
  trackingStarted(view: InternalResult, set: InternalResult): void {
    if (view.error || !view.rows[0]) return;
    this.loginTrackingView = parseTrackingView(view.rows[0]);
    this.tracksState = !set.error;
  }

  /**
   * Sets the proxy's tracking again after a client statement or
   * COM_RESET_CONNECTION replaced it; first reads the settings the client
   * left (TRACKING_VIEW_SQL's row), returned when `readView`.
   */
  async restoreTracking(readView: boolean): Promise<(string | null)[] | null> {
    const results = await this.queries(readView ? TRACKING_STATEMENTS : [PROXY_TRACKING_SQL]);
    this.tracksState = !results[results.length - 1].error;
    return readView && !results[0].error ? (results[0].rows[0] ?? null) : null;
  }
}

const COM_QUERY_BYTE = Buffer.from([0x03]);
const COM_STMT_PREPARE_BYTE = Buffer.from([0x16]);
const COM_RESET_CONNECTION_BYTE = Buffer.from([0x1f]);

/** COM_QUERY's payload. A Buffer is sent byte for byte: a client's statement replayed here must not be re-encoded. */
function queryPayload(sql: string | Buffer): Buffer {
  return Buffer.concat([COM_QUERY_BYTE, typeof sql === 'string' ? Buffer.from(sql, 'utf8') : sql]);
}
/** What a login runs to start tracking: read the login's settings, then set the proxy's. */
export const TRACKING_STATEMENTS = [TRACKING_VIEW_SQL, PROXY_TRACKING_SQL] as const;

/** What an internal COM_STMT_PREPARE returned: the server's statement id, or its error. */
export type InternalPrepare = { statementId: number; error: null } | { statementId: 0; error: ErrPacket };

/** A text-protocol row: each column a length-encoded string, 0xFB for NULL. */
function readTextRow(payload: Buffer): (string | null)[] {
  return readByteRow(payload).map((v) => (v === null ? null : v.toString('utf8')));
}

/** A text-protocol row with each value as its bytes (a copy: the packet's buffer is reused). */
function readByteRow(payload: Buffer): (Buffer | null)[] {
  const r = new PayloadReader(payload);
  const out: (Buffer | null)[] = [];
  while (r.remaining > 0) {
    const length = r.lenencOrNull();
    out.push(length === null ? null : Buffer.from(r.bytes(length)));
  }
  return out;
}
