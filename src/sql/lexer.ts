import { forEachToken, TokenKind } from './tokenizer.js';

/**
 * The classifier's view of a text's tokens: one pass of the tokenizer
 * (`lex`) into parallel arrays, and small readers over those arrays that the
 * key text, digest, table-reference and statement-kind code share (number
 * literals, identifiers, parenthesis matching, the text of a token range).
 * Token indexes, not token objects, are passed around: no allocation per token
 * beyond the arrays themselves.
 */

export const W = TokenKind.Word;
export const QI = TokenKind.QuotedIdentifier;
export const STR = TokenKind.String;
export const SEMI = TokenKind.Semicolon;
export const SYM = TokenKind.Symbol;

export const LP = 0x28; // (
export const RP = 0x29; // )
export const COMMA = 0x2c;
export const DOT = 0x2e;
export const AT = 0x40;
export const EQ = 0x3d;
export const COLON = 0x3a;
export const QMARK = 0x3f;
export const MINUS = 0x2d;
export const PLUS = 0x2b;
export const STAR = 0x2a;
export const SLASH = 0x2f;
export const DQUOTE = 0x22;

/** The tokens of a text as parallel arrays. */
export interface Lexed {
  sql: string;
  n: number;
  kind: TokenKind[];
  start: number[];
  end: number[];
  /** Upper-cased text of Word tokens, '' for the others. */
  up: string[];
  /** Character code of Symbol and Semicolon tokens, 0 for the others. */
  ch: number[];
  /**
   * Tokens the statement analysis read as a table or schema name (filled by
   * `readName`): the digest keeps their case, since table names are
   * case-sensitive on most servers.
   */
  names: Set<number>;
}

export function lex(sql: string): Lexed {
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
  return { sql, n: kind.length, kind, start, end, up, ch, names: new Set() };
}

export const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
export const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
export const isSym = (L: Lexed, i: number, c: number) => i < L.n && L.ch[i] === c && L.kind[i] === SYM;
/** Token i ends exactly where token j starts. */
export const touches = (L: Lexed, i: number, j: number) => L.end[i] === L.start[j];

/** A Word token that is a number literal: 12, 1e5, 1e (before a sign), 0x1F, 0b101; not identifiers like 2fa_codes. */
export function isNumberWord(L: Lexed, i: number): boolean {
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
export function isIdentTok(L: Lexed, i: number, e: number): boolean {
  if (i >= e) return false;
  const k = L.kind[i];
  if (k === W) return !isNumberWord(L, i);
  return k === QI || (k === STR && L.sql.charCodeAt(L.start[i]) === DQUOTE);
}

/** The name a Word, quoted identifier or quoted string token stands for, quotes removed, case kept. */
export function identRaw(L: Lexed, i: number): string {
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

export const identLower = (L: Lexed, i: number) => identRaw(L, i).toLowerCase();

/** Index after the ')' matching the '(' at i (or e when unbalanced). */
export function skipParen(L: Lexed, i: number, e: number): number {
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
export function findTop(L: Lexed, i: number, e: number, word: string): number {
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
export function textOf(L: Lexed, a: number, b: number): string {
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
