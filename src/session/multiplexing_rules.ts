/**
 * What multiplexing decides from a classified statement alone: whether it
 * ties the session to its backend connection (and why), whether its
 * diagnostics can be had again by running its text, and whether it asks
 * about the statement before it. Pure functions: no sockets, no session.
 */
import { isRead } from '../routing/router.js';
import { callsOnlyBuiltins } from '../sql/builtin_calls.js';
import { asksAboutPrevious, type ClassifiedStatement } from '../sql/classifier.js';

/** Any statement that reads the previous one's diagnostics: SHOW WARNINGS, or FOUND_ROWS(), ROW_COUNT(), GET DIAGNOSTICS, @@warning_count anywhere. */
export function mentionsDiagnostics(st: ClassifiedStatement): boolean {
  return asksAboutPrevious(st) || /\b(?:FOUND_ROWS|ROW_COUNT)\s*\(|\bGET\s+(?:CURRENT\s+|STACKED\s+)?DIAGNOSTICS\b|@@(?:SESSION\.|LOCAL\.)?(?:WARNING|ERROR)_COUNT\b/i.test(st.keyText);
}

/** Calls that name no session state a reset connection lacks: diagnostics (kept by keepForDiagnostics) and named locks (pins). */
const NOT_SESSION_BOUND = new Set([
  'FOUND_ROWS', 'ROW_COUNT', 'GET_LOCK', 'RELEASE_LOCK', 'RELEASE_ALL_LOCKS', 'IS_FREE_LOCK', 'IS_USED_LOCK',
  'MASTER_POS_WAIT', 'MASTER_GTID_WAIT', 'SOURCE_POS_WAIT', 'WAIT_FOR_EXECUTED_GTID_SET', 'LOAD_FILE',
]);
/** Locks and handles a reset would drop: HANDLER ... OPEN, FLUSH TABLES ... WITH READ LOCK / FOR EXPORT, BACKUP LOCK / STAGE. */
const CONNECTION_LOCKS = /^\s*(?:HANDLER\b|FLUSH\b.*\b(?:READ\s+LOCK|FOR\s+EXPORT)\b|BACKUP\s+(?:LOCK|STAGE)\b)/is;
/** Values that read the moment or the account without parentheses. */
const BARE_FUNCTIONS = /\b(?:CURRENT_(?:TIMESTAMP|DATE|TIME|USER|ROLE)|LOCALTIME(?:STAMP)?|UTC_(?:DATE|TIME|TIMESTAMP)|SYSDATE)\b/i;

/** Anything in a text that reads or sets state of its connection: a variable, LAST_INSERT_ID(), a sequence's last value, ... */
const SESSION_BOUND_TEXT = /@|\b(?:LAST_INSERT_ID|NEXTVAL|LASTVAL|SETVAL|CONNECTION_ID)\s*\(|\b(?:NEXT|PREVIOUS)\s+VALUE\s+FOR\b|\bINTO\b/i;

/**
 * Why a statement ties the session to its connection (multiplexing), or null.
 * A logged SET runs again on the next connection, so only one whose value
 * depends on the connection or the moment (CONNECTION_ID(), NOW()) ties it.
 */
export function sessionBound(st: ClassifiedStatement): string | null {
  if (st.type === 'set') {
    // A user variable lives on its connection: triggers and functions may change it unseen (as ProxySQL, keep it).
    const np = st.needsPrimary;
    if (np !== null && np.startsWith('@') && !np.startsWith('@@')) return 'user_variable';
    // SET GLOBAL x = 1, SESSION y = 2: the session part is not in the state log.
    if (st.setsGlobal) return 'set_global';
    return setValuesBound(st.keyText);
  }
  if (CONNECTION_LOCKS.test(st.keyText)) return 'connection_lock';
  if (st.namedLock === 'acquire') return 'get_lock';
  // INSERT ... RETURNING ends with a result set, whose terminator the insert id check does not read.
  if (st.tablesWritten !== null && st.tablesWritten.length > 0 && /\bRETURNING\b/i.test(st.keyText)) return 'last_insert_id';
  const np = st.needsPrimary;
  if (np === null) return null;
  if (np.startsWith('@@')) return 'session_function';
  if (np.startsWith('@')) return 'user_variable';
  if (!NOT_SESSION_BOUND.has(np)) return 'session_function';
  return SESSION_BOUND_TEXT.test(st.keyText) ? 'session_function' : null;
}

/**
 * Whether a SET gives the same result when run again on another connection:
 * every value is a constant. A value that calls a function (CONNECTION_ID(),
 * NOW(), CONCAT(@@sql_mode, ...)) or reads a variable (`SET @a = @a + 1`,
 * which the state log would also keep only once) does not.
 */
function setValuesBound(keyText: string): string | null {
  const text = keyText.replace(/'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|`(?:[^`]|``)*`/g, "''");
  if (text.includes('(') || BARE_FUNCTIONS.test(text)) return 'set_function';
  for (const piece of text.split(',')) {
    const eq = piece.indexOf('=');
    if (eq >= 0 && piece.includes('@', eq)) return 'user_variable';
  }
  return null;
}

/**
 * A statement that leaves nothing of the session on its connection but its
 * diagnostics: one plain SELECT or SHOW that names no user variable, calls
 * only built-in functions and none with a side effect on the session
 * (GET_LOCK, NEXTVAL, LAST_INSERT_ID(x)), and reads only known base tables
 * (`onlyBaseTables`: a view may call a function, an information_schema or
 * performance_schema table shows the session's own counters). After only
 * such statements a connection is as its login left it, but for the
 * session status counters, which multiplexing mixes anyway.
 */
export function leavesNoState(st: ClassifiedStatement, onlyBaseTables: boolean): boolean {
  if (!isRead(st) || st.multiStatement || st.selectInto || st.lockingRead) return false;
  // needsPrimary names only the first reason in the text: the text is searched for every other one.
  if (st.needsPrimary !== null && !READS_ONLY_OF_THE_CONNECTION.has(st.needsPrimary)) return false;
  if (SIDE_EFFECT_TEXT.test(st.keyText) || !statementCallsOnlyBuiltins(st)) return false;
  return st.tablesRead.length === 0 || onlyBaseTables;
}

/** callsOnlyBuiltins of each statement object's key text: a repeated text is one object (StatementMemo), searched once. */
const builtinCallsOnly = new WeakMap<ClassifiedStatement, boolean>();

export function statementCallsOnlyBuiltins(st: ClassifiedStatement): boolean {
  let only = builtinCallsOnly.get(st);
  if (only === undefined) {
    only = callsOnlyBuiltins(st.keyText);
    builtinCallsOnly.set(st, only);
  }
  return only;
}

/** Calls that make a read need its own connection but change nothing there: diagnostics and the thread id. */
const READS_ONLY_OF_THE_CONNECTION = new Set(['FOUND_ROWS', 'ROW_COUNT', 'CONNECTION_ID']);
/** A user variable (not a system variable's @@), a built-in with a side effect on the session, a sequence, INTO. */
const SIDE_EFFECT_TEXT =
  /(?<!@)@(?!@)|\b(?:LAST_INSERT_ID|NEXTVAL|LASTVAL|SETVAL|GET_LOCK|RELEASE_LOCK|RELEASE_ALL_LOCKS|IS_USED_LOCK|IS_FREE_LOCK)\s*\(|\b(?:NEXT|PREVIOUS)\s+VALUE\s+FOR\b|\bINTO\b/i;

/**
 * A read whose diagnostics come back when its text runs again: one plain
 * SELECT or SHOW. `SELECT FOUND_ROWS()` counts (run again, it leaves one
 * row found, as it did); SHOW WARNINGS does not (its list outlives it).
 */
export function replayableRead(st: ClassifiedStatement): boolean {
  const np = st.needsPrimary;
  if (!isRead(st) || st.multiStatement || st.selectInto || st.lockingRead) return false;
  // Run again, it would count the rows as they are then.
  if (/\bSQL_CALC_FOUND_ROWS\b/i.test(st.keyText)) return false;
  if (np !== null && np !== 'FOUND_ROWS' && np !== 'ROW_COUNT') return false;
  return !(st.type === 'show' && asksAboutPrevious(st));
}
