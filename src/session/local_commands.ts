/**
 * Commands the proxy answers itself instead of relaying: KILL (a session's
 * backend threads on every server it uses) and COM_CHANGE_USER (a fresh
 * backend login as the new user).
 */
import type { InternalResult } from '../backend/backend_connection.js';
import type { BackendEndpoint } from '../config/types.js';
import { ErrorCode, NATIVE_PASSWORD_PLUGIN } from '../protocol/constants.js';
import { encodePacket, type Packet } from '../protocol/framing.js';
import { buildAuthSwitchRequest, parseChangeUser } from '../protocol/handshake.js';
import { ProtocolError } from '../protocol/payload_reader.js';
import type { BackendConnection } from '../backend/backend_connection.js';
import { Phase, type ClientSession } from './client_session.js';
import type { RemoteSession } from './session_context.js';
import { asLatin1 } from './wire.js';

/** The session a KILL names: by the id from the handshake, or (as applications read it from CONNECTION_ID()) by a backend thread id. */
export function sessionNamed(sessions: ReadonlyMap<number, ClientSession>, targetId: number): ClientSession | undefined {
  return sessions.get(targetId) ?? [...sessions.values()].find((x) => x.backendThreads.some((t) => t.threadId === targetId));
}

function killTarget(s: ClientSession, targetId: number): ClientSession | undefined {
  return sessionNamed(s.ctx.sessions, targetId);
}

/**
 * For a KILL inside a multi-statement text, which runs on the primary: the
 * target session's thread there, when the target is a session of `user`
 * (a multiplexed session with none takes one first); null for any other id,
 * which goes as written, and the server answers for it. A KILL QUERY also
 * reaches the target's other servers (its query may run on a replica), with
 * `runOn`, without waiting.
 */
export async function primaryThreadForKill(
  target: ClientSession,
  user: string | null,
  scope: 'connection' | 'query',
  killer: string,
  runOn: (endpoint: BackendEndpoint, sql: string) => Promise<unknown>,
  /** False for the killer's own session: its statement is about to run on its own primary connection. */
  hold = true,
): Promise<number | null> {
  if (!target.user || target.user.name !== user) return null;
  // The target keeps its primary connection from now on: given to another session, the KILL would end that one's work.
  if (hold && target.dispatcher.mux.enabled) await target.dispatcher.holdPrimaryLink();
  const primary = target.dispatcher.primaryLink?.conn;
  if (!primary || primary.closed) return null;
  target.markKillTarget();
  for (const { endpoint, threadId } of target.backendThreads) {
    if (scope === 'query' && endpoint.name !== primary.endpoint.name) void runOn(endpoint, `KILL QUERY ${threadId}`).catch(() => undefined);
  }
  if (scope === 'connection') {
    target.killPending = true;
    // The killed thread ends the target's session as the server would; with routing an idle session
    // would only reopen it, so the session ends here once the server has done the KILL.
    setTimeout(() => {
      if (primary.closed) target.terminate(`killed by ${killer}`);
    }, 1000).unref();
  }
  return primary.threadId;
}

/** The thread to put in a multi-statement text's KILL of `targetId`: see primaryThreadForKill(); in another worker thread too. */
export async function threadForKill(s: ClientSession, targetId: number, scope: 'connection' | 'query'): Promise<number> {
  const target = killTarget(s, targetId);
  const user = s.user?.name ?? null;
  if (target) return (await primaryThreadForKill(target, user, scope, `session ${s.id}`, (endpoint, sql) => runOn(s, endpoint, sql), target !== s)) ?? targetId;
  return (await s.ctx.remoteKillThread?.(targetId, scope, user)) ?? targetId;
}

/** A session of another thread's multi-statement KILL, here: its primary thread (a connection of its own login runs a KILL QUERY elsewhere). */
export function primaryThreadForRemoteKill(target: ClientSession, user: string | null, scope: 'connection' | 'query'): Promise<number | null> {
  return primaryThreadForKill(target, user, scope, 'a session of another worker thread', (endpoint, sql) => runOnNewConnection(target, endpoint, sql));
}

