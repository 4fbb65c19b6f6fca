import type net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { BackendEndpoint, UserConfig } from '../config/types.js';
import type { Logger } from '../logger.js';
import { Capability, Command, commandName, ErrorCode, ServerStatus } from '../protocol/constants.js';
import { encodePacket, PacketFramer, PacketTooLargeError, type Packet } from '../protocol/framing.js';
import { buildErr, buildOk } from '../protocol/generic_packets.js';
import { ProtocolError } from '../protocol/payload_reader.js';
import { ResponseKind, ResponseScanner } from '../protocol/response_scanner.js';
import type { ClassifiedStatement } from '../sql/classifier.js';
import { PoolExhaustedError } from '../backend/pool_limits.js';
import { BackendConnection, type BackendLogin } from '../backend/backend_connection.js';
import { BackendDispatcher, PRIMARY_COMMAND } from './backend_dispatch.js';
import { CommandContext } from './command_context.js';
import { runCommand } from './commands.js';
import { SessionLogin } from './login.js';
import { PreparedStatements } from './prepared_statements.js';
import { Relay } from './relay.js';
import { SessionCache, type SendRouted } from './session_cache.js';
import { SessionTracking } from './session_tracking.js';
import type { SessionContext } from './session_context.js';
import { wireOf } from './wire.js';

export const enum Phase {
  Handshake,
  AuthSwitch,
  /** caching_sha2_password full authentication: waiting for the password (TLS), a public key request or the RSA-encrypted password. */
  Sha2FullAuth,
  /** Logging in to the backend, or running a command the proxy handles itself. */
  Working,
  Ready,
  /** A command was forwarded; its response is being relayed. */
  Relaying,
  /** The server asked for LOCAL INFILE data; client packets go straight to the backend. */
  Infile,
  Closed,
}

/** The largest packet accepted before login: a handshake response with connection attributes fits easily. */
const PRE_LOGIN_MAX_PACKET = 64 * 1024;

/** Client bytes buffered while a command is in flight before the client socket is paused. */
const CLIENT_HIGH_WATER = 256 * 1024;

export const enum PauseReason {
  Backlog = 1,
  BackendFull = 2,
  /** A cache replay filled the client socket's buffer. */
  ClientFull = 4,
}

/**
 * One client connection: the handshake, then commands relayed to a backend
 * connection opened as the same user. Responses stream through a
 * ResponseScanner, which only tells where each response ends, so result
 * bytes reach the client exactly as the server sent them.
 *
 * The session is a state machine (`phase`) over its client socket; its jobs
 * live beside it in this folder, each with the session as its one
 * collaborator: `login` (greeting and authentication), `commands` (the
 * command switch), `statements` (prepared statements), `dispatcher` (which
 * backend connection runs a command), `sessionCache` (the query cache),
 * `relay` (responses back to the client) and `local_commands` (KILL,
 * COM_CHANGE_USER). What one command carries is in `cmd`, made fresh for
 * each command.
 */
export class ClientSession {
  phase = Phase.Handshake;
  readonly framer: PacketFramer;
  readonly scanner = new ResponseScanner();
  /** Capabilities the client negotiated with the proxy. */
  capabilities = 0;
  mariaDbCapabilities = 0;
  /** The connection the command in flight runs on (the primary between commands). */
  backend: BackendConnection | null = null;
  /** How the session logged in, to log in again on other servers. */
  backendLogin: BackendLogin | null = null;
  /** Status flags the backend reported last (IN_TRANS, AUTOCOMMIT): what proxy-made OKs must repeat. */
  serverStatus = ServerStatus.AUTOCOMMIT;
  /** The command in flight (or the last one). */
  cmd = new CommandContext(0, 0);
  clientPaused = 0;
  backendPaused = false;
  /**
   * A statement that may have set a role ran (its text says ROLE): COM_RESET_CONNECTION keeps the current
   * role, so this session's connections are closed, not kept for another client.
   */
  roleTouched = false;
  /** COM_SET_OPTION ran: the connections' multi-statement setting may differ from their login's, so none is pooled. */
  optionSet = false;
  /** A KILL of this session is under way: its connections ending is the kill, not something to repair. */
  killPending = false;
  /** Withdraws the login connection's offer to the pool (multiplexing, until the first command). */
  private withdrawOffer: (() => void) | null = null;
  private closeWhenIdle = false;
  private handshakeTimer: NodeJS.Timeout | null = null;
  /** Runs while a client packet is partly received (net_read_timeout). */
  private readTimer: NodeJS.Timeout | null = null;
  /** performance.now() when the session last finished a command or logged in. */
  private lastActivity = performance.now();
  /** Takes packets from the client while the session can act on them. */
  private pumping = false;
  /** The client socket is corked while pipelined commands are taken: their replies leave in one write. */
  private corked = false;

