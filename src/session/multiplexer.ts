/**
 * Multiplexing for one session: after each command, its backend connections
 * at rest are lent to the login pool unless the server holds something of
 * the session there (why is counted by reason). A lent connection stays with
 * the session, unreset, and the session simply takes it back when it needs
 * it again; the pool takes it (and resets it for someone else) when the
 * session has not come back within a moment, or when another session needs
 * it at a limit. What a statement means for this is decided in
 * multiplexing_rules.ts. Knows links and the pool, not sockets.
 */
import type { BackendConnection } from '../backend/backend_connection.js';
import type { Lender } from '../backend/login_pool.js';
import { quotingAmbiguous } from '../cache/cache_policy.js';
import { Command, ServerStatus } from '../protocol/constants.js';
import type { ClassifiedStatement } from '../sql/classifier.js';
import type { BackendDispatcher } from './backend_dispatch.js';
import type { BackendLink } from './backend_links.js';
import { Phase, type ClientSession } from './client_session.js';
import { leavesNoState, mentionsDiagnostics, replayableRead, sessionBound, statementCallsOnlyBuiltins } from './multiplexing_rules.js';

export class Multiplexer implements Lender {
  private on: boolean | null = null;
  /** Why the session keeps its backend connections until a reset, or null. */
  private sticky: string | null = null;
  /** The last statement's diagnostics cannot be made again by running its text: its connection stays. */
  private keepForDiagnostics = false;
  /** A warning is still listed on the last statement's connection (a later table-less statement keeps the list). */
  private warningsListed = false;

  constructor(
    private readonly s: ClientSession,
    private readonly d: BackendDispatcher,
  ) {}

  /** pool.multiplexing, as it was when the session started (a pool that keeps nothing has nothing to share). */
  get enabled(): boolean {
    if (this.on === null) {
      const pool = this.s.ctx.config().pool;
      this.on = pool.multiplexing && pool.maxIdle > 0;
    }
    return this.on;
  }

  /** Something of the session lives on its connection until a reset. */
  get stuck(): boolean {
    return this.sticky !== null;
  }

  /** COM_RESET_CONNECTION or COM_CHANGE_USER: nothing is held any more. */
  reset(): void {
    this.sticky = null;
  }

  /** What a completed command means for handing this session's connections to others. */
  noteCommand(statement: ClassifiedStatement | null, isStatement: boolean): void {
    const s = this.s;
    if (s.scanner.insertIdSeen) this.stick('last_insert_id');
    if (!isStatement) return;
    const warnings = s.scanner.lastWarnings;
    // MariaDB keeps a warning listed through later statements that use no table (SELECT 1, DO 1).
    if (warnings > 0) this.warningsListed = true;
    else if (statement !== null && (statement.tablesRead.length > 0 || statement.tablesWritten === null || statement.tablesWritten.length > 0)) this.warningsListed = false;
    // What the server answers later about this statement (SHOW WARNINGS, FOUND_ROWS(), ROW_COUNT()) lives on its
    // connection. A plain read's answers come back by running its text again; anything else keeps the connection.
    // A read that may call a stored function is not run twice: without the function list, only built-in calls.
    if (statement === null) {
      this.keepForDiagnostics = true;
      return;
    }
    const catalog = s.ctx.catalog;
    const callsStored = catalog ? catalog.callsFunction(statement.keyText) : null;
    this.keepForDiagnostics = !(
      s.cmd.code === Command.QUERY &&
      !this.warningsListed &&
      replayableRead(statement) &&
      (callsStored === null ? statementCallsOnlyBuiltins(statement) : !callsStored)
    );
    const bound = sessionBound(statement) ?? (callsStored ? 'stored_function' : null);
    if (bound !== null) this.stick(bound);
  }

  /** The session holds something only its connection knows, until a reset or COM_CHANGE_USER. */
  stick(reason: string): void {
    this.sticky ??= reason;
  }

  /** Why this session keeps its backend connections now, or null when they may go back to the pool. */
  heldBy(): string | null {
    const s = this.s;
    if (this.sticky !== null) return this.sticky;
    if (s.roleTouched) return 'role';
    const status = s.serverStatus;
    if ((status & ServerStatus.IN_TRANS) !== 0 || (status & ServerStatus.AUTOCOMMIT) === 0) return 'transaction';
    return this.d.pins.reason() ?? (this.d.stateLog.overflow ? 'session_state' : null);
  }

