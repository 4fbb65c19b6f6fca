/**
 * Reads the statements of a file for `wirecache rules test`: a plain SQL
 * file (statements ended by `;` or a `DELIMITER`), a MariaDB/MySQL general
 * query log, or a slow query log. The format is recognised from the text.
 * Each statement keeps the line it starts on and, from a log, who ran it:
 * user, default schema, client address and connection id, as far as the log
 * tells. Pure: text in, statements out.
 */
import { isIP } from 'node:net';
import { classify } from '../sql/classifier.js';
import { forEachToken } from '../sql/tokenizer.js';

export interface LoggedStatement {
  /** The statement's text (a plain file's delimiter and line comments removed). */
  sql: string;
  /** 1-based line of the file where the statement starts. */
  line: number;
  /** The account that ran it (general/slow log); absent when the log does not say. */
  user?: string;
  /** The default schema it ran in (a log's Connect/Init DB/Schema, or an earlier USE); absent when unknown. */
  schema?: string;
  /** The client's IP address, when the log gives one. */
  host?: string;
  /** The connection (thread) id in a log: statements of one connection share session state. */
  connection?: number;
  /** A general log's `Execute` (a prepared statement, parameters filled in) rather than `Query`. */
  prepared?: boolean;
}

export type StatementFileFormat = 'sql' | 'general_log' | 'slow_log';

export interface StatementFile {
  statements: LoggedStatement[];
  format: StatementFileFormat;
}

/** Reads the statements of a plain SQL file, a general log or a slow log (detected from the text). */
export function readStatements(text: string): StatementFile {
  const lines = text.split(/\r?\n/);
  const format = detectFormat(lines);
  if (format === 'general_log') return { format, statements: readGeneralLog(lines) };
  if (format === 'slow_log') return { format, statements: readSlowLog(lines) };
  return { format, statements: splitSql(text) };
}

// ---------------------------------------------------------------------------
// Format detection

