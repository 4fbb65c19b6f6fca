import type net from 'node:net';
import tls from 'node:tls';
import type { KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { generateScramble, sha1 as sha1Of, verifyNativePassword } from '../auth/native_password.js';
import {
  CACHING_SHA2_PLUGIN,
  cleartextPassword,
  decryptPassword,
  isEmptyPasswordReply,
  matchesNativeHash,
  REQUEST_PUBLIC_KEY,
  Sha2Status,
  verifyFastAuth,
  type Sha2CredentialCache,
} from '../auth/caching_sha2_password.js';
import { BackendConnection, BackendError, type BackendEndpoint, type BackendLogin, type BackendTls, type InternalResult } from './backend_connection.js';
import type { UserConfig, WirecacheConfig } from '../config/types.js';
import type { Logger } from '../logger.js';
import type { ProxyObserver } from './observer.js';
import {
  Capability,
  Command,
  MariaDbCapability,
  commandName,
  ErrorCode,
  NATIVE_PASSWORD_PLUGIN,
  ServerStatus,
  type ErrorSpec,
} from '../protocol/constants.js';
import { encodePacket, PacketFramer, PacketTooLargeError, type Packet } from '../protocol/framing.js';
import { buildErr, buildOk } from '../protocol/generic_packets.js';
import {
  buildAuthSwitchRequest,
  buildHandshakeV10,
  parseChangeUser,
  parseHandshakeResponse,
  SSL_REQUEST_LENGTH,
  type HandshakeResponse,
} from '../protocol/handshake.js';
import { ProtocolError } from '../protocol/payload_reader.js';
import { ResponseKind, ResponseScanner, ScanResult } from '../protocol/response_scanner.js';
import { batchContainsKill, mentionsKill, parseKillStatement, startsWithKill } from '../sql/kill_statement.js';
import type { CacheRule } from '../cache/cache_rules.js';
import type { CachePlan } from '../cache/cache_policy.js';
import { SESSION_STATUS_MASK, type LookupResult, type MissTicket, type QueryCache } from '../cache/query_cache.js';
import type { CacheEntry, RefusalReason } from '../cache/types.js';
import { replayInfo, replayResultWith } from '../protocol/result_replay.js';
import { SessionState, STATE_SNAPSHOT_SQL, type Invalidation } from './session_state.js';
import { classify, type ClassifiedStatement } from '../sql/classifier.js';
import { decideRoute, isRead, type RouteDecision, type RouteReason } from '../routing/router.js';
import type { ServerSelector } from '../routing/server_selector.js';
import { gtidCovers } from '../routing/gtid.js';
import type { QueryStats } from './query_stats.js';
import {
  executeWithTypes,
  newLink,
  PrimaryPins,
  StateLog,
  useStatementFor,
  type BackendLink,
} from './backend_links.js';

/** What the proxy announces to clients: mirrors the primary's greeting, minus what the proxy does not implement. */
export interface ServerIdentity {
  serverVersion: string;
  capabilities: number;
  mariaDbCapabilities: number;
  characterSet: number;
}

/** Everything a session needs from the proxy around it. */
export interface SessionContext {
  config(): WirecacheConfig;
  /** The query cache, or null when caching is off. */
  cache: QueryCache | null;
  logger: Logger;
  observer: ProxyObserver;
  identity(): ServerIdentity;
  /** Where each statement may go: the primary, replicas in rotation, servers by name. */
  selector: ServerSelector;
  /** Per-digest statement statistics, or null when turned off. */
  queryStats: QueryStats | null;
  /** The TLS context offered to clients, or null when no certificate is configured. */
  tls: tls.SecureContext | null;
  /** TLS to the backends, or null. */
  backendTls: BackendTls | null;
  /** caching_sha2_password: digests learnt from full authentications, and the RSA key pair (made on first use). */
  sha2Credentials: Sha2CredentialCache;
  rsaKeyPair(): { publicKeyPem: Buffer; privateKey: KeyObject };
  /** A login from this client address failed (wrong password, unknown user): counted for throttling. */
  loginFailed(address: string): void;
  loginSucceeded(address: string): void;
  /** The account a client logs in as: the config's users first, then accounts read from the database. */
  findUser(name: string): UserConfig | undefined;
  sessions: ReadonlyMap<number, ClientSession>;
  /** Called when a backend greeting is seen, to keep the announced identity current. */
  learnedBackend(conn: BackendConnection): void;
  removed(session: ClientSession): void;
}

const enum Phase {
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

/** A prepared statement, known to the client by its proxy id (the map key). */
interface PreparedStatement {
  /** The statement text, to prepare it again on another connection. */
  sql: Buffer;
  /** The statement's classification (when the cache or routing needs it). */
  statement: ClassifiedStatement | null;
  params: number;
  /** Parameter types from the last execute that sent them (later executes may omit them). */
  types: Buffer | null;
  /** COM_STMT_SEND_LONG_DATA was used since the last execute: that execute is not cached. */
  longData: boolean;
}

/** A COM_QUERY or COM_STMT_EXECUTE as the cache sees it. */
interface CacheableCommand {
  statement: ClassifiedStatement;
  /** COM_STMT_EXECUTE: binary rows, keyed on `params` too. */
  binary: boolean;
  params: string;
  /** A reason known up front not to cache (a cursor, long data). */
  refusal: RefusalReason | null;
}

/** A command on its way to a backend: kept until its response starts, so a failed replica read can go elsewhere. */
interface Dispatch {
  statement: ClassifiedStatement | null;
  decision: RouteDecision;
  /** The prepared statement the command names: prepared on the chosen connection first. */
  prepared: { id: number; stmt: PreparedStatement } | null;
  /** Writes the command to the chosen connection (this.backend is already set to it). */
  write: (link: BackendLink) => void;
  /** A SET/USE statement's text, to replay on the session's other connections once it succeeded. */
  stateSql: Buffer | null;
  /** Servers that failed for this command. */
  tried: Set<string> | null;
  /** A read that may be sent again elsewhere if its server fails before answering. */
  retryable: boolean;
  retried: boolean;
  consistency: 'eventual' | 'session';
  /** Go to the primary whatever the decision (a replica could not be made consistent, none is usable). */
  forcePrimary: boolean;
  /** Why a read meant for a replica went to the primary instead (metric reason), or null. */
  fallback: RouteReason | null;
}

/** Commands without a statement that change data: refused, like writes, while two servers are writable. */
const WRITING_COMMANDS = new Set<number>([Command.CREATE_DB, Command.DROP_DB, Command.STMT_EXECUTE]);

/** prepareLink already replied to the client: the command is over. */
const ANSWERED = Symbol('answered');

/** Route for commands that are not statements (PING, prepare, INIT_DB ...): the session's primary connection. */
const PRIMARY_COMMAND: RouteDecision = { target: { kind: 'primary' }, reason: 'not_a_read', detail: null };

/** Sends a statement on its way: `rule` is the rule it matched, `recording` whether its result will be stored. */
type SendRouted = (rule: CacheRule | null, recording: boolean) => void;

/** What a session loses with its old primary, by pin reason, for the client's error message. */
const LOST_STATE_NAMES: Record<string, string> = {
  temporary_table: 'temporary tables',
  lock_tables: 'table locks (LOCK TABLES)',
  get_lock: 'named locks (GET_LOCK)',
};

/** SHOW WARNINGS / ERRORS / COUNT(*) WARNINGS: about the previous statement, on its connection. */
const DIAGNOSTICS = /^SHOW\s+(?:WARNINGS|ERRORS|COUNT)\b/i;
/** `SET TRANSACTION ...` (no SESSION/GLOBAL): one transaction's characteristics, not session state. */
const NEXT_TRANSACTION_ONLY = /^SET\s+TRANSACTION\b/i;

/** A miss being recorded: the response bytes as they pass, until they exceed the plan's limit. */
interface Recording {
  ticket: MissTicket;
  pieces: Buffer[] | null;
  bytes: number;
  limit: number;
}

const writesData = (s: ClassifiedStatement) => s.tablesWritten === null || s.tablesWritten.length > 0;

/** The largest packet accepted before login: a handshake response with connection attributes fits easily. */
const PRE_LOGIN_MAX_PACKET = 64 * 1024;

/** Bytes of a write's reply held back for its invalidation before they are let through anyway. */
const HELD_OUTPUT_LIMIT = 64 * 1024;

/** Client bytes buffered while a command is in flight before the client socket is paused. */
const CLIENT_HIGH_WATER = 256 * 1024;

const enum PauseReason {
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
 */
export class ClientSession {
  private phase = Phase.Handshake;
  private readonly framer: PacketFramer;
  private readonly scanner = new ResponseScanner();
  private readonly scramble = generateScramble();
  private readonly out: Buffer[] = [];
  /** Capabilities the client negotiated with the proxy. */
  private capabilities = 0;
  private mariaDbCapabilities = 0;
  private handshake: HandshakeResponse | null = null;
  /** The connection the command in flight runs on (the primary between commands). */
  private backend: BackendConnection | null = null;
  /** Every backend connection of the session, by server name. */
  private readonly links = new Map<string, BackendLink>();
  /** The server this session's primary connection is (or will be) on. */
  private primaryServer = '';
  /** How the session logged in, to log in again on other servers. */
  private login: BackendLogin | null = null;
  /** SET / USE statements to replay on every connection the session opens. */
  private readonly stateLog = new StateLog();
  private readonly pins = new PrimaryPins();
  /** A write ran on the primary since the session last learnt its GTID. */
  private gtidPending = false;
  /** GTID of the session's last write (MariaDB @@last_gtid), once learnt. */
  private lastGtid: string | null = null;
  /** The command in flight, for retries and for what it changes in the session. */
  private inflight: Dispatch | null = null;
  /** The connection the previous statement ran on (SHOW WARNINGS goes there). */
  private lastServer = '';
  /** The statement in flight as statistics see it: its digest's row is updated when the command finishes. */
  private statStatement: ClassifiedStatement | null = null;
  private statCache: 'hit' | 'miss' | null = null;
  private statDestination: 'cache' | 'primary' | 'replica' = 'primary';
  /** Rows replayed from the cache (relayed rows are counted by the scanner). */
  private statCacheRows = -1;
  private statError = false;
  private clientPaused = 0;
  private backendPaused = false;
  private commandCode = 0;
  private commandStart = 0;
  /** Sequence id the next packet to the client must carry (for replies the proxy makes up mid-command). */
  private responseSeq = 0;
  private bytesForwarded = 0;
  private readonly statements = new Map<number, PreparedStatement>();
  private nextStatementId = 1;
  private closeWhenIdle = false;
  private handshakeTimer: NodeJS.Timeout | null = null;
  /** Runs while a client packet is partly received (net_read_timeout). */
  private readTimer: NodeJS.Timeout | null = null;
  /** Sequence id of the next packet to the client during login (the greeting was 0). */
  private authSeq = 1;
  /** performance.now() when the session last finished a command or logged in. */
  private lastActivity = performance.now();
  /** Status flags the backend reported last (IN_TRANS, AUTOCOMMIT): what proxy-made OKs must repeat. */
  private serverStatus = ServerStatus.AUTOCOMMIT;
  /** Schema, session variables and uncommitted writes, tracked for the cache (null when caching is off). */
  private state: SessionState | null = null;
  /** The statement in flight, classified (cache on only). */
  private statement: ClassifiedStatement | null = null;
  /** A COM_STMT_EXECUTE is in flight: its statement text has placeholders. */
  private statementBinary = false;
  private statusBefore = 0;
  /** Schema named by the COM_INIT_DB in flight. */
  private lastInitDb = '';
  private lastInitDbBytes: Buffer | null = null;
  private recording: Recording | null = null;
  /** Response bytes held back until a write's invalidation has reached shared storage. */
  private heldOutput: Buffer[] | null = null;
  private heldBytes = 0;

  user: UserConfig | null = null;
  readonly remoteAddress: string;
  readonly log: Logger;

  constructor(
    readonly id: number,
    private socket: net.Socket,
    private readonly ctx: SessionContext,
  ) {
    this.remoteAddress = (socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
    this.log = ctx.logger.child({ session: id, client: `${this.remoteAddress}:${socket.remotePort}` });
    // Until the client has logged in it may send only small packets: a stranger must not make the proxy buffer 64 MiB.
    this.framer = new PacketFramer(PRE_LOGIN_MAX_PACKET);
    socket.setNoDelay(true);
    this.listenTo(socket);
  }

  /** The client connection is TLS (after an SSLRequest). */
  private secure = false;
  /** The authentication plugin of the login exchange: proposed in the greeting, or switched to. */
  private authPlugin: string = NATIVE_PASSWORD_PLUGIN;

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
  private startTls(context: tls.SecureContext): void {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('drain');
    raw.pause();
    const early = this.framer.drainRaw();
    if (early.length > 0) raw.unshift(early);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    this.socket = secure;
    this.secure = true;
    this.listenTo(secure);
    secure.once('secure', () => this.log.debug({ protocol: secure.getProtocol(), cipher: secure.getCipher()?.name }, 'client TLS established'));
  }

  /** Backend threads this session uses now, by server (for KILL). */
  get backendThreads(): { endpoint: BackendEndpoint; threadId: number }[] {
    const out: { endpoint: BackendEndpoint; threadId: number }[] = [];
    for (const link of this.links.values()) if (!link.conn.closed) out.push({ endpoint: link.conn.endpoint, threadId: link.conn.threadId });
    return out;
  }

  /** Bytes read from and written to the client socket so far. */
  get clientBytes(): { received: number; sent: number } {
    return { received: this.socket.bytesRead, sent: this.socket.bytesWritten };
  }

  /** Each backend connection by server, and whether a command of this session runs on it now. */
  forEachBackend(visit: (server: string, active: boolean) => void): void {
    const running = this.busy ? this.backend : null;
    for (const link of this.links.values()) if (!link.conn.closed) visit(link.server, link.conn === running);
  }

  get busy(): boolean {
    return this.phase === Phase.Relaying || this.phase === Phase.Infile || this.phase === Phase.Working;
  }

  start(): void {
    const identity = this.ctx.identity();
    this.authPlugin = this.ctx.config().auth.defaultPlugin;
    const greeting = buildHandshakeV10({
      serverVersion: identity.serverVersion,
      connectionId: this.id,
      scramble: this.scramble,
      // TLS is offered when a certificate is configured.
      capabilities: this.ctx.tls ? (identity.capabilities | Capability.SSL) >>> 0 : identity.capabilities,
      mariaDbCapabilities: identity.mariaDbCapabilities,
      characterSet: identity.characterSet,
      status: ServerStatus.AUTOCOMMIT,
      authPluginName: this.authPlugin,
    });
    this.socket.write(encodePacket(greeting, 0));
    this.handshakeTimer = setTimeout(() => {
      this.sendErr(ErrorCode.HANDSHAKE, 'Bad handshake: login not completed in time', this.authSeq);
      this.close('handshake timeout');
    }, this.ctx.config().timeouts.clientHandshakeMs);
    this.handshakeTimer.unref();
  }

  /** Ends the session from outside (KILL, shutdown). */
  terminate(reason: string): void {
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

  /** Takes packets from the client while the session can act on them. */
  private pumping = false;

  private pump(): void {
    // Re-entered from becomeReady() while this loop runs: the running loop takes the next packet.
    if (this.pumping) return;
    this.pumping = true;
    try {
      this.pumpLoop();
    } finally {
      this.pumping = false;
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
          this.sendErr(ErrorCode.NET_PACKET_TOO_LARGE, "Got a packet bigger than 'max_allowed_packet' bytes", 1);
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
      try {
        switch (this.phase) {
          case Phase.Handshake:
            this.onHandshakeResponse(packet);
            break;
          case Phase.AuthSwitch:
            this.onAuthSwitchReply(packet);
            break;
          case Phase.Sha2FullAuth:
            this.onSha2FullAuth(packet);
            break;
          case Phase.Infile:
            this.onInfilePacket(packet);
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

  // ---------------------------------------------------------------- login

  private onHandshakeResponse(packet: Packet): void {
    this.authSeq = (packet.lastSeq + 1) & 0xff;
    if (packet.payload.length === SSL_REQUEST_LENGTH) {
      const context = this.ctx.tls;
      if (!context || this.secure) {
        this.sendErr(ErrorCode.HANDSHAKE, this.secure ? 'Bad handshake: TLS is already on' : 'Bad handshake: wirecache does not offer TLS on this listener', this.authSeq);
        this.close('client asked for TLS');
        return;
      }
      this.startTls(context);
      return;
    }
    if (!this.secure && this.ctx.config().tls?.requireTls) {
      this.sendErr(ErrorCode.SECURE_TRANSPORT_REQUIRED, 'Connections using insecure transport are prohibited while --require_secure_transport=ON.', this.authSeq);
      this.close('client did not use TLS, which is required');
      return;
    }
    let response: HandshakeResponse;
    try {
      response = parseHandshakeResponse(packet.payload);
    } catch (err) {
      this.sendErr(ErrorCode.HANDSHAKE, 'Bad handshake', this.authSeq);
      this.close(`malformed handshake response: ${(err as Error).message}`);
      return;
    }
    const identity = this.ctx.identity();
    // Only what the proxy announced: a client asking for more (compression, progress reports) does not get it.
    this.capabilities = response.capabilities & (identity.capabilities | Capability.CLIENT_MYSQL);
    this.mariaDbCapabilities = response.mariaDbCapabilities & identity.mariaDbCapabilities;
    this.handshake = response;
    // mysql_native_password is always accepted; caching_sha2_password when it is the default plugin.
    // Anything else is switched to the default plugin before the account is looked up, known or not,
    // as the server does: the reply must not tell them apart.
    const offered = response.capabilities & Capability.PLUGIN_AUTH ? response.authPluginName : null;
    const accepted = offered === null || offered === NATIVE_PASSWORD_PLUGIN ? NATIVE_PASSWORD_PLUGIN : offered === this.authPlugin ? offered : null;
    if (accepted === null) {
      this.phase = Phase.AuthSwitch;
      this.socket.write(encodePacket(buildAuthSwitchRequest(this.authPlugin, this.scramble), this.authSeq));
      return;
    }
    this.authPlugin = accepted;
    this.checkCredentials(response.authResponse);
  }

  private onAuthSwitchReply(packet: Packet): void {
    this.authSeq = (packet.lastSeq + 1) & 0xff;
    this.checkCredentials(packet.payload);
  }

  /** The client's first answer to the scramble, for the plugin in `authPlugin`. */
  private checkCredentials(token: Buffer): void {
    const name = this.handshake!.user;
    if (this.authPlugin === CACHING_SHA2_PLUGIN) {
      this.sha2Login(name, token);
      return;
    }
    const account = this.authenticate(name, token);
    if (!account) {
      this.denyAccess(name, token, this.authSeq);
      return;
    }
    this.ctx.observer.clientAuthenticated('native');
    this.finishLogin(account.user, account.passwordSha1, token);
  }

  /**
   * caching_sha2_password: fast authentication when the proxy knows the
   * account's SHA256 digest (a plain password in the config, or an earlier
   * full authentication); else full authentication, where the client sends
   * its password over TLS, or encrypted with the proxy's RSA public key.
   */
  private sha2Login(name: string, token: Buffer): void {
    const user = this.ctx.findUser(name);
    if (user?.emptyPassword) {
      if (isEmptyPasswordReply(token)) this.finishLogin(user, null, token);
      else this.denyAccess(name, token, this.authSeq);
      return;
    }
    const known = user ? (user.sha256Stage2 && user.passwordSha1 ? { sha256Stage2: user.sha256Stage2, passwordSha1: user.passwordSha1 } : this.ctx.sha2Credentials.lookup(user.name, user.passwordDoubleSha1)) : undefined;
    if (user && known && verifyFastAuth(token, this.scramble, known.sha256Stage2)) {
      this.writeAuthPacket(Buffer.from([0x01, Sha2Status.FastAuthSuccess]));
      this.ctx.observer.clientAuthenticated('sha2_fast');
      this.finishLogin(user, known.passwordSha1, token);
      return;
    }
    // Unknown users go through the same exchange: the answers must not tell them apart.
    this.phase = Phase.Sha2FullAuth;
    this.writeAuthPacket(Buffer.from([0x01, Sha2Status.PerformFullAuthentication]));
  }

  private onSha2FullAuth(packet: Packet): void {
    this.authSeq = (packet.lastSeq + 1) & 0xff;
    const name = this.handshake!.user;
    const payload = packet.payload;
    let password: Buffer;
    if (this.secure) {
      password = cleartextPassword(payload);
    } else if (payload.length === 1 && payload[0] === REQUEST_PUBLIC_KEY) {
      this.writeAuthPacket(Buffer.concat([Buffer.from([0x01]), this.ctx.rsaKeyPair().publicKeyPem]));
      return;
    } else {
      try {
        password = decryptPassword(payload, this.scramble, this.ctx.rsaKeyPair().privateKey);
      } catch (err) {
        this.log.info({ reason: (err as Error).message }, 'caching_sha2_password: the password could not be decrypted');
        this.denyAccess(name, Buffer.from([1]), this.authSeq);
        return;
      }
    }
    const user = this.ctx.findUser(name);
    if (!user || user.emptyPassword || !matchesNativeHash(password, user.passwordDoubleSha1)) {
      this.denyAccess(name, Buffer.from([1]), this.authSeq);
      return;
    }
    // Next time this user can use fast authentication.
    this.ctx.sha2Credentials.remember(user.name, user.passwordDoubleSha1, password);
    this.ctx.observer.clientAuthenticated(this.secure ? 'sha2_full_tls' : 'sha2_full_rsa');
    this.finishLogin(user, sha1Of(password), Buffer.from([1]));
  }

  /** A packet of the login exchange (auth-more-data), at the next sequence id. */
  private writeAuthPacket(payload: Buffer): void {
    this.socket.write(encodePacket(payload, this.authSeq));
    this.authSeq = (this.authSeq + 1) & 0xff;
  }

  /** The account is authenticated: checks what else may refuse it, then logs in to the primary. */
  private finishLogin(user: UserConfig, passwordSha1: Buffer | null, token: Buffer): void {
    const handshake = this.handshake!;
    if (user.requireTls && !this.secure) {
      // As the server answers an account created with REQUIRE SSL that logs in without it.
      this.denyAccess(handshake.user, token, this.authSeq);
      return;
    }
    this.ctx.loginSucceeded(this.remoteAddress);
    const limit = this.ctx.config().limits.maxUserConnections;
    if (limit > 0 && this.userSessions(user.name) >= limit) {
      this.ctx.observer.clientRefused('max_user_connections');
      this.sendErr(ErrorCode.TOO_MANY_USER_CONNECTIONS, `User ${user.name} already has more than 'max_user_connections' active connections`, this.authSeq);
      this.close(`user ${user.name} over max_user_connections`);
      return;
    }
    this.phase = Phase.Working;
    const login: BackendLogin = (this.login = {
      user: user.name,
      passwordSha1,
      database: handshake.database && handshake.database.length > 0 ? handshake.database : null,
      characterSet: handshake.characterSet,
      capabilities: this.capabilities,
      mariaDbCapabilities: this.mariaDbCapabilities,
      connectAttributes: this.backendAttributes(handshake.connectAttributes),
      tls: this.ctx.backendTls,
    });
    void this.openBackend(login).then(
      (conn) => {
        if (this.phase === Phase.Closed) {
          conn.quit();
          return;
        }
        if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
        this.handshakeTimer = null;
        this.user = user;
        this.usePrimary(conn);
        if (this.ctx.cache) this.state = new SessionState(asLatin1(login.database), login.characterSet);
        this.framer.limit = this.ctx.config().limits.maxPacketBytes;
        this.lastActivity = performance.now();
        this.socket.write(encodePacket(conn.loginOk, this.authSeq));
        this.log.debug({ user: user.name, backendThread: conn.threadId }, 'client logged in');
        this.becomeReady();
      },
      (err: Error) => {
        if (this.phase !== Phase.Closed) this.failBackendLogin(err, this.authSeq);
      },
    );
  }

  /**
   * The client's connection attributes plus `_wirecache_client`, the client's
   * real address, so a DBA sees it on the server. Sent even when the client
   * sent none; a value the client supplied under that name is dropped.
   */
  private backendAttributes(attrs: [string, string][] | null): [string, string][] {
    return [
      ...(attrs ?? []).filter(([key]) => key !== '_wirecache_client'),
      ['_wirecache_client', `${this.remoteAddress}:${this.socket.remotePort}`],
    ];
  }

  /** Logs in to the primary (at login and COM_CHANGE_USER). */
  private async openBackend(login: BackendLogin): Promise<BackendConnection> {
    // Two writable servers: log in to the configured primary; reads work, writes are refused per statement.
    const endpoint = this.ctx.selector.primary().endpoint ?? this.ctx.selector.configuredPrimary;
    const conn = await this.connectTo(endpoint, login);
    this.ctx.learnedBackend(conn);
    return conn;
  }

  private async connectTo(endpoint: BackendEndpoint, login: BackendLogin): Promise<BackendConnection> {
    try {
      return await BackendConnection.connect(endpoint, login, this.ctx.config().timeouts.backendConnectMs);
    } catch (err) {
      this.ctx.observer.backendConnectError(endpoint.name);
      throw err;
    }
  }

  /** A login (or COM_CHANGE_USER) the backend did not accept: the client sees the server's own error, or why it was unreachable. */
  private failBackendLogin(err: Error, seq: number): void {
    if (err instanceof BackendError && err.serverError) {
      // The server itself refused (unknown database, account differences).
      this.ctx.observer.authFailed('backend_refused');
      this.sendErr(err.serverError, err.serverError.message, seq);
    } else {
      this.ctx.observer.authFailed('backend_unavailable');
      this.sendErr(ErrorCode.CONN_HOST_ERROR, `wirecache: ${err.message}`, seq);
    }
    this.close(`backend login failed: ${err.message}`);
  }

  /** The configured account and the client's SHA1(password), if `token` answers this session's scramble for it. */
  private authenticate(userName: string, token: Buffer): { user: UserConfig; passwordSha1: Buffer | null } | null {
    const user = this.ctx.findUser(userName);
    if (!user) return null;
    const verdict = verifyNativePassword(token, this.scramble, user);
    return verdict.ok ? { user, passwordSha1: verdict.passwordSha1 } : null;
  }

  /** Logged-in sessions of `name` (this one not yet among them). */
  private userSessions(name: string): number {
    let n = 0;
    for (const s of this.ctx.sessions.values()) if (s !== this && s.user?.name === name) n++;
    return n;
  }

  /** The server's answer to an unknown user and to a wrong password alike, then the end of the session. */
  private denyAccess(userName: string, token: Buffer, seq: number): void {
    this.ctx.observer.authFailed('bad_credentials');
    this.ctx.loginFailed(this.remoteAddress);
    this.sendErr(
      ErrorCode.ACCESS_DENIED,
      `Access denied for user '${userName}'@'${this.remoteAddress}' (using password: ${token.length > 0 ? 'YES' : 'NO'})`,
      seq,
    );
    this.close(`access denied for '${userName}'`);
  }

  /** Makes `conn` the session's primary connection (login, COM_CHANGE_USER). */
  private usePrimary(conn: BackendConnection): void {
    this.primaryServer = conn.endpoint.name;
    this.addLink(conn);
    this.activate(conn);
  }

  /**
   * Makes `conn` the connection commands go to. Flow control taken on behalf
   * of the previous one ends with it: a client paused because that
   * connection's buffer was full (it may never drain: a dead replica whose
   * read was retried) reads again, and that connection, if it was paused
   * for a slow client, reads again too.
   */
  private activate(conn: BackendConnection): void {
    const previous = this.backend;
    this.backend = conn;
    if (previous === conn) return;
    if (this.backendPaused) previous?.resume();
    this.backendPaused = false;
    this.resumeClient(PauseReason.BackendFull);
  }

  private addLink(conn: BackendConnection): BackendLink {
    // A fresh login has run nothing of the state log yet.
    const link = newLink(conn, 0);
    this.links.set(link.server, link);
    conn.attach(
      (chunk) => this.onBackendData(conn, chunk),
      (err) => this.onBackendClosed(conn, err),
    );
    conn.socket.on('drain', () => this.resumeClient(PauseReason.BackendFull));
    return link;
  }

  /** Ends every backend connection of the session (COM_CHANGE_USER, close). */
  private dropAllLinks(destroyActive = false): void {
    for (const link of this.links.values()) {
      if (destroyActive && link.conn === this.backend) link.conn.destroy();
      else link.conn.quit();
    }
    this.links.clear();
  }

  private get primaryLink(): BackendLink | undefined {
    return this.links.get(this.primaryServer);
  }

  private becomeReady(): void {
    this.phase = Phase.Ready;
    if (this.closeWhenIdle) {
      this.close('closed after its last command');
      return;
    }
    this.pump();
  }

  // ---------------------------------------------------------------- commands

  private onCommand(packet: Packet): void {
    const payload = packet.payload;
    if (payload.length === 0) {
      this.sendErr(ErrorCode.UNKNOWN_COM, 'Unknown command', 1);
      this.close('empty command packet');
      return;
    }
    const code = payload[0];
    this.commandCode = code;
    this.commandStart = performance.now();
    this.responseSeq = (packet.lastSeq + 1) & 0xff;
    switch (code) {
      case Command.QUIT:
        this.close('client quit');
        return;
      case Command.QUERY: {
        const kill = startsWithKill(payload, 1) ? parseKillStatement(payload.toString('utf8', 1)) : null;
        if (!kill && payload.indexOf(0x3b, 1) >= 0 && mentionsKill(payload, 1) && batchContainsKill(payload.toString('utf8', 1))) {
          this.replyLocal(
            ErrorCode.NOT_SUPPORTED_YET,
            'KILL inside a multi-statement batch is not supported through wirecache; send it as a statement of its own',
          );
          return;
        }
        if (kill) {
          if (kill.kind === 'unsupported') this.replyLocal(ErrorCode.NOT_SUPPORTED_YET, kill.reason);
          else this.runLocal(() => this.kill(kill.id, kill.scope));
          return;
        }
        const cache = this.ctx.cache;
        if (!cache && !this.routing && !this.ctx.queryStats) {
          this.forward(packet, ResponseKind.Query);
          return;
        }
        // latin1 maps bytes to characters one to one: two different texts never share a key.
        const statement = classify(payload.toString('latin1', 1));
        this.statStatement = statement;
        const send = (rule: CacheRule | null, recording: boolean) =>
          this.route(statement, rule, recording, null, payload.subarray(1), () => this.sendToBackend(wireOf(packet), ResponseKind.Query));
        if (cache) this.runCacheable(cache, { statement, binary: false, params: '', refusal: null }, send);
        else send(null, false);
        return;
      }
      case Command.PROCESS_KILL:
        if (payload.length < 5) {
          this.replyLocal(ErrorCode.NET_READ_ERROR, 'Malformed COM_PROCESS_KILL packet');
          return;
        }
        this.runLocal(() => this.kill(payload.readUInt32LE(1), 'connection'));
        return;
      case Command.CHANGE_USER:
        this.runLocal(() => this.changeUser(payload));
        return;
      case Command.STMT_PREPARE: {
        const statement = this.ctx.cache || this.routing || this.ctx.queryStats ? classify(payload.toString('latin1', 1)) : null;
        const sql = Buffer.from(payload.subarray(1));
        this.scanner.onPrepareOk = (ok, info) => {
          const id = this.nextStatementId++;
          this.statements.set(id, { sql, statement, params: info.params, types: null, longData: false });
          this.links.get(this.backend!.endpoint.name)?.statements.set(id, { backendId: info.statementId, types: null });
          ok.writeUInt32LE(id, 1);
        };
        this.forward(packet, ResponseKind.Prepare);
        return;
      }
      case Command.STMT_EXECUTE:
        this.execute(packet);
        return;
      case Command.STMT_FETCH:
        this.forwardStatementCommand(packet, ResponseKind.Fetch, 'mysqld_stmt_fetch');
        return;
      case Command.STMT_RESET: {
        const stmt = this.statements.get(statementIdOf(payload));
        if (stmt) stmt.longData = false;
        this.forwardStatementCommand(packet, ResponseKind.Single, 'mysqld_stmt_reset');
        return;
      }
      case Command.STMT_SEND_LONG_DATA: {
        const stmt = this.statements.get(statementIdOf(payload));
        if (stmt) stmt.longData = true;
        this.forwardStatementCommand(packet, null, 'mysqld_stmt_send_long_data');
        return;
      }
      case Command.STMT_CLOSE:
        this.closeStatement(statementIdOf(payload));
        return;
      case Command.FIELD_LIST:
        this.forward(packet, ResponseKind.FieldList);
        return;
      case Command.PROCESS_INFO:
        this.forward(packet, ResponseKind.Query);
        return;
      case Command.INIT_DB:
        // latin1, like statement text: schema names compare byte for byte with the tables statements name.
        this.lastInitDb = payload.toString('latin1', 1);
        this.lastInitDbBytes = Buffer.from(payload.subarray(1));
        this.forward(packet, ResponseKind.Single);
        return;
      case Command.PING:
      case Command.STATISTICS:
      case Command.SET_OPTION:
      case Command.RESET_CONNECTION:
      case Command.REFRESH:
      case Command.DEBUG:
      case Command.CREATE_DB:
      case Command.DROP_DB:
        this.forward(packet, ResponseKind.Single);
        return;
      default:
        // Replication, shutdown, COM_MULTI, bulk execute and anything unknown: never sent to a backend.
        this.replyLocal(ErrorCode.UNKNOWN_COM, 'Unknown command');
        return;
    }
  }

  /** COM_STMT_EXECUTE: routed like its statement, keyed for the cache on the statement, parameter types and values. */
  private execute(packet: Packet): void {
    const payload = packet.payload;
    const id = statementIdOf(payload);
    const stmt = this.statements.get(id);
    if (!stmt || payload.length < 10) {
      // The server answers with its error; nothing to cache, route or invalidate.
      this.forwardStatementCommand(packet, ResponseKind.Query, 'mysqld_stmt_execute');
      return;
    }
    this.statStatement = stmt.statement;
    const cache = this.ctx.cache;
    if (!cache && !this.routing) {
      this.forwardStatementCommand(packet, ResponseKind.Query, 'mysqld_stmt_execute');
      return;
    }
    // Types are remembered for every execute (routing re-sends them to other connections); the
    // key string of values is built only when the cache needs it.
    const valuesAt = rememberParamTypes(stmt, payload);
    const cursor = payload[5] !== 0;
    const longData = stmt.longData;
    stmt.longData = false;
    const statement = stmt.statement;
    // A cursor's FETCHes and long data sent before go to the primary connection: so does the execute.
    const pinned = cursor || longData;
    const send = (rule: CacheRule | null, recording: boolean) => {
      if (!statement || !this.routing || pinned) {
        this.dispatchOrForward(null, PRIMARY_COMMAND, { id, stmt }, null, (link) => this.executeOn(link, packet, stmt, id));
        return;
      }
      this.route(statement, rule, recording, { id, stmt }, null, (link) => this.executeOn(link, packet, stmt, id));
    };
    if (!cache || !statement) {
      send(null, false);
      return;
    }
    const params = executeParams(stmt, payload, valuesAt);
    const refusal: RefusalReason | null = cursor ? 'cursor' : longData ? 'long_data' : params === null ? 'unknown_parameters' : null;
    // Writes go this way too, so that their invalidation is never skipped.
    this.runCacheable(cache, { statement, binary: true, params: params ?? '', refusal }, send);
  }

  /** Writes a COM_STMT_EXECUTE to `link` with that connection's statement id, spelling out parameter types it has not seen. */
  private executeOn(link: BackendLink, packet: Packet, stmt: PreparedStatement, id: number): void {
    const entry = link.statements.get(id)!;
    let bytes = wireOf(packet);
    if (stmt.params > 0 && stmt.types && entry.types !== stmt.types) {
      const payload = executeWithTypes(packet.payload, stmt.params, stmt.types);
      if (payload !== packet.payload) bytes = encodePacket(payload, packet.seq);
    }
    entry.types = stmt.types;
    bytes.writeUInt32LE(entry.backendId, 5);
    this.sendToBackend(bytes, ResponseKind.Query);
  }

  /** COM_STMT_CLOSE: closes the statement on every connection that has it (no reply, as from the server). */
  private closeStatement(id: number): void {
    if (this.statements.delete(id)) {
      for (const link of this.links.values()) {
        const entry = link.statements.get(id);
        if (!entry) continue;
        link.statements.delete(id);
        link.conn.closeStatement(entry.backendId);
      }
    }
    this.finishCommand();
  }

  // ---------------------------------------------------------------- routing

  /** Whether reads may go to replicas: a monitor watches more than one server. */
  private get routing(): boolean {
    return this.ctx.selector.monitored;
  }

  /** What keeps this session's next statement on the primary. */
  private currentPins(): { inTransaction: boolean; pinned: string | null } {
    const status = this.serverStatus;
    return {
      inTransaction: (status & ServerStatus.IN_TRANS) !== 0 || (status & ServerStatus.AUTOCOMMIT) === 0,
      pinned: this.pins.reason() ?? (this.stateLog.overflow ? 'session_state' : null),
    };
  }

  /**
   * Sends a statement where the router says. `recording`: the result will be
   * stored in the cache, so it is read from the primary (a lagging replica's
   * answer must not be kept for a whole TTL).
   */
  private route(
    statement: ClassifiedStatement,
    rule: CacheRule | null,
    recording: boolean,
    prepared: Dispatch['prepared'],
    stateSql: Buffer | null,
    write: (link: BackendLink) => void,
  ): void {
    if (!this.routing) {
      this.dispatchOrForward(statement, PRIMARY_COMMAND, prepared, stateSql, write);
      return;
    }
    let decision = decideRoute(statement, rule, this.currentPins());
    if (decision.target.kind !== 'primary') {
      if (recording) decision = { target: { kind: 'primary' }, reason: 'cache_fill', detail: null };
    }
    if (statement.type === 'show' && DIAGNOSTICS.test(statement.keyText) && this.links.has(this.lastServer)) {
      // Warnings belong to the connection that ran the previous statement.
      decision = { target: { kind: 'server', name: this.lastServer }, reason: 'diagnostics', detail: null };
    }
    const consistency = rule?.consistency ?? this.ctx.config().routing.consistency;
    this.dispatch({
      statement,
      decision,
      prepared,
      write,
      stateSql,
      tried: null,
      retryable: isRead(statement) && decision.target.kind !== 'primary',
      retried: false,
      consistency,
      forcePrimary: false,
      fallback: null,
    });
  }

  /** Without routing everything runs on the primary connection, as sent; with it, through dispatch. */
  private dispatchOrForward(
    statement: ClassifiedStatement | null,
    decision: RouteDecision,
    prepared: Dispatch['prepared'],
    stateSql: Buffer | null,
    write: (link: BackendLink) => void,
  ): void {
    const primary = this.primaryLink;
    if (!this.routing && primary) {
      // One server: the primary connection has every statement the client prepared.
      write(primary);
      return;
    }
    this.dispatch({ statement, decision, prepared, write, stateSql, tried: null, retryable: false, retried: false, consistency: 'eventual', forcePrimary: false, fallback: null });
  }

  /**
   * Picks the server for a command, makes sure this session's connection
   * there exists and is ready (session state replayed, the statement
   * prepared, the session's last write applied), then writes the command.
   * Synchronous when the connection is ready, which is the usual case.
   */
  private dispatch(d: Dispatch): void {
    this.inflight = d;
    const target = this.resolveTarget(d);
    if ('error' in target) {
      this.replyLocal(target.error, target.message);
      return;
    }
    const { endpoint, replica } = target;
    const link = this.links.get(endpoint.name);
    if (link && !link.conn.closed && this.linkReady(link, d, replica)) {
      this.sendOn(link, d, replica);
      return;
    }
    this.phase = Phase.Working;
    this.prepareLink(endpoint, link, d, replica).then(
      (ready) => {
        if (this.phase === Phase.Closed || ready === ANSWERED) return;
        if (ready) this.sendOn(ready, d, replica);
        else this.dispatch(d);
      },
      (err: Error) => {
        if (this.phase === Phase.Closed) return;
        if (err instanceof BackendError && !replica) {
          this.replyLocal(ErrorCode.CONN_HOST_ERROR, `wirecache: ${err.message}`);
          return;
        }
        this.failSession(err);
      },
    );
  }

  private resolveTarget(d: Dispatch): { endpoint: BackendEndpoint; replica: boolean } | { error: ErrorSpec; message: string } {
    const t = d.decision.target;
    const selector = this.ctx.selector;
    if (!d.forcePrimary && t.kind !== 'primary') {
      if (t.kind === 'server' && t.name === this.primaryServer) return this.primaryTarget(d);
      if (t.kind === 'server' && !d.tried?.has(t.name)) {
        const named = selector.server(t.name);
        if (named) return { endpoint: named, replica: true };
      }
      const replica = selector.pickReplica(d.tried);
      if (replica && replica.name !== this.primaryServer) return { endpoint: replica, replica: true };
      d.fallback ??= 'no_replica';
    }
    return this.primaryTarget(d);
  }

  /** The session's primary connection, following the monitor when the primary moved. */
  private primaryTarget(d: Dispatch): { endpoint: BackendEndpoint; replica: boolean } | { error: ErrorSpec; message: string } {
    const choice = this.ctx.selector.primary();
    const current = this.primaryLink;
    if (!choice.endpoint) {
      // Two writable servers: the proxy will not guess which one is the primary.
      // Reads, SET, BEGIN and ROLLBACK change no data; COMMIT would make a transaction's writes durable on a guess.
      const s = d.statement;
      const harmless = s !== null ? s.tablesWritten !== null && s.tablesWritten.length === 0 && s.type !== 'commit' : !WRITING_COMMANDS.has(this.commandCode);
      if (harmless && current && !current.conn.closed) return { endpoint: current.conn.endpoint, replica: false };
      this.ctx.observer.writeRefused('writable_conflict');
      return {
        error: ErrorCode.OPTION_PREVENTS_STATEMENT,
        message: `wirecache: refusing writes: ${choice.conflict.join(' and ')} are all writable (read_only=OFF); set read_only=ON on all but the primary`,
      };
    }
    if (choice.endpoint.name !== this.primaryServer) {
      const lost = this.followPrimary(choice.endpoint);
      if (lost) return lost;
    }
    return { endpoint: choice.endpoint, replica: false };
  }

  /**
   * The monitor found a new primary. The old primary connection goes; what it
   * held (an open transaction, temporary tables, locks) is gone with it, and
   * the client is told once instead of its statement running without it.
   */
  private followPrimary(next: BackendEndpoint): { error: ErrorSpec; message: string } | null {
    const from = this.primaryServer;
    const old = this.links.get(from);
    const pins = this.currentPins();
    // IN_TRANS also covers autocommit=0 once a statement has run since the last COMMIT.
    const hadTransaction = (this.serverStatus & ServerStatus.IN_TRANS) !== 0;
    const lostState = old !== undefined && !old.conn.closed ? (hadTransaction ? 'transaction' : pins.pinned) : null;
    if (old) {
      this.links.delete(from);
      old.conn.quit();
    }
    this.primaryServer = next.name;
    this.pins.reset();
    this.serverStatus = (this.serverStatus & ~ServerStatus.IN_TRANS) | ServerStatus.AUTOCOMMIT;
    this.log.warn({ from, to: next.name, lost: lostState }, 'primary moved; the session follows it');
    if (!lostState) return null;
    this.ctx.observer.primaryMoveInterrupted(lostState === 'transaction' ? 'transaction' : 'session_state');
    if (lostState === 'transaction') {
      return {
        error: ErrorCode.LOCK_DEADLOCK,
        message: `wirecache: the primary moved from ${from} to ${next.name} while this session had a transaction open on ${from}; it was rolled back there. Restart the transaction`,
      };
    }
    return {
      error: ErrorCode.CONNECTION_KILLED,
      message: `wirecache: the primary moved from ${from} to ${next.name}; this session's ${LOST_STATE_NAMES[lostState] ?? 'session state'} on ${from} are gone`,
    };
  }

  /** Whether `link` can take the command now, with nothing to run on it first. */
  private linkReady(link: BackendLink, d: Dispatch, replica: boolean): boolean {
    if (link.appliedState !== this.stateLog.latest) return false;
    if (d.prepared && !link.statements.has(d.prepared.id)) return false;
    if (!replica || d.consistency !== 'session') return true;
    // The session wrote since it last learnt its GTID: ask the primary first (prepareLink).
    if (this.gtidPending) return false;
    return this.lastGtid === null || link.coveredGtid === this.lastGtid || this.replicaCovers(link.server);
  }

  private replicaCovers(server: string): boolean {
    const position = this.ctx.selector.gtidPosition(server);
    return position !== null && this.lastGtid !== null && gtidCovers(position, this.lastGtid);
  }

  /**
   * Opens the connection if needed, replays the session's state on it,
   * prepares the statement there and, for a session-consistent read on a
   * replica, waits for the session's last write. Resolves with the link, or
   * null when this server cannot serve the command (the caller dispatches
   * again, excluding it or forcing the primary).
   */
  private async prepareLink(
    endpoint: BackendEndpoint,
    existing: BackendLink | undefined,
    d: Dispatch,
    replica: boolean,
  ): Promise<BackendLink | null | typeof ANSWERED> {
    const giveUp = (why: string): null => {
      this.log.info({ server: endpoint.name, why }, 'server cannot take this command; trying another');
      (d.tried ??= new Set()).add(endpoint.name);
      return null;
    };
    let link = existing && !existing.conn.closed ? existing : undefined;
    if (!link) {
      if (existing) this.links.delete(endpoint.name);
      let conn: BackendConnection;
      try {
        conn = await this.connectTo(endpoint, this.login!);
      } catch (err) {
        if (!replica) throw err;
        this.ctx.selector.suspect(endpoint.name);
        return giveUp((err as Error).message);
      }
      if (this.phase === Phase.Closed) {
        conn.quit();
        return ANSWERED;
      }
      if (!replica && endpoint.name === this.primaryServer) this.ctx.learnedBackend(conn);
      link = this.addLink(conn);
    }
    try {
      for (const sql of this.stateLog.pending(link.appliedState)) {
        const result = await link.conn.query(sql);
        if (result.error && replica) {
          this.dropLink(link);
          return giveUp(`replaying session state failed: ${result.error.message}`);
        }
        if (result.error) this.log.warn({ server: endpoint.name, error: result.error.message }, 'replaying session state on the new primary failed');
      }
      link.appliedState = this.stateLog.latest;
      if (d.prepared && !link.statements.has(d.prepared.id)) {
        const prepared = await link.conn.prepare(d.prepared.stmt.sql);
        if (prepared.error) {
          if (replica) return giveUp(`preparing the statement failed: ${prepared.error.message}`);
          this.replyLocal({ code: prepared.error.code, sqlState: prepared.error.sqlState }, prepared.error.message);
          return ANSWERED;
        }
        link.statements.set(d.prepared.id, { backendId: prepared.statementId, types: null });
      }
      if (replica && d.consistency === 'session' && !(await this.waitForSessionWrites(link))) {
        d.forcePrimary = true;
        d.fallback = 'consistency_timeout';
        return null;
      }
      return link;
    } catch (err) {
      if (!replica) throw err;
      this.dropLink(link);
      return giveUp((err as Error).message);
    }
  }

  /**
   * Read-your-writes: true once `link`'s replica has applied the session's last
   * write (learnt from the primary's @@last_gtid), waiting up to
   * routing.consistency_wait_ms with MASTER_GTID_WAIT.
   */
  private async waitForSessionWrites(link: BackendLink): Promise<boolean> {
    if (this.gtidPending) {
      const primary = this.primaryLink;
      if (!primary || primary.conn.closed) return false;
      const result = await primary.conn.query('SELECT @@last_gtid');
      if (result.error) return false;
      this.gtidPending = false;
      const gtid = result.rows[0]?.[0] ?? '';
      this.lastGtid = gtid === '' ? null : gtid;
    }
    const gtid = this.lastGtid;
    if (gtid === null) return true;
    if (link.coveredGtid === gtid || this.replicaCovers(link.server)) {
      this.ctx.observer.consistencyChecked('covered');
      return true;
    }
    if (!/^[0-9,-]+$/.test(gtid)) return false;
    const seconds = this.ctx.config().routing.consistencyWaitMs / 1000;
    const result = await link.conn.query(`SELECT MASTER_GTID_WAIT('${gtid}', ${seconds})`);
    const caughtUp = !result.error && result.rows[0]?.[0] === '0';
    this.ctx.observer.consistencyChecked(caughtUp ? 'waited' : 'timeout');
    if (caughtUp) link.coveredGtid = gtid;
    return caughtUp;
  }

  /** Writes the command on `link`, which becomes the connection in flight. */
  private sendOn(link: BackendLink, d: Dispatch, replica: boolean): void {
    this.activate(link.conn);
    this.statDestination = replica ? 'replica' : 'primary';
    if (this.routing) this.ctx.observer.statementRouted(replica ? 'replica' : 'primary', link.server, (!replica && d.fallback) || d.decision.reason);
    d.write(link);
  }

  /** Closes a connection the session no longer trusts. */
  private dropLink(link: BackendLink): void {
    if (this.links.get(link.server) === link) this.links.delete(link.server);
    link.conn.quit();
  }

  /**
   * The command in flight lost its replica before any byte reached the
   * client: a read runs once more on another server. Returns false when it may not.
   */
  private retryElsewhere(conn: BackendConnection, reason: string): boolean {
    const d = this.inflight;
    if (!d || !d.retryable || d.retried || this.bytesForwarded > 0 || this.phase !== Phase.Relaying || conn !== this.backend) return false;
    d.retried = true;
    (d.tried ??= new Set()).add(conn.endpoint.name);
    const link = this.links.get(conn.endpoint.name);
    if (link?.conn === conn) this.links.delete(conn.endpoint.name);
    this.ctx.selector.suspect(conn.endpoint.name);
    this.ctx.observer.readRetried(conn.endpoint.name);
    this.log.warn({ server: conn.endpoint.name, reason }, 'replica failed before answering; retrying the read on another server');
    this.dispatch(d);
    return true;
  }

  /** What a completed statement changed in the session: state to replay, pins, the need to learn its GTID. */
  private afterStatement(d: Dispatch, ok: boolean): void {
    const conn = this.backend;
    const statement = d.statement;
    if (!conn) return;
    this.lastServer = conn.endpoint.name;
    if (!statement || !ok || conn.endpoint.name !== this.primaryServer) return;
    this.pins.afterStatement(statement, this.state?.schema ?? null);
    if ((statement.type === 'set' && !statement.setsGlobal) || statement.type === 'use') {
      // SET TRANSACTION without SESSION applies to the next transaction only: nothing to replay.
      if (statement.multiStatement || NEXT_TRANSACTION_ONLY.test(statement.keyText)) return;
      if (d.stateSql === null) {
        // A SET prepared with placeholders cannot be replayed as text.
        this.pins.untrack('prepared_set');
        return;
      }
      this.stateLog.add(d.stateSql);
      const primary = this.primaryLink;
      if (primary) primary.appliedState = this.stateLog.latest;
      return;
    }
    if (!(isRead(statement) && statement.needsPrimary === null)) this.gtidPending = true;
  }

  // ---------------------------------------------------------------- the query cache

  /**
   * A COM_QUERY or COM_STMT_EXECUTE with the cache on: served from the cache,
   * or sent with `send` (and recorded when the plan says so).
   */
  private runCacheable(cache: QueryCache, command: CacheableCommand, send: SendRouted): void {
    const state = this.state!;
    const statement = command.statement;
    this.statement = statement;
    this.statementBinary = command.binary;
    this.statusBefore = this.serverStatus;
    // A write, or anything that may end a transaction, must not be acknowledged before other proxies see its invalidation.
    const mayEndTransaction = (this.serverStatus & ServerStatus.IN_TRANS) !== 0 && statement.type !== 'select' && statement.type !== 'show';
    const holdReply = cache.sharedInvalidation && (writesData(statement) || mayEndTransaction);
    const go: SendRouted = (rule, recording) => {
      if (holdReply) this.heldOutput = [];
      send(rule, recording);
    };
    const primary = this.primaryLink;
    if (!state.known && primary && !primary.conn.closed && statement.type === 'select' && !statement.multiStatement && cache.mayCache(statement)) {
      // What the session changed is unknown (after CALL, a reset, ...): read it back once, then decide.
      this.phase = Phase.Working;
      primary.conn.query(STATE_SNAPSHOT_SQL).then(
        (result) => {
          if (this.phase === Phase.Closed) return;
          if (result.rows[0]) state.setSnapshot(result.rows[0].map(asLatin1));
          else this.log.debug({ error: result.error?.message }, 'session state snapshot failed; not caching');
          this.lookup(cache, command, go);
        },
        (err: Error) => this.failSession(err),
      );
      return;
    }
    this.lookup(cache, command, go);
  }

  private lookup(cache: QueryCache, command: CacheableCommand, send: SendRouted): void {
    const state = this.state!;
    const plan = cache.decide(
      {
        statement: command.statement,
        binary: command.binary,
        metadataFlags: this.mariaDbCapabilities & MariaDbCapability.EXTENDED_TYPE_INFO,
        params: command.params,
        user: this.user!.name,
        schema: state.schema,
        stateKey: state.stateKey,
        clientAddress: this.remoteAddress,
        status: this.serverStatus,
      },
      command.refusal,
    );
    if (!plan.cache) {
      send(plan.rule, false);
      return;
    }
    const result = cache.lookup(plan);
    if (result instanceof Promise) {
      this.phase = Phase.Working;
      result.then(
        (r) => this.afterLookup(cache, plan, r, send),
        (err: Error) => this.failSession(err),
      );
    } else {
      this.afterLookup(cache, plan, result, send);
    }
  }

  private afterLookup(cache: QueryCache, plan: CachePlan, result: LookupResult, send: SendRouted): void {
    if (this.phase === Phase.Closed) {
      if (result.kind === 'miss') cache.abandon(result.ticket);
      return;
    }
    if (result.kind === 'hit') {
      this.statCache = 'hit';
      this.replay(result.entry);
      return;
    }
    if (result.kind === 'miss') this.statCache = 'miss';
    if (result.kind === 'miss') this.recording = { ticket: result.ticket, pieces: [], bytes: 0, limit: plan.maxResultBytes };
    send(plan.rule, result.kind === 'miss');
  }

  /** Sends a cached result, reframed for this client and its transaction state. */
  private replay(entry: CacheEntry): void {
    entry.replay ??= replayInfo(entry.wire, entry.deprecateEof);
    this.statDestination = 'cache';
    this.statCacheRows = entry.replay.rows;
    const bytes = replayResultWith(entry.wire, entry.deprecateEof, entry.replay, {
      deprecateEof: (this.capabilities & Capability.DEPRECATE_EOF) !== 0,
      firstSeq: this.responseSeq,
      status: this.serverStatus & SESSION_STATUS_MASK,
      statusMask: SESSION_STATUS_MASK,
      warnings: 0,
    });
    this.statement = null;
    if (!this.socket.write(bytes)) this.pauseClient(PauseReason.ClientFull);
    this.finishCommand();
  }

  /**
   * The response to a command seen by the cache is complete: record it, track
   * what it changed in the session, invalidate what it wrote. Returns a
   * promise when the client's next command must wait for shared invalidation.
   */
  private cacheAfterResponse(cache: QueryCache): Promise<void> | void {
    const statement = this.statement;
    const state = this.state!;
    this.statement = null;
    const failed = this.scanner.errorCode !== 0;
    const recording = this.recording;
    // With memcached, the session's next command waits until the entry is stored (bounded by the
    // memcached budget), so a client re-reading what it just read finds it.
    let storing: Promise<void> | undefined;
    if (recording) {
      this.recording = null;
      const wire = recording.pieces && !failed ? Buffer.concat(recording.pieces, recording.bytes) : null;
      if (failed) cache.refuse(recording.ticket, 'error');
      else {
        const stored = cache.complete(recording.ticket, wire, (this.backend!.capabilities & Capability.DEPRECATE_EOF) !== 0);
        if (stored instanceof Promise) storing = stored.catch((err: Error) => this.log.warn({ err }, 'storing a cache entry failed'));
      }
    }
    if (!statement) return storing;
    if (this.statementBinary && (statement.type === 'set' || statement.type === 'use')) state.markUnknown();
    else state.statementDone(statement, failed);
    const written = writesData(statement) ? this.qualify(statement.tablesWritten) : undefined;
    const invalidation = state.writeDone(written, statement, this.statusBefore, this.serverStatus, this.scanner.lastWarnings);
    const invalidating = this.invalidate(cache, invalidation);
    return storing && invalidating ? Promise.all([storing, invalidating]).then(() => undefined) : (storing ?? invalidating);
  }

  private qualify(tables: ClassifiedStatement['tablesWritten']): string[] | null {
    if (tables === null) return null;
    const schema = this.state?.schema?.toLowerCase() ?? '';
    return tables.map((t) => `${t.schema ?? schema}.${t.table}`);
  }

  private invalidate(cache: QueryCache, invalidation: Invalidation): Promise<void> | void {
    if (!invalidation) return;
    return cache.invalidate('everything' in invalidation ? null : invalidation.tables);
  }

  /** Writes response bytes held back for a write's invalidation. */
  private releaseHeldOutput(): void {
    const held = this.heldOutput;
    this.heldOutput = null;
    this.heldBytes = 0;
    if (!held) return;
    for (const piece of held) this.socket.write(piece);
  }

  /** Commands that name a prepared statement: the proxy's id is swapped for the backend's. Returns the proxy id, or null if unknown. */
  private forwardStatementCommand(packet: Packet, kind: ResponseKind | null, what: string): void {
    const proxyId = statementIdOf(packet.payload);
    const stmt = this.statements.get(proxyId);
    if (!stmt) {
      // No response is expected for SEND_LONG_DATA; the server ignores unknown ids there too.
      if (kind === null) this.finishCommand();
      else this.replyLocal(ErrorCode.UNKNOWN_STMT_HANDLER, `Unknown prepared statement handler (${proxyId}) given to ${what}`);
      return;
    }
    this.dispatchOrForward(null, PRIMARY_COMMAND, { id: proxyId, stmt }, null, (link) => {
      const bytes = wireOf(packet);
      bytes.writeUInt32LE(link.statements.get(proxyId)!.backendId, 5);
      this.sendToBackend(bytes, kind);
    });
  }

  /** A command for the session's primary connection, as the client sent it. */
  private forward(packet: Packet, kind: ResponseKind): void {
    if (this.routing) this.dispatchOrForward(null, PRIMARY_COMMAND, null, null, () => this.sendToBackend(wireOf(packet), kind));
    else this.sendToBackend(wireOf(packet), kind);
  }

  /** Writes a command to the backend; `kind` null means the command has no response. */
  private sendToBackend(bytes: Buffer, kind: ResponseKind | null): void {
    const backend = this.backend;
    if (!backend || backend.closed) {
      this.replyLocal(ErrorCode.SERVER_LOST, 'wirecache: lost connection to the backend; reconnect');
      this.close('command without a backend connection');
      return;
    }
    if (kind !== null) {
      this.scanner.begin(kind, (backend.capabilities & Capability.DEPRECATE_EOF) !== 0);
      this.phase = Phase.Relaying;
      this.bytesForwarded = 0;
    }
    if (!backend.write(bytes)) this.pauseClient(PauseReason.BackendFull);
    if (kind === null) this.finishCommand();
  }

  /** A reply the proxy makes itself, without a backend. */
  private replyLocal(spec: { code: number; sqlState: string }, message: string): void {
    this.statError = true;
    this.sendErr(spec, message, this.responseSeq);
    this.finishCommand();
  }

  /** Runs a command the proxy answers itself (KILL, CHANGE_USER) while holding the session busy. */
  private runLocal(task: () => Promise<void>): void {
    this.phase = Phase.Working;
    task().then(
      () => {
        if (this.phase !== Phase.Closed) this.finishCommand();
      },
      (err: Error) => this.failSession(err),
    );
  }

  private finishCommand(): void {
    this.inflight = null;
    if (this.recording) {
      // The command ended without a response to record (a reply the proxy made itself).
      this.ctx.cache?.abandon(this.recording.ticket);
      this.recording = null;
    }
    this.statement = null;
    const now = performance.now();
    this.lastActivity = now;
    const seconds = (now - this.commandStart) / 1000;
    this.ctx.observer.commandCompleted(commandName(this.commandCode), seconds);
    const statement = this.statStatement;
    if (statement) this.recordStatement(statement, seconds);
    this.becomeReady();
  }

  /** One statement done: its route's latency histogram and its digest's statistics. */
  private recordStatement(statement: ClassifiedStatement, seconds: number): void {
    const destination = this.statDestination;
    this.ctx.observer.statementCompleted(destination, seconds);
    this.ctx.queryStats?.record({
      digest: statement.digestText,
      seconds,
      rows: destination === 'cache' ? this.statCacheRows : this.scanner.rows,
      cache: this.statCache,
      destination,
      error: this.statError,
    });
    this.statStatement = null;
    this.statCache = null;
    this.statDestination = 'primary';
    this.statCacheRows = -1;
    this.statError = false;
  }

  // ---------------------------------------------------------------- relaying responses

  private onBackendData(conn: BackendConnection, chunk: Buffer): void {
    if (this.phase === Phase.Closed) return;
    if (conn !== this.backend || this.phase !== Phase.Relaying) {
      this.onUnsolicited(conn, chunk);
      return;
    }
    const out = this.out;
    out.length = 0;
    let result: ScanResult;
    try {
      result = this.scanner.feed(chunk, out);
    } catch (err) {
      this.failSession(err as Error);
      return;
    }
    const recording = this.recording;
    const held = this.heldOutput;
    for (const piece of out) {
      this.bytesForwarded += piece.length;
      if (recording?.pieces) {
        if (recording.bytes + piece.length <= recording.limit) {
          recording.pieces.push(piece);
          recording.bytes += piece.length;
        } else {
          // Over the limit: the client still gets every byte; only the recording is dropped.
          recording.pieces = null;
        }
      }
      if (held) {
        held.push(piece);
        this.heldBytes += piece.length;
        // A write's reply is a few bytes; a big one (INSERT ... RETURNING) is let through rather than buffered.
        if (this.heldBytes > HELD_OUTPUT_LIMIT) this.releaseHeldOutput();
      } else if (!this.socket.write(piece) && !this.backendPaused) {
        this.backendPaused = true;
        conn.pause();
      }
    }
    if (result === ScanResult.NeedMore) return;
    if (result === ScanResult.LocalInfile) {
      this.releaseHeldOutput();
      this.phase = Phase.Infile;
      this.pump();
      return;
    }
    this.onResponseComplete();
    if (this.scanner.consumed < chunk.length) this.onUnsolicited(conn, chunk.subarray(this.scanner.consumed));
  }

  private onResponseComplete(): void {
    this.scanner.onPrepareOk = null;
    // Status 0 is a real answer (autocommit off, no transaction): only a response without a terminator keeps the old flags.
    if (this.scanner.statusSeen) this.serverStatus = this.scanner.lastStatus & ~ServerStatus.MORE_RESULTS_EXISTS;
    const ok = this.scanner.errorCode === 0;
    this.statError = !ok;
    const dispatched = this.inflight;
    this.inflight = null;
    if (dispatched) this.afterStatement(dispatched, ok);
    if (this.commandCode === Command.RESET_CONNECTION && ok) {
      // The server dropped every prepared statement of the session, and rolled back its transaction.
      this.statements.clear();
      this.state?.connectionReset();
      this.afterReset();
    }
    if (this.commandCode === Command.INIT_DB && ok && this.lastInitDbBytes && this.routing) this.logState(useStatementFor(this.lastInitDbBytes));
    const cache = this.ctx.cache;
    if (cache && this.state) {
      if (this.commandCode === Command.INIT_DB && ok) this.state.initDb(this.lastInitDb);
      if (this.commandCode === Command.DROP_DB || this.commandCode === Command.CREATE_DB) {
        // The old commands for DROP/CREATE DATABASE: everything in the schema may be gone, and the session's schema with it.
        this.state.markUnknown();
        const dropped = this.commandCode === Command.DROP_DB ? cache.invalidate(null) : undefined;
        if (dropped) dropped.catch(() => undefined);
      }
      const pending = this.cacheAfterResponse(cache);
      if (pending) {
        this.phase = Phase.Working;
        pending.then(
          () => {
            if (this.phase === Phase.Closed) return;
            this.releaseHeldOutput();
            this.finishCommand();
          },
          (err: Error) => this.failSession(err),
        );
        return;
      }
      this.releaseHeldOutput();
    }
    this.finishCommand();
  }

  /** The session's primary connection was reset: other connections hold state it no longer has. */
  private afterReset(): void {
    for (const link of [...this.links.values()]) {
      if (link.server === this.primaryServer) link.statements.clear();
      else this.dropLink(link);
    }
    this.stateLog.clear();
    this.pins.reset();
  }

  /** A SET/USE that succeeded on the primary connection: other connections run it before their next command. */
  private logState(sql: Buffer): void {
    this.stateLog.add(sql);
    const primary = this.primaryLink;
    if (primary) primary.appliedState = this.stateLog.latest;
  }

  /** The primary connection holds something a new connection would not have. */
  private holdsPrimaryState(): boolean {
    const pins = this.currentPins();
    return pins.inTransaction || pins.pinned !== null;
  }

  /** Client packets of a LOCAL INFILE transfer go to the backend as they are; an empty packet ends the file. */
  private onInfilePacket(packet: Packet): void {
    const backend = this.backend;
    if (!backend) return;
    this.responseSeq = (packet.lastSeq + 1) & 0xff;
    if (!backend.write(packet.wire ?? encodePacket(packet.payload, packet.seq))) this.pauseClient(PauseReason.BackendFull);
    if (packet.payload.length === 0) {
      this.scanner.resumeAfterInfile();
      this.phase = Phase.Relaying;
    }
  }

  /**
   * Bytes from a backend connection while no command of the session runs on
   * it: a kill or shutdown notice. A replica connection, or a primary one
   * holding nothing, is dropped and reopened when needed; otherwise the
   * notice goes to the client and the session ends, as it would on the server.
   */
  private onUnsolicited(conn: BackendConnection, bytes: Buffer): void {
    const primary = conn.endpoint.name === this.primaryServer;
    const replaceable = this.routing && !(primary && this.holdsPrimaryState());
    if (replaceable || (conn !== this.backend && this.busy)) {
      this.log.info({ server: conn.endpoint.name, bytes: bytes.length }, 'backend connection sent data outside a command; dropping it');
      const link = this.links.get(conn.endpoint.name);
      if (link?.conn === conn) this.dropLink(link);
      else conn.quit();
      if (!replaceable) this.closeAfterCurrentCommand('the primary connection ended');
      return;
    }
    this.log.warn({ bytes: bytes.length, first: bytes[4] }, 'backend sent data outside a command; closing the session');
    this.socket.write(bytes);
    this.close('backend ended the session');
  }

  private onBackendClosed(conn: BackendConnection, err: Error | null): void {
    if (this.phase === Phase.Closed) return;
    const link = this.links.get(conn.endpoint.name);
    if (link?.conn === conn) this.links.delete(conn.endpoint.name);
    const reason = err ? err.message : 'connection closed';
    const active = conn === this.backend && (this.phase === Phase.Relaying || this.phase === Phase.Infile);
    if (active && this.retryElsewhere(conn, reason)) return;
    const primary = conn.endpoint.name === this.primaryServer;
    if (!active && conn !== this.backend && !primary) return;
    if (!active && this.routing && !(primary && this.holdsPrimaryState()) && this.phase !== Phase.Working) {
      // Nothing of the session's lives only there: the next command opens a new connection.
      this.log.info({ backend: conn.endpoint.name, reason }, 'idle backend connection lost; it is reopened when needed');
      return;
    }
    const where = `${conn.endpoint.name} (${conn.endpoint.host}:${conn.endpoint.port})`;
    this.log.warn({ backend: conn.endpoint.name, reason }, 'backend connection lost');
    if (active && !primary && this.bytesForwarded === 0 && this.phase === Phase.Relaying) {
      // A replica read that may not be retried: this command fails, the session (its state is on the primary) goes on.
      this.inflight = null;
      this.replyLocal(ErrorCode.SERVER_LOST, `Lost connection to backend ${where} during query: ${reason}`);
      return;
    }
    if (this.phase === Phase.Relaying && this.bytesForwarded > 0) {
      // Part of a result already reached the client: nothing valid can follow it.
      this.close(`backend lost mid-response: ${reason}`);
      return;
    }
    const inCommand = this.phase === Phase.Relaying || this.phase === Phase.Infile || this.phase === Phase.Working;
    const seq = inCommand ? this.responseSeq : 0;
    const during = this.phase === Phase.Relaying || this.phase === Phase.Infile ? ' during query' : '';
    this.sendErr(ErrorCode.SERVER_LOST, `Lost connection to backend ${where}${during}: ${reason}`, seq);
    this.close(`backend lost: ${reason}`);
  }

  // ---------------------------------------------------------------- flow control

  private onClientDrain(): void {
    this.resumeClient(PauseReason.ClientFull);
    if (this.backendPaused) {
      this.backendPaused = false;
      this.backend?.resume();
    }
  }

  private pauseClient(reason: PauseReason): void {
    if (this.clientPaused === 0) this.socket.pause();
    this.clientPaused |= reason;
  }

  private resumeClient(reason: PauseReason): void {
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
      this.log.info({ idleSeconds: Math.round(idleMs / 1000) }, 'closing idle session');
      this.close('idle timeout');
    }
  }

  // ---------------------------------------------------------------- commands the proxy answers

  private async kill(targetId: number, scope: 'connection' | 'query'): Promise<void> {
    // The id from the handshake, or (as applications read it from CONNECTION_ID()) a backend thread id.
    const target =
      this.ctx.sessions.get(targetId) ?? [...this.ctx.sessions.values()].find((s) => s.backendThreads.some((t) => t.threadId === targetId));
    if (!target) {
      this.sendErr(ErrorCode.NO_SUCH_THREAD, `Unknown thread id: ${targetId}`, this.responseSeq);
      return;
    }
    if (!target.user || target.user.name !== this.user?.name) {
      this.sendErr(ErrorCode.KILL_DENIED, `You are not owner of thread ${targetId}`, this.responseSeq);
      return;
    }
    if (target === this) {
      if (scope === 'connection') {
        this.sendErr({ code: 1927, sqlState: '70100' }, 'Connection was killed', this.responseSeq);
        this.close('killed itself');
        return;
      }
      this.sendOk();
      return;
    }
    const threads = target.backendThreads;
    for (const { endpoint, threadId } of threads) {
      const result = await this.runOn(endpoint, `KILL ${scope === 'query' ? 'QUERY ' : ''}${threadId}`);
      // The backend thread may have ended between the lookup and the KILL: that is success for the client.
      if (result.error && result.error.code !== ErrorCode.NO_SUCH_THREAD.code) {
        this.sendErr(result.error, result.error.message, this.responseSeq);
        return;
      }
    }
    if (scope === 'connection') {
      // The killed backend closes the target's session with the server's own error; this is the fallback.
      if (threads.length === 0) target.terminate(`killed by session ${this.id}`);
      else setTimeout(() => target.terminate(`killed by session ${this.id}`), 1000).unref();
    }
    this.sendOk();
  }

  /** Runs an internal statement on `endpoint` over this session's connection there, or a short-lived one. */
  private async runOn(endpoint: BackendEndpoint, sql: string): Promise<InternalResult> {
    const link = this.links.get(endpoint.name);
    if (link && !link.conn.closed) return link.conn.query(sql);
    const conn = await this.connectTo(endpoint, this.login!);
    try {
      return await conn.query(sql);
    } finally {
      conn.quit();
    }
  }

  private async changeUser(payload: Buffer): Promise<void> {
    const request = parseChangeUser(payload, this.capabilities);
    let token = request.authResponse;
    let seq = this.responseSeq;
    if (request.authPluginName && request.authPluginName !== NATIVE_PASSWORD_PLUGIN) {
      this.socket.write(encodePacket(buildAuthSwitchRequest(NATIVE_PASSWORD_PLUGIN, this.scramble), seq));
      const reply = await this.readClientPacket();
      token = reply.payload;
      seq = (reply.lastSeq + 1) & 0xff;
    }
    const account = this.authenticate(request.user, token);
    if (!account || (account.user.requireTls && !this.secure)) {
      this.denyAccess(request.user, token, seq);
      return;
    }
    const { user, passwordSha1 } = account;
    // A fresh backend login gives exactly the reset that COM_CHANGE_USER promises.
    this.backend = null;
    this.dropAllLinks();
    this.statements.clear();
    this.stateLog.clear();
    this.pins.reset();
    // The server rolls the old session's transaction back.
    this.state?.abandonTransaction(false);
    const conn = await this.openBackend((this.login = {
      user: user.name,
      passwordSha1,
      database: request.database.length > 0 ? request.database : null,
      characterSet: request.characterSet ?? this.handshake!.characterSet,
      capabilities: this.capabilities,
      mariaDbCapabilities: this.mariaDbCapabilities,
      connectAttributes: this.backendAttributes(request.connectAttributes),
      tls: this.ctx.backendTls,
    })).catch((err: Error) => err);
    if (conn instanceof Error) {
      this.failBackendLogin(conn, seq);
      return;
    }
    if (this.phase === Phase.Closed) {
      conn.quit();
      return;
    }
    if (request.characterSet !== null && request.characterSet > 0xff) {
      const failure = await this.applyCollation(conn, request.characterSet);
      if (failure) {
        conn.quit();
        this.sendErr(failure, failure.message, seq);
        this.close(`COM_CHANGE_USER: collation ${request.characterSet} not applied`);
        return;
      }
    }
    this.user = user;
    this.usePrimary(conn);
    const primary = this.primaryLink;
    if (primary) primary.appliedState = this.stateLog.latest;
    this.state?.reset(request.database.length > 0 ? asLatin1(request.database) : null, request.characterSet ?? this.handshake!.characterSet);
    this.socket.write(encodePacket(conn.loginOk, seq));
  }

  /**
   * COM_CHANGE_USER carries a two-byte collation id, the handshake to the
   * backend only one: a larger id is applied with SET NAMES after login.
   * Returns the server's error, if any.
   */
  private async applyCollation(conn: BackendConnection, collationId: number): Promise<{ code: number; sqlState: string; message: string } | null> {
    const lookup = await conn.query(`SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS WHERE ID = ${collationId | 0}`);
    if (lookup.error) return lookup.error;
    const row = lookup.rows[0];
    if (!row || !row[0] || !row[1]) return { ...ErrorCode.UNKNOWN_COLLATION, message: `Unknown collation: '${collationId}'` };
    const sql = `SET NAMES '${row[0]}' COLLATE '${row[1]}'`;
    const set = await conn.query(sql);
    // Every other connection the session opens must use the same collation.
    if (!set.error) this.stateLog.add(Buffer.from(sql));
    return set.error;
  }

  /** Waits for the client's next packet while the proxy itself drives the exchange (auth switch in COM_CHANGE_USER). */
  private readClientPacket(): Promise<Packet> {
    return new Promise((resolve, reject) => {
      // The client owes one small packet: it gets the login time limit, not forever.
      const timer = setTimeout(() => {
        cleanup();
        reject(new ProtocolError('client did not answer the authentication switch in time'));
      }, this.ctx.config().timeouts.clientHandshakeMs);
      const check = () => {
        if (this.phase === Phase.Closed) {
          cleanup();
          reject(new Error('client closed during COM_CHANGE_USER'));
          return;
        }
        let p: Packet | null;
        try {
          p = this.framer.next();
        } catch (err) {
          cleanup();
          reject(err as Error);
          return;
        }
        if (p) {
          cleanup();
          resolve(p);
        }
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.socket.off('data', check);
        this.socket.off('close', check);
      };
      this.socket.on('data', check);
      this.socket.on('close', check);
      check();
    });
  }

  // ---------------------------------------------------------------- output and teardown

  private sendOk(): void {
    this.socket.write(encodePacket(buildOk({ status: this.serverStatus }), this.responseSeq));
  }

  private sendErr(spec: { code: number; sqlState: string }, message: string, seq: number): void {
    // After end() a write would make Node destroy the socket and drop what is still queued.
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.socket.write(encodePacket(buildErr(spec, message), seq));
  }

  /** An unexpected failure inside the session: tell the client, close this one connection only. */
  private failSession(err: Error): void {
    if (this.phase === Phase.Closed) return;
    const malformed = err instanceof ProtocolError;
    // Malformed input from a client is the client's problem, not a proxy fault: no stack trace at error level.
    if (malformed) this.log.info({ reason: err.message }, 'malformed packet; closing the session');
    else this.log.error({ err }, 'session failed');
    if (this.phase !== Phase.Relaying || this.bytesForwarded === 0) {
      if (err instanceof PacketTooLargeError) this.sendErr(ErrorCode.NET_PACKET_TOO_LARGE, "Got a packet bigger than 'max_allowed_packet' bytes", this.responseSeq);
      else if (malformed) this.sendErr(ErrorCode.MALFORMED_PACKET, `Malformed communication packet: ${err.message}`, this.responseSeq);
      else this.sendErr(ErrorCode.NEW_ABORTING_CONNECTION, `wirecache: aborted session ${this.id}: ${err.message}`, this.responseSeq);
    }
    this.close(`session error: ${err.message}`);
  }

  close(reason: string): void {
    if (this.phase === Phase.Closed) return;
    this.phase = Phase.Closed;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.readTimer) clearTimeout(this.readTimer);
    this.log.debug({ reason }, 'session closed');
    const cache = this.ctx.cache;
    if (cache) {
      if (this.recording) cache.abandon(this.recording.ticket);
      this.recording = null;
      // A COMMIT in flight may have run: flush its writes rather than risk stale entries.
      const invalidation = this.state?.abandonTransaction(this.scanner.active) ?? null;
      const pending = this.invalidate(cache, invalidation);
      if (pending) pending.catch(() => undefined);
    }
    // A connection with a command in flight is cut: COM_QUIT would wait behind the command.
    this.dropAllLinks(this.scanner.active);
    this.backend = null;
    this.socket.end();
    // A client that stops reading must not keep the socket (and its buffers) alive.
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.ctx.removed(this);
  }
}

/**
 * Reads a COM_STMT_EXECUTE's parameter types when it sends them (later
 * executes may omit them) and returns where the values start, or -1 when
 * the packet is too short or no types are known.
 */
function rememberParamTypes(stmt: PreparedStatement, payload: Buffer): number {
  const n = stmt.params;
  if (n === 0) return payload.length;
  const boundAt = 10 + ((n + 7) >> 3);
  if (payload.length <= boundAt) return -1;
  let valuesAt = boundAt + 1;
  if (payload[boundAt] === 1) {
    if (payload.length < valuesAt + 2 * n) return -1;
    stmt.types = Buffer.from(payload.subarray(valuesAt, valuesAt + 2 * n));
    valuesAt += 2 * n;
  }
  return stmt.types ? valuesAt : -1;
}

/**
 * The cache-key part of a COM_STMT_EXECUTE: parameter types (sent now or
 * remembered from an earlier execute), NULL bitmap and values, as latin1
 * text. Null when they cannot be read (`valuesAt` -1).
 */
function executeParams(stmt: PreparedStatement, payload: Buffer, valuesAt: number): string | null {
  if (stmt.params === 0) return '';
  if (valuesAt < 0) return null;
  const boundAt = 10 + ((stmt.params + 7) >> 3);
  return `${stmt.types!.toString('latin1')}\u0001${payload.toString('latin1', 10, boundAt)}\u0001${payload.toString('latin1', valuesAt)}`;
}

/** A name decoded as UTF-8 (handshake, internal queries) re-read as latin1, the way statement text is decoded for the cache. */
function asLatin1(name: string | null): string | null {
  return name === null ? null : Buffer.from(name, 'utf8').toString('latin1');
}

/** A client packet's bytes as they arrived (header included), to send on unchanged. */
function wireOf(packet: Packet): Buffer {
  return packet.wire ?? encodePacket(packet.payload, packet.seq);
}

/** The statement id a COM_STMT_* packet names (the proxy's id), or -1 when the packet is too short to hold one. */
function statementIdOf(payload: Buffer): number {
  return payload.length >= 5 ? payload.readUInt32LE(1) : -1;
}
