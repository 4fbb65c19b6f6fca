/**
 * Multiplexing for one session: after each command, its backend connections
 * at rest go back to the login pool unless the server holds something of the
 * session there (why is counted by reason); a connection given back is
 * parked, and taken back as it was when the session needs one again before
 * the pool resets it for someone else. What a statement means for this is
 * decided in multiplexing_rules.ts. Knows links and the pool, not sockets.
 */
import { Command, ServerStatus } from '../protocol/constants.js';
import { callsOnlyBuiltins } from '../sql/builtin_calls.js';
import type { ClassifiedStatement } from '../sql/classifier.js';
import type { BackendDispatcher, Dispatch } from './backend_dispatch.js';
import { forgetStatement, type BackendLink } from './backend_links.js';
import type { ClientSession } from './client_session.js';
import { replayableRead, sessionBound } from './multiplexing_rules.js';

export class Multiplexer {
  private on: boolean | null = null;
  /** Why the session keeps its backend connections until a reset, or null. */
  private sticky: string | null = null;
  /** The last statement's diagnostics cannot be made again by running its text: its connection stays. */
  private keepForDiagnostics = false;
  /** A warning is still listed on the last statement's connection (a later table-less statement keeps the list). */
  private warningsListed = false;
  /** Links parked in the pool unreset: taken back as they are (state, prepared statements) if the pool gives the same connection. */
  private readonly parked = new Map<string, BackendLink>();

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
      (callsStored === null ? callsOnlyBuiltins(statement.keyText) : !callsStored)
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
   * Multiplexing, after a command: the session's connections at rest go back
   * to the login pool (reset there before anyone else gets them) when nothing
   * of the session lives on them. The next command takes one from the pool
   * and replays the session's SET/USE statements on it. The connection that
   * ran the last statement stays when that statement's diagnostics could not
   * be had again; a plain read's text is kept to be run again instead.
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
    for (const link of [...this.d.links.values()]) {
      const conn = link.conn;
      if (conn.closed || conn.busy) continue;
      // An untracked write's GTID is asked of the connection that made it (for a replica read).
      if (this.d.routing && link.server === this.d.primaryServer && this.d.writes.pending) {
        s.ctx.observer.multiplexing('kept', 'write_gtid');
        continue;
      }
      if (link.server === this.d.lastServer && this.d.hitToReplay === null) {
        if (this.keepForDiagnostics) {
          keptForDiagnostics = true;
          continue;
        }
        const text = s.cmd.queryPayload;
        if (text !== null) {
          this.d.hitToReplay = Buffer.from(text.subarray(1));
          this.d.replayIsHit = false;
        }
      }
      this.d.links.delete(link.server);
      s.detachBackend(conn);
      link.parkedAt = conn.resets;
      this.parked.set(link.server, link);
      s.ctx.loginPool.park(conn, login, this);
      released = true;
    }
    if (released) s.ctx.observer.multiplexing('released', null);
    else if (keptForDiagnostics) s.ctx.observer.multiplexing('kept', 'diagnostics');
  }

  /**
   * The connection this session parked for `server`, taken back at once if it
   * is still parked and unreset (else it is someone else's now, and forgotten).
   */
  retake(server: string, d: Dispatch): BackendLink | undefined {
    const parked = this.parked.get(server);
    if (!parked) return undefined;
    this.parked.delete(server);
    if (parked.conn.resets !== parked.parkedAt || !this.s.ctx.loginPool.unparkOwn(parked.conn, this)) return undefined;
    return this.restore(parked, d);
  }

  /** Its own connection back, unreset: the session state, prepared statements and diagnostics it holds are still right. */
  private restore(link: BackendLink, d: Dispatch): BackendLink {
    this.d.links.set(link.server, link);
    this.s.attachBackend(link.conn);
    for (const id of link.closeLater.splice(0)) link.conn.closeStatement(id);
    if (link.server === this.d.lastServer && !d.replayOfHit) d.replayFirst = null;
    return link;
  }

  /** COM_STMT_CLOSE: a parked connection is not written to; the statement is closed there if the session takes it back (else its reset drops it). */
  closeStatement(id: number): void {
    for (const link of this.parked.values()) {
      const backendId = forgetStatement(link, id);
      if (backendId !== null) link.closeLater.push(backendId);
    }
  }

  /** Parked connections hold the session's state as it was: reset them for anyone, the session will not take them back. */
  unpark(): void {
    if (this.parked.size === 0) return;
    this.parked.clear();
    this.s.ctx.loginPool.unpark(this);
  }
}
