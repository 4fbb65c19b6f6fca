import { forEachToken, TokenKind } from './tokenizer.js';

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

export type StatementType =
  | 'select'
  | 'show'
  | 'insert'
  | 'update'
  | 'delete'
  | 'replace'
  | 'load'
  | 'truncate'
  | 'alter'
  | 'drop'
  | 'rename'
  | 'create'
  | 'begin'
  | 'commit'
  | 'rollback'
  | 'savepoint'
  | 'set'
  | 'use'
  | 'do'
  | 'call'
  | 'lock'
  | 'unlock'
  | 'other';

/** A table, lower-cased, quotes removed. */
export interface TableRef {
  schema: string | null;
  table: string;
}

export interface CacheHints {
  /** From a leading comment: qc=on / qc=off; null when absent. When both appear, off wins. */
  cache: 'on' | 'off' | null;
  /** /*qc_ttl=N*\/ seconds (integer >= 0); null when absent or invalid. The last valid one wins. */
  ttlSeconds: number | null;
  /** /*route=primary*\/, /*route=replica*\/ or /*route=<server name>*\/, as written; null when absent. */
  route: string | null;
}

export interface SessionAssignment {
  /** Variable name, lower-cased, without scope prefixes; 'names' and 'character set' for those forms. */
  name: string;
  /** The value expression's text: literals and case as written, whitespace and comments folded to one space. */
  value: string;
}

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
  /** CREATE TEMPORARY TABLE / DROP TEMPORARY TABLE: a temporary table shadows a base table of the same name in its session. */
  temporaryTable: boolean;
}

// ---------------------------------------------------------------------------
// Tokens

const W = TokenKind.Word;
const QI = TokenKind.QuotedIdentifier;
const STR = TokenKind.String;
const SEMI = TokenKind.Semicolon;
const SYM = TokenKind.Symbol;

const LP = 0x28; // (
const RP = 0x29; // )
const COMMA = 0x2c;
const DOT = 0x2e;
const AT = 0x40;
const EQ = 0x3d;
const COLON = 0x3a;
const QMARK = 0x3f;
const MINUS = 0x2d;
const PLUS = 0x2b;
const STAR = 0x2a;
const SLASH = 0x2f;
const DQUOTE = 0x22;

/** The tokens of a text as parallel arrays. */
interface Lexed {
  sql: string;
  n: number;
  kind: TokenKind[];
  start: number[];
  end: number[];
  /** Upper-cased text of Word tokens, '' for the others. */
  up: string[];
  /** Character code of Symbol and Semicolon tokens, 0 for the others. */
  ch: number[];
}

function lex(sql: string): Lexed {
  const kind: TokenKind[] = [];
  const start: number[] = [];
  const end: number[] = [];
  const up: string[] = [];
  const ch: number[] = [];
  // One upper-casing of the whole text is cheaper than one per word; usable
  // when no character changes length when upper-cased (e.g. 'ß' -> 'SS').
  const whole = sql.toUpperCase();
  const upper = whole.length === sql.length ? whole : null;
  forEachToken(sql, (t) => {
    kind.push(t.kind);
    start.push(t.start);
    end.push(t.end);
    if (t.kind === W) {
      up.push(upper !== null ? upper.slice(t.start, t.end) : sql.slice(t.start, t.end).toUpperCase());
      ch.push(0);
    } else {
      up.push('');
      ch.push(t.kind === SYM || t.kind === SEMI ? sql.charCodeAt(t.start) : 0);
    }
  });
  return { sql, n: kind.length, kind, start, end, up, ch };
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isSym = (L: Lexed, i: number, c: number) => i < L.n && L.ch[i] === c && L.kind[i] === SYM;
/** Token i ends exactly where token j starts. */
const touches = (L: Lexed, i: number, j: number) => L.end[i] === L.start[j];

/** A Word token that is a number literal: 12, 1e5, 1e (before a sign), 0x1F, 0b101; not identifiers like 2fa_codes. */
function isNumberWord(L: Lexed, i: number): boolean {
  if (L.kind[i] !== W) return false;
  const sql = L.sql;
  const s = L.start[i];
  const e = L.end[i];
  if (!isDigit(sql.charCodeAt(s))) return false;
  if (sql.charCodeAt(s) === 0x30 && e - s > 2) {
    const x = sql.charCodeAt(s + 1) | 0x20;
    if (x === 0x78 /* x */) {
      for (let j = s + 2; j < e; j++) {
        const c = sql.charCodeAt(j) | 0x20;
        if (!isDigit(c) && !(c >= 0x61 && c <= 0x66)) return false;
      }
      return true;
    }
    if (x === 0x62 /* b */) {
      let binary = true;
      for (let j = s + 2; j < e; j++) {
        const c = sql.charCodeAt(j);
        if (c !== 0x30 && c !== 0x31) binary = false;
      }
      if (binary) return true;
    }
  }
  let j = s;
  while (j < e && isDigit(sql.charCodeAt(j))) j++;
  if (j < e && (sql.charCodeAt(j) | 0x20) === 0x65 /* e */) {
    j++;
    while (j < e && isDigit(sql.charCodeAt(j))) j++;
  }
  return j === e;
}

/** A token that can name a table or column: a Word (not a number), a `quoted identifier`, or an ANSI_QUOTES "identifier". */
function isIdentTok(L: Lexed, i: number, e: number): boolean {
  if (i >= e) return false;
  const k = L.kind[i];
  if (k === W) return !isNumberWord(L, i);
  return k === QI || (k === STR && L.sql.charCodeAt(L.start[i]) === DQUOTE);
}

/** The name a Word, quoted identifier or quoted string token stands for, quotes removed, case kept. */
function identRaw(L: Lexed, i: number): string {
  const s = L.start[i];
  const e = L.end[i];
  if (L.kind[i] === W) return L.sql.slice(s, e);
  const q = L.sql.charCodeAt(s);
  const closed = e - s >= 2 && L.sql.charCodeAt(e - 1) === q;
  let inner = L.sql.slice(s + 1, closed ? e - 1 : e);
  const qs = String.fromCharCode(q);
  if (inner.includes(qs + qs)) inner = inner.split(qs + qs).join(qs);
  return inner;
}

const identLower = (L: Lexed, i: number) => identRaw(L, i).toLowerCase();

interface NameAt {
  ref: TableRef;
  /** Index of the token after the name. */
  next: number;
}

/** Reads `name` or `schema.name` at token i. */
function readName(L: Lexed, i: number, e: number): NameAt | null {
  if (!isIdentTok(L, i, e)) return null;
  const first = identLower(L, i);
  if (isSym(L, i + 1, DOT) && isIdentTok(L, i + 2, e)) {
    return { ref: { schema: first, table: identLower(L, i + 2) }, next: i + 3 };
  }
  return { ref: { schema: null, table: first }, next: i + 1 };
}

/** Index after the ')' matching the '(' at i (or e when unbalanced). */
function skipParen(L: Lexed, i: number, e: number): number {
  let depth = 0;
  for (; i < e; i++) {
    if (L.kind[i] !== SYM) continue;
    const c = L.ch[i];
    if (c === LP) depth++;
    else if (c === RP && --depth === 0) return i + 1;
  }
  return e;
}

/** The first token from i at parenthesis depth 0 (relative to i) that is the word `word`; -1 if none. */
function findTop(L: Lexed, i: number, e: number, word: string): number {
  let depth = 0;
  for (; i < e; i++) {
    const k = L.kind[i];
    if (k === SYM) {
      if (L.ch[i] === LP) depth++;
      else if (L.ch[i] === RP) depth--;
    } else if (k === W && depth === 0 && L.up[i] === word) return i;
  }
  return -1;
}

/** Tokens a..b-1 as text: one space where the original had anything between two tokens, nothing where they touched. */
function textOf(L: Lexed, a: number, b: number): string {
  if (a >= b) return '';
  let out = '';
  let runStart = L.start[a];
  for (let i = a + 1; i < b; i++) {
    const pe = L.end[i - 1];
    const ts = L.start[i];
    if (ts === pe || (ts === pe + 1 && L.sql.charCodeAt(pe) === 0x20)) continue;
    out += L.sql.slice(runStart, pe) + ' ';
    runStart = ts;
  }
  return out + L.sql.slice(runStart, L.end[b - 1]);
}

// ---------------------------------------------------------------------------
// Comments between tokens: hints, executable-comment markers, optimizer hints

function emptyHints(): CacheHints {
  return { cache: null, ttlSeconds: null, route: null };
}

function parseHint(body: string, hints: CacheHints): void {
  const eq = body.indexOf('=');
  if (eq <= 0) return;
  const key = body.slice(0, eq).trim().toLowerCase();
  const value = body.slice(eq + 1).trim();
  if (value === '' || /\s/.test(value)) return;
  if (key === 'qc') {
    const v = value.toLowerCase();
    if (v === 'off') hints.cache = 'off';
    else if (v === 'on' && hints.cache !== 'off') hints.cache = 'on';
  } else if (key === 'qc_ttl') {
    if (/^\d+$/.test(value)) {
      const n = Number(value);
      if (Number.isSafeInteger(n)) hints.ttlSeconds = n;
    }
  } else if (key === 'route') {
    hints.route = value;
  }
}

/**
 * Walks the text between two tokens (what the tokenizer skipped: whitespace,
 * comments, executable-comment markers), keeping `stack` of open executable
 * comments (true = versioned or /*M!). Returns the parts that keyText must
 * keep, space-separated ('' when none); reads cache hints when `hints` is given.
 */
function walkGap(sql: string, a: number, b: number, stack: boolean[], hints: CacheHints | null): string {
  let keep = '';
  let i = a;
  const n = sql.length;
  while (i < b) {
    const c = sql.charCodeAt(i);
    if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      let j = i + 2;
      const m = (sql.charCodeAt(j) | 0x20) === 0x6d;
      if (m) j++;
      if (sql.charCodeAt(j) === 0x21 /* ! */) {
        j++;
        const digits = j;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
        const versioned = m || j > digits;
        stack.push(versioned);
        if (versioned) keep = keep ? `${keep} ${sql.slice(i, j)}` : sql.slice(i, j);
        i = j;
        continue;
      }
      const close = sql.indexOf('*/', i + 2);
      const stop = close < 0 ? n : close + 2;
      if (sql.charCodeAt(i + 2) === PLUS) {
        keep = keep ? `${keep} ${sql.slice(i, stop)}` : sql.slice(i, stop);
      } else if (hints) {
        parseHint(sql.slice(i + 2, close < 0 ? n : close), hints);
      }
      i = stop;
      continue;
    }
    if (c === STAR && sql.charCodeAt(i + 1) === SLASH && stack.length > 0) {
      if (stack.pop()) keep = keep ? `${keep} */` : '*/';
      i += 2;
      continue;
    }
    if (c === 0x23 /* # */ || (c === MINUS && sql.charCodeAt(i + 1) === MINUS && (i + 2 >= n || isSpace(sql.charCodeAt(i + 2))))) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    i++;
  }
  return keep;
}

