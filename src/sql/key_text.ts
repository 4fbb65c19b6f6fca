import { isDigit, isSpace, type Lexed, MINUS, PLUS, QI, SLASH, STAR, STR, W } from './lexer.js';

/**
 * The cache key text (`ClassifiedStatement.keyText`) and what the text
 * between tokens holds: cache hints in comments (`/*qc=off*\/`,
 * `/*qc_ttl=N*\/`, `/*route=...*\/`), executable-comment markers and
 * optimizer hints.
 */

export interface CacheHints {
  /** From a leading comment: qc=on / qc=off; null when absent. When both appear, off wins. */
  cache: 'on' | 'off' | null;
  /** /*qc_ttl=N*\/ seconds (integer >= 0); null when absent or invalid. The last valid one wins. */
  ttlSeconds: number | null;
  /** /*route=primary*\/, /*route=replica*\/ or /*route=<server name>*\/, as written; null when absent. */
  route: string | null;
}

export function emptyHints(): CacheHints {
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
export function buildKeyText(L: Lexed, m: number, hints: CacheHints): string {
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

/** Whether sql[a..b) is white space only. */
function blank(sql: string, a: number, b: number): boolean {
  for (let i = a; i < b; i++) if (!isSpace(sql.charCodeAt(i))) return false;
  return true;
}

/**
 * The statement as the client wrote it, for rule regexes: tokens 0..m-1 with
 * their spacing, every comment (hints, optimizer hints and the markers of
 * executable comments included, their contents kept) replaced by one space,
 * and no leading or trailing gap.
 */
export function buildWrittenText(L: Lexed, m: number): string {
  if (m === 0) return '';
  const sql = L.sql;
  let out = '';
  let runStart = L.start[0];
  for (let i = 1; i < m; i++) {
    const pe = L.end[i - 1];
    const ts = L.start[i];
    if (ts === pe || blank(sql, pe, ts)) continue;
    out += `${sql.slice(runStart, pe)} `;
    runStart = ts;
  }
  return out + sql.slice(runStart, L.end[m - 1]);
}