  /**
   * Multiplexing, after a command: the session's connections at rest are
   * lent to the login pool when nothing of the session lives on them. The
   * next command takes its own back as it is; one the pool took meanwhile
   * (reset for someone else) is replaced from the pool, and the session's
   * SET/USE statements are replayed on it. The connection that ran the last
   * statement stays when that statement's diagnostics could not be had
   * again; a plain read's text is kept to be run again instead.
   */
  releaseIdle(): void {
    const s = this.s;
    const login = s.backendLogin;
    if (!this.enabled || login === null || this.d.links.size === 0) return;
    const held = this.heldBy();
    if (held !== null) {
      s.ctx.observer.multiplexing('kept', held);
      return;
    }
    let released = false;
    let keptForDiagnostics = false;
    for (const link of this.d.links.values()) {
      const conn = link.conn;
      // Lent already (untouched since): it keeps its place in the pool's order.
      if (link.lent || conn.closed || conn.busy) continue;
      // An untracked write's GTID is asked of the connection that made it (for a replica read).
      if (this.d.routing && link.server === this.d.primaryServer && this.d.writes.pending) {
        s.ctx.observer.multiplexing('kept', 'write_gtid');
        continue;
      }
      let text: Buffer | null = null;
      if (link.server === this.d.lastServer && this.d.hitToReplay === null) {
        if (this.keepForDiagnostics) {
          keptForDiagnostics = true;
          continue;
        }
        text = s.cmd.queryPayload;
      }
      link.lent = true;
      link.lentText = text;
      s.ctx.loginPool.lend(conn, login, this);
      released = true;
    }
    if (released) s.ctx.observer.multiplexing('released', null);
    else if (keptForDiagnostics) s.ctx.observer.multiplexing('kept', 'diagnostics');
  }

  /**
   * The command in flight leaves nothing of the session on its connection
   * (which may then go to anyone unreset): a ping, or a COM_QUERY of a
   * plain read (multiplexing_rules.leavesNoState).
   */
  commandLeavesNoState(): boolean {
    const s = this.s;
    const cmd = s.cmd;
    if (cmd.code === Command.PING) return true;
    const statement = cmd.statement;
    if (cmd.code !== Command.QUERY || statement === null) return false;
    if (cmd.leavesNoState === null) {
      // The server may read a backslash or a double quote otherwise than the classifier (sql_mode): not plain then.
      if (quotingAmbiguous(statement, s.serverStatus)) cmd.leavesNoState = false;
      else {
        // A connection that ran only plain reads still has its login's database (USE and COM_INIT_DB are not plain).
        const catalog = s.ctx.catalog;
        const database = s.backendLogin?.database ?? null;
        cmd.leavesNoState = leavesNoState(statement, catalog !== null && catalog.onlyBaseTables(statement.tablesRead, database));
      }
    }
    return cmd.leavesNoState;
  }

  /**
   * The command in flight replaces the diagnostics a connection handed over
   * unreset still holds (BackendConnection.inheritedDiagnostics): a plain
   * read of a table that does not ask about them. Any other command but a
   * ping gets the connection reset first.
   */
  replacesInheritedDiagnostics(): boolean {
    const statement = this.s.cmd.statement;
    return this.s.cmd.code === Command.QUERY && statement !== null && statement.type === 'select' && !mentionsDiagnostics(statement) && this.commandLeavesNoState();
  }

  /** The session uses `link` again: the pool no longer may take it. */
  reclaim(link: BackendLink): void {
    if (!link.lent) return;
    link.lent = false;
    link.lentText = null;
    this.s.ctx.loginPool.reclaim(link.conn, this);
  }

  /**
   * The pool takes `conn`, lent and not taken back: the session lets go of
   * it. When it ran the session's last statement, that statement's text is
   * kept to be run again before a question about it (SHOW WARNINGS,
   * FOUND_ROWS()) on whatever connection the session has next.
   */
  surrender(conn: BackendConnection): boolean {
    const d = this.d;
    const link = d.links.get(conn.endpoint.name);
    if (link === undefined || link.conn !== conn || !link.lent || this.s.phase === Phase.Closed) return false;
    const text = link.lentText;
    link.lent = false;
    link.lentText = null;
    if (text !== null && link.server === d.lastServer && d.hitToReplay === null) {
      d.hitToReplay = Buffer.from(text.subarray(1));
    }
    d.links.delete(link.server);
    this.s.detachBackend(conn);
    return true;
  }

  /** The session ends, is reset or changes user: what it lent is its own again, to be released, reset or closed with it. */
  unpark(): void {
    for (const link of this.d.links.values()) this.reclaim(link);
  }
}
