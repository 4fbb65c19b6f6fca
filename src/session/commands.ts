/**
 * The command switch: what the session does with each client command once
 * logged in. Statements are classified here when the cache, routing or
 * statistics need it; everything else is relayed to the primary connection
 * or answered by the proxy.
 */
import type { CacheRule } from '../config/rules.js';
import { Command, ErrorCode } from '../protocol/constants.js';
import type { Packet } from '../protocol/framing.js';
import { ResponseKind } from '../protocol/response_scanner.js';
import { killsInText, mentionsKill, startsWithKill, type BatchKill } from '../sql/kill_statement.js';
import { Phase, type ClientSession } from './client_session.js';
import { changeUser, kill, threadForKill } from './local_commands.js';
import { wireOf } from './wire.js';

export function runCommand(s: ClientSession, packet: Packet): void {
  const payload = packet.payload;
  if (!s.roleTouched && (payload[0] === Command.QUERY || payload[0] === Command.STMT_PREPARE) && mentionsRole(payload)) s.roleTouched = true;
  switch (payload[0]) {
    case Command.QUIT:
      s.close('client quit');
      return;
    case Command.QUERY:
      query(s, packet);
      return;
    case Command.PROCESS_KILL:
      if (payload.length < 5) {
        s.replyLocal(ErrorCode.NET_READ_ERROR, 'Malformed COM_PROCESS_KILL packet');
        return;
      }
      s.runLocal(() => kill(s, payload.readUInt32LE(1), 'connection'));
      return;
    case Command.CHANGE_USER:
      s.runLocal(() => changeUser(s, payload));
      return;
    case Command.STMT_PREPARE: {
      const statement = s.ctx.cache || s.dispatcher.tracksLinks || s.ctx.queryStats ? s.ctx.statements.classify(payload.toString('latin1', 1)) : null;
      s.statements.prepare(packet, statement);
      return;
    }
    case Command.STMT_EXECUTE:
      s.statements.execute(packet);
      return;
    case Command.STMT_FETCH:
      s.statements.forwardStatementCommand(packet, ResponseKind.Fetch, 'mysqld_stmt_fetch');
      return;
    case Command.STMT_RESET:
      s.statements.resetOrLongData(packet, false);
      return;
    case Command.STMT_SEND_LONG_DATA:
      s.statements.resetOrLongData(packet, true);
      return;
    case Command.STMT_CLOSE:
      s.statements.close(packet);
      return;
    case Command.FIELD_LIST:
      s.forward(packet, ResponseKind.FieldList);
      return;
    case Command.PROCESS_INFO:
      s.forward(packet, ResponseKind.Query);
      return;
    case Command.INIT_DB:
      // latin1, like statement text: schema names compare byte for byte with the tables statements name.
      s.cmd.initDb = payload.toString('latin1', 1);
      s.cmd.initDbBytes = Buffer.from(payload.subarray(1));
      s.forward(packet, ResponseKind.Single);
      return;
    case Command.SET_OPTION:
      // Multi-statements on or off: a connection's own setting, which COM_RESET_CONNECTION does not restore.
      s.optionSet = true;
      s.dispatcher.mux.stick('set_option');
      s.forward(packet, ResponseKind.Single);
      return;
    case Command.PING:
    case Command.STATISTICS:
    case Command.RESET_CONNECTION:
    case Command.REFRESH:
    case Command.DEBUG:
    case Command.CREATE_DB:
    case Command.DROP_DB:
      s.forward(packet, ResponseKind.Single);
      return;
    default:
      // Replication, shutdown, COM_MULTI, bulk execute and anything unknown: never sent to a backend.
      s.replyLocal(ErrorCode.UNKNOWN_COM, 'Unknown command');
      return;
  }
}

/** COM_QUERY: KILL is answered by the proxy; other statements go through the cache and the router when they are on. */
function query(s: ClientSession, received: Packet): void {
  let packet = received;
  const raw = packet.payload;
  if (startsWithKill(raw, 1) || (raw.indexOf(0x3b, 1) >= 0 && mentionsKill(raw, 1))) {
    // latin1: one character per byte, so offsets in the text are offsets in the payload.
    const found = killsInText(raw.toString('latin1', 1));
    if (found !== null && 'unsupported' in found) {
      s.replyLocal(ErrorCode.NOT_SUPPORTED_YET, found.unsupported);
      return;
    }
    if (found !== null && found.statements === 1) {
      const [{ id, scope }] = found.kills;
      s.runLocal(() => kill(s, id, scope));
      return;
    }
    // KILLs inside a multi-statement text run on the backend with the target's thread there.
    if (found !== null) {
      s.phase = Phase.Working;
      withBackendThreadIds(s, received, found.kills).then(
        (rewritten) => {
          if (s.phase !== Phase.Closed) runQuery(s, rewritten);
        },
        (err: Error) => s.failSession(err),
      );
      return;
    }
  }
  runQuery(s, packet);
}

