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

/**
 * keyText of tokens 0..m-1 (m excludes a trailing ';'), filling `hints` from
 * the leading comments.
 *
 * What separates two tokens becomes one space: a run of white space, a
 * comment (only versioned executable-comment markers and optimizer hints are
 * kept, since they change what runs). Tokens that touch stay joined: the
 * server may read `1e+1` and `1e + 1`, or `x'41'` and `x '41'`, differently,
 * so a key never joins them. `spaced` (for rule regexes written before)
 * puts one space between any two tokens instead.
 *
 * A text with a backslash or a double quote anywhere is kept exactly as
 * received: how the server reads those depends on the session's sql_mode
 * (NO_BACKSLASH_ESCAPES, ANSI_QUOTES), which can move where a string ends,
 * and a key must never join two texts the server tells apart.
 */
export function buildKeyText(L: Lexed, m: number, hints: CacheHints, spaced = false): string {
  const sql = L.sql;
  const stack: boolean[] = [];
  const lead = walkGap(sql, 0, L.n > 0 ? L.start[0] : sql.length, stack, hints);
  if (m === 0) return '';
  if (!spaced && (sql.indexOf('\\') >= 0 || sql.indexOf('"') >= 0)) return sql;
  let key = lead ? `${lead} ` : '';
  let runStart = L.start[0];
  for (let i = 1; i < m; i++) {
    const pe = L.end[i - 1];
    const ts = L.start[i];
    if (ts === pe) {
      if (!spaced || (L.kind[i - 1] === W && (L.kind[i] === STR || L.kind[i] === QI))) continue;
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

const HINT_LIKE = /\b(?:qc|qc_ttl|ttl|route|cache|nocache|no_cache)\b\s*[=:]|\b(?:qc|qc_ttl)\b/i;

/**
 * Comments that look like cache or route hints but are not read as one, with
 * why: several hints in one comment (`/*qc=on,ttl=5*\/`), a value the parser
 * refuses (`/* qc_ttl=5s *\/`), an unknown key, a hint after the first token,
 * or one in a `--`/`#` comment. For /explain only: classify() never calls it,
 * so statements pay nothing for it. Quoted strings are skipped.
 */
export function ignoredHintComments(sql: string): { comment: string; warning: string }[] {
  const out: { comment: string; warning: string }[] = [];
  const n = sql.length;
  let sawToken = false;
  let i = 0;
  const hintLike = (body: string) => HINT_LIKE.test(body);
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 0x27 || c === 0x22 || c === 0x60) {
      // '...', "..." or `...`: skip to the closing quote (doubled quotes and backslash escapes included).
      sawToken = true;
      let j = i + 1;
      while (j < n) {
        const d = sql.charCodeAt(j);
        if (d === 0x5c && c !== 0x60) j += 2;
        else if (d === c && sql.charCodeAt(j + 1) === c) j += 2;
        else if (d === c) break;
        else j++;
      }
      i = j + 1;
      continue;
    }
    if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      const close = sql.indexOf('*/', i + 2);
      const end = close < 0 ? n : close + 2;
      const comment = sql.slice(i, end);
      const body = sql.slice(i + 2, close < 0 ? n : close);
      const special = body.startsWith('!') || body.startsWith('+') || /^m!/i.test(body);
      if (!special && hintLike(body)) {
        const parsed = emptyHints();
        parseHint(body, parsed);
        const valid = parsed.cache !== null || parsed.ttlSeconds !== null || parsed.route !== null;
        if (!valid) {
          out.push({ comment, warning: whyNotAHint(body) });
        } else if (sawToken) {
          out.push({ comment, warning: 'hints are read only before the first token of the statement: this one is ignored (move it to the start)' });
        }
      }
      i = end;
      continue;
    }
    if (c === 0x23 /* # */ || (c === MINUS && sql.charCodeAt(i + 1) === MINUS && (i + 2 >= n || isSpace(sql.charCodeAt(i + 2))))) {
      const nl = sql.indexOf('\n', i);
      const end = nl < 0 ? n : nl;
      const comment = sql.slice(i, end);
      if (hintLike(comment.slice(c === 0x23 ? 1 : 2))) {
        out.push({ comment, warning: 'hints are read only from /* ... */ comments, never from -- or # comments: this one is ignored' });
      }
      i = end;
      continue;
    }
    if (!isSpace(c)) sawToken = true;
    i++;
  }
  return out;
}

function whyNotAHint(body: string): string {
  const text = body.trim();
  const pairs = text.split(/[\s,;]+/).filter((p) => p.includes('=') || p.includes(':'));
  const base = 'looks like a hint but is not one, and is ignored';
  if (pairs.length > 1 || /,|;/.test(text)) return `${base}: write one hint per comment, e.g. /*qc=on*//*qc_ttl=5*/`;
  const eq = text.indexOf('=');
  if (eq < 0) return `${base}: a hint is key=value (qc=on, qc=off, qc_ttl=N, route=NAME)`;
  const key = text.slice(0, eq).trim().toLowerCase();
  const value = text.slice(eq + 1).trim();
  if (key === 'qc') return `${base}: qc takes on or off, got ${JSON.stringify(value)}`;
  if (key === 'qc_ttl') return `${base}: qc_ttl takes whole seconds, digits only (qc_ttl=5), got ${JSON.stringify(value)}`;
  if (key === 'ttl') return `${base}: the TTL hint is qc_ttl=N (whole seconds)`;
  if (key === 'route') return `${base}: route takes primary, replica or a backend name, got ${JSON.stringify(value)}`;
  return `${base}: the hints are qc=on, qc=off, qc_ttl=N and route=NAME`;
}
