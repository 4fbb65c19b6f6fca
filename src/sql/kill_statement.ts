import { forEachToken, leadingKeywords, TokenKind } from './tokenizer.js';

/**
 * Recognising the KILL statements the proxy must answer itself: a byte-level
 * test that keeps every other query undecoded, and the parsing, on top of
 * the tokenizer, once a statement does start with KILL.
 */

const isSpaceByte = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);

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

/**
 * Recognises `KILL [HARD|SOFT] [CONNECTION|QUERY] id` (one statement, an
 * optional trailing semicolon), reading it with the tokenizer so comments
 * and executable comments are handled as the server handles them. Returns
 * null when the statement is not a KILL at all, and `unsupported` for any
 * other KILL form (KILL USER, KILL QUERY ID, KILL followed by more
 * statements): those would reach sessions the proxy does not own.
 */
export function parseKillStatement(sql: string): KillStatement | null {
  const words: string[] = [];
  let onlyWords = true;
  let ended = false;
  forEachToken(sql, (t) => {
    if (ended || (t.kind !== TokenKind.Word && t.kind !== TokenKind.Semicolon)) {
      onlyWords = false;
      return false;
    }
    if (t.kind === TokenKind.Semicolon) ended = true;
    else words.push(sql.slice(t.start, t.end).toUpperCase());
  });
  if (words[0] !== 'KILL') return null;
  let i = 1;
  if (words[i] === 'HARD' || words[i] === 'SOFT') i++;
  const scope = words[i] === 'QUERY' ? 'query' : 'connection';
  if (words[i] === 'QUERY' || words[i] === 'CONNECTION') i++;
  if (!onlyWords || i !== words.length - 1 || !/^\d+$/.test(words[i])) {
    return { kind: 'unsupported', reason: 'only KILL [CONNECTION|QUERY] <connection id> is supported through wirecache' };
  }
  const id = Number(words[i]);
  if (!Number.isSafeInteger(id)) return { kind: 'unsupported', reason: 'connection id out of range' };
  return { kind: 'kill', scope, id };
}