/** keyText of tokens 0..m-1 (m excludes a trailing ';'), filling `hints` from the leading comments. */
function buildKeyText(L: Lexed, m: number, hints: CacheHints): string {
  const sql = L.sql;
  const stack: boolean[] = [];
  const lead = walkGap(sql, 0, L.n > 0 ? L.start[0] : sql.length, stack, hints);
  if (m === 0) return '';
  let key = lead ? `${lead} ` : '';
  // One space between any two tokens, whatever separated them (`id=1` and `id = 1` share a key):
  // spacing changes nothing the server does, except between a word and a quoted token touching it
  // (`x'41'` is a literal, `x '41'` a column alias), which stay joined.
  let runStart = L.start[0];
  for (let i = 1; i < m; i++) {
    const pe = L.end[i - 1];
    const ts = L.start[i];
    if (ts === pe) {
      if (L.kind[i - 1] === W && (L.kind[i] === STR || L.kind[i] === QI)) continue;
      key += sql.slice(runStart, pe);
      key += ' ';
      runStart = ts;
      continue;
    }
    if (ts === pe + 1 && sql.charCodeAt(pe) === 0x20) continue;
    key += sql.slice(runStart, pe);
    const keep = ts === pe + 1 ? '' : walkGap(sql, pe, ts, stack, null);
    key += keep ? ` ${keep} ` : ' ';
    runStart = ts;
  }
  key += sql.slice(runStart, L.end[m - 1]);
  // What follows the last kept token: a trailing ';' and the gaps around it.
  let tail = walkGap(sql, L.end[m - 1], m < L.n ? L.start[m] : sql.length, stack, null);
  if (m < L.n) {
    const more = walkGap(sql, L.end[m], sql.length, stack, null);
    if (more) tail = tail ? `${tail} ${more}` : more;
  }
  return tail ? `${key} ${tail}` : key;
}

// ---------------------------------------------------------------------------
// Digest

const D_WORD = 0;
const D_SYM = 1;
const D_LIT = 2;
const D_OPEN = 3;
const D_CLOSE = 4;

/** Operators the tokenizer splits into single characters, re-joined when their characters touch. */
const OPERATORS = new Set(['<=', '>=', '<>', '!=', ':=', '||', '&&', '<<', '>>', '<=>', '->', '->>', '@@']);

/** After these words a '-' before a literal is a sign, not a subtraction. */
const UNARY_AFTER = new Set([
  'SELECT', 'WHERE', 'AND', 'OR', 'NOT', 'XOR', 'BETWEEN', 'LIKE', 'REGEXP', 'RLIKE', 'ESCAPE', 'IS', 'IN', 'THEN', 'ELSE',
  'WHEN', 'CASE', 'RETURN', 'ON', 'HAVING', 'SET', 'VALUES', 'VALUE', 'DEFAULT', 'INTERVAL', 'LIMIT', 'OFFSET', 'DIV',
  'MOD', 'DO', 'BY', 'AS', 'ANY', 'ALL', 'SOME', 'DISTINCT',
]);

/** Words that keep a space before a following '(' in the digest; after any other word '(' touches it (`COUNT(*)`). */
const SPACE_BEFORE_PAREN = new Set([
  'IN', 'VALUES', 'VALUE', 'AS', 'ON', 'USING', 'FROM', 'JOIN', 'EXISTS', 'AND', 'OR', 'NOT', 'XOR', 'WHERE', 'SELECT',
  'WHEN', 'THEN', 'ELSE', 'BY', 'HAVING', 'UNION', 'ALL', 'ANY', 'SOME', 'DISTINCT', 'INTO', 'LATERAL', 'IS', 'LIKE',
  'BETWEEN', 'CASE', 'WITH', 'RECURSIVE', 'EXCEPT', 'INTERSECT', 'OVER', 'RETURNING', 'SET', 'DO', 'RETURN', 'TABLE',
]);

