/**
 * Responses on their way back: backend bytes go to the client as they
 * arrive while the ResponseScanner finds where the response ends; then what
 * the command changed (status flags, routing state, the cache) is applied
 * and the next command may run. Also what a backend sends outside a command,
 * and a backend connection that closes.
 */
import { Command, ErrorCode, ServerStatus } from '../protocol/constants.js';
import { encodePacket, type Packet } from '../protocol/framing.js';
import { ScanResult } from '../protocol/response_scanner.js';
import type { BackendConnection } from '../backend/backend_connection.js';
import { useStatementFor } from './backend_links.js';
import { PauseReason, Phase, type ClientSession } from './client_session.js';

export class Relay {
  private readonly out: Buffer[] = [];

  constructor(private readonly s: ClientSession) {}

  onBackendData(conn: BackendConnection, chunk: Buffer): void {
    const s = this.s;
    if (s.phase === Phase.Closed) return;
    if (conn !== s.backend || s.phase !== Phase.Relaying) {
      this.onUnsolicited(conn, chunk);
      return;
    }
    const out = this.out;
    out.length = 0;
    let result: ScanResult;
    try {
      result = s.scanner.feed(chunk, out);
    } catch (err) {
      s.failSession(err as Error);
      return;
    }
    const cmd = s.cmd;
    const cache = s.sessionCache;
    // A packet rewritten in the middle of a chunk (a session-state report) cuts it in pieces: one write still.
    const corked = out.length > 1;
    if (corked) s.clientSocket.cork();
    for (const piece of out) {
      cmd.bytesForwarded += piece.length;
      if (cache?.passing(piece)) continue;
      if (!s.writeToClient(piece) && !s.backendPaused) {
        s.backendPaused = true;
        conn.pause();
      }
    }
    if (corked) s.clientSocket.uncork();
    if (result === ScanResult.NeedMore) return;
    if (result === ScanResult.LocalInfile) {
      cache?.releaseHeldOutput();
      s.phase = Phase.Infile;
      s.pump();
      return;
    }
    this.onResponseComplete();
    if (s.scanner.consumed < chunk.length) this.onUnsolicited(conn, chunk.subarray(s.scanner.consumed));
  }

  private onResponseComplete(): void {
    const s = this.s;
    const cmd = s.cmd;
    const scanner = s.scanner;
    scanner.onPrepareOk = null;
    // Status 0 is a real answer (autocommit off, no transaction): only a response without a terminator keeps the old flags.
    if (scanner.statusSeen) s.serverStatus = scanner.lastStatus & ~ServerStatus.MORE_RESULTS_EXISTS;
    const ok = scanner.errorCode === 0;
    cmd.statError = !ok;
    this.commandDone(ok);
  }

  /** What the completed command changed: routing state, tracking, the cache; then the next command may run. */
  private commandDone(ok: boolean): void {
    const s = this.s;
    const cmd = s.cmd;
    const dispatched = cmd.inflight;
    cmd.inflight = null;
    const cache = s.sessionCache;
    const conn = s.backend;
    // The server says the session changed, a transaction is open (autocommit may be off globally), or an error or
    // warnings are listed (they may outlive later statements): whatever the statement looked like, its connection is
    // no longer a fresh login's.
    const status = s.serverStatus;
    const listed = !ok || s.scanner.lastWarnings > 0;
    if (conn !== null && (cmd.tracked !== null || listed || (status & ServerStatus.IN_TRANS) !== 0 || (status & ServerStatus.AUTOCOMMIT) === 0)) {
      conn.dirty = true;
    }
    if (dispatched) s.dispatcher.afterStatement(dispatched, ok, cache?.state.schema ?? null, cmd.tracked);
    if (cmd.code === Command.RESET_CONNECTION && ok) {
      // The server dropped every prepared statement of the session, and rolled back its transaction.
      s.statements.clear();
      cache?.state.connectionReset();
      s.dispatcher.afterReset();
    }
    if (cmd.code === Command.INIT_DB && ok && cmd.initDbBytes && s.dispatcher.tracksLinks) s.dispatcher.logState(useStatementFor(cmd.initDbBytes));
    const retracking = s.tracking.afterCommand(conn, cmd.code, ok, dispatched?.statement ?? cmd.cacheStatement ?? null);
    const storing = cache?.afterResponse(cmd.code, ok);
    const pending = retracking && storing ? Promise.all([retracking, storing]) : (retracking ?? storing);
    if (pending) {
      s.phase = Phase.Working;
      pending.then(
        () => {
          if (s.phase === Phase.Closed) return;
          cache?.releaseHeldOutput();
          s.finishCommand();
        },
        (err: Error) => s.failSession(err),
      );
      return;
    }
    cache?.releaseHeldOutput();
    s.finishCommand();
  }

