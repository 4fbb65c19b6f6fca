import { leadingKeywords } from './sql_tokenizer.js';

/**
 * Small lexical helpers over SQL text that the proxy needs before a full
 * tokenizer exists: skipping leading comments, and recognising the KILL
 * statement the proxy must answer itself.
 */

const isSpaceByte = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/** Index of the first character that is neither whitespace nor inside a leading comment. */
export function skipLeadingComments(sql: string): number {
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpaceByte(c) || c === 0x3b /* ; */) {
      i++;
    } else if (c === 0x2f /* / */ && sql.charCodeAt(i + 1) === 0x2a /* * */) {
      // A /*! ... */ or /*M! ... */ comment is executable code for MySQL/MariaDB, not a comment.
      const next = sql.charCodeAt(i + 2);
      if (next === 0x21 /* ! */ || ((next === 0x4d || next === 0x6d) && sql.charCodeAt(i + 3) === 0x21)) return i;
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) return n;
      i = end + 2;
    } else if (c === 0x23 /* # */ || (c === 0x2d && sql.charCodeAt(i + 1) === 0x2d && isSpaceOrEnd(sql, i + 2))) {
      const end = sql.indexOf('\n', i);
      if (end < 0) return n;
      i = end + 1;
    } else {
      return i;
    }
  }
  return n;
}

function isSpaceOrEnd(sql: string, i: number): boolean {
  if (i >= sql.length) return true;
  const c = sql.charCodeAt(i);
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * Whether the statement in `buf` from `offset` begins with the word KILL,
 * after whitespace, comments and the markers of executable comments
 * (`/*!NNNNN`, `/*M!NNNNN`, whose content the server runs). Works on bytes
 * with no length limit, so the text of every other query is never decoded.
 */
export function startsWithKill(buf: Buffer, offset: number): boolean {
  let i = offset;
  const n = buf.length;
  while (i < n) {
    const c = buf[i];
    if (isSpaceByte(c) || c === 0x3b /* ; */) {
      i++;
    } else if (c === 0x2f && buf[i + 1] === 0x2a) {
      let j = i + 2;
      if (buf[j] === 0x4d || buf[j] === 0x6d) j++;
      if (buf[j] === 0x21) {
        // Executable comment: skip the marker and its optional version number, then read on inside.
        j++;
        while (j < n && buf[j] >= 0x30 && buf[j] <= 0x39) j++;
        i = j;
        continue;
      }
      const end = buf.indexOf('*/', i + 2, 'latin1');
      if (end < 0) return false;
      i = end + 2;
    } else if (c === 0x23 || (c === 0x2d && buf[i + 1] === 0x2d && (i + 2 >= n || isSpaceByte(buf[i + 2])))) {
      const end = buf.indexOf(0x0a, i);
      if (end < 0) return false;
      i = end + 1;
    } else {
      return (
        i + 4 <= n &&
        (buf[i] | 0x20) === 0x6b &&
        (buf[i + 1] | 0x20) === 0x69 &&
        (buf[i + 2] | 0x20) === 0x6c &&
        (buf[i + 3] | 0x20) === 0x6c
      );
    }
  }
  return false;
}

/** Whether the letters K-I-L-L (any case) occur anywhere in `buf` from `offset`: the cheap test before tokenizing a batch. */
export function mentionsKill(buf: Buffer, offset: number): boolean {
  for (let i = offset, n = buf.length - 3; i < n; i++) {
    if ((buf[i] | 0x20) === 0x6b && (buf[i + 1] | 0x20) === 0x69 && (buf[i + 2] | 0x20) === 0x6c && (buf[i + 3] | 0x20) === 0x6c) {
      return true;
    }
  }
  return false;
}

/**
 * Whether a multi-statement text has a KILL statement after its first one.
 * The proxy cannot answer one statement of a batch itself, so such a batch
 * is refused rather than sent to the backend with an unmapped thread id.
 */
export function batchContainsKill(sql: string): boolean {
  return leadingKeywords(sql).slice(1).includes('KILL');
}

export type KillStatement =
  | { kind: 'kill'; scope: 'connection' | 'query'; id: number }
  | { kind: 'unsupported'; reason: string };

const KILL_ID = /^KILL\s+(?:(?:HARD|SOFT)\s+)?(?:(CONNECTION|QUERY)\s+)?(\d+)\s*;?\s*$/i;

/**
 * Recognises `KILL [HARD|SOFT] [CONNECTION|QUERY] id`. Returns null when the
 * statement is not a KILL at all, and `unsupported` for KILL forms that name
 * no proxy connection (KILL USER, KILL QUERY ID): those would reach sessions
 * of other clients of the same backend, so the proxy refuses them.
 */
export function parseKillStatement(sql: string): KillStatement | null {
  let start = skipLeadingComments(sql);
  // /*!KILL ...*/ and /*M!100000 KILL ...*/ are executed by the server: read what they contain.
  const exec = /^\/\*M?!\d*/i.exec(sql.slice(start, start + 12));
  if (exec) {
    sql = sql.slice(start + exec[0].length).replace(/\*\/\s*;?\s*$/, '');
    start = skipLeadingComments(sql);
  }
  if (sql.length - start < 5 || sql.substr(start, 4).toUpperCase() !== 'KILL') return null;
  const after = sql.charCodeAt(start + 4);
  if (!(isSpaceByte(after) || after === 0x2f)) return null;
  const text = sql.slice(start).replace(/\/\*.*?\*\//gs, ' ').trim();
  const m = KILL_ID.exec(text);
  if (!m) return { kind: 'unsupported', reason: 'only KILL [CONNECTION|QUERY] <connection id> is supported through wirecache' };
  const id = Number(m[2]);
  if (!Number.isSafeInteger(id)) return { kind: 'unsupported', reason: 'connection id out of range' };
  return { kind: 'kill', scope: m[1]?.toUpperCase() === 'QUERY' ? 'query' : 'connection', id };
}
