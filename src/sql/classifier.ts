import { buildDigest } from './digest.js';
import { buildKeyText, buildWrittenText, type CacheHints, emptyHints } from './key_text.js';
import { isSym, lex, LP, SEMI, W } from './lexer.js';
import { classifyHead, type SessionAssignment, type StatementType, type Stmt } from './statement_kinds.js';
import { type Ctx, type Plan, scan, TableSet, type TableRef, WriteMode, writtenTables } from './table_refs.js';

export type { CacheHints } from './key_text.js';
export type { SessionAssignment, StatementType } from './statement_kinds.js';
export { assignsFromSubquery, changesSchema, qualifiedTableName, writesData } from './statement_kinds.js';
export type { TableRef } from './table_refs.js';

/**
 * Statement classification for the query cache: what a statement is, what
 * it reads and writes, whether its result may be cached, and the two
 * normalised texts the cache needs (a key text that keeps everything the
 * server could tell apart, and a digest that rule files are matched on).
 *
 * One pass of the tokenizer, then a few passes over the token arrays; no
 * regular expressions per token. When in doubt the answers lean to the safe
 * side: more tables read than strictly needed, `tablesWritten: null`
 * ("invalidate everything") when a write's tables cannot be told, and a
 * non-deterministic flag for anything session- or time-dependent.
 *
 * This file ties the pieces together: `lexer.ts` (the token arrays),
 * `key_text.ts` (keyText and cache hints), `digest.ts` (digestText,
 * `digestOf`), `statement_kinds.ts` (statement heads, session effects) and
 * `table_refs.ts` (tables read and written, and the flags found in the same
 * token scan).
 *
 * Choices worth knowing (documented again at the fields):
 * - Names of CTEs are reported in `tablesRead` like tables: a CTE's body may
 *   read a real table of the same name, so leaving them out could miss one.
 * - For a multi-statement text, `type`, `keyword` and `readOnlyTransaction`
 *   describe the first statement; tables read, the locking/INTO/
 *   non-deterministic/needs-primary/named-lock flags and the session effects
 *   (`sessionAssignments`, `setsGlobal`, `useSchema`) are gathered over all
 *   statements, and
 *   `tablesWritten` is `[]` only when no statement may write.
 * - `keyText` keeps versioned or MariaDB-only executable-comment markers
 *   (`/*!50700 ... *\/`, `/*M! ... *\/`) and optimizer-hint comments
 *   (`/*+ ... *\/`) verbatim, because the server may skip or apply them;
 *   only the markers of plain `/*! ... *\/` comments (always run) are dropped.
 */