  readonly login = new SessionLogin(this);
  readonly statements = new PreparedStatements(this);
  readonly dispatcher = new BackendDispatcher(this);
  readonly relay = new Relay(this);
  /** Sends the COM_QUERY being run on its way (commands.ts): made once per session, not per statement. */
  sendQuery: SendRouted | null = null;
  /** Session-state tracking: what the server reports, and the OKs the client gets. */
  readonly tracking = new SessionTracking(this);
  /** The session's side of the query cache, from login on (null when caching is off). */
  sessionCache: SessionCache | null = null;

  user: UserConfig | null = null;
  readonly remoteAddress: string;
  /** The client's port, as the logger names it (read at connect: a closed socket no longer has it). */
  private readonly portAtConnect: number | undefined;
  private logger: Logger | null = null;

  /** The session's logger, made on first use: most sessions never log, and a logger per connection costs every connect. */
  get log(): Logger {
    return (this.logger ??= this.ctx.logger.child({ session: this.id, client: `${this.remoteAddress}:${this.portAtConnect}` }));
  }

  /** A debug line, without making the session's logger when debug lines are not written (every session logs in and closes). */
  debug(fields: Record<string, unknown>, message: string): void {
    if (this.ctx.logger.isLevelEnabled('debug')) this.log.debug(fields, message);
  }

