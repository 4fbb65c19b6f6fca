/**
 * A client's login to the proxy: the greeting, an optional switch to TLS,
 * mysql_native_password or caching_sha2_password (fast or full
 * authentication) against the proxy's accounts, the checks that may still
 * refuse the account, then the backend login as the same user.
 */
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
} from '../auth/caching_sha2_password.js';
import type { BackendEndpoint, UserConfig } from '../config/types.js';
import { Capability, ErrorCode, NATIVE_PASSWORD_PLUGIN, ServerStatus } from '../protocol/constants.js';
import { encodePacket, type Packet } from '../protocol/framing.js';
import {
  buildAuthSwitchRequest,
  buildHandshakeV10,
  parseHandshakeResponse,
  SSL_REQUEST_LENGTH,
  type HandshakeResponse,
} from '../protocol/handshake.js';
import { BackendError, type BackendConnection, type BackendLogin } from '../backend/backend_connection.js';
import { Phase, type ClientSession } from './client_session.js';

export class SessionLogin {
  readonly scramble = generateScramble();
  handshake: HandshakeResponse | null = null;
  /** Sequence id of the next packet to the client during login (the greeting was 0). */
  private authSeq = 1;
  /** The authentication plugin of the login exchange: proposed in the greeting, or switched to. */
  private authPlugin: string = NATIVE_PASSWORD_PLUGIN;
  /** The client connection is TLS (after an SSLRequest). */
  secure = false;

  constructor(private readonly s: ClientSession) {}

  /** The greeting: the primary's identity, this session's scramble and the default plugin. */
  greet(): void {
    const s = this.s;
    const identity = s.ctx.identity();
    this.authPlugin = s.ctx.config().auth.defaultPlugin;
    const greeting = buildHandshakeV10({
      serverVersion: identity.serverVersion,
      connectionId: s.id,
      scramble: this.scramble,
      // TLS is offered when a certificate is configured.
      capabilities: s.ctx.tls ? (identity.capabilities | Capability.SSL) >>> 0 : identity.capabilities,
      mariaDbCapabilities: identity.mariaDbCapabilities,
      characterSet: identity.characterSet,
      status: ServerStatus.AUTOCOMMIT,
      authPluginName: this.authPlugin,
    });
    s.writeToClient(encodePacket(greeting, 0));
  }

  /** A client packet during login. */
  onPacket(packet: Packet): void {
    this.authSeq = (packet.lastSeq + 1) & 0xff;
    switch (this.s.phase) {
      case Phase.Handshake:
        this.onHandshakeResponse(packet);
        break;
      case Phase.AuthSwitch:
        this.checkCredentials(packet.payload);
        break;
      case Phase.Sha2FullAuth:
        this.onSha2FullAuth(packet);
        break;
    }
  }

  /** Refuses the login with `spec` at the login's sequence id, then closes. */
  refuse(spec: { code: number; sqlState: string }, message: string, reason: string): void {
    this.s.sendErr(spec, message, this.authSeq);
    this.s.close(reason);
  }

