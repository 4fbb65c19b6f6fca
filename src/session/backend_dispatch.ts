/**
 * Where a session's command runs: picks the server (the router's decision,
 * the selector's view of the servers), makes the session's connection there
 * ready (opened as the client's user, session state replayed, statement
 * prepared, the session's last write applied), follows a primary that moved,
 * and retries a read whose replica failed before answering. Owns the
 * session's backend links and what pins it to the primary.
 */
import type { CacheRule } from '../config/rules.js';
import { Command, ErrorCode, ServerStatus, type ErrorSpec } from '../protocol/constants.js';
import { planRoute } from '../plan/statement_plan.js';
import { isRead, type RouteDecision, type RouteReason } from '../routing/router.js';
import { asksAboutPrevious, writesData, writtenText, type ClassifiedStatement } from '../sql/classifier.js';
import { mentionsDiagnostics } from './multiplexing_rules.js';
import { Multiplexer } from './multiplexer.js';
import type { BackendEndpoint } from '../config/types.js';
import { BackendConnection, BackendError } from '../backend/backend_connection.js';
import { forgetStatement, newLink, StateLog, type BackendLink } from './backend_links.js';
import { SessionWrites } from './session_writes.js';
import { mentionsTracking } from './session_tracking.js';
import { PrimaryPins } from '../routing/primary_pins.js';
import { Phase, type ClientSession } from './client_session.js';
import type { PreparedStatement } from './prepared_statements.js';
import { unexplainedChange, type TrackedChanges } from './tracked_changes.js';

/** A command on its way to a backend: kept until its response starts, so a failed replica read can go elsewhere. */
export interface Dispatch {
  statement: ClassifiedStatement | null;
  decision: RouteDecision;
  /** The prepared statement the command names: prepared on the chosen connection first. */
  prepared: { id: number; stmt: PreparedStatement } | null;
  /** Writes the command to the chosen connection (session.backend is already set to it). */
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
  /**
   * The previous statement's text, run first (its result discarded) on the chosen connection: this
   * command asks about it (SHOW WARNINGS, FOUND_ROWS()) and the server that answers never ran it
   * (a cache hit, or its connection went back to the pool).
   */
  replayFirst: Buffer | null;
  /** Why a read meant for a replica went to the primary instead (metric reason), or null. */
  fallback: RouteReason | null;
}

/** Route for commands that are not statements (PING, prepare, INIT_DB ...): the session's primary connection. */
export const PRIMARY_COMMAND: RouteDecision = { target: { kind: 'primary' }, reason: 'not_a_read', detail: null };

/** Commands without a statement that change data: refused, like writes, while two servers are writable. */
const WRITING_COMMANDS = new Set<number>([Command.CREATE_DB, Command.DROP_DB, Command.STMT_EXECUTE]);

/** prepareLink already replied to the client: the command is over. */
const ANSWERED = Symbol('answered');

/** What a session loses with its old primary, by pin reason, for the client's error message. */
const LOST_STATE_NAMES: Record<string, string> = {
  temporary_table: 'temporary tables',
  lock_tables: 'table locks (LOCK TABLES)',
  get_lock: 'named locks (GET_LOCK)',
};

/** `SET TRANSACTION ...` (no SESSION/GLOBAL): one transaction's characteristics, not session state. */
const NEXT_TRANSACTION_ONLY = /^SET\s+TRANSACTION\b/i;

type Target = { endpoint: BackendEndpoint; replica: boolean } | { error: ErrorSpec; message: string };

export class BackendDispatcher {
  /** Every backend connection of the session, by server name. */
  readonly links = new Map<string, BackendLink>();
  /** The server this session's primary connection is (or will be) on. */
  primaryServer = '';
  /** SET / USE statements to replay on every connection the session opens. */
  readonly stateLog = new StateLog();
  readonly pins = new PrimaryPins();
  /** The session's last write and which replicas have it (read-your-writes). */
  readonly writes: SessionWrites;
  /** The connection the previous statement ran on (SHOW WARNINGS goes there). */
  lastServer = '';
  /** The text of the previous statement when no connection of the session holds its diagnostics (a cache hit, or multiplexed away). */
  hitToReplay: Buffer | null = null;
  /** Multiplexing: when this session's connections go back to the pool, and taking them back. */
  readonly mux: Multiplexer;

