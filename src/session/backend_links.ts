/**
 * What a client session needs to use several backend connections as one:
 * the session-state statements to replay on each connection it opens, what
 * pins it to the primary, and which connection has which prepared statement.
 * Knows statements and connections, not sockets or metrics.
 */
import type { BackendConnection } from './backend_connection.js';
import type { ClassifiedStatement } from '../sql/classifier.js';

/** One backend connection of a session. */
export interface BackendLink {
  conn: BackendConnection;
  server: string;
  /** Sequence number of the last state-log entry run on this connection. */
  appliedState: number;
  /** Client statement id -> this connection's statement id, and the parameter types last sent here. */
  statements: Map<number, { backendId: number; types: Buffer | null }>;
  /** The session's last write GTID this replica is known to have applied. */
  coveredGtid: string | null;
}

export function newLink(conn: BackendConnection, appliedState: number): BackendLink {
  return { conn, server: conn.endpoint.name, appliedState, statements: new Map(), coveredGtid: null };
}

/** More distinct SET/USE statements than this and the session stays on the primary rather than replay them all. */
const MAX_STATE_ENTRIES = 256;

/**
 * The SET, SET NAMES and USE statements a session ran, in order, to run again
 * on every other connection before it serves the session. An identical
 * statement run again moves to the end instead of growing the log.
 */
export class StateLog {
  private entries: { seq: number; sql: Buffer }[] = [];
  private seq = 0;
  /** Too many distinct statements to replay: the session is pinned to the primary. */
  overflow = false;

  /** Sequence number of the newest entry; a connection that applied it is up to date. */
  get latest(): number {
    return this.seq;
  }

  add(sql: Buffer): void {
    const i = this.entries.findIndex((e) => e.sql.equals(sql));
    if (i >= 0) this.entries.splice(i, 1);
    this.entries.push({ seq: ++this.seq, sql: Buffer.from(sql) });
    if (this.entries.length > MAX_STATE_ENTRIES) this.overflow = true;
  }

  /** Statements a connection that applied up to `applied` still has to run, oldest first. */
  pending(applied: number): Buffer[] {
    const out: Buffer[] = [];
    for (const e of this.entries) if (e.seq > applied) out.push(e.sql);
    return out;
  }

  clear(): void {
    this.entries = [];
    this.overflow = false;
    // seq keeps counting: a connection's appliedState stays comparable.
  }
}

/** `USE `db`` for a COM_INIT_DB payload's schema bytes, quoted so any name replays exactly. */
export function useStatementFor(schema: Buffer): Buffer {
  const quoted: number[] = [];
  for (const b of schema) {
    quoted.push(b);
    if (b === 0x60) quoted.push(0x60);
  }
  return Buffer.concat([Buffer.from('USE `'), Buffer.from(quoted), Buffer.from('`')]);
}

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

  /** Why the session must stay on the primary, or null. */
  reason(): string | null {
    if (this.untracked) return this.untracked;
    if (this.temporaryTables.size > 0) return 'temporary_table';
    if (this.tablesLocked) return 'lock_tables';
    if (this.namedLocks > 0) return 'get_lock';
    return null;
  }

  /** A statement that succeeded on the primary. `schema` qualifies bare table names. */
  afterStatement(s: ClassifiedStatement, schema: string | null): void {
    if (s.multiStatement && (s.sessionAssignments !== null || s.useSchema !== null || s.temporaryTable || s.namedLock !== null || s.type === 'lock')) {
      this.untracked = 'multi_statement_state';
      return;
    }
    if (s.type === 'call') {
      // A procedure may create temporary tables, take locks or set variables the proxy cannot see.
      this.untracked = 'call';
      return;
    }
    if (s.type === 'lock') this.tablesLocked = true;
    else if (s.type === 'unlock') this.tablesLocked = false;
    if (s.namedLock === 'acquire') this.namedLocks++;
    else if (s.namedLock === 'release') this.namedLocks = Math.max(0, this.namedLocks - 1);
    else if (s.namedLock === 'release_all') this.namedLocks = 0;
    if ((s.type === 'create' || s.type === 'drop') && s.tablesWritten) {
      const names = s.tablesWritten.map((t) => `${t.schema ?? schema?.toLowerCase() ?? ''}.${t.table}`);
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
  }
}

/** COM_STMT_EXECUTE with its parameter types spelt out (new-params-bound = 1), for a connection that has not seen them. */
export function executeWithTypes(payload: Buffer, params: number, types: Buffer): Buffer {
  const boundAt = 10 + ((params + 7) >> 3);
  if (payload[boundAt] === 1) return payload;
  return Buffer.concat([payload.subarray(0, boundAt), Buffer.from([1]), types, payload.subarray(boundAt + 1)]);
}
