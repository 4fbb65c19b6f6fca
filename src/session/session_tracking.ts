/**
 * The session's side of session-state tracking. Every backend connection
 * tracks with the proxy's settings (every variable, the schema, "something
 * else changed", the transaction state); the server's reports are recorded
 * for the command that got them, and each OK goes to the client as the
 * server would have sent it with the client's own settings (none at all for
 * a client that did not negotiate CLIENT_SESSION_TRACK).
 *
 * A client that changes its own session_track_* settings replaces the
 * proxy's on that connection: the proxy reads what the client set (the
 * client's view from then on) and sets its own again before the next command.
 */
import { Capability, Command } from '../protocol/constants.js';
import {
  eofWithoutStateFlag,
  NO_TRACKING,
  okForClient,
  parseTrackingView,
  readSessionTrack,
  SessionTrackType,
  TRACKING_VARIABLES,
  type ClientTrackingView,
  type SessionTrackEntry,
} from '../protocol/session_track.js';
import { classify, type ClassifiedStatement } from '../sql/classifier.js';
import type { BackendConnection } from '../backend/backend_connection.js';
import type { ClientSession } from './client_session.js';
import { emptyChanges, opaqueStatement, type TrackedChanges } from './tracked_changes.js';

const TRACKING_NAMES = new Set<string>(TRACKING_VARIABLES);

/** Whether a statement's text (bytes, or latin1 text) contains "_track_" in any case: it may set a session_track_* variable. */
export function mentionsTracking(text: Buffer | string | null): boolean {
  if (text === null) return false;
  const payload = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  for (let i = payload.indexOf(0x5f); i >= 0 && i + 7 <= payload.length; i = payload.indexOf(0x5f, i + 1)) {
    if (payload[i + 6] === 0x5f && payload.toString('latin1', i + 1, i + 6).toLowerCase() === 'track') return true;
  }
  return false;
}

/** The view with the tracking settings an OK reports (with '*', the server reports each one set). */
function withReportedSettings(view: ClientTrackingView, entries: readonly SessionTrackEntry[]): ClientTrackingView {
  let next = view;
  for (const e of entries) {
    if (e.type !== SessionTrackType.SystemVariable || !TRACKING_NAMES.has(e.name)) continue;
    const row: (string | null)[] = [null, null, null, null];
    row[TRACKING_VARIABLES.indexOf(e.name as (typeof TRACKING_VARIABLES)[number])] = e.value;
    const parsed = parseTrackingView(row);
    if (e.name === 'session_track_system_variables') next = { ...next, variables: parsed.variables };
    else if (e.name === 'session_track_schema') next = { ...next, schema: parsed.schema };
    else if (e.name === 'session_track_state_change') next = { ...next, stateChange: parsed.stateChange };
    else next = { ...next, transactionInfo: parsed.transactionInfo };
  }
  return next;
}

/** The literal a tracking assignment sets, as the server reads it; null for an expression the proxy does not evaluate. */
function literalOf(value: string): string | null {
  const v = value.trim();
  const quoted = /^'((?:[^'\\]|'')*)'$/.exec(v) ?? /^"((?:[^"\\]|"")*)"$/.exec(v);
  if (quoted) return quoted[1];
  return /^[A-Za-z0-9_]+$/.test(v) ? v : null;
}

export class SessionTracking {
  /**
   * The client's own session_track_* settings: what it expects to be told
   * (with CLIENT_SESSION_TRACK), and what sets the flag in its EOFs (also
   * without). Null until login, or when the login's settings could not be read.
   */
  private view: ClientTrackingView | null = null;
  /** The settings a fresh login has: what DEFAULT and COM_RESET_CONNECTION give back. */
  private loginView: ClientTrackingView | null = null;

  constructor(private readonly s: ClientSession) {}

  /** The client logged in (or changed user) on `conn`: its settings are the login's. */
  start(conn: BackendConnection): void {
    this.loginView = conn.loginTrackingView;
    this.view = conn.loginTrackingView;
  }

  /** The login OK as the client would get it directly; null when its report is malformed (the session is ended). */
  loginOk(conn: BackendConnection): Buffer | null {
    try {
      // An OK (not a plain EOF) always comes back as a payload.
      return this.forClient(conn, conn.loginOk, false, null) ?? conn.loginOk;
    } catch (err) {
      this.s.failSession(err as Error);
      return null;
    }
  }

  /** The scanner's hook: records what a terminator reports and returns what the client gets instead (null: as it is). */
  readonly onSessionState = (payload: Buffer, plainEof: boolean): Buffer | null => {
    const s = this.s;
    const conn = s.backend;
    if (!conn) return null;
    const cmd = s.cmd;
    return this.forClient(conn, payload, plainEof, conn.tracksState ? (cmd.tracked ??= emptyChanges()) : null);
  };