/** A session of this proxy (or worker thread) as a KILL sees it. */
function localTarget(target: ClientSession): RemoteSession {
  target.markKillTarget();
  return {
    user: target.user?.name ?? null,
    backendThreads: target.backendThreads,
    killPending: (on) => {
      target.killPending = on;
    },
    killed: (idle, reason) => target.killedBy(idle, reason),
  };
}

/**
 * KILL [QUERY] or COM_PROCESS_KILL: `targetId` is a proxy connection id or a
 * backend thread id of one of its sessions, in this worker thread or another.
 */
export async function kill(s: ClientSession, targetId: number, scope: 'connection' | 'query'): Promise<void> {
  const seq = s.cmd.responseSeq;
  const local = killTarget(s, targetId);
  if (local === s) {
    if (scope === 'connection') {
      s.sendErr({ code: 1927, sqlState: '70100' }, 'Connection was killed', seq);
      s.close('killed itself');
      return;
    }
    s.sendOk();
    return;
  }
  const target = local ? localTarget(local) : await s.ctx.remoteSession?.(targetId);
  if (s.phase === Phase.Closed) return;
  if (!target) {
    s.sendErr(ErrorCode.NO_SUCH_THREAD, `Unknown thread id: ${targetId}`, seq);
    return;
  }
  if (!target.user || target.user !== s.user?.name) {
    s.sendErr(ErrorCode.KILL_DENIED, `You are not owner of thread ${targetId}`, seq);
    return;
  }
  const threads = target.backendThreads;
  // The target knows before the server kills its thread: it must not take the lost connection for a failure to repair.
  if (scope === 'connection') await target.killPending(true);
  for (const { endpoint, threadId } of threads) {
    let result: InternalResult;
    try {
      result = await runOn(s, endpoint, `KILL ${scope === 'query' ? 'QUERY ' : ''}${threadId}`);
    } catch (err) {
      // The connection the KILL ran on was lost (the session's own connection ends the session as well).
      if ((s.phase as Phase) !== Phase.Closed) s.sendErr(ErrorCode.BACKEND_LOST, `Lost connection to backend ${endpoint.name} (${endpoint.host}:${endpoint.port}): ${(err as Error).message}`, seq);
      return;
    }
    // The backend thread may have ended between the lookup and the KILL: that is success for the client.
    if (result.error && result.error.code !== ErrorCode.NO_SUCH_THREAD.code) {
      void target.killPending(false);
      s.sendErr(result.error, result.error.message, seq);
      return;
    }
  }
  if (scope === 'connection') target.killed(threads.length === 0, `killed by session ${s.id}`);
  s.sendOk();
}

/** Runs an internal statement on `endpoint` over the session's connection there, or a short-lived one. */
async function runOn(s: ClientSession, endpoint: BackendEndpoint, sql: string): Promise<InternalResult> {
  const link = s.dispatcher.links.get(endpoint.name);
  if (link && !link.conn.closed) return link.conn.query(sql);
  return runOnNewConnection(s, endpoint, sql);
}

/** Runs an internal statement on `endpoint` over a connection of the session's login made for it, then closed. */
async function runOnNewConnection(s: ClientSession, endpoint: BackendEndpoint, sql: string): Promise<InternalResult> {
  const conn = await s.connectTo(endpoint, s.backendLogin!);
  try {
    return await conn.query(sql);
  } finally {
    conn.quit();
  }
}

/**
 * COM_CHANGE_USER: re-authenticated with mysql_native_password, then every
 * backend connection is replaced by a fresh login to the primary as the new
 * user, which gives the same reset the command promises.
 */