  private onHandshakeResponse(packet: Packet): void {
    const s = this.s;
    if (packet.payload.length === SSL_REQUEST_LENGTH) {
      const context = s.ctx.tls;
      if (!context || this.secure) {
        this.refuse(ErrorCode.HANDSHAKE, this.secure ? 'Bad handshake: TLS is already on' : 'Bad handshake: wirecache does not offer TLS on this listener', 'client asked for TLS');
        return;
      }
      this.secure = true;
      s.startTls(context);
      return;
    }
    if (!this.secure && s.ctx.config().tls?.requireTls) {
      this.refuse(ErrorCode.SECURE_TRANSPORT_REQUIRED, 'Connections using insecure transport are prohibited while --require_secure_transport=ON.', 'client did not use TLS, which is required');
      return;
    }
    let response: HandshakeResponse;
    try {
      response = parseHandshakeResponse(packet.payload);
    } catch (err) {
      this.refuse(ErrorCode.HANDSHAKE, 'Bad handshake', `malformed handshake response: ${(err as Error).message}`);
      return;
    }
    const identity = s.ctx.identity();
    // Only what the proxy announced: a client asking for more (compression, progress reports) does not get it.
    s.capabilities = response.capabilities & (identity.capabilities | Capability.CLIENT_MYSQL);
    s.mariaDbCapabilities = response.mariaDbCapabilities & identity.mariaDbCapabilities;
    this.handshake = response;
    // mysql_native_password is always accepted; caching_sha2_password when it is the default plugin.
    // Anything else is switched to the default plugin before the account is looked up, known or not,
    // as the server does: the reply must not tell them apart.
    const offered = response.capabilities & Capability.PLUGIN_AUTH ? response.authPluginName : null;
    const accepted = offered === null || offered === NATIVE_PASSWORD_PLUGIN ? NATIVE_PASSWORD_PLUGIN : offered === this.authPlugin ? offered : null;
    if (accepted === null) {
      s.phase = Phase.AuthSwitch;
      s.writeToClient(encodePacket(buildAuthSwitchRequest(this.authPlugin, this.scramble), this.authSeq));
      return;
    }
    this.authPlugin = accepted;
    this.checkCredentials(response.authResponse);
  }

  /** The client's first answer to the scramble, for the plugin in `authPlugin`. */
  private checkCredentials(token: Buffer): void {
    const name = this.handshake!.user;
    if (this.refusedAsBlocked(name, this.authSeq)) return;
    if (this.authPlugin === CACHING_SHA2_PLUGIN) {
      this.sha2Login(name, token);
      return;
    }
    const account = this.authenticate(name, token);
    if (!account) {
      this.denyAccess(name, token, this.authSeq);
      return;
    }
    this.s.ctx.observer.clientAuthenticated('native');
    this.finishLogin(account.user, account.passwordSha1, token);
  }

  /**
   * caching_sha2_password: fast authentication when the proxy knows the
   * account's SHA256 digest (a plain password in the config, or an earlier
   * full authentication); else full authentication, where the client sends
   * its password over TLS, or encrypted with the proxy's RSA public key.
   */
  private sha2Login(name: string, token: Buffer): void {
    const s = this.s;
    const user = s.ctx.findUser(name);
    if (user?.emptyPassword) {
      if (isEmptyPasswordReply(token)) this.finishLogin(user, null, token);
      else this.denyAccess(name, token, this.authSeq);
      return;
    }
    const known = user ? (user.sha256Stage2 && user.passwordSha1 ? { sha256Stage2: user.sha256Stage2, passwordSha1: user.passwordSha1 } : s.ctx.sha2Credentials.lookup(user.name, user.passwordDoubleSha1)) : undefined;
    if (user && known && verifyFastAuth(token, this.scramble, known.sha256Stage2)) {
      this.writeAuthPacket(Buffer.from([0x01, Sha2Status.FastAuthSuccess]));
      s.ctx.observer.clientAuthenticated('sha2_fast');
      this.finishLogin(user, known.passwordSha1, token);
      return;
    }
    // Unknown users go through the same exchange: the answers must not tell them apart.
    s.phase = Phase.Sha2FullAuth;
    this.writeAuthPacket(Buffer.from([0x01, Sha2Status.PerformFullAuthentication]));
  }

  private onSha2FullAuth(packet: Packet): void {
    const s = this.s;
    const name = this.handshake!.user;
    const payload = packet.payload;
    let password: Buffer;
    if (this.secure) {
      password = cleartextPassword(payload);
    } else if (payload.length === 1 && payload[0] === REQUEST_PUBLIC_KEY) {
      this.writeAuthPacket(Buffer.concat([Buffer.from([0x01]), s.ctx.rsaKeyPair().publicKeyPem]));
      return;
    } else {
      try {
        password = decryptPassword(payload, this.scramble, s.ctx.rsaKeyPair().privateKey);
      } catch (err) {
        s.log.info({ reason: (err as Error).message }, 'caching_sha2_password: the password could not be decrypted');
        this.denyAccess(name, Buffer.from([1]), this.authSeq);
        return;
      }
    }
    const user = s.ctx.findUser(name);
    if (!user || user.emptyPassword || !matchesNativeHash(password, user.passwordDoubleSha1)) {
      this.denyAccess(name, Buffer.from([1]), this.authSeq);
      return;
    }
    // Next time this user can use fast authentication.
    s.ctx.sha2Credentials.remember(user.name, user.passwordDoubleSha1, password);
    s.ctx.observer.clientAuthenticated(this.secure ? 'sha2_full_tls' : 'sha2_full_rsa');
    this.finishLogin(user, sha1Of(password), Buffer.from([1]));
  }