  constructor(private readonly s: ClientSession) {
    this.writes = new SessionWrites(s);
    this.mux = new Multiplexer(s, this);
  }

  /** Whether reads may go to replicas: a monitor watches more than one server. */
  get routing(): boolean {
    return this.s.ctx.selector.monitored;
  }

  /** Every command goes through dispatch (links, state log, pins): reads are routed, or connections are multiplexed. */
  get tracksLinks(): boolean {
    return this.routing || this.mux.enabled;
  }

  get primaryLink(): BackendLink | undefined {
    return this.links.get(this.primaryServer);
  }

  linkOf(conn: BackendConnection): BackendLink | undefined {
    return this.links.get(conn.endpoint.name);
  }

  // ---------------------------------------------------------------- links

  /** Makes `conn` the session's primary connection (login, COM_CHANGE_USER). */
  usePrimary(conn: BackendConnection): void {
    this.primaryServer = conn.endpoint.name;
    this.addLink(conn);
    this.s.activate(conn);
  }

  addLink(conn: BackendConnection): BackendLink {
    // A fresh login has run nothing of the state log yet.
    const link = newLink(conn, 0);
    this.links.set(link.server, link);
    this.s.attachBackend(conn);
    return link;
  }

  /** Closes a connection the session no longer trusts. */
  dropLink(link: BackendLink): void {
    if (this.links.get(link.server) === link) this.links.delete(link.server);
    link.conn.quit();
  }

  /** Forgets `conn` if it is still the session's connection to its server (it closed). */
  forget(conn: BackendConnection): void {
    const link = this.links.get(conn.endpoint.name);
    if (link?.conn === conn) this.links.delete(conn.endpoint.name);
  }

  /**
   * Ends every backend connection of the session (COM_CHANGE_USER, close);
   * `active`, if given, is cut rather than quit. With `keep`, connections at
   * rest (no command and no internal statement in flight) are detached from
   * the session and handed to it instead (the login pool).
   */
  dropAll(active: BackendConnection | null = null, keep: ((conn: BackendConnection) => void) | null = null): void {
    for (const link of this.links.values()) {
      if (link.conn === active) link.conn.destroy();
      else if (keep && !link.conn.closed && !link.conn.busy) {
        link.conn.detach();
        keep(link.conn);
      } else link.conn.quit();
    }
    this.links.clear();
  }

  /** COM_CHANGE_USER: a fresh login has none of the old session's state. */
  resetForNewLogin(): void {
    this.mux.unpark();
    this.dropAll();
    this.stateLog.clear();
    this.pins.reset();
    this.mux.reset();
  }

  /** COM_STMT_CLOSE: closes the statement on every connection that has it. */
  closeStatement(id: number): void {
    for (const link of this.links.values()) {
      const backendId = forgetStatement(link, id);
      if (backendId !== null) link.conn.closeStatement(backendId);
    }
  }

  /** The session's primary connection was reset: other connections hold state it no longer has. */
  afterReset(): void {
    this.mux.unpark();
    for (const link of [...this.links.values()]) {
      if (link.server === this.primaryServer) link.statements.clear();
      else this.dropLink(link);
    }
    this.stateLog.clear();
    this.pins.reset();
    this.mux.reset();
  }

  /** A SET/USE that succeeded on the primary connection: other connections run it before their next command. */
  logState(sql: Buffer): void {
    // A statement prepared before would be prepared again elsewhere under the new state (another database, say).
    if (this.mux.enabled && this.s.statements.size > 0) this.mux.stick('prepared_statement_state');
    this.stateLog.add(sql);
    const primary = this.primaryLink;
    if (primary) primary.appliedState = this.stateLog.latest;
  }

