import { forEachToken, TokenKind, type Token } from './tokenizer.js';

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

/** One `KILL [HARD|SOFT] [CONNECTION|QUERY] id` of a multi-statement text, with where its id stands. */
export interface BatchKill {
  scope: 'connection' | 'query';
  id: number;
  /** Offsets of the id's digits in the text. */
  start: number;
  end: number;
}

/**
 * The KILL statements of a text, read statement by statement with the
 * tokenizer: null when no statement is a KILL; `unsupported` (with the
 * reason) when one is a KILL form the proxy cannot map (KILL USER, KILL
 * QUERY ID, an id that is not a number); otherwise each KILL, and how many
 * statements the text holds.
 */
export function killsInText(sql: string): { kills: BatchKill[]; statements: number } | { unsupported: string } | null {
  const kills: BatchKill[] = [];
  let statements = 0;
  let words: Token[] = [];
  let other = false;
  let unsupported: string | null = null;
  const endStatement = () => {
    if (words.length === 0 && !other) return;
    statements++;
    if (words.length === 0 || sql.slice(words[0].start, words[0].end).toUpperCase() !== 'KILL') return;
    const up = words.map((t) => sql.slice(t.start, t.end).toUpperCase());
    let i = 1;
    if (up[i] === 'HARD' || up[i] === 'SOFT') i++;
    const scope = up[i] === 'QUERY' ? 'query' : 'connection';
    if (up[i] === 'QUERY' || up[i] === 'CONNECTION') i++;
    const id = Number(up[i]);
    if (other || i !== up.length - 1 || !/^\d+$/.test(up[i]) || !Number.isSafeInteger(id)) {
      unsupported ??= 'only KILL [CONNECTION|QUERY] <connection id> is supported through wirecache';
      return;
    }
    kills.push({ scope, id, start: words[i].start, end: words[i].end });
  };
  forEachToken(sql, (t) => {
    if (t.kind === TokenKind.Semicolon) {
      endStatement();
      words = [];
      other = false;
    } else if (t.kind === TokenKind.Word && !other) words.push(t);
    else other = true;
  });
  endStatement();
  if (unsupported !== null) return { unsupported };
  return kills.length === 0 ? null : { kills, statements };
}