  /** A packet of the login exchange (auth-more-data), at the next sequence id. */
  private writeAuthPacket(payload: Buffer): void {
    this.s.writeToClient(encodePacket(payload, this.authSeq));
    this.authSeq = (this.authSeq + 1) & 0xff;
  }

  /** The account is authenticated: checks what else may refuse it, then logs in to the primary. */
  private finishLogin(user: UserConfig, passwordSha1: Buffer | null, token: Buffer): void {
    const s = this.s;
    const handshake = this.handshake!;
    if (user.requireTls && !this.secure) {
      // As the server answers an account created with REQUIRE SSL that logs in without it.
      this.denyAccess(handshake.user, token, this.authSeq);
      return;
    }
    // Asked even without a limit: with worker threads every session is counted, for a limit a reload may set.
    const admitted = s.ctx.admitUser(user.name, s, s.ctx.config().limits.maxUserConnections);
    if (admitted instanceof Promise) {
      s.phase = Phase.Working;
      void admitted.then(
        (ok) => {
          if (s.phase === Phase.Closed) return;
          if (ok) this.loginToPrimary(user, passwordSha1);
          else this.refuseUser(user);
        },
        (err: Error) => s.failSession(err),
      );
      return;
    }
    if (!admitted) return this.refuseUser(user);
    this.loginToPrimary(user, passwordSha1);
  }

  private refuseUser(user: UserConfig): void {
    this.s.ctx.observer.clientRefused('max_user_connections');
    this.refuse(ErrorCode.TOO_MANY_USER_CONNECTIONS, `User ${user.name} already has more than 'max_user_connections' active connections`, `user ${user.name} over max_user_connections`);
  }

  /** Logs in to the primary as the client's account; the session starts once that is done. */
  private loginToPrimary(user: UserConfig, passwordSha1: Buffer | null): void {
    const s = this.s;
    const handshake = this.handshake!;
    s.phase = Phase.Working;
    const login = this.backendLogin(user.name, passwordSha1, handshake.database, handshake.characterSet, handshake.connectAttributes);
    const authSeq = this.authSeq;
    const opened = this.openPrimary(login);
    if (!(opened instanceof Promise)) {
      s.loggedIn(user, opened, authSeq);
      return;
    }
    void opened.then(
      (conn) => {
        if (s.phase === Phase.Closed) {
          conn.quit();
          return;
        }
        s.loggedIn(user, conn, authSeq);
      },
      (err: Error) => {
        if (s.phase !== Phase.Closed) this.failBackendLogin(err, authSeq);
      },
    );
  }

