/**
 * What a client session has changed on the server that can change a
 * query's result (default schema, character sets, sql_mode, time_zone and
 * other session variables), learnt from the statements it sends, and the
 * writes it made inside a transaction that still wait for COMMIT before
 * they invalidate cached results.
 *
 * Session variables are tracked as an ordered log of assignments: a later
 * assignment of the same variable with a self-contained value replaces the
 * earlier one, a value that refers to variables (`CONCAT(@@sql_mode, ...)`)
 * is appended. Two sessions share cache entries only if their logs are equal,
 * which can split the cache between equal states but never joins different ones.
 */
import { randomUUID } from 'node:crypto';
import { ServerStatus } from '../protocol/constants.js';
import { assignsFromSubquery, type ClassifiedStatement } from '../sql/classifier.js';
import { opaqueStatement, unexplainedChange, VOLATILE_VARIABLES, type TrackedChanges } from './tracked_changes.js';

/** Variables that cannot change what a SELECT returns. */
const IRRELEVANT_VARIABLES = new Set([
  'autocommit',
  'wait_timeout',
  'interactive_timeout',
  'net_read_timeout',
  'net_write_timeout',
  'net_retry_count',
  'sql_log_bin',
  'profiling',
  'profiling_history_size',
  'innodb_lock_wait_timeout',
  'lock_wait_timeout',
  'max_statement_time',
  'max_execution_time',
  'sql_notes',
  'sql_warnings',
  'session_track_schema',
  'session_track_state_change',
  'session_track_system_variables',
  'session_track_transaction_info',
  'session_track_gtids',
]);

/** SET NAMES and SET CHARACTER SET replace all of these. */
const CHARSET_GROUP = new Set([
  'names',
  'character set',
  'character_set_client',
  'character_set_connection',
  'character_set_results',
  'collation_connection',
]);

const MAX_LOG_ENTRIES = 64;

/** The variables STATE_SNAPSHOT_SQL reads after DATABASE(), in its column order. */
const STATE_SNAPSHOT_VARIABLES = [
  'character_set_client',
  'character_set_connection',
  'character_set_results',
  'collation_connection',
  'sql_mode',
  'time_zone',
  'div_precision_increment',
  'lc_time_names',
  'sql_select_limit',
  'group_concat_max_len',
  'max_sort_length',
  'sql_big_selects',
  'default_week_format',
  'sql_auto_is_null',
] as const;

/** The query that reads back everything tracked, when statements alone cannot tell (after CALL, reset, ...). */
export const STATE_SNAPSHOT_SQL = `SELECT DATABASE(), ${STATE_SNAPSHOT_VARIABLES.map((v) => `@@${v}`).join(', ')}`;

/** Process-wide count of SET GLOBAL seen: a session's "server default" state includes the count at its start. */
let globalEpoch = 0;

/** Whether the last isolation level a log sets is READ UNCOMMITTED. */
function readsUncommitted(log: readonly { name: string; value: string }[]): boolean {
  for (let i = log.length - 1; i >= 0; i--) {
    const e = log[i];
    if (e.name === 'tx_isolation' || e.name === 'transaction_isolation') return /UNCOMMITTED/i.test(e.value);
    if (e.name === 'statement' && /\bISOLATION\s+LEVEL\b/i.test(e.value)) return /\bREAD\s+UNCOMMITTED\b/i.test(e.value);
  }
  return false;
}

/** Whether the last sql_auto_is_null a log sets is on: `WHERE id IS NULL` then finds the last insert, once. */
function autoIsNullOn(log: readonly { name: string; value: string }[]): boolean {
  for (let i = log.length - 1; i >= 0; i--) {
    const e = log[i];
    if (e.name === 'sql_auto_is_null') return /^=?'?(1|ON|TRUE)'?$/i.test(e.value.trim());
    // A snapshot read it back as its last column.
    if (e.name === 'snapshot') return /^(1|ON)$/i.test(e.value.slice(e.value.lastIndexOf('\u0002') + 1));
  }
  return false;
}

