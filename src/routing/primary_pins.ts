import { assignsFromSubquery, qualifiedTableName, type ClassifiedStatement } from '../sql/classifier.js';

/**
 * What keeps a session on its primary connection after a statement: temporary
 * tables (until all are dropped), LOCK TABLES (until UNLOCK TABLES), named
 * locks from GET_LOCK (until released as often, or RELEASE_ALL_LOCKS), and
 * state the proxy cannot follow (a CALL, a multi-statement that changed
 * session state): that lasts until the session is reset or ends.
 */
export class PrimaryPins {
  private readonly temporaryTables = new Set<string>();
  private tablesLocked = false;
  private namedLocks = 0;
  private untracked: string | null = null;
  /** READ UNCOMMITTED sees the primary's uncommitted rows, which no replica has. */
  private readUncommitted = false;
  /** sql_auto_is_null: `WHERE id IS NULL` finds the session's last insert, made on the primary. */
  private autoIsNull = false;

  /** Why the session must stay on the primary, or null. */
  reason(): string | null {
    if (this.untracked) return this.untracked;
    if (this.temporaryTables.size > 0) return 'temporary_table';
    if (this.tablesLocked) return 'lock_tables';
    if (this.namedLocks > 0) return 'get_lock';
    if (this.readUncommitted || this.autoIsNull) return 'session_variable';
    return null;
  }

  /** A session variable's new value (from a SET, or as the server reported it). */
  variableSet(name: string, value: string): void {
    if (name === 'tx_isolation' || name === 'transaction_isolation') this.readUncommitted = /UNCOMMITTED/i.test(value);
    else if (name === 'sql_auto_is_null') this.autoIsNull = /^\s*'?(1|ON|TRUE)'?\s*$/i.test(value);
  }

  /** A statement that succeeded on the primary. `schema` qualifies bare table names. */
  afterStatement(s: ClassifiedStatement, schema: string | null): void {
    // State the proxy cannot replay elsewhere: what EXECUTE [IMMEDIATE] or a compound statement ran is
    // not known, a SQL-level prepared statement lives on this connection only, and a SET whose value is a
    // subquery would be computed again, maybe differently, on another server.
    if (s.keyword === 'EXECUTE' || s.keyword === 'PREPARE') {
      this.untracked ??= s.keyword === 'PREPARE' ? 'sql_prepared_statement' : 'execute';
      return;
    }
    if (s.keyword === 'BEGIN' && s.type === 'other') {
      this.untracked ??= 'compound_statement';
      return;
    }
    if (assignsFromSubquery(s)) {
      this.untracked ??= 'set_subquery';
      return;
    }
    if (s.multiStatement && (s.sessionAssignments !== null || s.useSchema !== null || s.temporaryTable || s.namedLock !== null || s.locksTables)) {
      this.untracked = 'multi_statement_state';
      return;
    }
    if (s.type === 'call') {
      // A procedure may create temporary tables, take locks or set variables the proxy cannot see.
      this.untracked = 'call';
      return;
    }
    if (s.type === 'set' && !s.setsGlobal && s.sessionAssignments !== null) {
      for (const a of s.sessionAssignments) this.variableSet(a.name, a.value);
      // SET SESSION TRANSACTION ISOLATION LEVEL ... (without SESSION it is for the next transaction only).
      const isolation = /^SET (?:SESSION |LOCAL )TRANSACTION\b.*\bISOLATION LEVEL (READ UNCOMMITTED|READ COMMITTED|REPEATABLE READ|SERIALIZABLE)/.exec(s.digestText);
      if (isolation) this.readUncommitted = isolation[1] === 'READ UNCOMMITTED';
    }
    if (s.type === 'lock') this.tablesLocked = true;
    else if (s.type === 'unlock') this.tablesLocked = false;
    if (s.namedLock === 'acquire') this.namedLocks++;
    else if (s.namedLock === 'release') this.namedLocks = Math.max(0, this.namedLocks - 1);
    else if (s.namedLock === 'release_all') this.namedLocks = 0;
    if ((s.type === 'create' || s.type === 'drop') && s.tablesWritten) {
      const names = s.tablesWritten.map((t) => qualifiedTableName(t, schema));
      if (s.type === 'create' && s.temporaryTable) for (const n of names) this.temporaryTables.add(n);
      // DROP TABLE (with or without TEMPORARY) drops a temporary table of that name first.
      if (s.type === 'drop') for (const n of names) this.temporaryTables.delete(n);
    }
  }

  /** The session did something whose state the proxy cannot follow: stay on the primary until a reset. */
  untrack(reason: string): void {
    this.untracked ??= reason;
  }

  /** COM_RESET_CONNECTION, COM_CHANGE_USER or a new primary connection: nothing is held any more. */
  reset(): void {
    this.temporaryTables.clear();
    this.tablesLocked = false;
    this.namedLocks = 0;
    this.untracked = null;
    this.readUncommitted = false;
    this.autoIsNull = false;
  }
}