export async function changeUser(s: ClientSession, payload: Buffer): Promise<void> {
  const login = s.login;
  const request = parseChangeUser(payload, s.capabilities);
  let token = request.authResponse;
  let seq = s.cmd.responseSeq;
  if (request.authPluginName && request.authPluginName !== NATIVE_PASSWORD_PLUGIN) {
    s.writeToClient(encodePacket(buildAuthSwitchRequest(NATIVE_PASSWORD_PLUGIN, login.scramble), seq));
    const reply = await readClientPacket(s);
    token = reply.payload;
    seq = (reply.lastSeq + 1) & 0xff;
  }
  if (login.refusedAsBlocked(request.user, seq)) return;
  const account = login.authenticate(request.user, token);
  if (!account || (account.user.requireTls && !login.secure)) {
    login.denyAccess(request.user, token, seq);
    return;
  }
  const { user, passwordSha1 } = account;
  // A fresh backend login gives exactly the reset that COM_CHANGE_USER promises.
  s.backend = null;
  s.dispatcher.resetForNewLogin();
  s.statements.clear();
  // The server rolls the old session's transaction back.
  s.sessionCache?.state.abandonTransaction(false);
  const characterSet = request.characterSet ?? login.handshake!.characterSet;
  const conn = await Promise.resolve()
    .then(() => login.openPrimary(login.backendLogin(user.name, passwordSha1, request.database, characterSet, request.connectAttributes)))
    .catch((err: Error) => err);
  if (conn instanceof Error) {
    login.failBackendLogin(conn, seq);
    return;
  }
  if (s.phase === Phase.Closed) {
    conn.quit();
    return;
  }
  if (request.characterSet !== null && request.characterSet > 0xff) {
    const failure = await applyCollation(s, conn, request.characterSet);
    if (failure) {
      conn.quit();
      s.sendErr(failure, failure.message, seq);
      s.close(`COM_CHANGE_USER: collation ${request.characterSet} not applied`);
      return;
    }
  }
  s.user = user;
  s.ctx.accountChanged(s, user.name);
  s.dispatcher.usePrimary(conn);
  s.tracking.start(conn);
  const primary = s.dispatcher.primaryLink;
  if (primary) primary.appliedState = s.dispatcher.stateLog.latest;
  s.sessionCache?.state.reset(request.database.length > 0 ? asLatin1(request.database) : null, characterSet);
  const ok = s.tracking.loginOk(conn);
  if (!ok) return;
  s.writeToClient(encodePacket(ok, seq));
}

/**
 * COM_CHANGE_USER carries a two-byte collation id, the handshake to the
 * backend only one: a larger id is applied with SET NAMES after login.
 * Returns the server's error, if any.
 */
async function applyCollation(s: ClientSession, conn: BackendConnection, collationId: number): Promise<{ code: number; sqlState: string; message: string } | null> {
  const lookup = await conn.query(`SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS WHERE ID = ${collationId | 0}`);
  if (lookup.error) return lookup.error;
  const row = lookup.rows[0];
  if (!row || !row[0] || !row[1]) return { ...ErrorCode.UNKNOWN_COLLATION, message: `Unknown collation: '${collationId}'` };
  const sql = `SET NAMES '${row[0]}' COLLATE '${row[1]}'`;
  const set = await conn.query(sql);
  // Every other connection the session opens must use the same collation.
  if (!set.error) s.dispatcher.stateLog.add(Buffer.from(sql));
  return set.error;
}

/** Waits for the client's next packet while the proxy itself drives the exchange (auth switch in COM_CHANGE_USER). */
function readClientPacket(s: ClientSession): Promise<Packet> {
  return new Promise((resolve, reject) => {
    const socket = s.clientSocket;
    // The client owes one small packet: it gets the login time limit, not forever.
    const timer = setTimeout(() => {
      cleanup();
      reject(new ProtocolError('client did not answer the authentication switch in time'));
    }, s.ctx.config().timeouts.clientHandshakeMs);
    const check = () => {
      if (s.phase === Phase.Closed) {
        cleanup();
        reject(new Error('client closed during COM_CHANGE_USER'));
        return;
      }
      let p: Packet | null;
      try {
        p = s.framer.next();
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
      socket.off('data', check);
      socket.off('close', check);
    };
    socket.on('data', check);
    socket.on('close', check);
    check();
  });
}