/** Index after a number starting at Word token i: joins `1.5`, `1.`, `1e-5`, `1.5e+3` (tokens that touch). */
function endOfNumber(L: Lexed, i: number, n: number, afterDot: boolean): number {
  const sql = L.sql;
  let last = i;
  let j = i + 1;
  const x = L.end[i] - L.start[i] > 2 ? sql.charCodeAt(L.start[i] + 1) | 0x20 : 0;
  const hex = x === 0x78 || x === 0x62; // 0x1F, 0b01: no fraction or exponent
  const hasE = (t: number) => {
    for (let p = L.start[t]; p < L.end[t]; p++) if ((sql.charCodeAt(p) | 0x20) === 0x65) return true;
    return false;
  };
  if (!afterDot && !hex && !hasE(i) && isSym(L, j, DOT) && j < n && touches(L, j - 1, j)) {
    j++;
    if (j < n && L.kind[j] === W && isDigit(sql.charCodeAt(L.start[j])) && touches(L, j - 1, j)) {
      last = j;
      j++;
    } else {
      last = -1;
    }
  }
  if (
    last >= 0 &&
    !hex &&
    (sql.charCodeAt(L.end[last] - 1) | 0x20) === 0x65 &&
    j + 1 < n &&
    (isSym(L, j, MINUS) || isSym(L, j, PLUS)) &&
    touches(L, j - 1, j) &&
    L.kind[j + 1] === W &&
    isDigit(sql.charCodeAt(L.start[j + 1])) &&
    touches(L, j, j + 1)
  ) {
    j += 2;
  }
  return j;
}

/** `x'41'`, `b'01'`, `N'abc'` (touching) and `_utf8mb4'abc'` / `_latin1 'abc'` are one literal. */
function isIntroducer(L: Lexed, i: number): boolean {
  const s = L.start[i];
  const len = L.end[i] - s;
  const c = L.sql.charCodeAt(s);
  if (c === 0x5f /* _ */) return len > 1;
  if (len !== 1 || !touches(L, i, i + 1)) return false;
  const lc = c | 0x20;
  return lc === 0x78 || lc === 0x62 || lc === 0x6e;
}

/**
 * Digest of tokens 0..m-1. Rules:
 * - comments, hints and executable-comment markers are gone (their content stays);
 * - unquoted words are upper-cased; quoted identifiers lose their backticks and
 *   are upper-cased too (kept in backticks when not a plain word), so identifier
 *   case never matters;
 * - string literals (also "double-quoted"), numbers (12, 1.5, .5, 1e-5, 0x1F,
 *   0b01), x'..' / b'..' / N'..' / _charset'..' literals and '?' placeholders
 *   become '?'; a '-' or '+' sign before one of them (at the start, after an operator,
 *   '(' or ',', or after a keyword such as WHERE, AND, SELECT) is folded into it;
 * - a parenthesised list holding only '?' (and '...') becomes `(?, ...)`, and
 *   after VALUES a row group equal to the one before it is dropped, so every
 *   `IN (...)` list and every multi-row VALUES gives the same text;
 * - tokens are separated by one space, except: none before ',' ')' '.' ';',
 *   none after '(' '.' '@' '@@', none between a word and '(' unless the word is
 *   a keyword in SPACE_BEFORE_PAREN (`COUNT(*)`, `IN (?, ...)`); operators
 *   split by the tokenizer are re-joined when their characters touch (`<=`).
 */
function buildDigest(L: Lexed, m: number): string {
  const sql = L.sql;
  const out: string[] = [];
  const kd: number[] = [];
  const parens: number[] = [];
  const parenIsValues: boolean[] = [];
  let lastValuesEnd = -1;
  let lastValuesSig = '';

  const push = (s: string, k: number) => {
    out.push(s);
    kd.push(k);
  };
  const unaryContext = (j: number): boolean => {
    if (j < 0) return true;
    const k = kd[j];
    if (k === D_SYM || k === D_OPEN) return true;
    return k === D_WORD && UNARY_AFTER.has(out[j]);
  };
  const pushLit = (s: string) => {
    for (let j = out.length - 1; j >= 0 && kd[j] === D_SYM && (out[j] === '-' || out[j] === '+') && unaryContext(j - 1); j--) {
      out.pop();
      kd.pop();
    }
    push(s, D_LIT);
  };

  for (let i = 0; i < m; i++) {
    const k = L.kind[i];
    if (k === W) {
      if (isNumberWord(L, i)) {
        i = endOfNumber(L, i, m, false) - 1;
        pushLit('?');
      } else if (i + 1 < m && L.kind[i + 1] === STR && isIntroducer(L, i)) {
        i++;
        pushLit('?');
      } else {
        push(L.up[i], D_WORD);
      }
    } else if (k === QI) {
      const name = identRaw(L, i).toUpperCase();
      let plain = name.length > 0;
      for (let p = 0; p < name.length && plain; p++) {
        const c = name.charCodeAt(p);
        plain = isDigit(c) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x24 || c >= 0x80;
      }
      push(plain ? name : `\`${name}\``, D_WORD);
    } else if (k === STR) {
      if (i > 0 && isSym(L, i - 1, AT) && touches(L, i - 1, i)) push(sql.slice(L.start[i], L.end[i]).toUpperCase(), D_WORD);
      else pushLit('?');
    } else if (k === SEMI) {
      push(';', D_SYM);
    } else {
      const c = L.ch[i];
      if (c === DOT) {
        if (isSym(L, i + 1, DOT) && isSym(L, i + 2, DOT) && i + 2 < m && touches(L, i, i + 1) && touches(L, i + 1, i + 2)) {
          pushLit('...');
          i += 2;
          continue;
        }
        const prevOperand =
          i > 0 && touches(L, i - 1, i) && (L.kind[i - 1] === W || L.kind[i - 1] === QI || isSym(L, i - 1, RP));
        if (!prevOperand && i + 1 < m && L.kind[i + 1] === W && isDigit(sql.charCodeAt(L.start[i + 1])) && touches(L, i, i + 1)) {
          i = endOfNumber(L, i + 1, m, true) - 1;
          pushLit('?');
          continue;
        }
        push('.', D_SYM);
      } else if (c === QMARK) {
        pushLit('?');
      } else if (c === LP) {
        const last = out.length - 1;
        const values =
          (last >= 0 && kd[last] === D_WORD && (out[last] === 'VALUES' || out[last] === 'VALUE')) ||
          (last >= 1 && out[last] === ',' && last - 1 === lastValuesEnd);
        parens.push(out.length);
        parenIsValues.push(values);
        push('(', D_OPEN);
      } else if (c === RP) {
        const open = parens.pop();
        const values = parenIsValues.pop() ?? false;
        if (open === undefined) {
          push(')', D_CLOSE);
          continue;
        }
        let onlyLits = out.length > open + 1;
        for (let j = open + 1; j < out.length && onlyLits; j++) {
          onlyLits = (j - open) % 2 === 1 ? kd[j] === D_LIT : out[j] === ',';
        }
        if (onlyLits && (out.length - open) % 2 === 0) {
          out.length = open + 1;
          kd.length = open + 1;
          push('?', D_LIT);
          push(',', D_SYM);
          push('...', D_LIT);
        }
        push(')', D_CLOSE);
        if (values) {
          const sig = out.slice(open).join(' ');
          if (open >= 2 && out[open - 1] === ',' && open - 2 === lastValuesEnd && sig === lastValuesSig) {
            out.length = open - 1;
            kd.length = open - 1;
          } else {
            lastValuesEnd = out.length - 1;
            lastValuesSig = sig;
          }
        }
      } else {
        const s = String.fromCharCode(c);
        const last = out.length - 1;
        if (last >= 0 && kd[last] === D_SYM && L.kind[i - 1] === SYM && touches(L, i - 1, i) && OPERATORS.has(out[last] + s)) {
          out[last] += s;
        } else {
          push(s, D_SYM);
        }
      }
    }
  }

  if (out.length === 0) return '';
  let r = out[0];
  for (let j = 1; j < out.length; j++) {
    const cur = out[j];
    const ck = kd[j];
    const p = out[j - 1];
    const pk = kd[j - 1];
    let space = true;
    if (cur === ',' || ck === D_CLOSE || cur === '.' || cur === ';') space = false;
    else if (pk === D_OPEN || p === '.' || p === '@' || p === '@@') space = false;
    else if (ck === D_OPEN && pk === D_WORD && !SPACE_BEFORE_PAREN.has(p)) space = false;
    r += space ? ` ${cur}` : cur;
  }
  return r;
}