/** What a statement's completion asks the cache to invalidate. */
export type Invalidation = { tables: string[] } | { everything: true } | null;

export class SessionState {
  schema: string | null;
  private log: { name: string; value: string }[] | null;
  private key: string | null = null;
  /** Tables written inside the open transaction; `everything` after a write whose tables are unknown. */
  private pending = new Set<string>();
  private pendingEverything = false;

  constructor(schema: string | null, collationId: number) {
    this.schema = schema;
    this.log = [{ name: 'login', value: `${collationId}/${globalEpoch}` }];
  }

  /** Back to a fresh login's state (COM_CHANGE_USER). Pending writes were rolled back by the server. */
  reset(schema: string | null, collationId: number): void {
    this.schema = schema;
    this.lastTemporary = null;
    this.before = [];
    this.log = [{ name: 'login', value: `${collationId}/${globalEpoch}` }];
    this.key = null;
    this.pending.clear();
    this.pendingEverything = false;
  }

  /** The state part of a cache key; null when unknown (a snapshot must be read first). */
  get stateKey(): string | null {
    if (this.log === null) return null;
    if (this.key === null) {
      this.key = this.log.map((e) => `${e.name}=${e.value}`).join('\u0001');
      this.uncommitted = readsUncommitted(this.log);
      this.autoIsNullValue = autoIsNullOn(this.log);
    }
    return this.key;
  }

  /**
   * The session set READ UNCOMMITTED (SET [SESSION] TRANSACTION ISOLATION
   * LEVEL, tx_isolation, transaction_isolation): it sees other sessions'
   * uncommitted rows, so its reads are never stored. Read after stateKey.
   */
  get readUncommitted(): boolean {
    return this.stateKey !== null && this.uncommitted;
  }

  private uncommitted = false;

  /**
   * sql_auto_is_null is on: `WHERE auto_increment_column IS NULL` answers the
   * session's last insert, once, so nothing it reads is stored. Read after stateKey.
   */
  get autoIsNull(): boolean {
    return this.stateKey !== null && this.autoIsNullValue;
  }

  private autoIsNullValue = false;

  get known(): boolean {
    return this.log !== null;
  }

  /** COM_RESET_CONNECTION: variables back to defaults, temporary tables gone; the schema is read back before caching again. */
  connectionReset(): void {
    this.abandonTransaction(false);
    this.before = [];
    this.log = null;
    this.key = null;
    this.lastTemporary = null;
  }

  /** The temporary-table marker, kept across unknown states (only a reset or COM_CHANGE_USER drops it). */
  private lastTemporary: { name: string; value: string } | null = null;

  /** The log before the state became unknown: kept under the snapshot, for variables the snapshot does not read. */
  private before: { name: string; value: string }[] = [];

  markUnknown(): void {
    this.lastTemporary = this.log?.find((e) => e.name === 'temporary') ?? this.lastTemporary;
    if (this.log) this.before = this.log.filter((e) => e.name !== 'temporary' && e.name !== 'snapshot');
    this.log = null;
    this.key = null;
  }

  /** Values read with STATE_SNAPSHOT_SQL, in its column order. */
  setSnapshot(values: (string | null)[]): void {
    this.schema = values[0] ?? null;
    // Temporary tables survive what made the state unknown (CALL, a multi-statement): so does their marker.
    const temporary = this.lastTemporary;
    // What was set before stays in the key too: the snapshot reads only the variables it names.
    this.log = [...this.before, { name: 'snapshot', value: values.slice(1).map((v) => v ?? '\u0000').join('\u0002') }];
    if (temporary) this.log.push(temporary);
    this.key = null;
  }

  initDb(schema: string): void {
    this.schema = schema;
  }

