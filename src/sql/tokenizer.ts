/**
 * A small SQL tokenizer for the MySQL/MariaDB dialect: enough to find
 * statement boundaries and leading keywords without being fooled by
 * comments, quoted strings or quoted identifiers. Executable comments
 * (`/*! ... *\/`, `/*M! ... *\/`, optionally with a version number) are read
 * as code, because the server runs what they contain.
 *
 * It assumes backslash escapes in strings (the default sql_mode); under
 * NO_BACKSLASH_ESCAPES a string ending in a backslash would be read as
 * running on, which can only make a statement look longer, never split it.
 */

export const enum TokenKind {
  /** Keyword, unquoted identifier or number. */
  Word,
  /** `quoted identifier` */
  QuotedIdentifier,
  /** 'string' or "string" */
  String,
  Semicolon,
  /** Any other single character: operators, parentheses, commas. */
  Symbol,
}

export interface Token {
  kind: TokenKind;
  start: number;
  end: number;
}

const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isWordChar = (c: number) =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x24 || c >= 0x80;

/** Calls `visit` for every token of `sql` in order; stops early when `visit` returns false. */
export function forEachToken(sql: string, visit: (t: Token) => boolean | void): void {
  const n = sql.length;
  let i = 0;
  // Inside an executable comment its closing marker is skipped, not read as an operator.
  let executableDepth = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const next = i + 1 < n ? sql.charCodeAt(i + 1) : -1;
    if (c === 0x2f /* / */ && next === 0x2a /* * */) {
      let j = i + 2;
      if (sql.charCodeAt(j) === 0x4d || sql.charCodeAt(j) === 0x6d) j++;
      if (sql.charCodeAt(j) === 0x21 /* ! */) {
        j++;
        while (j < n && sql.charCodeAt(j) >= 0x30 && sql.charCodeAt(j) <= 0x39) j++;
        executableDepth++;
        i = j;
        continue;
      }
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
      continue;
    }
    if (c === 0x2a /* * */ && next === 0x2f && executableDepth > 0) {
      executableDepth--;
      i += 2;
      continue;
    }
    if (c === 0x23 /* # */ || (c === 0x2d && next === 0x2d && (i + 2 >= n || isSpace(sql.charCodeAt(i + 2))))) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      continue;
    }
    let token: Token;
    if (c === 0x27 /* ' */ || c === 0x22 /* " */ || c === 0x60 /* ` */) {
      const end = endOfQuoted(sql, i, c);
      token = { kind: c === 0x60 ? TokenKind.QuotedIdentifier : TokenKind.String, start: i, end };
    } else if (isWordChar(c)) {
      let j = i + 1;
      while (j < n && isWordChar(sql.charCodeAt(j))) j++;
      token = { kind: TokenKind.Word, start: i, end: j };
    } else {
      token = { kind: c === 0x3b ? TokenKind.Semicolon : TokenKind.Symbol, start: i, end: i + 1 };
    }
    if (visit(token) === false) return;
    i = token.end;
  }
}

/** End (exclusive) of a quoted string or identifier starting at `start`; a doubled quote stays inside. */
function endOfQuoted(sql: string, start: number, quote: number): number {
  const n = sql.length;
  let i = start + 1;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 0x5c /* \ */ && quote !== 0x60) {
      i += 2;
      continue;
    }
    if (c === quote) {
      if (sql.charCodeAt(i + 1) === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return n;
}