/** The header a server writes at the top of a general or slow log file (and again after FLUSH LOGS). */
const LOG_HEADER = [/^\S.*, Version: .* started with:\s*$/, /^Tcp port: \d+\s+Unix socket: /, /^Time\s+Id\s+Command\s+Argument\s*$/];
/** A general log entry: [time] tab(s), thread id, command, tab, argument. MariaDB `YYMMDD HH:MM:SS`, MySQL ISO 8601. */
const GENERAL_ENTRY =
  /^(?:\d{6}\s+\d{1,2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?\t+ *(\d+) ([A-Z][A-Za-z_]*(?: [A-Za-z_]+)?)\t(.*)$/;
const SLOW_USER_HOST = /^# User@Host: /;
const SLOW_TIME = /^# Time: /;
const SLOW_QUERY_TIME = /^# Query_time: \d/;

const isLogHeader = (line: string) => LOG_HEADER.some((re) => re.test(line));

function detectFormat(lines: string[]): StatementFileFormat {
  let general = 0;
  let slow = 0;
  let seen = 0;
  for (const line of lines) {
    if (line.trim() === '') continue;
    if (++seen > 200) break;
    if (SLOW_USER_HOST.test(line) || SLOW_QUERY_TIME.test(line)) slow++;
    else if (GENERAL_ENTRY.test(line)) general++;
  }
  if (slow > 0) return 'slow_log';
  if (general > 0) return 'general_log';
  return 'sql';
}

// ---------------------------------------------------------------------------
// General query log

interface ThreadInfo {
  user?: string;
  schema?: string;
  host?: string;
}

/** `app@127.0.0.1 on wc_test using TCP/IP` (MariaDB, MySQL) or `app@localhost as anonymous on wc_test`. */
const CONNECT_ARG = /^(.*)@(\S*)\s+(?:as\s+\S+\s+)?on\s?(\S*)/;

function readGeneralLog(lines: string[]): LoggedStatement[] {
  const threads = new Map<number, ThreadInfo>();
  const out: LoggedStatement[] = [];
  // The entry being read: an argument continues on the lines that are not entries themselves.
  let current: { thread: number; command: string; line: number; parts: string[] } | null = null;

  const finish = () => {
    if (!current) return;
    const entry = current;
    current = null;
    const arg = entry.parts.join('\n');
    const info = threads.get(entry.thread) ?? {};
    switch (entry.command) {
      case 'Connect':
      case 'Change user': {
        const m = CONNECT_ARG.exec(arg);
        // "Access denied for user ..." and other failed logins say nothing about a session.
        if (!m) return;
        const host = m[2];
        threads.set(entry.thread, { user: m[1] || undefined, host: isIP(host) ? host : undefined, schema: m[3] || undefined });
        return;
      }
      case 'Init DB':
        if (arg.trim() !== '') threads.set(entry.thread, { ...info, schema: arg.trim() });
        return;
      case 'Quit':
        threads.delete(entry.thread);
        return;
      case 'Query':
      case 'Execute': {
        const sql = arg.trim();
        if (sql === '') return;
        out.push(withInfo({ sql, line: entry.line, connection: entry.thread, ...(entry.command === 'Execute' ? { prepared: true } : {}) }, info));
        const use = useOf(sql);
        if (use !== null) threads.set(entry.thread, { ...info, schema: use });
        return;
      }
      default:
        // Prepare (its Execute is logged with the values), Close stmt, Ping, Statistics, Field List, ...
        return;
    }
  };

  lines.forEach((text, i) => {
    if (isLogHeader(text)) {
      finish();
      return;
    }
    const m = GENERAL_ENTRY.exec(text);
    if (m) {
      finish();
      current = { thread: Number(m[1]), command: m[2], line: i + 1, parts: [m[3]] };
      return;
    }
    current?.parts.push(text);
  });
  finish();
  return out;
}

// ---------------------------------------------------------------------------
// Slow query log

/** `# User@Host: app[app] @ localhost [127.0.0.1]` (MySQL adds `Id: 12`): priv_user[login user] @ host [ip]. */
const SLOW_USER = /^# User@Host: ([^[\s]*)\[([^\]]*)\]\s*@\s*(\S*)\s*\[([^\]]*)\](?:\s+Id:\s*(\d+))?/;
/** MariaDB: `# Thread_id: 7  Schema: wc_test  QC_hit: No`. */
const SLOW_THREAD = /^# Thread_id:\s*(\d+)(?:\s+Schema:\s*(\S*))?/;
/** What the server writes before each statement: `use db;` when the schema changed, and its timestamp. */
const SLOW_USE = /^use (`(?:[^`]|``)*`|\S+);$/;
const SLOW_SET_TIMESTAMP = /^SET (?:last_insert_id=\d+,\s*)?(?:insert_id=\d+,\s*)?timestamp=\d+;$/;

function readSlowLog(lines: string[]): LoggedStatement[] {
  const out: LoggedStatement[] = [];
  // The slow log writes `use db;` only when the schema differs from the previous entry's.
  let lastSchema: string | undefined;
  let entry: { info: ThreadInfo & { connection?: number }; body: { text: string; line: number }[]; inHeader: boolean } | null = null;

  const finish = () => {
    if (!entry) return;
    const e = entry;
    entry = null;
    const body = e.body;
    let start = 0;
    // Only the first lines are the server's own: a `use` and a `SET timestamp` later on are the statement's.
    if (start < body.length && SLOW_USE.test(body[start].text)) {
      lastSchema = unquoteIdentifier(SLOW_USE.exec(body[start].text)![1]);
      start++;
    }
    if (start < body.length && SLOW_SET_TIMESTAMP.test(body[start].text)) start++;
    while (start < body.length && body[start].text.trim() === '') start++;
    if (start >= body.length) return;
    // `# administrator command: Quit;` and the like are not statements.
    if (body[start].text.startsWith('# administrator command:')) return;
    let sql = body
      .slice(start)
      .map((b) => b.text)
      .join('\n')
      .trim();
    if (sql.endsWith(';')) sql = sql.slice(0, -1).trimEnd();
    if (sql === '') return;
    const schema = e.info.schema ?? lastSchema;
    out.push(withInfo({ sql, line: body[start].line, ...(e.info.connection !== undefined ? { connection: e.info.connection } : {}) }, { ...e.info, schema }));
  };

  lines.forEach((text, i) => {
    if (isLogHeader(text)) {
      finish();
      return;
    }
    if (SLOW_TIME.test(text) || SLOW_USER_HOST.test(text)) {
      // A `# Time:` line starts an entry; a `# User@Host:` line right after it belongs to the same one.
      if (!(entry && entry.inHeader && entry.body.length === 0 && SLOW_USER_HOST.test(text))) {
        finish();
        entry = { info: {}, body: [], inHeader: true };
      }
    }
    if (!entry) return;
    if (entry.inHeader && text.startsWith('# ')) {
      const user = SLOW_USER.exec(text);
      if (user) {
        entry.info.user = user[2] || user[1] || undefined;
        const address = user[4] || user[3];
        entry.info.host = isIP(address) ? address : undefined;
        if (user[5] !== undefined) entry.info.connection = Number(user[5]);
      }
      const thread = SLOW_THREAD.exec(text);
      if (thread) {
        entry.info.connection = Number(thread[1]);
        if (thread[2]) entry.info.schema = thread[2];
      }
      return;
    }
    entry.inHeader = false;
    entry.body.push({ text, line: i + 1 });
  });
  finish();
  return out;
}

function unquoteIdentifier(name: string): string {
  return name.startsWith('`') && name.endsWith('`') && name.length >= 2 ? name.slice(1, -1).replace(/``/g, '`') : name;
}

// ---------------------------------------------------------------------------
// Plain SQL

const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';
/** A block comment that is a wirecache hint (kept with its statement even on a line of its own). */
const HINT_COMMENT = /^\/\*\s*(qc|qc_ttl|route)\s*=/i;