  /**
   * A statement completed; `failed` when it ended in ERR. Updates schema and
   * variables. `tracked`: what the server reported it changed, when the
   * connection tracks session state (null when it reported nothing); the
   * report is then the truth, and the statement's text only fills in what
   * the server cannot report (a role, SET TRANSACTION for the next one).
   */
  statementDone(s: ClassifiedStatement, failed: boolean, tracked: TrackedChanges | null = null, tracking = false, callsFunction: (text: string) => boolean = () => false): void {
    if (tracking) {
      this.trackedDone(s, failed, tracked, callsFunction);
      return;
    }
    if (s.multiStatement) {
      // Any part may SET or USE, and parts may have run before an error: read the state back before caching again.
      this.markUnknown();
      return;
    }
    if (s.type === 'call' || s.keyword === 'EXECUTE' || (s.keyword === 'BEGIN' && s.type === 'other')) {
      // Procedures and compound statements may SET anything, and create temporary tables (the marker survives the snapshot).
      this.privatise(true);
      if (!failed || s.type === 'call') this.markUnknown();
      return;
    }
    this.temporaryMarker(s);
    if (failed) return;
    if (s.type === 'use' && s.useSchema !== null) {
      this.schema = s.useSchema;
      return;
    }
    if (this.dropsState(s)) return;
    if (s.type !== 'set') return;
    if (s.setsGlobal) globalEpoch++;
    const assignments = s.sessionAssignments;
    if (assignments === null) return;
    if (assignments.length === 0) {
      this.transactionStatement(s);
      return;
    }
    if (assignsFromSubquery(s)) {
      // A value computed by a subquery: the text does not tell the value; read the state back.
      this.markUnknown();
      return;
    }
    for (const a of assignments) {
      if (IRRELEVANT_VARIABLES.has(a.name)) continue;
      this.append(a, !a.value.includes('@'));
    }
  }

  /** statementDone on a connection that reports every change. */
  private trackedDone(s: ClassifiedStatement, failed: boolean, tracked: TrackedChanges | null, callsFunction: (text: string) => boolean): void {
    this.temporaryMarker(s);
    // A procedure, EXECUTE or a compound statement may create a temporary table, and MariaDB does not report
    // CREATE TEMPORARY TABLE ... SELECT as a change: from now on this session's results are its own.
    if (opaqueStatement(s) && !s.multiStatement) this.privatise(true);
    if (tracked) {
      if (tracked.schema !== undefined) this.schema = tracked.schema === '' ? null : tracked.schema;
      for (const [name, value] of tracked.variables) {
        if (IRRELEVANT_VARIABLES.has(name) || VOLATILE_VARIABLES.has(name)) continue;
        this.append({ name, value: `=${value}` }, true);
      }
      // What a multi-statement or a stored function changed besides variables and the schema (a temporary
      // table, a role) is reported only as "something changed": from now on this session's results are its own.
      if ((tracked.stateChanged && s.multiStatement) || unexplainedChange(s, tracked, callsFunction)) {
        this.privatise(true);
        // An EOF carried the news without the values, or a part of a multi-statement may have changed what the
        // server reports (session_track_*): read the state back before caching again.
        if (tracked.unreported || s.multiStatement) this.markUnknown();
      }
    }
    if (failed) return;
    if (this.dropsState(s)) return;
    if (s.type !== 'set') return;
    if (s.setsGlobal) globalEpoch++;
    const assignments = s.sessionAssignments;
    if (assignments === null) return;
    if (assignments.length === 0) this.transactionStatement(s);
    // A role is no variable: the server says only that something changed.
    for (const a of assignments) if (a.name === 'role') this.append(a, true);
  }

  /** A CREATE TEMPORARY TABLE: from now on the session's results are its own (the marker stays until a reset). */
  private temporaryMarker(s: ClassifiedStatement): void {
    // A temporary table hides a real one of the same name for this session only.
    if (s.temporaryTable && s.type === 'create') this.privatise(true);
  }

