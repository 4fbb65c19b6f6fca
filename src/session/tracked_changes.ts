/**
 * What the server reported a command changed in the session, and what the
 * session layer makes of such reports: which statements explain a change,
 * which variables are not session state, and how a reported variable is
 * set again on another connection.
 */
import type { ClassifiedStatement } from '../sql/classifier.js';

/** What the server reported one command changed (only built when it reported something). */
export interface TrackedChanges {
  /** System variables with their new values, in the order reported. */
  variables: Map<string, string>;
  /** The new default schema; undefined when not reported. */
  schema: string | undefined;
  /** "Something in the session changed": variables, schema, or what has no value to report (temporary tables, user variables, roles, prepared statements). */
  stateChanged: boolean;
  /** The last transaction state reported, when the client turned session_track_transaction_info on. */
  transactionState: string | null;
  /** Only an EOF said the state changed (an EOF carries no report): what changed was read back, or is unknown. */
  unreported: boolean;
}

export function emptyChanges(): TrackedChanges {
  return { variables: new Map(), schema: undefined, stateChanged: false, transactionState: null, unreported: false };
}

/** Statements whose changes the proxy cannot tell apart from the server's "something changed": any report pins and privatises. */
export function opaqueStatement(s: ClassifiedStatement): boolean {
  return s.multiStatement || s.type === 'call' || s.keyword === 'EXECUTE' || (s.keyword === 'BEGIN' && s.type === 'other');
}

/** Statements whose change of session state the proxy follows from their text (replayed, or pinned by PrimaryPins). */
export function explainsStateChange(s: ClassifiedStatement): boolean {
  if (s.type === 'set' || s.type === 'use' || s.type === 'call' || s.multiStatement || s.temporaryTable) return true;
  return s.keyword === 'PREPARE' || s.keyword === 'EXECUTE' || s.keyword === 'DEALLOCATE' || s.keyword === 'BEGIN';
}

/**
 * Whether the server's "something changed" for `s` is a change its text does
 * not explain. MariaDB also says so after a read of a view (it opens the view
 * in the view's own context) and reports nothing changed: a SELECT or SHOW
 * counts only when it calls a stored function (`callsFunction`), which can
 * set variables, user variables or create a temporary table.
 */
export function unexplainedChange(s: ClassifiedStatement | null, tracked: TrackedChanges | null, callsFunction: (text: string) => boolean): boolean {
  if (tracked === null || !tracked.stateChanged || s === null || explainsStateChange(s)) return false;
  return !(s.type === 'select' || s.type === 'show') || callsFunction(s.keyText);
}

/**
 * Variables the server reports after statements that change nothing a read
 * sees (the last write's GTID, insert ids): not session state for the cache.
 */
export const VOLATILE_VARIABLES: ReadonlySet<string> = new Set([
  'last_gtid',
  'last_insert_id',
  'insert_id',
  'identity',
  'gtid_seq_no',
  'timestamp',
  'rand_seed1',
  'rand_seed2',
  'in_transaction',
]);