export interface ClassifiedStatement {
  type: StatementType;
  /** Upper-cased first keyword, after any leading '(' ('' when none). `SET STATEMENT ... FOR x` gives 'SET'. */
  keyword: string;
  /** True when the text holds more than one statement (a ';' followed by anything but whitespace/comments). */
  multiStatement: boolean;
  hints: CacheHints;
  /**
   * Text for cache keys: comments removed; between two tokens one space where
   * the original had whitespace or a comment, nothing where they touched;
   * literals, identifiers and case kept exactly; a trailing ';' dropped.
   * Markers of unversioned executable comments (`/*!`) are dropped (their
   * content is code); versioned or `/*M!` markers and `/*+ ... *\/` optimizer
   * hints are kept verbatim, since whether the server runs them can matter.
   */
  keyText: string;
  /** Normalised statement shape, see `digestOf`. */
  digestText: string;
  /**
   * Tables the statement reads: FROM/JOIN/USING lists (subqueries, derived
   * tables and CTE bodies included), the table list of UPDATE and DELETE, the
   * source of INSERT ... SELECT / TABLE, CREATE TABLE ... LIKE. CTE names are
   * reported as if they were tables. Not: the target of INSERT/REPLACE/LOAD
   * or of DDL, DUAL, table functions such as JSON_TABLE.
   */
  tablesRead: TableRef[];
  /** Tables a write changes; [] for statements that change no table data; null when they cannot be told (invalidate everything). */
  tablesWritten: TableRef[] | null;
  /** SELECT ... FOR UPDATE, FOR SHARE, LOCK IN SHARE MODE (anywhere in the statement). */
  lockingRead: boolean;
  /** SELECT ... INTO (@var, OUTFILE, DUMPFILE, or a local variable). */
  selectInto: boolean;
  /** The first non-deterministic or session-dependent function ('NOW', 'NEXT VALUE FOR') or variable (as written: '@var', '@@session.sql_mode') found; null if none. */
  nonDeterministic: string | null;
  /**
   * Why this statement must run on the primary even as a read, or null: the
   * first, in text order (over all statements of a multi-statement text), of
   * - a call of a function with a side effect or whose answer lives on one
   *   connection, upper-cased: 'GET_LOCK', 'RELEASE_LOCK', 'RELEASE_ALL_LOCKS',
   *   'IS_FREE_LOCK', 'IS_USED_LOCK', 'LAST_INSERT_ID', 'FOUND_ROWS',
   *   'ROW_COUNT', 'NEXTVAL', 'LASTVAL', 'SETVAL', 'NEXT VALUE FOR',
   *   'PREVIOUS VALUE FOR', 'CONNECTION_ID', 'MASTER_POS_WAIT',
   *   'MASTER_GTID_WAIT', 'SOURCE_POS_WAIT', 'WAIT_FOR_EXECUTED_GTID_SET',
   *   'LOAD_FILE' (only when called: `NAME(`, not a column `name` or `t.name`,
   *   not a quoted `` `name`( ``);
   * - a user variable read or assigned, as written ('@a', "@'my var'",
   *   '@a.b'); not the host of an account name (`'u'@'h'`);
   * - one of the system variables '@@last_insert_id', '@@identity',
   *   '@@last_gtid', '@@insert_id', as written (with any scope prefix, e.g.
   *   '@@session.insert_id'); other `@@` variables do not count;
   * - 'INTO' for SELECT ... INTO (whenever `selectInto` is set), so
   *   `SELECT 1 INTO @x` gives 'INTO' while `SELECT @a INTO @b` gives '@a'.
   */
  needsPrimary: string | null;
  /**
   * Why a read is about the server itself (its role, replication state or
   * identity) and must get the primary's answer whatever the routing: a
   * system variable as written ('@@GLOBAL.read_only', '@@gtid_binlog_pos',
   * '@@server_id'), 'SHOW VARIABLES', 'SHOW STATUS', 'SHOW SLAVE STATUS' and
   * the other replication SHOW statements (as their first words), or an
   * information_schema / performance_schema table of global state
   * ('information_schema.global_variables'); null otherwise.
   */
  serverState: string | null;
  /** The text as classified (latin1: one character per byte). */
  sql: string;
  /**
   * Named-lock calls: 'release_all' when the statement calls
   * RELEASE_ALL_LOCKS(), else 'acquire' when it calls GET_LOCK(), else
   * 'release' when it calls RELEASE_LOCK(); null otherwise. Gathered over all
   * statements of a multi-statement text.
   */
  namedLock: 'acquire' | 'release' | 'release_all' | null;
  /** For 'set': the session variables it assigns; null for other statements. */
  sessionAssignments: SessionAssignment[] | null;
  /** For 'set': true when it assigns a GLOBAL (or PERSIST) variable. */
  setsGlobal: boolean;
  /** For 'use': the schema, quotes removed, case kept (schema names can be case-sensitive); else null. */
  useSchema: string | null;
  /** For 'begin': START TRANSACTION ... READ ONLY. */
  readOnlyTransaction: boolean;
  /**
   * CREATE TEMPORARY TABLE / DROP TEMPORARY TABLE: a temporary table shadows
   * a base table of the same name in its session. In a multi-statement text:
   * any of its statements.
   */
  temporaryTable: boolean;
  /** LOCK TABLES (in a multi-statement text: any of its statements). */
  locksTables: boolean;
}

