/**
 * What a client session needs to use several backend connections as one:
 * the session-state statements to replay on each connection it opens, what
 * pins it to the primary, and which connection has which prepared statement.
 * Knows statements and connections, not sockets or metrics.
 */
import type { BackendConnection } from '../backend/backend_connection.js';

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
  /** Lent to the login pool between statements (multiplexing): the session takes it back before using it. */
  lent: boolean;
  /** While lent: the text of the statement it ran last (COM_QUERY), to run again if the pool takes it (its diagnostics). */
  lentText: Buffer | null;
}

export function newLink(conn: BackendConnection, appliedState: number): BackendLink {
  return { conn, server: conn.endpoint.name, appliedState, statements: new Map(), coveredGtid: null, lent: false, lentText: null };
}

/** Forgets the client's statement `id` on `link`: its id on that connection, or null when it was not prepared there. */
export function forgetStatement(link: BackendLink, id: number): number | null {
  const entry = link.statements.get(id);
  if (!entry) return null;
  link.statements.delete(id);
  return entry.backendId;
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

/** COM_STMT_EXECUTE with its parameter types spelt out (new-params-bound = 1), for a connection that has not seen them. */
export function executeWithTypes(payload: Buffer, params: number, types: Buffer): Buffer {
  const boundAt = 10 + ((params + 7) >> 3);
  if (payload[boundAt] === 1) return payload;
  return Buffer.concat([payload.subarray(0, boundAt), Buffer.from([1]), types, payload.subarray(boundAt + 1)]);
}