  constructor(
    readonly id: number,
    private socket: net.Socket,
    readonly ctx: SessionContext,
  ) {
    this.remoteAddress = (socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
    this.portAtConnect = socket.remotePort;
    // Until the client has logged in it may send only small packets: a stranger must not make the proxy buffer 64 MiB.
    this.framer = new PacketFramer(PRE_LOGIN_MAX_PACKET);
    this.scanner.onSessionState = this.tracking.onSessionState;
    socket.setNoDelay(true);
    this.listenTo(socket);
  }

  private listenTo(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('error', (err) => this.close(`client socket error: ${err.message}`));
    socket.on('close', () => this.close('client disconnected'));
    socket.on('drain', () => this.onClientDrain());
  }

  /**
   * SSLRequest: the rest of the session runs over TLS on the same TCP
   * connection. The client sends its TLS hello right after the request,
   * maybe in the same read: those bytes go back into the socket, where the
   * TLS layer reads them first.
   */
  startTls(context: tls.SecureContext): void {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('drain');
    raw.pause();
    const early = this.framer.drainRaw();
    if (early.length > 0) raw.unshift(early);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    this.socket = secure;
    this.listenTo(secure);
    secure.once('secure', () => this.debug({ protocol: secure.getProtocol(), cipher: secure.getCipher()?.name }, 'client TLS established'));
  }

  /** The client socket (TLS once the client asked for it). */
  get clientSocket(): net.Socket {
    return this.socket;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  /** Backend threads this session uses now, by server (for KILL; not those lent to the pool, which another session may have by then). */
  get backendThreads(): { endpoint: BackendEndpoint; threadId: number }[] {
    const out: { endpoint: BackendEndpoint; threadId: number }[] = [];
    for (const link of this.dispatcher.links.values()) if (!link.conn.closed && !link.lent) out.push({ endpoint: link.conn.endpoint, threadId: link.conn.threadId });
    return out;
  }

  /**
   * A KILL names this session: none of its connections goes to another
   * client without a reset. (MariaDB 10.11 keeps no KILL QUERY pending on an
   * idle thread: checked, the next statement runs. The reset is insurance
   * for a KILL that lands as a statement ends, and costs only its targets.)
   */
  markKillTarget(): void {
    for (const link of this.dispatcher.links.values()) link.conn.dirty = true;
  }

  /** Bytes read from and written to the client socket so far. */
  get clientBytes(): { received: number; sent: number } {
    return { received: this.socket.bytesRead, sent: this.socket.bytesWritten };
  }

  /** Each backend connection by server, and whether a command of this session runs on it now. */
  forEachBackend(visit: (server: string, active: boolean) => void): void {
    const running = this.busy ? this.backend : null;
    for (const link of this.dispatcher.links.values()) if (!link.conn.closed) visit(link.server, link.conn === running);
  }

  get busy(): boolean {
    return this.phase === Phase.Relaying || this.phase === Phase.Infile || this.phase === Phase.Working;
  }

  start(): void {
    this.login.greet();
    this.handshakeTimer = setTimeout(() => {
      this.login.refuse(ErrorCode.HANDSHAKE, 'Bad handshake: login not completed in time', 'handshake timeout');
    }, this.ctx.config().timeouts.clientHandshakeMs);
    this.handshakeTimer.unref();
  }

  /** Ends the session from outside (KILL, shutdown). */
  terminate(reason: string): void {
    this.close(reason);
  }

  /**
   * Another session's KILL of this connection is done: with no backend
   * thread (idle) the session ends now; otherwise the killed thread ends it
   * with the server's own error, and this is the fallback a second later.
   */
  killedBy(idle: boolean, reason: string): void {
    if (idle) this.killedWhileIdle(reason);
    else setTimeout(() => this.terminate(reason), 1000).unref();
  }

  /** KILL of a session with no backend thread (multiplexed away): the server's own notice, then the end. */
  killedWhileIdle(reason: string): void {
    if (!this.busy && this.phase !== Phase.Closed) this.sendErr({ code: 1927, sqlState: '70100' }, 'Connection was killed', 0);
    this.close(reason);
  }

  /** Closes the session once its command in flight (if any) completes. */
  closeAfterCurrentCommand(reason: string): void {
    if (!this.busy) this.terminate(reason);
    else this.closeWhenIdle = true;
  }

  // ---------------------------------------------------------------- client input

  private onClientData(chunk: Buffer): void {
    if (this.phase === Phase.Closed) return;
    // Bytes are arriving: the read timeout measures silence, not the length of a big upload.
    if (this.readTimer) clearTimeout(this.readTimer);
    this.readTimer = null;
    this.framer.push(chunk);
    this.pump();
  }

  /** Takes the client's next packets, if the session can act on them now. */
  pump(): void {
    // Re-entered from becomeReady() while this loop runs: the running loop takes the next packet.
    if (this.pumping) return;
    this.pumping = true;
    try {
      this.pumpLoop();
    } finally {
      this.pumping = false;
      if (this.corked) {
        this.corked = false;
        this.socket.uncork();
      }
    }
  }

  private pumpLoop(): void {
    for (;;) {
      if (this.phase === Phase.Closed) return;
      if (this.phase === Phase.Relaying || this.phase === Phase.Working) {
        if (this.framer.bufferedBytes > CLIENT_HIGH_WATER) this.pauseClient(PauseReason.Backlog);
        return;
      }
      let packet: Packet | null;
      try {
        packet = this.framer.next();
      } catch (err) {
        if (err instanceof PacketTooLargeError) {
          // As the server does: the reply follows the frame whose header crossed the limit.
          this.sendErr(ErrorCode.NET_PACKET_TOO_LARGE, "Got a packet bigger than 'max_allowed_packet' bytes", (err.seq + 1) & 0xff);
          this.close('client packet over max_packet_bytes');
          return;
        }
        throw err;
      }
      if (!packet) {
        this.resumeClient(PauseReason.Backlog);
        this.watchPartialPacket();
        return;
      }
      // More bytes behind this command (a pipelining client): replies the proxy makes now (cache hits, its own
      // OKs and errors) are gathered and leave in one write when the loop stops.
      if (!this.corked && this.framer.bufferedBytes > 0 && this.phase === Phase.Ready) {
        this.corked = true;
        this.socket.cork();
      }
      try {
        switch (this.phase) {
          case Phase.Handshake:
          case Phase.AuthSwitch:
          case Phase.Sha2FullAuth:
            this.login.onPacket(packet);
            break;
          case Phase.Infile:
            this.relay.onInfilePacket(packet);
            break;
          case Phase.Ready:
            this.onCommand(packet);
            break;
        }
      } catch (err) {
        this.failSession(err as Error);
        return;
      }
    }
  }

  /** A packet that started arriving must finish within client_read_ms, or the session ends with ERR 1159. */
  private watchPartialPacket(): void {
    if (this.framer.bufferedBytes === 0) {
      if (this.readTimer) clearTimeout(this.readTimer);
      this.readTimer = null;
      return;
    }
    if (this.readTimer) return;
    this.readTimer = setTimeout(() => {
      this.readTimer = null;
      if (this.phase === Phase.Closed || this.framer.bufferedBytes === 0) return;
      this.sendErr(ErrorCode.NET_READ_INTERRUPTED, 'Got timeout reading communication packets', 0);
      this.close('incomplete client packet timed out');
    }, this.ctx.config().timeouts.clientReadMs);
    this.readTimer.unref();
  }

  private onCommand(packet: Packet): void {
    const payload = packet.payload;
    if (payload.length === 0) {
      this.sendErr(ErrorCode.UNKNOWN_COM, 'Unknown command', 1);
      this.close('empty command packet');
      return;
    }
    this.cmd = new CommandContext(payload[0], (packet.lastSeq + 1) & 0xff);
    this.endOffer();
    runCommand(this, packet);
  }

  // ---------------------------------------------------------------- backends

  /** The login succeeded on the primary (`conn`): the session takes commands. */
  loggedIn(user: UserConfig, conn: BackendConnection, authSeq: number): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.user = user;
    this.dispatcher.usePrimary(conn);
    this.tracking.start(conn);
    const login = this.backendLogin!;
    if (this.ctx.cache) this.sessionCache = new SessionCache(this, this.ctx.cache, login.database, login.characterSet);
    this.framer.limit = this.ctx.config().limits.maxPacketBytes;
    this.lastActivity = performance.now();
    const ok = this.tracking.loginOk(conn);
    if (!ok) return;
    this.socket.write(encodePacket(ok, authSeq));
    this.debug({ user: user.name, backend_thread: conn.threadId }, 'client logged in');
    // The first command (a client nearly always sends one at once) runs on it; a client waiting for a connection
    // meanwhile may have it parked (multiplexing).
    if (this.dispatcher.mux.enabled) this.withdrawOffer = this.ctx.loginPool.offer(conn.endpoint.name, () => this.dispatcher.mux.releaseIdle());
    this.becomeReady();
  }

  /** A backend connection to `endpoint` as `login`: a kept one, or a new login (within the server's pool limit). */
  async connectTo(endpoint: BackendEndpoint, login: BackendLogin): Promise<BackendConnection> {
    try {
      return await this.ctx.loginPool.acquire(endpoint, login, () => BackendConnection.connect(endpoint, login, this.ctx.config().timeouts.backendConnectMs));
    } catch (err) {
      // A server at the pool's limit is counted in wirecache_backend_pool_waits_total instead.
      if (!(err instanceof PoolExhaustedError)) this.ctx.observer.backendConnectError(endpoint.name);
      throw err;
    }
  }

  /** `conn` leaves the session (multiplexing hands it back to the pool): nothing of it reaches the session any more. */
  detachBackend(conn: BackendConnection): void {
    conn.detach();
    if (this.backend !== conn) return;
    this.backend = null;
    this.backendPaused = false;
  }

  /** A new backend connection of this session: its bytes and its end come to the relay. */
  attachBackend(conn: BackendConnection): void {
    conn.attach(
      (chunk) => this.relay.onBackendData(conn, chunk),
      (err) => this.relay.onBackendClosed(conn, err),
    );
    conn.socket.on('drain', () => this.resumeClient(PauseReason.BackendFull));
  }

  /**
   * Makes `conn` the connection commands go to. Flow control taken on behalf
   * of the previous one ends with it: a client paused because that
   * connection's buffer was full (it may never drain: a dead replica whose
   * read was retried) reads again, and that connection, if it was paused
   * for a slow client, reads again too.
   */
  activate(conn: BackendConnection): void {
    const previous = this.backend;
    this.backend = conn;
    if (previous === conn) return;
    if (this.backendPaused) previous?.resume();
    this.backendPaused = false;
    this.resumeClient(PauseReason.BackendFull);
  }

  // ---------------------------------------------------------------- sending commands

  /** A command for the session's primary connection, as the client sent it. */
  forward(packet: Packet, kind: ResponseKind): void {
    // Through dispatch also when the connection holds another client's diagnostics: it is reset first.
    if (this.dispatcher.tracksLinks || this.backend?.inheritedDiagnostics) this.dispatcher.dispatchOrForward(null, PRIMARY_COMMAND, null, null, () => this.sendToBackend(wireOf(packet), kind));
    else this.sendToBackend(wireOf(packet), kind);
  }

  /** Writes a command to the backend; `kind` null means the command has no response. */
  sendToBackend(bytes: Buffer, kind: ResponseKind | null): void {
    const backend = this.backend;
    if (!backend || backend.closed) {
      this.log.warn({ code: ErrorCode.BACKEND_LOST.code }, 'command without a backend connection; the session ends');
      this.replyLocal(ErrorCode.BACKEND_LOST, 'wirecache: lost connection to the backend; reconnect');
      this.close('command without a backend connection');
      return;
    }
    if (kind !== null) {
      this.scanner.begin(kind, (backend.capabilities & Capability.DEPRECATE_EOF) !== 0);
      this.phase = Phase.Relaying;
      this.cmd.bytesForwarded = 0;
    }
    // Anything but a plain read may leave this session's state on the connection: reset before anyone else has it.
    const mux = this.dispatcher.mux;
    if (!backend.dirty && !mux.commandLeavesNoState()) backend.dirty = true;
    // The dispatcher reset a connection that holds another client's diagnostics before any other command (a ping aside).
    if (backend.inheritedDiagnostics && this.cmd.code !== Command.PING) {
      if (!mux.replacesInheritedDiagnostics()) this.log.warn({ command: commandName(this.cmd.code) }, 'command sent on a connection with inherited diagnostics');
      backend.inheritedDiagnostics = false;
    }
    if (!backend.write(bytes)) this.pauseClient(PauseReason.BackendFull);
    if (kind === null) this.finishCommand();
  }

  /** A reply the proxy makes itself, without a backend. */
  replyLocal(spec: { code: number; sqlState: string }, message: string): void {
    this.cmd.statError = true;
    this.sendErr(spec, message, this.cmd.responseSeq);
    this.finishCommand();
  }

  /** Runs a command the proxy answers itself (KILL, CHANGE_USER) while holding the session busy. */
  runLocal(task: () => Promise<void>): void {
    this.phase = Phase.Working;
    task().then(
      () => {
        if (this.phase !== Phase.Closed) this.finishCommand();
      },
      (err: Error) => this.failSession(err),
    );
  }

  finishCommand(): void {
    const cmd = this.cmd;
    cmd.inflight = null;
    this.sessionCache?.abandonRecording();
    const now = performance.now();
    this.lastActivity = now;
    const seconds = (now - cmd.start) / 1000;
    this.ctx.observer.commandCompleted(commandName(cmd.code), seconds);
    const statement = cmd.statStatement;
    if (statement) this.recordStatement(statement, seconds);
    this.dispatcher.mux.releaseIdle();
    this.becomeReady();
  }

  /** One statement done: its route's latency histogram and its digest's statistics. */
  private recordStatement(statement: ClassifiedStatement, seconds: number): void {
    const cmd = this.cmd;
    const destination = cmd.statDestination;
    this.ctx.observer.statementCompleted(destination, seconds);
    this.ctx.queryStats?.record({
      digest: statement.digestText,
      seconds,
      rows: destination === 'cache' ? cmd.statCacheRows : this.scanner.rows,
      cache: cmd.statCache,
      destination,
      error: cmd.statError,
    });
    cmd.statStatement = null;
  }

  private becomeReady(): void {
    this.phase = Phase.Ready;
    if (this.closeWhenIdle) {
      this.close('closed after its last command');
      return;
    }
    this.pump();
  }

  // ---------------------------------------------------------------- flow control

  private onClientDrain(): void {
    this.resumeClient(PauseReason.ClientFull);
    if (this.backendPaused) {
      this.backendPaused = false;
      this.backend?.resume();
    }
  }

  pauseClient(reason: PauseReason): void {
    if (this.clientPaused === 0) this.socket.pause();
    this.clientPaused |= reason;
  }

  resumeClient(reason: PauseReason): void {
    if (!(this.clientPaused & reason)) return;
    this.clientPaused &= ~reason;
    if (this.clientPaused === 0 && this.phase !== Phase.Closed) this.socket.resume();
  }

  /**
   * Called periodically by the server. A sweep rather than socket.setTimeout:
   * Node refreshes a socket timer on every read and write, a cost paid per
   * packet, while this check costs nothing between sweeps.
   */
  closeIfIdle(now: number, idleMs: number): void {
    if (this.phase === Phase.Ready && now - this.lastActivity > idleMs) {
      this.log.info({ idle_seconds: Math.round(idleMs / 1000) }, 'closing idle session');
      this.close('idle timeout');
    }
  }

  // ---------------------------------------------------------------- output and teardown

  /** Bytes for the client; returns false when its socket buffer is full. */
  writeToClient(bytes: Buffer): boolean {
    return this.socket.write(bytes);
  }

  /** A cached result for the client: a full socket buffer pauses the client until it drains. */
  writeReplay(bytes: Buffer): void {
    if (!this.socket.write(bytes)) this.pauseClient(PauseReason.ClientFull);
  }

  sendOk(): void {
    this.socket.write(encodePacket(buildOk({ status: this.serverStatus }), this.cmd.responseSeq));
  }

  sendErr(spec: { code: number; sqlState: string }, message: string, seq: number): void {
    // After end() a write would make Node destroy the socket and drop what is still queued.
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.socket.write(encodePacket(buildErr(spec, message), seq));
  }

  /** An unexpected failure inside the session: tell the client, close this one connection only. */
  failSession(err: Error): void {
    if (this.phase === Phase.Closed) return;
    const malformed = err instanceof ProtocolError;
    // Malformed input from a client is the client's problem, not a proxy fault: no stack trace at error level.
    if (malformed) this.log.info({ reason: err.message }, 'malformed packet; closing the session');
    else this.log.error({ err }, 'session failed');
    const seq = this.cmd.responseSeq;
    if (this.phase !== Phase.Relaying || this.cmd.bytesForwarded === 0) {
      if (err instanceof PacketTooLargeError) this.sendErr(ErrorCode.NET_PACKET_TOO_LARGE, "Got a packet bigger than 'max_allowed_packet' bytes", (err.seq + 1) & 0xff);
      else if (malformed) this.sendErr(ErrorCode.MALFORMED_PACKET, `Malformed communication packet: ${err.message}`, seq);
      else this.sendErr(ErrorCode.NEW_ABORTING_CONNECTION, `wirecache: aborted session ${this.id}: ${err.message}`, seq);
    }
    this.close(`session error: ${err.message}`);
  }

  private endOffer(): void {
    if (this.withdrawOffer === null) return;
    this.withdrawOffer();
    this.withdrawOffer = null;
  }

  close(reason: string): void {
    if (this.phase === Phase.Closed) return;
    this.phase = Phase.Closed;
    this.endOffer();
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.readTimer) clearTimeout(this.readTimer);
    this.debug({ reason }, 'session closed');
    this.sessionCache?.closed(this.scanner.active);
    // A connection with a command in flight is cut: COM_QUIT would wait behind the command.
    // The others go back to the pool (reset there) when there is one.
    const pool = this.ctx.loginPool;
    const login = this.backendLogin;
    const releases: Promise<void>[] = [];
    const keep = login && !this.roleTouched && !this.optionSet ? (conn: BackendConnection) => releases.push(pool.release(conn, login)) : null;
    this.dispatcher.mux.unpark();
    this.dispatcher.dropAll(this.scanner.active ? this.backend : null, keep);
    this.backend = null;
    // As a server does at COM_QUIT: the session's locks and temporary tables are gone before the client sees the end.
    if (releases.length > 0) void Promise.allSettled(releases).then(() => this.socket.end());
    else this.socket.end();
    // A client that stops reading must not keep the socket (and its buffers) alive. The timer goes once the socket
    // has closed: held for its 2 s, every closed session outlived two scavenges and filled the old generation.
    const socket = this.socket;
    const cut = setTimeout(() => socket.destroy(), 2000).unref();
    if (socket.closed) clearTimeout(cut);
    else socket.once('close', () => clearTimeout(cut));
    this.ctx.removed(this);
  }
}