  /** Client packets of a LOCAL INFILE transfer go to the backend as they are; an empty packet ends the file. */
  onInfilePacket(packet: Packet): void {
    const s = this.s;
    const backend = s.backend;
    if (!backend) return;
    s.cmd.responseSeq = (packet.lastSeq + 1) & 0xff;
    if (!backend.write(packet.wire ?? encodePacket(packet.payload, packet.seq))) s.pauseClient(PauseReason.BackendFull);
    if (packet.payload.length === 0) {
      s.scanner.resumeAfterInfile();
      s.phase = Phase.Relaying;
    }
  }

  /**
   * Bytes from a backend connection while no command of the session runs on
   * it: a kill or shutdown notice. A replica connection, or a primary one
   * holding nothing, is dropped and reopened when needed; otherwise the
   * notice goes to the client and the session ends, as it would on the server.
   */
  private onUnsolicited(conn: BackendConnection, bytes: Buffer): void {
    const s = this.s;
    const dispatcher = s.dispatcher;
    const primary = conn.endpoint.name === dispatcher.primaryServer;
    const replaceable = dispatcher.tracksLinks && !(primary && dispatcher.holdsPrimaryState()) && !s.killPending;
    if (replaceable || (conn !== s.backend && s.busy)) {
      s.log.info({ server: conn.endpoint.name, bytes: bytes.length }, 'backend connection sent data outside a command; dropping it');
      const link = dispatcher.linkOf(conn);
      if (link?.conn === conn) dispatcher.dropLink(link);
      else conn.quit();
      if (!replaceable) s.closeAfterCurrentCommand('the primary connection ended');
      return;
    }
    s.log.warn({ bytes: bytes.length, first: bytes[4] }, 'backend sent data outside a command; closing the session');
    s.writeToClient(bytes);
    s.close('backend ended the session');
  }

  onBackendClosed(conn: BackendConnection, err: Error | null): void {
    const s = this.s;
    if (s.phase === Phase.Closed) return;
    const dispatcher = s.dispatcher;
    dispatcher.forget(conn);
    const reason = err ? err.message : 'connection closed';
    const active = conn === s.backend && (s.phase === Phase.Relaying || s.phase === Phase.Infile);
    if (active && dispatcher.retryElsewhere(conn, reason)) return;
    const primary = conn.endpoint.name === dispatcher.primaryServer;
    if (!active && conn !== s.backend && !primary) return;
    // Being made ready for the next command (state replay, prepare): that step fails and decides.
    if (!active && s.phase === Phase.Working && conn.holds > 0) return;
    if (!active && dispatcher.tracksLinks && !(primary && dispatcher.holdsPrimaryState()) && s.phase !== Phase.Working && !s.killPending) {
      // Nothing of the session's lives only there: the next command opens a new connection.
      s.log.info({ backend: conn.endpoint.name, reason }, 'idle backend connection lost; it is reopened when needed');
      return;
    }
    const where = `${conn.endpoint.name} (${conn.endpoint.host}:${conn.endpoint.port})`;
    s.log.warn({ backend: conn.endpoint.name, reason }, 'backend connection lost');
    const bytesForwarded = s.cmd.bytesForwarded;
    if (active && !primary && bytesForwarded === 0 && s.phase === Phase.Relaying) {
      // A replica read that may not be retried: this command fails, the session (its state is on the primary) goes on.
      s.cmd.inflight = null;
      s.replyLocal(ErrorCode.BACKEND_LOST, `Lost connection to backend ${where} during query: ${reason}`);
      return;
    }
    if (s.phase === Phase.Relaying && bytesForwarded > 0) {
      // Part of a result already reached the client: nothing valid can follow it.
      s.close(`backend lost mid-response: ${reason}`);
      return;
    }
    const inCommand = s.phase === Phase.Relaying || s.phase === Phase.Infile || s.phase === Phase.Working;
    const seq = inCommand ? s.cmd.responseSeq : 0;
    const during = s.phase === Phase.Relaying || s.phase === Phase.Infile ? ' during query' : '';
    s.sendErr(ErrorCode.BACKEND_LOST, `Lost connection to backend ${where}${during}: ${reason}`, seq);
    s.close(`backend lost: ${reason}`);
  }
}