  private forClient(conn: BackendConnection, payload: Buffer, plainEof: boolean, record: TrackedChanges | null): Buffer | null {
    const clientTracks = (this.s.capabilities & Capability.SESSION_TRACK) !== 0;
    // The client asked for tracking and the connection tracks with the client's own settings: the reports are its.
    if (!conn.tracksState && clientTracks) return plainEof ? null : payload;
    if (plainEof) {
      // An EOF says the state changed but not how. A client without tracking gets the server's raw status in
      // EOFs (the server does not clear the flag for it). A client that tracks everything, or the transaction
      // state (a result set changes it), would see the flag; one that tracks a few variables most likely would
      // not (a procedure's SET sql_mode before its SELECT, say).
      if (record) record.stateChanged = record.unreported = true;
      const view = this.view;
      const wouldSee = view === null || view.stateChange || view.variables === 'all' || view.transactionInfo !== 'OFF';
      return wouldSee ? null : eofWithoutStateFlag(payload);
    }
    const entries = readSessionTrack(payload);
    if (record) {
      for (const e of entries) {
        if (e.type === SessionTrackType.SystemVariable) {
          record.variables.delete(e.name);
          record.variables.set(e.name, e.value);
        } else if (e.type === SessionTrackType.Schema) record.schema = e.value;
        else if (e.type === SessionTrackType.StateChange) record.stateChanged = true;
        else if (e.type === SessionTrackType.TransactionState) record.transactionState = e.value;
      }
    }
    if (this.view === null) return okForClient(payload, entries, clientTracks ? NO_TRACKING : null);
    const { view, stateChangeSeen } = this.viewFor(this.statement());
    // The server reports a tracking setting it now tracks: its value is the truth (and the client's view from here on).
    this.view = withReportedSettings(view, entries);
    if (!clientTracks) return okForClient(payload, entries, null);
    return okForClient(payload, entries, stateChangeSeen === null ? this.view : { ...this.view, stateChange: stateChangeSeen });
  }

  /** The command's statement: classified here when nothing else needed it (only for commands that change state). */
  private statement(): ClassifiedStatement | null {
    const cmd = this.s.cmd;
    if (cmd.statement === null && cmd.queryPayload !== null) cmd.statement = classify(cmd.queryPayload.toString('latin1', 1));
    return cmd.statement;
  }

  /**
   * The client's view after `statement`: a statement that sets tracking is
   * reported with the settings it sets. Its own OK carries "something
   * changed" when state-change tracking was on after any of its assignments
   * (`stateChangeSeen`; null when it sets no tracking variable).
   */
  private viewFor(statement: ClassifiedStatement | null): { view: ClientTrackingView; stateChangeSeen: boolean | null } {
    const view = this.view!;
    const assignments = statement?.type === 'set' && !statement.setsGlobal ? statement.sessionAssignments : null;
    if (!assignments?.some((a) => TRACKING_NAMES.has(a.name))) return { view, stateChangeSeen: null };
    const row: (string | null)[] = [
      view.variables === 'all' ? '*' : [...view.variables].join(','),
      view.schema ? 'ON' : 'OFF',
      view.stateChange ? 'ON' : 'OFF',
      view.transactionInfo,
    ];
    const defaults = this.loginView!;
    const defaultRow = [defaults.variables === 'all' ? '*' : [...defaults.variables].join(','), defaults.schema ? 'ON' : 'OFF', defaults.stateChange ? 'ON' : 'OFF', defaults.transactionInfo];
    let stateChangeSeen = false;
    for (const a of assignments) {
      const i = TRACKING_VARIABLES.indexOf(a.name as (typeof TRACKING_VARIABLES)[number]);
      const literal = i < 0 ? null : literalOf(a.value);
      if (literal !== null) row[i] = literal.toUpperCase() === 'DEFAULT' ? defaultRow[i] : literal;
      // Each assignment is a change, marked by the state-change tracker if it is on by then.
      if (parseTrackingView(row).stateChange) stateChangeSeen = true;
    }
    return { view: parseTrackingView(row), stateChangeSeen };
  }

  /**
   * A command completed on `conn`. Returns a promise when the proxy must set
   * its tracking again first: after COM_RESET_CONNECTION, a SET of a
   * session_track_* variable, or a procedure or compound statement that
   * reported a change (it may have set one).
   */
  afterCommand(conn: BackendConnection | null, code: number, ok: boolean, prepared: ClassifiedStatement | null): Promise<void> | void {
    if (!conn || conn.closed || !(conn.capabilities & Capability.SESSION_TRACK) || !this.loginView) return;
    const cmd = this.s.cmd;
    const reset = code === Command.RESET_CONNECTION && ok;
    const reportedTracking = cmd.tracked !== null && [...cmd.tracked.variables.keys()].some((n) => TRACKING_NAMES.has(n));
    // A statement that reported nothing and names no tracking variable changed no tracking setting (cheap test first).
    if (!reset && !reportedTracking && cmd.tracked === null && !mentionsTracking(cmd.queryPayload) && !mentionsTracking(prepared?.sql ?? null)) return;
    // COM_STMT_EXECUTE: the statement it prepared.
    const statement = code === Command.QUERY ? this.statement() : prepared;
    const assigned = statement && !statement.setsGlobal ? (statement.sessionAssignments?.filter((a) => TRACKING_NAMES.has(a.name)).map((a) => a.name) ?? []) : [];
    const opaque = statement !== null && opaqueStatement(statement) && this.s.cmd.tracked?.stateChanged === true;
    if (!reset && assigned.length === 0 && !opaque && !reportedTracking) return;
    return conn.restoreTracking(true).then((row) => {
      if (!row || this.view === null) return;
      const read = parseTrackingView(row);
      if (reset) {
        this.view = read;
        return;
      }
      // A setting the client assigned is its own now; after a procedure, one that differs from the proxy's is.
      const take = (name: string, differs: boolean) => assigned.includes(name) || (opaque && differs);
      const view = this.view;
      this.view = {
        variables: take('session_track_system_variables', read.variables !== 'all') ? read.variables : view.variables,
        schema: take('session_track_schema', !read.schema) ? read.schema : view.schema,
        stateChange: take('session_track_state_change', !read.stateChange) ? read.stateChange : view.stateChange,
        // The proxy leaves transaction info as the client has it.
        transactionInfo: read.transactionInfo,
      };
    });
  }
}