/** COM_QUERY past the KILL check: through the cache and the router when they are on. */
function runQuery(s: ClientSession, packet: Packet): void {
  const payload = packet.payload;
  const cache = s.sessionCache;
  const dispatcher = s.dispatcher;
  s.cmd.queryPayload = payload;
  // Unclassified only when nothing needs the statement: not even a connection handed over with another client's diagnostics.
  if (!cache && !dispatcher.tracksLinks && !s.ctx.queryStats && !s.backend?.inheritedDiagnostics) {
    s.forward(packet, ResponseKind.Query);
    return;
  }
  // latin1 maps bytes to characters one to one: two different texts never share a key.
  const statement = s.ctx.statements.classify(payload.toString('latin1', 1));
  s.cmd.statStatement = statement;
  s.cmd.statement = statement;
  s.cmd.queryPacket = packet;
  const send = (s.sendQuery ??= (rule, recording) => sendQuery(s, rule, recording));
  if (cache) cache.run({ statement, binary: false, params: '', refusal: null }, send);
  else send(null, false);
}

/** The COM_QUERY the session runs (s.cmd), to the server the router picks. */
function sendQuery(s: ClientSession, rule: CacheRule | null, recording: boolean): void {
  const cmd = s.cmd;
  const packet = cmd.queryPacket!;
  s.dispatcher.route(cmd.statement!, rule, recording, null, packet.payload.subarray(1), () => s.sendToBackend(wireOf(packet), ResponseKind.Query));
}

/** The packet with each KILL's id replaced by the target's thread on the primary (multi-statements run there). */
async function withBackendThreadIds(s: ClientSession, packet: Packet, kills: readonly BatchKill[]): Promise<Packet> {
  const payload = packet.payload;
  const pieces: Buffer[] = [];
  let at = 1;
  for (const k of kills) {
    pieces.push(payload.subarray(at, 1 + k.start), Buffer.from(String(await threadForKill(s, k.id, k.scope)), 'latin1'));
    at = 1 + k.end;
  }
  pieces.push(payload.subarray(at));
  const rewritten = Buffer.concat([payload.subarray(0, 1), ...pieces]);
  return { seq: packet.seq, lastSeq: packet.lastSeq, payload: rewritten, wire: null };
}

/**
 * The statement may set a role: it starts (after blanks) with SET, EXECUTE, PREPARE or CALL, or with a
 * comment or parenthesis, and its bytes contain "role" (SET ROLE, and dynamic SQL that might build one).
 * It runs for every statement, so plain SELECT/INSERT/UPDATE/DELETE texts cost a few byte reads. A role
 * set in another spelling is still caught after the reset (the login pool keeps no connection with a
 * current role), except for an account with a default role.
 */
function mentionsRole(payload: Buffer): boolean {
  let i = 1;
  while (i < payload.length && (payload[i] === 0x20 || payload[i] === 0x09 || payload[i] === 0x0a || payload[i] === 0x0d)) i++;
  const first = payload[i];
  // '/', '(', '#', '-': a comment or a parenthesis first.
  if (first !== 0x2f && first !== 0x28 && first !== 0x23 && first !== 0x2d) {
    const head = ((first | 0x20) << 16) | ((payload[i + 1] | 0x20) << 8) | (payload[i + 2] | 0x20);
    if (head !== SET_HEAD && head !== EXE_HEAD && head !== PRE_HEAD && head !== CAL_HEAD) return false;
  }
  return payload.includes('ROLE', 1, 'latin1') || payload.includes('role', 1, 'latin1') || payload.includes('Role', 1, 'latin1');
}

/** The first three letters, lower case, as one number: set, exe(cute), pre(pare), cal(l). */
const letters3 = (t: string): number => (t.charCodeAt(0) << 16) | (t.charCodeAt(1) << 8) | t.charCodeAt(2);
const SET_HEAD = letters3('set');
const EXE_HEAD = letters3('exe');
const PRE_HEAD = letters3('pre');
const CAL_HEAD = letters3('cal');