// ---------------------------------------------------------------------------
// Reading tables, flags and non-deterministic functions

/** Functions that are non-deterministic or session-dependent when called: `NAME(`. */
const NONDET_CALL = new Set([
  'NOW', 'CURDATE', 'CURTIME', 'SYSDATE', 'UNIX_TIMESTAMP', 'RAND', 'RANDOM_BYTES', 'UUID', 'UUID_SHORT', 'SYS_GUID',
  'CONNECTION_ID', 'LAST_INSERT_ID', 'FOUND_ROWS', 'ROW_COUNT', 'SESSION_USER', 'SYSTEM_USER', 'USER', 'DATABASE',
  'SCHEMA', 'SLEEP', 'BENCHMARK', 'GET_LOCK', 'RELEASE_LOCK', 'RELEASE_ALL_LOCKS', 'IS_FREE_LOCK', 'IS_USED_LOCK',
  'NEXTVAL', 'LASTVAL', 'SETVAL', 'MASTER_POS_WAIT', 'MASTER_GTID_WAIT', 'SOURCE_POS_WAIT', 'LOAD_FILE',
  'WAIT_FOR_EXECUTED_GTID_SET', 'WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS', 'ENCRYPT', 'PS_CURRENT_THREAD_ID', 'PS_THREAD_ID',
  // Also valid bare, listed here too so the call form is found by the same lookup.
  'CURRENT_TIMESTAMP', 'CURRENT_DATE', 'CURRENT_TIME', 'CURRENT_USER', 'CURRENT_ROLE', 'LOCALTIME', 'LOCALTIMESTAMP',
  'UTC_TIMESTAMP', 'UTC_DATE', 'UTC_TIME', 'SQL_CALC_FOUND_ROWS',
]);

/**
 * Functions that make a read run on the primary when called (see
 * `ClassifiedStatement.needsPrimary`). Every one is also in NONDET_CALL: the
 * scanner looks here only after a NONDET_CALL hit.
 */
const PRIMARY_CALL = new Set([
  'GET_LOCK', 'RELEASE_LOCK', 'RELEASE_ALL_LOCKS', 'IS_FREE_LOCK', 'IS_USED_LOCK', 'LAST_INSERT_ID', 'FOUND_ROWS',
  'ROW_COUNT', 'NEXTVAL', 'LASTVAL', 'SETVAL', 'CONNECTION_ID', 'MASTER_POS_WAIT', 'MASTER_GTID_WAIT', 'SOURCE_POS_WAIT',
  'WAIT_FOR_EXECUTED_GTID_SET', 'LOAD_FILE',
]);

/** System variables (the name after `@@` and any scope prefix) that make a read run on the primary. */
const PRIMARY_SYSVARS = new Set(['LAST_INSERT_ID', 'IDENTITY', 'LAST_GTID', 'INSERT_ID']);

type NamedLock = 'acquire' | 'release' | 'release_all' | null;

/**
 * Non-deterministic even without parentheses (reserved words, never column
 * names when unquoted). SQL_CALC_FOUND_ROWS is here because the statement
 * sets the session's FOUND_ROWS(), which a cached answer would not.
 */
const NONDET_BARE = new Set([
  'CURRENT_TIMESTAMP', 'CURRENT_DATE', 'CURRENT_TIME', 'CURRENT_USER', 'CURRENT_ROLE', 'LOCALTIME', 'LOCALTIMESTAMP',
  'UTC_TIMESTAMP', 'UTC_DATE', 'UTC_TIME', 'SQL_CALC_FOUND_ROWS',
]);

/** Words that end a table factor: never read as a bare alias. */
const FACTOR_END = new Set([
  'ON', 'USING', 'WHERE', 'GROUP', 'HAVING', 'ORDER', 'LIMIT', 'WINDOW', 'UNION', 'EXCEPT', 'INTERSECT', 'MINUS', 'INTO',
  'SET', 'VALUES', 'VALUE', 'SELECT', 'FOR', 'LOCK', 'JOIN', 'INNER', 'LEFT', 'RIGHT', 'CROSS', 'NATURAL',
  'STRAIGHT_JOIN', 'FULL', 'OUTER', 'RETURNING', 'PROCEDURE', 'FETCH', 'OFFSET', 'USE', 'FORCE', 'IGNORE', 'PARTITION',
  'WITH', 'AS', 'CHARACTER', 'CHARSET', 'FIELDS', 'COLUMNS', 'LINES', 'ROWS', 'TABLE', 'KEY', 'DEFAULT', 'UPDATE',
  'DELETE', 'INSERT', 'REPLACE', 'LIKE', 'TO', 'WAIT', 'NOWAIT', 'READ', 'WRITE', 'LOW_PRIORITY', 'AND', 'OR', 'NOT',
  'XOR', 'ELSE', 'THEN', 'END', 'WHEN', 'ENGINE', 'ALGORITHM', 'IN', 'IS', 'BETWEEN', 'ESCAPE', 'DUPLICATE',
  'TABLESAMPLE', 'SYSTEM_TIME',
]);

/** Words that end a comma-separated table list at their parenthesis depth. */
const LIST_END = new Set([
  'WHERE', 'GROUP', 'HAVING', 'ORDER', 'LIMIT', 'WINDOW', 'UNION', 'EXCEPT', 'INTERSECT', 'MINUS', 'INTO', 'SET',
  'VALUES', 'VALUE', 'SELECT', 'RETURNING', 'PROCEDURE', 'FOR', 'LOCK', 'UPDATE', 'FETCH', 'OFFSET', 'DUPLICATE',
  'FIELDS', 'COLUMNS', 'LINES', 'IGNORE', 'CHARACTER',
]);

/** Functions whose arguments use FROM (`EXTRACT(YEAR FROM d)`): no table list there. */
const FUNC_WITH_FROM = new Set(['EXTRACT', 'TRIM', 'SUBSTRING', 'SUBSTR', 'MID']);

/** Select modifiers after which STRAIGHT_JOIN is a modifier, not a join. */
const SELECT_MODIFIERS = new Set(['SELECT', 'ALL', 'DISTINCT', 'DISTINCTROW', 'HIGH_PRIORITY']);

const enum St {
  None,
  /** Expecting a table factor. */
  Table,
  /** After a table factor: an alias, PARTITION or index hints may follow. */
  After,
  /** After an alias: index hints may follow. */
  AfterAlias,
}

interface Ref {
  ref: TableRef;
  idx: number;
  alias: string | null;
}

/** How a statement's written tables are found. */
const enum WriteMode {
  None,
  Unknown,
  /** `Plan.list` */
  List,
  /** The table refs before the top-level SET. */
  Update,
  /** The first table after FROM. */
  DeleteSingle,
  /** `Plan.targets` resolved through aliases. */
  DeleteMulti,
  /** The refs between FROM and USING, resolved through the aliases after USING. */
  DeleteUsing,
}

