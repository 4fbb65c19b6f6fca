/**
 * A session's prepared statements: the ids the client knows (the proxy's
 * own, stable whichever backend connection runs the statement), their text
 * to prepare them again elsewhere, and the parameter types executes send.
 */
import type { RefusalReason } from '../cache/types.js';
import type { CacheRule } from '../config/rules.js';
import { CursorType, ErrorCode } from '../protocol/constants.js';
import { encodePacket, type Packet } from '../protocol/framing.js';
import { ResponseKind } from '../protocol/response_scanner.js';
import type { ClassifiedStatement } from '../sql/classifier.js';
import { executeWithTypes, type BackendLink } from './backend_links.js';
import { PRIMARY_COMMAND } from './backend_dispatch.js';
import type { ClientSession } from './client_session.js';
import { wireOf } from './wire.js';

/** A prepared statement, known to the client by its proxy id (the map key). */
export interface PreparedStatement {
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

export class PreparedStatements {
  private readonly statements = new Map<number, PreparedStatement>();
  private nextId = 1;

  constructor(private readonly s: ClientSession) {}

  get size(): number {
    return this.statements.size;
  }

  get(id: number): PreparedStatement | undefined {
    return this.statements.get(id);
  }

  /** The server dropped them all (COM_RESET_CONNECTION, COM_CHANGE_USER). */
  clear(): void {
    this.statements.clear();
  }

  /** COM_STMT_PREPARE: relayed; the backend's statement id is swapped for a new proxy id as the OK passes. */
  prepare(packet: Packet, statement: ClassifiedStatement | null): void {
    const s = this.s;
    const sql = Buffer.from(packet.payload.subarray(1));
    s.scanner.onPrepareOk = (ok, info) => {
      const id = this.nextId++;
      this.statements.set(id, { sql, statement, params: info.params, types: null, longData: false });
      s.dispatcher.linkOf(s.backend!)?.statements.set(id, { backendId: info.statementId, types: null });
      ok.writeUInt32LE(id, 1);
    };
    s.forward(packet, ResponseKind.Prepare);
  }

  /** COM_STMT_EXECUTE: routed like its statement, keyed for the cache on the statement, parameter types and values. */
  execute(packet: Packet): void {
    const s = this.s;
    const payload = packet.payload;
    const id = statementIdOf(payload);
    const stmt = this.statements.get(id);
    if (!stmt || payload.length < 10) {
      // The server answers with its error; nothing to cache, route or invalidate.
      this.forwardStatementCommand(packet, ResponseKind.Query, 'mysqld_stmt_execute');
      return;
    }
    s.cmd.statStatement = stmt.statement;
    const cache = s.sessionCache;
    const routing = s.dispatcher.tracksLinks;
    if (!cache && !routing) {
      this.forwardStatementCommand(packet, ResponseKind.Query, 'mysqld_stmt_execute');
      return;
    }
    // Types are remembered for every execute (routing re-sends them to other connections); the
    // key string of values is built only when the cache needs it.
    const valuesAt = rememberParamTypes(stmt, payload);
    const cursor = payload[5] !== CursorType.NO_CURSOR;
    const longData = stmt.longData;
    stmt.longData = false;
    const statement = stmt.statement;
    // A cursor's FETCHes and long data sent before go to the primary connection: so does the execute.
    const pinned = cursor || longData;
    // The server keeps an open cursor on this connection for the FETCHes to come.
    if (cursor) s.dispatcher.mux.stick('cursor');
    const write = (link: BackendLink) => this.executeOn(link, packet, stmt, id);
    const send = (rule: CacheRule | null, recording: boolean) => {
      if (!statement || !routing || pinned) {
        s.dispatcher.dispatchOrForward(null, PRIMARY_COMMAND, { id, stmt }, null, write);
        return;
      }
      s.dispatcher.route(statement, rule, recording, { id, stmt }, null, write);
    };
    if (!cache || !statement) {
      send(null, false);
      return;
    }
    const params = executeParams(stmt, payload, valuesAt);
    const refusal: RefusalReason | null = cursor ? 'cursor' : longData ? 'long_data' : params === null ? 'unknown_parameters' : null;
    // Writes go this way too, so that their invalidation is never skipped.
    cache.run({ statement, binary: true, params: params ?? '', refusal }, send);
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
    this.s.sendToBackend(bytes, ResponseKind.Query);
  }

  /** COM_STMT_RESET and COM_STMT_SEND_LONG_DATA: long data marks the next execute as not cacheable. */
  resetOrLongData(packet: Packet, longData: boolean): void {
    const stmt = this.statements.get(statementIdOf(packet.payload));
    if (stmt) stmt.longData = longData;
    // The data waits on this connection's statement for the execute.
    if (longData) this.s.dispatcher.mux.stick('long_data');
    if (longData) this.forwardStatementCommand(packet, null, 'mysqld_stmt_send_long_data');
    else this.forwardStatementCommand(packet, ResponseKind.Single, 'mysqld_stmt_reset');
  }

  /** COM_STMT_CLOSE: closes the statement on every connection that has it (no reply, as from the server). */
  close(packet: Packet): void {
    const id = statementIdOf(packet.payload);
    if (this.statements.delete(id)) this.s.dispatcher.closeStatement(id);
    this.s.finishCommand();
  }

  /** Commands that name a prepared statement: the proxy's id is swapped for the connection's. */
  forwardStatementCommand(packet: Packet, kind: ResponseKind | null, what: string): void {
    const s = this.s;
    const proxyId = statementIdOf(packet.payload);
    const stmt = this.statements.get(proxyId);
    if (!stmt) {
      // No response is expected for SEND_LONG_DATA; the server ignores unknown ids there too.
      if (kind === null) s.finishCommand();
      else s.replyLocal(ErrorCode.UNKNOWN_STMT_HANDLER, `Unknown prepared statement handler (${proxyId}) given to ${what}`);
      return;
    }
    s.dispatcher.dispatchOrForward(null, PRIMARY_COMMAND, { id: proxyId, stmt }, null, (link) => {
      const bytes = wireOf(packet);
      bytes.writeUInt32LE(link.statements.get(proxyId)!.backendId, 5);
      s.sendToBackend(bytes, kind);
    });
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

/** The statement id a COM_STMT_* packet names (the proxy's id), or -1 when the packet is too short to hold one. */
function statementIdOf(payload: Buffer): number {
  return payload.length >= 5 ? payload.readUInt32LE(1) : -1;
}