/**
 * Splits a SQL script like the mysql/mariadb command-line client: on `;` (or
 * the `DELIMITER` in force) outside quotes and comments. `-- ` and `#`
 * comments are left out of the statements; `/* *\/` comments stay (hints live
 * there), except a comment on lines of its own before a statement.
 * `USE db` sets the schema of the statements after it.
 */
function splitSql(text: string): LoggedStatement[] {
  const out: LoggedStatement[] = [];
  const n = text.length;
  let delimiter = ';';
  let schema: string | undefined;
  let line = 1;
  let i = 0;
  // The statement being read: its pieces (line comments cut out) and where it started.
  let pieces: string[] = [];
  let segStart = -1;
  let startLine = 0;
  let atLineStart = true;

  const emit = (end: number) => {
    if (segStart >= 0) pieces.push(text.slice(segStart, end));
    const sql = pieces.join('').trim();
    pieces = [];
    segStart = -1;
    if (sql === '' || !hasToken(sql)) return;
    out.push({ sql, line: startLine, ...(schema !== undefined ? { schema } : {}) });
    const use = useOf(sql);
    if (use !== null) schema = use;
  };
  const begin = () => {
    if (segStart < 0 && pieces.length === 0) startLine = line;
    if (segStart < 0) segStart = i;
  };
  /** Skips to the end of the line (the newline itself is kept in the statement). */
  const skipLineComment = () => {
    if (segStart >= 0) {
      pieces.push(text.slice(segStart, i));
      segStart = -1;
    }
    const nl = text.indexOf('\n', i);
    i = nl < 0 ? n : nl;
    if (pieces.length > 0) segStart = i;
  };

  while (i < n) {
    const c = text[i];
    if (atLineStart) {
      atLineStart = false;
      if (segStart < 0 && pieces.join('').trim() === '') {
        const nl = text.indexOf('\n', i);
        const lineText = text.slice(i, nl < 0 ? n : nl);
        const d = /^\s*delimiter\s+(\S+)/i.exec(lineText);
        if (d) {
          delimiter = d[1];
          pieces = [];
          i = nl < 0 ? n : nl;
          continue;
        }
      }
    }
    if (c === '\n') {
      line++;
      atLineStart = true;
      i++;
      continue;
    }
    if (text.startsWith(delimiter, i)) {
      emit(i);
      i += delimiter.length;
      continue;
    }
    if (isSpace(c)) {
      i++;
      continue;
    }
    const next = text[i + 1];
    if (c === '#' || (c === '-' && next === '-' && (i + 2 >= n || isSpace(text[i + 2])))) {
      skipLineComment();
      continue;
    }
    if (c === '/' && next === '*' && !/^\/\*M?!/i.test(text.slice(i, i + 4))) {
      const close = text.indexOf('*/', i + 2);
      const end = close < 0 ? n : close + 2;
      const comment = text.slice(i, end);
      const restOfLine = text.slice(end, lineEnd(text, end));
      const leading = segStart < 0 && pieces.join('').trim() === '';
      if (leading && restOfLine.trim() === '' && !HINT_COMMENT.test(comment)) {
        // A comment on lines of its own before a statement: a note for the reader, not part of it.
        line += countNewlines(comment);
        pieces = [];
        i = end;
        continue;
      }
      begin();
      line += countNewlines(comment);
      i = end;
      continue;
    }
    begin();
    if (c === "'" || c === '"' || c === '`') {
      const end = endOfQuoted(text, i, c);
      line += countNewlines(text.slice(i, end));
      i = end;
      continue;
    }
    i++;
  }
  emit(n);
  return out;
}

function lineEnd(text: string, from: number): number {
  const nl = text.indexOf('\n', from);
  return nl < 0 ? text.length : nl;
}

function countNewlines(s: string): number {
  let k = 0;
  for (let j = s.indexOf('\n'); j >= 0; j = s.indexOf('\n', j + 1)) k++;
  return k;
}

/** End (exclusive) of a quoted string or identifier at `start`: backslash escapes (not in `...`) and doubled quotes. */
function endOfQuoted(text: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\' && quote !== '`') {
      i += 2;
      continue;
    }
    if (c === quote) {
      if (text[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return text.length;
}

// ---------------------------------------------------------------------------
// Shared

function hasToken(sql: string): boolean {
  let found = false;
  forEachToken(sql, () => {
    found = true;
    return false;
  });
  return found;
}

/** The schema a `USE db` statement switches to, else null. */
function useOf(sql: string): string | null {
  if (!/^\s*(\/\*[\s\S]*?\*\/\s*)*use\b/i.test(sql)) return null;
  const s = classify(sql);
  return s.type === 'use' && !s.multiStatement ? s.useSchema : null;
}

function withInfo(stmt: LoggedStatement, info: ThreadInfo): LoggedStatement {
  const out: LoggedStatement = { ...stmt };
  if (info.user !== undefined) out.user = info.user;
  if (info.schema !== undefined) out.schema = info.schema;
  if (info.host !== undefined) out.host = info.host;
  return out;
}