interface Plan {
  write: WriteMode;
  list: TableRef[];
  /** Token indexes where a table list starts that the scanner would not find by itself. */
  seeds: number[];
  setIdx: number;
  fromIdx: number;
  usingIdx: number;
  targets: TableRef[];
  /** The FOR of SET STATEMENT ... FOR (not a locking clause). */
  ignoreFor: number;
  /** Tokens of a write target's name, not read as function names. */
  skipFrom: number;
  skipTo: number;
}

interface Stmt {
  type: StatementType;
  keyword: string;
  written: TableRef[] | null;
  assignments: SessionAssignment[] | null;
  setsGlobal: boolean;
  useSchema: string | null;
  readOnlyTx: boolean;
  temporary: boolean;
}

interface Ctx {
  L: Lexed;
  reads: TableSet;
  nonDet: string | null;
  needsPrimary: string | null;
  namedLock: NamedLock;
  lockingRead: boolean;
  selectInto: boolean;
}

const tableKey = (r: TableRef) => `${r.schema ?? ''}\u0000${r.table}`;

/** A list of distinct tables in insertion order: a linear search while short, a Set of keys once long. */
class TableSet {
  readonly list: TableRef[] = [];
  private keys: Set<string> | null = null;

  add(t: TableRef): void {
    if (this.keys === null) {
      for (const x of this.list) if (x.table === t.table && x.schema === t.schema) return;
      this.list.push(t);
      if (this.list.length > 16) this.keys = new Set(this.list.map(tableKey));
      return;
    }
    const k = tableKey(t);
    if (this.keys.has(k)) return;
    this.keys.add(k);
    this.list.push(t);
  }
}

/** Index after an index hint `USE|FORCE|IGNORE INDEX|KEY [FOR JOIN|ORDER BY|GROUP BY] (...)` starting at i. */
function skipIndexHint(L: Lexed, i: number, e: number): number {
  let j = i + 2;
  if (L.up[j] === 'FOR') {
    j++;
    if (L.up[j] === 'ORDER' || L.up[j] === 'GROUP') j += 2;
    else j++;
  }
  return isSym(L, j, LP) ? skipParen(L, j, e) : j;
}

/** Scans statement tokens s..e-1 for table references, locking/INTO clauses and non-deterministic calls. */
function scan(c: Ctx, s: number, e: number, plan: Plan, type: StatementType): Ref[] {
  const L = c.L;
  const refs: Ref[] = [];
  const seeds = plan.seeds;
  if (seeds.length > 1) seeds.sort((a, b) => a - b);
  let seedPos = 0;
  let state = St.None;
  let depth = 0;
  const listActive: boolean[] = [false];
  const openedInTable: boolean[] = [false];
  const fromIsArg: boolean[] = [false];
  let lastRef: Ref | null = null;

  const setAlias = (i: number) => {
    if (lastRef) lastRef.alias = identLower(L, i);
  };

  let i = s;
  while (i < e) {
    while (seedPos < seeds.length && seeds[seedPos] < i) seedPos++;
    if (seedPos < seeds.length && seeds[seedPos] === i) {
      seedPos++;
      state = St.Table;
      listActive[depth] = true;
    }
    const k = L.kind[i];

    if (state === St.Table) {
      if (k === SYM && L.ch[i] === LP) {
        depth++;
        listActive[depth] = true;
        openedInTable[depth] = true;
        fromIsArg[depth] = false;
        i++;
        continue;
      }
      const u = L.up[i];
      if (k === W && (u === 'LATERAL' || u === 'TABLE')) {
        i++;
        continue;
      }
      if (k === W && (u === 'SELECT' || u === 'WITH' || u === 'VALUES')) {
        listActive[depth] = false;
        state = St.None;
      } else if (isIdentTok(L, i, e)) {
        const r = readName(L, i, e)!;
        if (isSym(L, r.next, LP)) {
          state = St.None; // a table function (JSON_TABLE): read on as an expression
        } else {
          if (k === W && r.ref.schema === null && u === 'DUAL') {
            lastRef = null;
          } else {
            lastRef = { ref: r.ref, idx: i, alias: null };
            refs.push(lastRef);
          }
          state = St.After;
          i = r.next;
          continue;
        }
      } else {
        state = St.None;
      }
    } else if (state === St.After || state === St.AfterAlias) {
      if (k === W) {
        const u = L.up[i];
        if ((u === 'USE' || u === 'FORCE' || u === 'IGNORE') && (L.up[i + 1] === 'INDEX' || L.up[i + 1] === 'KEY')) {
          i = skipIndexHint(L, i, e);
          state = St.AfterAlias;
          continue;
        }
        if (state === St.After) {
          if (u === 'PARTITION' && isSym(L, i + 1, LP)) {
            i = skipParen(L, i + 1, e);
            continue;
          }
          if (u === 'AS' || (!FACTOR_END.has(u) && !isNumberWord(L, i))) {
            if (u === 'AS') i++;
            if (i < e && (L.kind[i] === W || L.kind[i] === QI || L.kind[i] === STR)) {
              setAlias(i);
              i++;
            }
            if (isSym(L, i, LP)) i = skipParen(L, i, e); // derived table column list
            state = St.AfterAlias;
            continue;
          }
        }
      } else if (state === St.After && (k === QI || k === STR)) {
        setAlias(i);
        i++;
        if (isSym(L, i, LP)) i = skipParen(L, i, e);
        state = St.AfterAlias;
        continue;
      }
      state = St.None;
    }

    // Ordinary token.
    if (k === SYM) {
      const ch = L.ch[i];
      if (ch === LP) {
        depth++;
        listActive[depth] = false;
        openedInTable[depth] = false;
        fromIsArg[depth] = i > s && L.kind[i - 1] === W && FUNC_WITH_FROM.has(L.up[i - 1]);
      } else if (ch === RP) {
        if (depth > 0) {
          const wasTable = openedInTable[depth];
          depth--;
          if (wasTable) {
            state = St.After;
            lastRef = null;
          }
        }
      } else if (ch === COMMA) {
        if (listActive[depth]) state = St.Table;
      } else if (ch === AT) {
        // @var, @'var', @`var`, @a.b, @@name, @@session.name
        let j = i + 1;
        let primary = false;
        if (isSym(L, j, AT)) {
          j++;
          if (j < e && L.kind[j] !== SYM) j++;
          if (isSym(L, j, DOT) && j + 1 < e && L.kind[j + 1] !== SYM) j += 2;
          const last = j - 1;
          if (c.needsPrimary === null && last > i + 1) {
            const k2 = L.kind[last];
            primary =
              k2 === W ? PRIMARY_SYSVARS.has(L.up[last]) : k2 === QI && PRIMARY_SYSVARS.has(identRaw(L, last).toUpperCase());
          }
        } else if (j < e && L.kind[j] !== SYM && L.kind[j] !== SEMI) {
          j++;
          // Unquoted user variable names may hold '.' (`@a.b`): one name while the tokens touch.
          if (L.kind[j - 1] === W && touches(L, i, i + 1)) {
            while (isSym(L, j, DOT) && j + 1 < e && L.kind[j + 1] === W && touches(L, j - 1, j) && touches(L, j, j + 1)) j += 2;
          }
          // 'user'@'host' (an account name, in SHOW GRANTS FOR ...) is no variable: a quoted token touches the '@'.
          primary = c.needsPrimary === null && !(i > s && (L.kind[i - 1] === STR || L.kind[i - 1] === QI) && touches(L, i - 1, i));
        }
        if (c.nonDet === null || primary) {
          const text = L.sql.slice(L.start[i], L.end[j - 1]);
          if (c.nonDet === null) c.nonDet = text;
          if (primary && c.needsPrimary === null) c.needsPrimary = text;
        }
        i = j;
        continue;
      }
      i++;
      continue;
    }
    if (k === W) {
      const u = L.up[i];
      if (LIST_END.has(u)) listActive[depth] = false;
      switch (u) {
        case 'FROM':
          if (!fromIsArg[depth]) {
            listActive[depth] = true;
            state = St.Table;
          }
          break;
        case 'STRAIGHT_JOIN':
        case 'JOIN':
          // SELECT STRAIGHT_JOIN ... is a modifier, not a join
          if (u === 'JOIN' || !(i > s && L.kind[i - 1] === W && (SELECT_MODIFIERS.has(L.up[i - 1]) || L.up[i - 1].startsWith('SQL_')))) {
            listActive[depth] = true;
            state = St.Table;
          }
          break;
        case 'USING':
          if (!isSym(L, i + 1, LP)) {
            listActive[depth] = true;
            state = St.Table;
          }
          break;
        case 'TABLE': {
          // MySQL's TABLE statement inside a query: ... UNION TABLE t, (TABLE t)
          const p = L.up[i - 1];
          if (i > s && (p === 'UNION' || p === 'EXCEPT' || p === 'INTERSECT' || p === 'ALL' || p === 'DISTINCT' || isSym(L, i - 1, LP))) {
            state = St.Table;
          }
          break;
        }
        case 'FOR':
          if (i !== plan.ignoreFor && (L.up[i + 1] === 'UPDATE' || L.up[i + 1] === 'SHARE') && i + 1 < e) c.lockingRead = true;
          break;
        case 'LOCK':
          if (L.up[i + 1] === 'IN' && L.up[i + 2] === 'SHARE' && i + 2 < e) c.lockingRead = true;
          break;
        case 'INTO':
          if (type === 'select' || isSym(L, i + 1, AT) || L.up[i + 1] === 'OUTFILE' || L.up[i + 1] === 'DUMPFILE') {
            c.selectInto = true;
            if (c.needsPrimary === null) c.needsPrimary = 'INTO';
          }
          break;
        case 'NEXT':
        case 'PREVIOUS':
          if ((c.nonDet === null || c.needsPrimary === null) && L.up[i + 1] === 'VALUE' && L.up[i + 2] === 'FOR' && i + 2 < e) {
            const what = u === 'NEXT' ? 'NEXT VALUE FOR' : 'PREVIOUS VALUE FOR';
            if (c.nonDet === null) c.nonDet = what;
            if (c.needsPrimary === null) c.needsPrimary = what;
          }
          break;
        default:
          if (
            (c.nonDet === null || c.needsPrimary === null || c.namedLock !== 'release_all') &&
            NONDET_CALL.has(u) &&
            !(i > s && isSym(L, i - 1, DOT)) &&
            !(i >= plan.skipFrom && i < plan.skipTo)
          ) {
            const called = isSym(L, i + 1, LP) && i + 1 < e;
            if (c.nonDet === null && (called || NONDET_BARE.has(u))) c.nonDet = u;
            if (called) {
              if (c.needsPrimary === null && PRIMARY_CALL.has(u)) c.needsPrimary = u;
              if (u === 'RELEASE_ALL_LOCKS') c.namedLock = 'release_all';
              else if (u === 'GET_LOCK') {
                if (c.namedLock !== 'release_all') c.namedLock = 'acquire';
              } else if (u === 'RELEASE_LOCK' && c.namedLock === null) c.namedLock = 'release';
            }
          }
      }
    }
    i++;
  }
  return refs;
}