function analyzeStatement(c: Ctx, s: number, e: number): Stmt {
  const L = c.L;
  const st: Stmt = {
    type: 'other',
    keyword: '',
    written: [],
    assignments: null,
    setsGlobal: false,
    useSchema: null,
    readOnlyTx: false,
    temporary: false,
  };
  if (s >= e) return st; // an empty statement changes nothing
  let h = s;
  while (h < e && isSym(L, h, LP)) h++;
  st.keyword = h < e && L.kind[h] === W ? L.up[h] : '';
  const plan: Plan = {
    write: WriteMode.Unknown,
    list: [],
    seeds: [],
    setIdx: -1,
    fromIdx: -1,
    usingIdx: -1,
    targets: [],
    ignoreFor: -1,
    skipFrom: -1,
    skipTo: -1,
  };
  classifyHead(c, st, plan, h, e);
  const refs = scan(c, s, e, plan, st.type);
  for (const r of refs) c.reads.add(r.ref);
  st.written = writtenTables(plan, refs);
  return st;
}

// ---------------------------------------------------------------------------
// Reads about the server itself

/** SHOW statements about the server's variables, status or replication: their first words, or null. */
const SHOW_SERVER_STATE =
  /^SHOW\s+(?:(?:GLOBAL|SESSION|LOCAL)\s+)?(?:VARIABLES|STATUS)\b|^SHOW\s+(?:MASTER|BINLOG)\s+STATUS\b|^SHOW\s+(?:BINARY|MASTER)\s+LOGS\b|^SHOW\s+BINLOG\s+EVENTS\b|^SHOW\s+(?:ALL\s+)?(?:SLAVES?|REPLICAS?)\s+(?:STATUS|HOSTS)\b|^SHOW\s+RELAYLOG\s+EVENTS\b/i;

function showAboutServer(keyText: string): string | null {
  const m = SHOW_SERVER_STATE.exec(keyText);
  return m ? m[0].toUpperCase() : null;
}

/** Tables of global server state (lower-case), in information_schema and performance_schema. */
const SERVER_STATE_TABLES = new Set([
  'information_schema.global_variables',
  'information_schema.global_status',
  'information_schema.session_variables',
  'information_schema.session_status',
  'performance_schema.global_variables',
  'performance_schema.global_status',
  'performance_schema.session_variables',
  'performance_schema.session_status',
  'performance_schema.variables_by_thread',
  'performance_schema.status_by_thread',
]);

function serverStateTable(reads: readonly TableRef[]): string | null {
  for (const t of reads) {
    if (t.schema === null) continue;
    const name = `${t.schema.toLowerCase()}.${t.table}`;
    if (SERVER_STATE_TABLES.has(name) || (t.schema.toLowerCase() === 'performance_schema' && t.table.startsWith('replication_'))) return name;
  }
  return null;
}

// ---------------------------------------------------------------------------
// Entry points

const writtenTexts = new WeakMap<ClassifiedStatement, string>();
const spacedTexts = new WeakMap<ClassifiedStatement, string>();

/**
 * The statement with one space between any two tokens and comments removed
 * (`SELECT COUNT ( * ) FROM t WHERE a = 1`): what rule regexes were matched
 * against before they matched the text as written, kept so that such rules
 * still match. Made on first use.
 */
export function spacedText(statement: ClassifiedStatement): string {
  let text = spacedTexts.get(statement);
  if (text === undefined) {
    const L = lex(statement.sql);
    text = buildKeyText(L, L.n > 0 && L.kind[L.n - 1] === SEMI ? L.n - 1 : L.n, emptyHints(), true);
    spacedTexts.set(statement, text);
  }
  return text;
}

/**
 * The statement as the client wrote it, comments and hints aside (see
 * buildWrittenText): what rule regexes match. Made on first use, since only
 * rules with a regex need it.
 */
