import {
  AT,
  DOT,
  identRaw,
  isDigit,
  isNumberWord,
  isSym,
  type Lexed,
  LP,
  MINUS,
  PLUS,
  QI,
  QMARK,
  RP,
  SEMI,
  STR,
  SYM,
  touches,
  W,
} from './lexer.js';

/**
 * The digest (`ClassifiedStatement.digestText`, `digestOf`): a statement's
 * shape with literals replaced by '?', which rule files are matched on.
 */

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
 *   are upper-cased too (kept in backticks when not a plain word), so keyword,
 *   function and column case never matters; table and schema names (the
 *   tokens in `L.names`, which the statement analysis fills) keep their case,
 *   because the server tells `Users` from `users`;
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
export function buildDigest(L: Lexed, m: number): string {
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
        push(L.names.has(i) ? sql.slice(L.start[i], L.end[i]) : L.up[i], D_WORD);
      }
    } else if (k === QI) {
      const name = L.names.has(i) ? identRaw(L, i) : identRaw(L, i).toUpperCase();
      let plain = name.length > 0;
      for (let p = 0; p < name.length && plain; p++) {
        const c = name.charCodeAt(p);
        plain = isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x24 || c >= 0x80;
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