// ---------------------------------------------------------------------------
// Statement heads

/** Index of the main statement after `WITH [RECURSIVE] name [(cols)] AS (...) [, ...]`, or -1. */
function mainOfWith(L: Lexed, i: number, e: number): number {
  if (L.up[i] === 'RECURSIVE') i++;
  for (;;) {
    if (!isIdentTok(L, i, e)) return -1;
    i++;
    if (isSym(L, i, LP)) i = skipParen(L, i, e);
    if (L.up[i] !== 'AS' || i >= e) return -1;
    i++;
    if (!isSym(L, i, LP)) return -1;
    i = skipParen(L, i, e);
    if (L.up[i] === 'CYCLE') {
      while (i < e && L.up[i] !== 'RESTRICT') i++;
      i++;
    }
    if (isSym(L, i, COMMA)) {
      i++;
      continue;
    }
    return i < e ? i : -1;
  }
}

const READ_ONLY_OTHER = new Set(['KILL', 'CHECK', 'HANDLER', 'SIGNAL', 'RESIGNAL', 'GET', 'FLUSH']);

function readTarget(L: Lexed, i: number, e: number, plan: Plan): NameAt | null {
  const r = readName(L, i, e);
  if (r) {
    plan.list.push(r.ref);
    if (plan.skipFrom < 0) {
      plan.skipFrom = i;
      plan.skipTo = r.next;
    }
  }
  return r;
}