/** SHOW WARNINGS / ERRORS / COUNT(*) WARNINGS|ERRORS. */
const SHOW_DIAGNOSTICS = /^SHOW\s+(?:WARNINGS|ERRORS|COUNT)\b/i;
/** In the key text (a space between tokens): FOUND_ROWS(), ROW_COUNT(), @@warning_count, @@error_count (any scope prefix). */
const DIAGNOSTIC_READS = /\b(?:FOUND_ROWS|ROW_COUNT)\s*\(|@\s*@\s*(?:(?:SESSION|LOCAL)\s*\.\s*)?(?:WARNING_COUNT|ERROR_COUNT)\b/i;

/**
 * Whether the statement asks the server about the previous statement
 * (warnings, errors, found rows, affected rows): it must run where that one
 * ran, and after a cache hit the server must have run that one first.
 */
export function asksAboutPrevious(statement: ClassifiedStatement): boolean {
  if (statement.type === 'show') return SHOW_DIAGNOSTICS.test(writtenText(statement));
  // Every diagnostic read is also non-deterministic: the regex runs only for those.
  return statement.type === 'select' && statement.nonDeterministic !== null && DIAGNOSTIC_READS.test(statement.keyText);
}

export function writtenText(statement: ClassifiedStatement): string {
  let text = writtenTexts.get(statement);
  if (text === undefined) {
    const L = lex(statement.sql);
    text = buildWrittenText(L, L.n > 0 && L.kind[L.n - 1] === SEMI ? L.n - 1 : L.n);
    writtenTexts.set(statement, text);
  }
  return text;
}

/** Classifies a statement (or a multi-statement text) as received from a client. */
export function classify(sql: string): ClassifiedStatement {
  const L = lex(sql);
  const n = L.n;
  // Tokens kept for keyText and digest: all but one trailing ';'.
  const m = n > 0 && L.kind[n - 1] === SEMI ? n - 1 : n;
  const hints = emptyHints();
  const keyText = buildKeyText(L, m, hints);

  const c: Ctx = {
    L,
    reads: new TableSet(),
    nonDet: null,
    needsPrimary: null,
    serverState: null,
    namedLock: null,
    lockingRead: false,
    selectInto: false,
  };
  let first: Stmt | null = null;
  let multi = false;
  let anyWrite = false;
  let assignments: SessionAssignment[] | null = null;
  let setsGlobal = false;
  let useSchema: string | null = null;
  let temporary = false;
  let locks = false;
  let s = 0;
  for (let i = 0; i <= n; i++) {
    if (i < n && L.kind[i] !== SEMI) continue;
    if (i + 1 < n) multi = true;
    if (first === null || s < i) {
      const st = analyzeStatement(c, s, i);
      if (first === null) first = st;
      if (st.written === null || st.written.length > 0) anyWrite = true;
      if (st.assignments !== null) assignments = assignments === null ? st.assignments : assignments.concat(st.assignments);
      if (st.setsGlobal) setsGlobal = true;
      if (st.useSchema !== null) useSchema = st.useSchema;
      if (st.temporary) temporary = true;
      if (st.type === 'lock') locks = true;
    }
    s = i + 1;
  }
  const head = first!;
  // After the analysis: it marks the table names, whose case the digest keeps.
  const digestText = buildDigest(L, m);
  return {
    type: head.type,
    keyword: head.keyword,
    multiStatement: multi,
    hints,
    keyText,
    digestText,
    tablesRead: c.reads.list,
    tablesWritten: multi ? (anyWrite ? null : []) : head.written,
    lockingRead: c.lockingRead,
    selectInto: c.selectInto,
    nonDeterministic: c.nonDet,
    needsPrimary: c.needsPrimary,
    sql,
    serverState: c.serverState ?? (head.type === 'show' ? showAboutServer(buildWrittenText(L, m)) : null) ?? serverStateTable(c.reads.list),
    namedLock: c.namedLock,
    sessionAssignments: multi ? assignments : head.assignments,
    setsGlobal,
    useSchema: multi ? useSchema : head.useSchema,
    readOnlyTransaction: head.readOnlyTx,
    temporaryTable: temporary,
    locksTables: locks,
  };
}

/**
 * The digest of a text written by a person in a rules file, computed exactly
 * like `ClassifiedStatement.digestText`, so `digestOf(rule) ===
 * classify(query).digestText` when they are the same statement shape; '?'
 * stands for any literal and `(?, ...)` for any list of them.
 */
export function digestOf(sql: string): string {
  return classify(sql).digestText;
}