  /**
   * Logs in to the primary (at login and COM_CHANGE_USER); `login` is how the
   * session logs in everywhere from now on. A connection the pool keeps for
   * this login comes back at once, without a promise (the usual PHP-style
   * connect); anything else (a new login, a wait, another session's lent
   * connection to reset) as a promise.
   */
  openPrimary(login: BackendLogin): BackendConnection | Promise<BackendConnection> {
    const s = this.s;
    s.backendLogin = login;
    let endpoint: BackendEndpoint;
    try {
      // Two writable servers: log in to the configured primary; reads work, writes are refused per statement.
      endpoint = s.ctx.selector.primary().endpoint ?? s.ctx.selector.configuredPrimary;
      const kept = s.ctx.loginPool.take(endpoint, login);
      if (kept) {
        s.ctx.learnedBackend(kept);
        return kept;
      }
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return s.connectTo(endpoint, login).then((conn) => {
      s.ctx.learnedBackend(conn);
      return conn;
    });
  }

  /** How the session logs in to backends as `user` (at login and COM_CHANGE_USER). */
  backendLogin(user: string, passwordSha1: Buffer | null, database: string | null, characterSet: number, attrs: [string, string][] | null): BackendLogin {
    const s = this.s;
    return {
      user,
      passwordSha1,
      database: database && database.length > 0 ? database : null,
      characterSet,
      capabilities: s.capabilities,
      mariaDbCapabilities: s.mariaDbCapabilities,
      connectAttributes: this.backendAttributes(attrs),
      tls: s.ctx.backendTls,
      // Only the cache and the split act on the server's reports: plain pass-through leaves the bytes untouched.
      trackSession: s.ctx.config().sessionTracking && (s.ctx.cache !== null || s.ctx.selector.monitored),
    };
  }

  /**
   * The client's connection attributes plus `_wirecache_client`, the client's
   * real address, so a DBA sees it on the server. Sent even when the client
   * sent none; a value the client supplied under that name is dropped.
   */
  private backendAttributes(attrs: [string, string][] | null): [string, string][] {
    return [
      ...(attrs ?? []).filter(([key]) => key !== '_wirecache_client'),
      ['_wirecache_client', `${this.s.remoteAddress}:${this.s.remotePort}`],
    ];
  }

  /** A login (or COM_CHANGE_USER) the backend did not accept: the client sees the server's own error, or why it was unreachable. */
  failBackendLogin(err: Error, seq: number): void {
    const s = this.s;
    if (err instanceof BackendError && err.serverError) {
      // The server itself refused (unknown database, account differences).
      s.ctx.observer.authFailed('backend_refused');
      s.sendErr(err.serverError, err.serverError.message, seq);
    } else {
      s.ctx.observer.authFailed('backend_unavailable');
      s.log.warn({ err: err.message, code: ErrorCode.BACKEND_UNREACHABLE.code }, 'backend unreachable; the login fails');
      s.sendErr(ErrorCode.BACKEND_UNREACHABLE, `wirecache: ${err.message}`, seq);
    }
    s.close(`backend login failed: ${err.message}`);
  }

  /** The configured account and the client's SHA1(password), if `token` answers this session's scramble for it. */
  authenticate(userName: string, token: Buffer): { user: UserConfig; passwordSha1: Buffer | null } | null {
    const user = this.s.ctx.findUser(userName);
    if (!user) return null;
    const verdict = verifyNativePassword(token, this.scramble, user);
    return verdict.ok ? { user, passwordSha1: verdict.passwordSha1 } : null;
  }


  /**
   * An account blocked after too many failed logins to it (from any
   * address) is refused before its password is checked, known or not, as
   * MySQL refuses an account locked by FAILED_LOGIN_ATTEMPTS. Returns true
   * when it refused.
   */
  refusedAsBlocked(userName: string, seq: number): boolean {
    const s = this.s;
    const blockedMs = s.ctx.accountBlockedFor(userName);
    if (blockedMs === 0) return false;
    s.ctx.observer.authFailed('bad_credentials');
    const limits = s.ctx.config().limits;
    s.sendErr(
      ErrorCode.ACCOUNT_BLOCKED,
      `Access denied for user '${userName}'@'${s.remoteAddress}'. Account is blocked for ${limits.loginBlockSeconds} second(s) (${Math.ceil(blockedMs / 1000)} second(s) remaining) due to ${limits.loginFailuresPerMinute} failed logins in a minute.`,
      seq,
    );
    s.close(`account '${userName}' is blocked`);
    return true;
  }

  /** The server's answer to an unknown user and to a wrong password alike, then the end of the session. */
  denyAccess(userName: string, token: Buffer, seq: number): void {
    const s = this.s;
    s.ctx.observer.authFailed('bad_credentials');
    s.ctx.loginFailed(s.remoteAddress, userName);
    s.sendErr(
      ErrorCode.ACCESS_DENIED,
      `Access denied for user '${userName}'@'${s.remoteAddress}' (using password: ${token.length > 0 ? 'YES' : 'NO'})`,
      seq,
    );
    s.close(`access denied for '${userName}'`);
  }
}