function classifyHead(c: Ctx, st: Stmt, plan: Plan, h: number, e: number): void {
  const L = c.L;
  const up = L.up;
  st.type = 'other';
  plan.write = WriteMode.Unknown;
  if (h >= e || L.kind[h] !== W) return;
  const kw = up[h];
  switch (kw) {
    case 'SELECT':
    case 'VALUES':
    case 'TABLE':
      st.type = 'select';
      plan.write = WriteMode.None;
      if (kw === 'TABLE') plan.seeds.push(h + 1);
      return;
    case 'WITH': {
      let m = mainOfWith(L, h + 1, e);
      if (m < 0) return;
      while (isSym(L, m, LP)) m++;
      const u = up[m];
      if (u === 'SELECT' || u === 'VALUES' || u === 'TABLE' || u === 'UPDATE' || u === 'DELETE' || u === 'INSERT' || u === 'REPLACE') {
        classifyHead(c, st, plan, m, e);
      }
      return;
    }
    case 'SHOW':
    case 'HELP':
    case 'CHECKSUM':
      st.type = 'show';
      plan.write = WriteMode.None;
      return;
    case 'DESCRIBE':
    case 'DESC':
    case 'EXPLAIN': {
      st.type = 'show';
      plan.write = WriteMode.None;
      let i = h + 1;
      let analyze = false;
      for (;;) {
        const u = up[i];
        if (u === 'EXTENDED' || u === 'PARTITIONS') i++;
        else if (u === 'ANALYZE') {
          analyze = true;
          i++;
        } else if (u === 'FORMAT') {
          i++;
          if (isSym(L, i, EQ)) i++;
          i++;
        } else break;
      }
      if (analyze) {
        while (isSym(L, i, LP)) i++;
        if (!(up[i] === 'SELECT' || up[i] === 'TABLE' || up[i] === 'VALUES')) plan.write = WriteMode.Unknown; // EXPLAIN ANALYZE runs the statement
      }
      return;
    }
    case 'INSERT':
    case 'REPLACE': {
      st.type = kw === 'INSERT' ? 'insert' : 'replace';
      let i = h + 1;
      while (up[i] === 'LOW_PRIORITY' || up[i] === 'DELAYED' || up[i] === 'HIGH_PRIORITY' || up[i] === 'IGNORE') i++;
      if (up[i] === 'INTO') i++;
      const r = readTarget(L, i, e, plan);
      if (!r) return;
      plan.write = WriteMode.List;
      const t = findTop(L, r.next, e, 'TABLE'); // MySQL 8: INSERT INTO t TABLE u
      if (t >= 0) plan.seeds.push(t + 1);
      return;
    }
    case 'UPDATE': {
      st.type = 'update';
      let i = h + 1;
      while (up[i] === 'LOW_PRIORITY' || up[i] === 'IGNORE') i++;
      plan.seeds.push(i);
      plan.setIdx = findTop(L, i, e, 'SET');
      if (plan.setIdx >= 0) plan.write = WriteMode.Update;
      return;
    }
    case 'DELETE': {
      st.type = 'delete';
      let i = h + 1;
      while (up[i] === 'LOW_PRIORITY' || up[i] === 'QUICK' || up[i] === 'IGNORE') i++;
      if (up[i] === 'FROM') {
        plan.fromIdx = i;
        const u = findTop(L, i + 1, e, 'USING');
        if (u >= 0) {
          plan.usingIdx = u;
          plan.write = WriteMode.DeleteUsing;
        } else {
          plan.write = WriteMode.DeleteSingle;
        }
        return;
      }
      for (;;) {
        const r = readName(L, i, e);
        if (!r) return;
        plan.targets.push(r.ref);
        i = r.next;
        if (isSym(L, i, DOT) && isSym(L, i + 1, STAR)) i += 2;
        if (!isSym(L, i, COMMA)) break;
        i++;
      }
      if (up[i] === 'FROM') plan.write = WriteMode.DeleteMulti;
      return;
    }
    case 'LOAD': {
      if (up[h + 1] !== 'DATA' && up[h + 1] !== 'XML') return;
      st.type = 'load';
      const into = findTop(L, h + 2, e, 'INTO');
      if (into >= 0 && up[into + 1] === 'TABLE' && readTarget(L, into + 2, e, plan)) plan.write = WriteMode.List;
      return;
    }
    case 'TRUNCATE': {
      st.type = 'truncate';
      let i = h + 1;
      if (up[i] === 'TABLE') i++;
      if (readTarget(L, i, e, plan)) plan.write = WriteMode.List;
      return;
    }
    case 'ALTER': {
      st.type = 'alter';
      let i = h + 1;
      while (up[i] === 'ONLINE' || up[i] === 'OFFLINE' || up[i] === 'IGNORE') i++;
      if (up[i] !== 'TABLE') return;
      i++;
      if (up[i] === 'IF' && up[i + 1] === 'EXISTS') i += 2;
      const r = readTarget(L, i, e, plan);
      if (!r) return;
      plan.write = WriteMode.List;
      let depth = 0;
      for (let j = r.next; j < e; j++) {
        if (L.kind[j] === SYM) {
          if (L.ch[j] === LP) depth++;
          else if (L.ch[j] === RP) depth--;
          continue;
        }
        if (depth !== 0 || L.kind[j] !== W) continue;
        if (up[j] === 'RENAME') {
          const n = up[j + 1];
          if (n === 'COLUMN' || n === 'INDEX' || n === 'KEY' || n === 'CONSTRAINT') continue;
          let t = j + 1;
          if (n === 'TO' || n === 'AS') t++;
          const to = readName(L, t, e);
          if (to) plan.list.push(to.ref);
          else plan.write = WriteMode.Unknown;
        } else if (up[j] === 'WITH' && up[j + 1] === 'TABLE') {
          const other = readName(L, j + 2, e);
          if (other) plan.list.push(other.ref);
          else plan.write = WriteMode.Unknown;
        }
      }
      return;
    }
    case 'DROP': {
      st.type = 'drop';
      let i = h + 1;
      if (up[i] === 'TEMPORARY') {
        st.temporary = true;
        i++;
      }
      if (up[i] === 'TABLE' || up[i] === 'TABLES') {
        i++;
        if (up[i] === 'IF' && up[i + 1] === 'EXISTS') i += 2;
        for (;;) {
          const r = readTarget(L, i, e, plan);
          if (!r) return;
          i = r.next;
          if (!isSym(L, i, COMMA)) break;
          i++;
        }
        plan.write = WriteMode.List;
        return;
      }
      while (up[i] === 'ONLINE' || up[i] === 'OFFLINE') i++;
      if (up[i] === 'INDEX') {
        const on = findTop(L, i + 1, e, 'ON');
        if (on >= 0 && readTarget(L, on + 1, e, plan)) plan.write = WriteMode.List;
      }
      return;
    }
    case 'RENAME': {
      st.type = 'rename';
      if (up[h + 1] !== 'TABLE' && up[h + 1] !== 'TABLES') return;
      let i = h + 2;
      if (up[i] === 'IF' && up[i + 1] === 'EXISTS') i += 2;
      for (;;) {
        const from = readTarget(L, i, e, plan);
        if (!from) return;
        i = from.next;
        if (up[i] === 'WAIT') i += 2;
        else if (up[i] === 'NOWAIT') i++;
        if (up[i] !== 'TO') return;
        const to = readTarget(L, i + 1, e, plan);
        if (!to) return;
        i = to.next;
        if (!isSym(L, i, COMMA)) break;
        i++;
      }
      plan.write = WriteMode.List;
      return;
    }
    case 'CREATE': {
      st.type = 'create';
      let i = h + 1;
      if (up[i] === 'OR' && up[i + 1] === 'REPLACE') i += 2;
      if (up[i] === 'TEMPORARY') {
        st.temporary = true;
        i++;
      }
      if (up[i] === 'TABLE') {
        i++;
        if (up[i] === 'IF' && up[i + 1] === 'NOT' && up[i + 2] === 'EXISTS') i += 3;
        const r = readTarget(L, i, e, plan);
        if (!r) return;
        plan.write = WriteMode.List;
        if (up[r.next] === 'LIKE') plan.seeds.push(r.next + 1);
        else if (isSym(L, r.next, LP) && up[r.next + 1] === 'LIKE') plan.seeds.push(r.next + 2);
        return;
      }
      while (up[i] === 'UNIQUE' || up[i] === 'FULLTEXT' || up[i] === 'SPATIAL' || up[i] === 'ONLINE' || up[i] === 'OFFLINE') i++;
      if (up[i] === 'INDEX') {
        const on = findTop(L, i + 1, e, 'ON');
        if (on >= 0 && readTarget(L, on + 1, e, plan)) plan.write = WriteMode.List;
      }
      return;
    }
    case 'BEGIN':
      if (h + 1 >= e || up[h + 1] === 'WORK') {
        st.type = 'begin';
        plan.write = WriteMode.None;
      }
      return;
    case 'START':
      if (up[h + 1] === 'TRANSACTION') {
        st.type = 'begin';
        plan.write = WriteMode.None;
        for (let i = h + 2; i + 1 < e; i++) if (up[i] === 'READ' && up[i + 1] === 'ONLY') st.readOnlyTx = true;
      }
      return;
    case 'COMMIT':
      st.type = 'commit';
      plan.write = WriteMode.None;
      return;
    case 'ROLLBACK': {
      let i = h + 1;
      if (up[i] === 'WORK') i++;
      st.type = up[i] === 'TO' && i < e ? 'savepoint' : 'rollback';
      plan.write = WriteMode.None;
      return;
    }
    case 'SAVEPOINT':
      st.type = 'savepoint';
      plan.write = WriteMode.None;
      return;
    case 'RELEASE':
      if (up[h + 1] === 'SAVEPOINT') {
        st.type = 'savepoint';
        plan.write = WriteMode.None;
      }
      return;
    case 'SET':
      classifySet(c, st, plan, h, e);
      return;
    case 'USE':
      st.type = 'use';
      plan.write = WriteMode.None;
      if (isIdentTok(L, h + 1, e)) st.useSchema = identRaw(L, h + 1);
      return;
    case 'DO':
      st.type = 'do';
      plan.write = WriteMode.None;
      return;
    case 'CALL':
      st.type = 'call';
      return;
    case 'LOCK':
      st.type = 'lock';
      plan.write = WriteMode.None;
      return;
    case 'UNLOCK':
      st.type = 'unlock';
      plan.write = WriteMode.None;
      return;
    case 'ANALYZE': {
      // ANALYZE TABLE only reads; MariaDB's ANALYZE <statement> runs the statement.
      let i = h + 1;
      if (up[i] === 'FORMAT') {
        i++;
        if (isSym(L, i, EQ)) i++;
        i++;
      }
      while (isSym(L, i, LP)) i++;
      const u = up[i];
      if (u === 'TABLE' || u === 'NO_WRITE_TO_BINLOG' || u === 'LOCAL' || u === 'SELECT' || u === 'VALUES') plan.write = WriteMode.None;
      return;
    }
    default:
      if (READ_ONLY_OTHER.has(kw)) plan.write = WriteMode.None;
  }
}

