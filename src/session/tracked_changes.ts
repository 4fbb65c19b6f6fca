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

/** A variable name as the server reports it (nothing to quote). */
const REPLAYABLE_NAME = /^[a-z0-9_]+$/;
/**
 * Variables the server reports after statements that change nothing a read
 * sees (the last write's GTID, insert ids): not session state for the cache,
 * and setting them again on another connection would be wrong or refused.
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

/** SET statements that give another connection the variables a report names, with the values it reports. */
export function replayOfReportedVariables(tracked: TrackedChanges): Buffer[] {
  const out: Buffer[] = [];
  for (const [name, value] of tracked.variables) {
    if (REPLAYABLE_NAME.test(name) && !VOLATILE_VARIABLES.has(name)) out.push(Buffer.from(`SET SESSION ${name} = ${sqlLiteral(value)}`, 'latin1'));
  }
  return out;
}

/** A reported value as SQL: digits as a number, other text quoted (hex when it has a backslash, which sql_mode may read either way). */
function sqlLiteral(value: string): string {
  if (/^-?\d+$/.test(value)) return value;
  if (value.includes('\\')) return `0x${Buffer.from(value, 'latin1').toString('hex')}`;
  return `'${value.replace(/'/g, "''")}'`;
}