  /** What keeps this session's next statement on the primary. */
  currentPins(): { inTransaction: boolean; pinned: string | null } {
    const status = this.s.serverStatus;
    return {
      inTransaction: (status & ServerStatus.IN_TRANS) !== 0 || (status & ServerStatus.AUTOCOMMIT) === 0,
      pinned: this.pins.reason() ?? (this.stateLog.overflow ? 'session_state' : null),
    };
  }

  /** The primary connection holds something a new connection would not have (multiplexing's reasons included). */
  holdsPrimaryState(): boolean {
    const pins = this.currentPins();
    return pins.inTransaction || pins.pinned !== null || this.mux.stuck;
  }

  /**
   * A KILL in another session's multi-statement text names this session,
   * which holds no primary connection now (multiplexing): it takes one and
   * keeps it, so that the KILL has a thread to end, as on the server.
   */
  async holdPrimaryLink(): Promise<void> {
    this.mux.stick('kill_target');
    const current = this.primaryLink;
    if (current && !current.conn.closed) {
      this.mux.reclaim(current);
      return;
    }
    const s = this.s;
    const endpoint = s.ctx.selector.primary().endpoint ?? s.ctx.selector.configuredPrimary;
    const conn = await s.connectTo(endpoint, s.backendLogin!);
    const now = this.primaryLink;
    if (s.phase === Phase.Closed || (now && !now.conn.closed)) {
      conn.quit();
      return;
    }
    this.primaryServer = endpoint.name;
    this.addLink(conn);
  }

  // ---------------------------------------------------------------- choosing a server