function classifySet(c: Ctx, st: Stmt, plan: Plan, h: number, e: number): void {
  const L = c.L;
  const up = L.up;
  const next = up[h + 1];
  if (next === 'STATEMENT') {
    // SET STATEMENT a=1 [, b=2] FOR <statement>: the assignments last for that statement only.
    const f = findTop(L, h + 2, e, 'FOR');
    if (f < 0) return;
    plan.ignoreFor = f;
    let inner = f + 1;
    while (isSym(L, inner, LP)) inner++;
    classifyHead(c, st, plan, inner, e);
    st.assignments = null;
    st.setsGlobal = false;
    st.useSchema = null;
    return;
  }
  if (next === 'PASSWORD' || (next === 'DEFAULT' && up[h + 2] === 'ROLE')) return; // changes mysql.* tables: 'other'
  st.type = 'set';
  plan.write = WriteMode.None;
  st.assignments = [];
  if (next === 'ROLE') {
    st.assignments.push({ name: 'role', value: textOf(L, h + 2, e) });
    return;
  }
  let i = h + 1;
  let scopeGlobal = false; // GLOBAL/SESSION keywords carry over to later unprefixed assignments
  while (i < e) {
    const u = up[i];
    if (u === 'GLOBAL' || u === 'PERSIST' || u === 'PERSIST_ONLY') {
      scopeGlobal = true;
      i++;
    } else if (u === 'SESSION' || u === 'LOCAL') {
      scopeGlobal = false;
      i++;
    }
    if (up[i] === 'TRANSACTION') {
      // SET [GLOBAL|SESSION] TRANSACTION characteristics: nothing the cache keys on.
      if (scopeGlobal) st.setsGlobal = true;
      return;
    }
    let global = scopeGlobal;
    let user = false;
    let name: string | null = null;
    let needEq = true;
    if (isSym(L, i, AT)) {
      if (isSym(L, i + 1, AT)) {
        i += 2;
        global = false;
        const p = up[i];
        if (isSym(L, i + 1, DOT) && (p === 'GLOBAL' || p === 'PERSIST' || p === 'PERSIST_ONLY')) {
          global = true;
          i += 2;
        } else if (isSym(L, i + 1, DOT) && (p === 'SESSION' || p === 'LOCAL')) {
          i += 2;
        }
      } else {
        user = true;
        i += 2; // '@' and the name
      }
    }
    if (!user) {
      if (up[i] === 'NAMES') {
        name = 'names';
        needEq = false;
        i++;
      } else if (up[i] === 'CHARACTER' && up[i + 1] === 'SET') {
        name = 'character set';
        needEq = false;
        i += 2;
      } else if (up[i] === 'CHARSET') {
        name = 'character set';
        needEq = false;
        i++;
      } else if (i < e && (L.kind[i] === W || L.kind[i] === QI)) {
        name = identLower(L, i);
        i++;
        while (isSym(L, i, DOT) && i + 1 < e && (L.kind[i + 1] === W || L.kind[i + 1] === QI)) {
          name += `.${identLower(L, i + 1)}`;
          i += 2;
        }
      } else {
        return fail();
      }
    }
    if (needEq) {
      if (isSym(L, i, EQ)) i++;
      else if (isSym(L, i, COLON) && isSym(L, i + 1, EQ)) i += 2;
      else return fail();
    }
    const vs = i;
    let depth = 0;
    for (; i < e; i++) {
      if (L.kind[i] !== SYM) continue;
      const ch = L.ch[i];
      if (ch === LP) depth++;
      else if (ch === RP) depth--;
      else if (ch === COMMA && depth === 0) break;
    }
    if (i === vs || i > e) return fail();
    if (name !== null) {
      if (global) st.setsGlobal = true;
      else st.assignments.push({ name, value: textOf(L, vs, i) });
    }
    i++; // the ','
  }
  return;

  function fail(): void {
    st.type = 'other';
    st.assignments = null;
    st.setsGlobal = false;
    plan.write = WriteMode.Unknown;
  }
}

function resolveAlias(t: TableRef, refs: Ref[], fromIdx: number): TableRef {
  if (t.schema === null) {
    for (const r of refs) if (r.idx > fromIdx && r.alias === t.table) return r.ref;
  }
  return t;
}

function writtenTables(plan: Plan, refs: Ref[]): TableRef[] | null {
  const out = new TableSet();
  switch (plan.write) {
    case WriteMode.None:
      return out.list;
    case WriteMode.Unknown:
      return null;
    case WriteMode.List:
      for (const t of plan.list) out.add(t);
      return out.list;
    case WriteMode.Update:
      for (const r of refs) if (r.idx < plan.setIdx) out.add(r.ref);
      break;
    case WriteMode.DeleteSingle:
      for (const r of refs) if (r.idx > plan.fromIdx) return [r.ref];
      break;
    case WriteMode.DeleteMulti:
      for (const t of plan.targets) out.add(resolveAlias(t, refs, -1));
      break;
    case WriteMode.DeleteUsing:
      for (const r of refs) if (r.idx > plan.fromIdx && r.idx < plan.usingIdx) out.add(resolveAlias(r.ref, refs, plan.usingIdx));
      break;
  }
  // A write whose tables were expected but not found: unknown.
  return out.list.length > 0 ? out.list : null;
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
// Entry points

/** Classifies a statement (or a multi-statement text) as received from a client. */
export function classify(sql: string): ClassifiedStatement {
  const L = lex(sql);
  const n = L.n;
  // Tokens kept for keyText and digest: all but one trailing ';'.
  const m = n > 0 && L.kind[n - 1] === SEMI ? n - 1 : n;
  const hints = emptyHints();
  const keyText = buildKeyText(L, m, hints);
  const digestText = buildDigest(L, m);

  const c: Ctx = {
    L,
    reads: new TableSet(),
    nonDet: null,
    needsPrimary: null,
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
    }
    s = i + 1;
  }
  const head = first!;
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
    namedLock: c.namedLock,
    sessionAssignments: multi ? assignments : head.assignments,
    setsGlobal,
    useSchema: multi ? useSchema : head.useSchema,
    readOnlyTransaction: head.readOnlyTx,
    temporaryTable: head.temporary,
  };
}

/**
 * The digest of a text written by a person in a rules file, computed exactly
 * like `ClassifiedStatement.digestText`, so `digestOf(rule) ===
 * classify(query).digestText` when they are the same statement shape; '?'
 * stands for any literal and `(?, ...)` for any list of them.
 */
export function digestOf(sql: string): string {
  const L = lex(sql);
  const m = L.n > 0 && L.kind[L.n - 1] === SEMI ? L.n - 1 : L.n;
  return buildDigest(L, m);
}