  /** From now on this session's results are its own; `renew`: a new marker even if it had one (a new temporary table may hide another). */
  private privatise(renew = false): void {
    if (this.log === null) return;
    if (renew) this.append({ name: 'temporary', value: randomUUID() }, true);
    else if (!this.log.some((e) => e.name === 'temporary')) this.append({ name: 'temporary', value: randomUUID() }, false);
  }

  /** DROP DATABASE (maybe the session's) and RESET: read the state back. */
  private dropsState(s: ClassifiedStatement): boolean {
    if ((s.type === 'drop' && /^DROP (DATABASE|SCHEMA)\b/i.test(s.digestText)) || s.keyword === 'RESET') {
      this.markUnknown();
      return true;
    }
    return false;
  }

  /** SET [SESSION] TRANSACTION: kept whole, since READ UNCOMMITTED changes what a read sees. (User variables: nothing.) */
  private transactionStatement(s: ClassifiedStatement): void {
    if (!s.setsGlobal && /^SET (SESSION |LOCAL )?TRANSACTION\b/.test(s.digestText)) this.append({ name: 'statement', value: s.keyText }, false);
  }

  private append(entry: { name: string; value: string }, replaces: boolean): void {
    if (this.log === null) return;
    this.key = null;
    if (replaces) {
      const group = entry.name === 'names' || entry.name === 'character set';
      this.log = this.log.filter((e) => (group ? !CHARSET_GROUP.has(e.name) : e.name !== entry.name));
    }
    this.log.push(entry);
    if (this.log.length > MAX_LOG_ENTRIES) this.markUnknown();
  }

  /**
   * A statement that may have written `tables` (null: unknown tables) finished
   * with status `after`, the transaction state being `before` when it started.
   * Returns what to invalidate now: a write inside a transaction invalidates
   * its tables now and again when COMMIT (or an implicit commit) ends it; a
   * clean ROLLBACK drops what waited.
   */
  writeDone(tables: string[] | null | undefined, s: ClassifiedStatement | null, before: number, after: number, warnings: number): Invalidation {
    const wasIn = (before & ServerStatus.IN_TRANS) !== 0;
    const nowIn = (after & ServerStatus.IN_TRANS) !== 0;
    const writes = tables !== undefined && (tables === null || tables.length > 0);
    if (writes && nowIn) {
      if (tables === null) {
        this.pendingEverything = true;
        return null;
      }
      for (const t of tables) this.pending.add(t);
      // Now as well as at COMMIT: a non-transactional table (MyISAM, Aria) written inside a transaction
      // changes for every session at once, and a ROLLBACK does not undo it.
      return { tables: [...tables] };
    }
    let everything = writes && tables === null;
    const now = new Set<string>(writes && tables ? tables : []);
    if (wasIn && !nowIn) {
      // A ROLLBACK with warnings left non-transactional tables changed (warning 1196): treat it as a commit.
      const rolledBack = s !== null && s.type === 'rollback' && warnings === 0;
      if (!rolledBack) {
        everything ||= this.pendingEverything;
        for (const t of this.pending) now.add(t);
      }
      this.pending.clear();
      this.pendingEverything = false;
    }
    if (everything) return { everything: true };
    return now.size > 0 ? { tables: [...now] } : null;
  }

  /** The open transaction wrote tables the proxy could not name: its end invalidates everything. */
  get pendingUnknown(): boolean {
    return this.pendingEverything;
  }

  /** The session ends or is reset while `inFlight` (a COMMIT may have run): pending writes are flushed, else dropped. */
  abandonTransaction(inFlight: boolean): Invalidation {
    const result: Invalidation =
      !inFlight ? null : this.pendingEverything ? { everything: true } : this.pending.size > 0 ? { tables: [...this.pending] } : null;
    this.pending.clear();
    this.pendingEverything = false;
    return result;
  }
}