  /**
   * Sends a statement where the router says. `recording`: the result will be
   * stored in the cache, so it is read from the primary (a lagging replica's
   * answer must not be kept for a whole TTL).
   */
  route(
    statement: ClassifiedStatement,
    rule: CacheRule | null,
    recording: boolean,
    prepared: Dispatch['prepared'],
    stateSql: Buffer | null,
    write: (link: BackendLink) => void,
  ): void {
    const previous = this.hitToReplay;
    this.hitToReplay = null;
    const replayFirst = previous !== null && mentionsDiagnostics(statement) ? previous : null;
    if (!this.routing) {
      this.dispatchOrForward(statement, PRIMARY_COMMAND, prepared, stateSql, write, replayFirst);
      return;
    }
    let decision = planRoute(statement, rule, this.currentPins(), recording);
    if (decision.target.kind !== 'primary' && this.s.ctx.catalog?.callsFunction(statement.keyText)) {
      // A stored function may write (a replica would refuse it, or worse, take it) or change the session.
      decision = { target: { kind: 'primary' }, reason: 'stored_function', detail: null };
    }
    if (asksAboutPrevious(statement) && (this.links.has(this.lastServer) || (replayFirst !== null && this.lastServer !== ''))) {
      // Warnings, row counts and found rows belong to the connection that ran the previous statement.
      decision = { target: { kind: 'server', name: this.lastServer }, reason: 'diagnostics', detail: null };
    }
    const consistency = rule?.consistency ?? this.s.ctx.config().routing.consistency;
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
      replayFirst,
    });
  }

  /**
   * The previous statement was a cache hit, and this one asks the server
   * about it (FOUND_ROWS(), ROW_COUNT(), @@warning_count, SHOW WARNINGS):
   * the hit's statement runs on the server first, its result discarded, so
   * the answer describes it. `binary`: a COM_STMT_EXECUTE hit, which cannot
   * be run again as text (nothing is recorded).
   */
  hitServed(sql: Buffer | null): void {
    this.hitToReplay = sql;
  }

  /** Without routing everything runs on the primary connection, as sent; with it, through dispatch. */
  dispatchOrForward(
    statement: ClassifiedStatement | null,
    decision: RouteDecision,
    prepared: Dispatch['prepared'],
    stateSql: Buffer | null,
    write: (link: BackendLink) => void,
    replayFirst: Buffer | null = null,
  ): void {
    const primary = this.primaryLink;
    if (!this.tracksLinks && primary && replayFirst === null && !this.needsResetFirst(primary)) {
      // One server, one connection: it has every statement the client prepared.
      write(primary);
      return;
    }
    this.dispatch({ statement, decision, prepared, write, stateSql, tried: null, retryable: false, retried: false, consistency: 'eventual', forcePrimary: false, fallback: null, replayFirst });
  }

  /**
   * Picks the server for a command, makes sure this session's connection
   * there exists and is ready (session state replayed, the statement
   * prepared, the session's last write applied), then writes the command.
   * Synchronous when the connection is ready, which is the usual case.
   */
  private dispatch(d: Dispatch): void {
    const s = this.s;
    s.cmd.inflight = d;
    const target = this.resolveTarget(d);
    if ('error' in target) {
      s.replyLocal(target.error, target.message);
      return;
    }
    const { endpoint, replica } = target;
    const link = this.links.get(endpoint.name);
    if (link !== undefined && link.lent) this.mux.reclaim(link);
    if (link && !link.conn.closed && this.linkReady(link, d, replica)) {
      this.sendOn(link, d, replica);
      return;
    }
    s.phase = Phase.Working;
    this.prepareLink(endpoint, link, d, replica).then(
      (ready) => {
        if (s.phase === Phase.Closed || ready === ANSWERED) return;
        if (ready) this.sendOn(ready, d, replica);
        else this.dispatch(d);
      },
      (err: Error) => {
        if (s.phase === Phase.Closed) return;
        if (err instanceof BackendError && !replica) {
          s.log.warn({ backend: endpoint.name, err: err.message, code: ErrorCode.BACKEND_UNREACHABLE.code }, 'backend unreachable; the statement fails');
          s.replyLocal(ErrorCode.BACKEND_UNREACHABLE, `wirecache: ${err.message}`);
          return;
        }
        s.failSession(err);
      },
    );
  }

  private resolveTarget(d: Dispatch): Target {
    const t = d.decision.target;
    const selector = this.s.ctx.selector;
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
  private primaryTarget(d: Dispatch): Target {
    const s = this.s;
    const choice = s.ctx.selector.primary();
    const current = this.primaryLink;
    if (!choice.endpoint) {
      // Two writable servers: the proxy will not guess which one is the primary.
      // Reads, SET, BEGIN and ROLLBACK change no data; COMMIT would make a transaction's writes durable on a guess.
      const st = d.statement;
      const harmless = st !== null ? !writesData(st) && st.type !== 'commit' : !WRITING_COMMANDS.has(s.cmd.code);
      if (harmless && current && !current.conn.closed) return { endpoint: current.conn.endpoint, replica: false };
      s.ctx.observer.writeRefused('writable_conflict');
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
    const s = this.s;
    const from = this.primaryServer;
    const old = this.links.get(from);
    const pins = this.currentPins();
    // IN_TRANS also covers autocommit=0 once a statement has run since the last COMMIT.
    const hadTransaction = (s.serverStatus & ServerStatus.IN_TRANS) !== 0;
    const lostState = old !== undefined && !old.conn.closed ? (hadTransaction ? 'transaction' : pins.pinned) : null;
    if (old) {
      this.links.delete(from);
      old.conn.quit();
    }
    this.primaryServer = next.name;
    this.pins.reset();
    s.serverStatus = (s.serverStatus & ~ServerStatus.IN_TRANS) | ServerStatus.AUTOCOMMIT;
    s.log.warn({ from, to: next.name, lost: lostState }, 'primary moved; the session follows it');
    if (!lostState) return null;
    s.ctx.observer.primaryMoveInterrupted(lostState === 'transaction' ? 'transaction' : 'session_state');
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

  // ---------------------------------------------------------------- making a link ready

  /**
   * `link`'s connection still holds another client's diagnostics (handed
   * over unreset) and the command in flight neither replaces them (a plain
   * read of a table) nor leaves them alone (a ping): it is reset first.
   */
  private needsResetFirst(link: BackendLink): boolean {
    return link.conn.inheritedDiagnostics && this.s.cmd.code !== Command.PING && !this.mux.replacesInheritedDiagnostics();
  }

  /** Whether `link` can take the command now, with nothing to run on it first. */
  private linkReady(link: BackendLink, d: Dispatch, replica: boolean): boolean {
    if (link.appliedState !== this.stateLog.latest || d.replayFirst !== null || this.needsResetFirst(link)) return false;
    if (d.prepared && !link.statements.has(d.prepared.id)) return false;
    if (!replica || d.consistency !== 'session') return true;
    return this.writes.covered(link);
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
    const s = this.s;
    const giveUp = (why: string): null => {
      s.log.info({ server: endpoint.name, why }, 'server cannot take this command; trying another');
      (d.tried ??= new Set()).add(endpoint.name);
      return null;
    };
    let link = existing && !existing.conn.closed ? existing : undefined;
    if (!link) {
      if (existing) this.links.delete(endpoint.name);
      let conn: BackendConnection;
      try {
        conn = await s.connectTo(endpoint, s.backendLogin!);
      } catch (err) {
        if (!replica) throw err;
        s.ctx.selector.suspect(endpoint.name);
        return giveUp((err as Error).message);
      }
      if (s.phase === Phase.Closed) {
        conn.quit();
        return ANSWERED;
      }
      if (!replica && endpoint.name === this.primaryServer) s.ctx.learnedBackend(conn);
      link = this.addLink(conn);
    }
    // Held while it is being prepared: a session that ends meanwhile must not hand it to the login pool
    // between two of these statements (the next one would then run on another client's connection).
    link.conn.holds++;
    try {
      const conn = link.conn;
      // In one round trip: a multiplexed session replays its state on most statements.
      let pending = this.stateLog.pending(link.appliedState);
      if (conn.inheritedDiagnostics && (this.needsResetFirst(link) || pending.length > 0 || (d.prepared !== null && !link.statements.has(d.prepared.id)) || d.replayFirst !== null)) {
        // The previous client's diagnostics are on it: before anything else runs there, the reset the pool skipped.
        if (!(await s.ctx.loginPool.resetNow(conn, s.backendLogin!))) {
          this.dropLink(link);
          conn.destroy();
          throw new BackendError(`backend '${endpoint.name}': resetting a kept connection failed`, endpoint);
        }
        link.appliedState = 0;
        pending = this.stateLog.pending(0);
      }
      let replacedTracking = false;
      const results = pending.length > 0 ? await link.conn.queries(pending) : [];
      for (let i = 0; i < pending.length; i++) {
        const error = results[i].error;
        if (error && replica) {
          this.dropLink(link);
          return giveUp(`replaying session state failed: ${error.message}`);
        }
        if (error && this.mux.enabled) {
          // The statement would run without the session's state (its database, say): it fails instead.
          this.dropLink(link);
          s.replyLocal({ code: error.code, sqlState: error.sqlState }, `wirecache: the session's state could not be restored on ${endpoint.name}: ${error.message}`);
          return ANSWERED;
        }
        if (error) s.log.warn({ server: endpoint.name, error: error.message }, 'replaying session state on the primary connection failed');
        replacedTracking ||= mentionsTracking(pending[i]);
      }
      // The client's own session_track_* settings replaced the proxy's on this connection: set them again.
      if (replacedTracking && link.conn.tracksState) await link.conn.restoreTracking(false);
      link.appliedState = this.stateLog.latest;
      if (d.prepared && !link.statements.has(d.prepared.id)) {
        const prepared = await link.conn.prepare(d.prepared.stmt.sql);
        if (prepared.error) {
          if (replica) return giveUp(`preparing the statement failed: ${prepared.error.message}`);
          s.replyLocal({ code: prepared.error.code, sqlState: prepared.error.sqlState }, prepared.error.message);
          return ANSWERED;
        }
        link.statements.set(d.prepared.id, { backendId: prepared.statementId, types: null });
      }
      if (replica && d.consistency === 'session' && !(await this.writes.waitFor(link, this.primaryLink))) {
        d.forcePrimary = true;
        d.fallback = 'consistency_timeout';
        return null;
      }
      if (d.replayFirst !== null) {
        // Its warnings, FOUND_ROWS() and ROW_COUNT() are what this command asks about; its result is not wanted.
        await link.conn.run(d.replayFirst);
        d.replayFirst = null;
      }
      return link;
    } catch (err) {
      if (!replica) throw err;
      this.dropLink(link);
      return giveUp((err as Error).message);
    } finally {
      link.conn.holds--;
    }
  }

  /** Writes the command on `link`, which becomes the connection in flight. */
  private sendOn(link: BackendLink, d: Dispatch, replica: boolean): void {
    const s = this.s;
    s.activate(link.conn);
    s.cmd.statDestination = replica ? 'replica' : 'primary';
    if (this.routing) s.ctx.observer.statementRouted(replica ? 'replica' : 'primary', link.server, (!replica && d.fallback) || d.decision.reason);
    d.write(link);
  }

  // ---------------------------------------------------------------- after the response

  /**
   * The command in flight lost its replica before any byte reached the
   * client: a read runs once more on another server. Returns false when it may not.
   */
  retryElsewhere(conn: BackendConnection, reason: string): boolean {
    const s = this.s;
    const d = s.cmd.inflight;
    if (!d || !d.retryable || d.retried || s.cmd.bytesForwarded > 0 || s.phase !== Phase.Relaying || conn !== s.backend) return false;
    d.retried = true;
    (d.tried ??= new Set()).add(conn.endpoint.name);
    this.forget(conn);
    s.ctx.selector.suspect(conn.endpoint.name);
    s.ctx.observer.readRetried(conn.endpoint.name);
    s.log.warn({ server: conn.endpoint.name, reason }, 'replica failed before answering; retrying the read on another server');
    this.dispatch(d);
    return true;
  }

  /**
   * What a completed statement changed in the session: state to replay,
   * pins, its GTID. `tracked`: what the server reported it changed (null when
   * nothing, or when the connection does not track).
   */
  afterStatement(d: Dispatch, ok: boolean, schema: string | null, tracked: TrackedChanges | null): void {
    const conn = this.s.backend;
    const statement = d.statement;
    if (!conn) return;
    this.lastServer = conn.endpoint.name;
    const code = this.s.cmd.code;
    const isStatement = code === Command.QUERY || code === Command.STMT_EXECUTE;
    // A PING or a prepare in between leaves the previous statement's diagnostics as they were.
    if (isStatement) this.hitToReplay = null;
    const onPrimary = conn.endpoint.name === this.primaryServer;
    if (tracked) this.followReport(conn, statement, tracked, onPrimary);
    if (this.mux.enabled) this.mux.noteCommand(statement, isStatement);
    if (!statement || !ok || !onPrimary) return;
    this.pins.afterStatement(statement, schema);
    if ((statement.type === 'set' && !statement.setsGlobal) || statement.type === 'use') {
      // SET TRANSACTION without SESSION applies to the next transaction only: nothing to replay.
      if (statement.multiStatement || NEXT_TRANSACTION_ONLY.test(writtenText(statement))) return;
      if (d.stateSql === null) {
        // A SET prepared with placeholders cannot be replayed as text.
        this.pins.untrack('prepared_set');
        return;
      }
      this.logState(d.stateSql);
      return;
    }
    // A tracked connection reports the GTID of every write (last_gtid): nothing to ask later.
    if (!conn.tracksState && !(isRead(statement) && statement.needsPrimary === null)) this.writes.wrote();
  }

  /** The server's report: the session's last write GTID, and state a statement changed that its text does not show. */
  private followReport(conn: BackendConnection, statement: ClassifiedStatement | null, tracked: TrackedChanges, onPrimary: boolean): void {
    if (onPrimary) for (const [name, value] of tracked.variables) this.pins.variableSet(name, value);
    const gtid = tracked.variables.get('last_gtid');
    if (gtid !== undefined && onPrimary) this.writes.reported(gtid);
    const catalog = this.s.ctx.catalog;
    if (!unexplainedChange(statement, tracked, (text) => catalog?.callsFunction(text) ?? false)) return;
    // A stored function with side effects, say: what it changed lives on this connection only (reads calling
    // one run on the primary). The session stays on the primary until a reset.
    this.pins.untrack('server_reported_state');
    if (!onPrimary) this.s.log.warn({ server: conn.endpoint.name }, 'a statement changed session state on a replica; the session stays on the primary');
  }
}
