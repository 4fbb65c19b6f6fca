/**
 * YAML validation with located errors: parses YAML text, validates it against
 * a zod schema and reports every problem as a ConfigError pointing at the
 * file, line and column of the offending YAML node and naming the field by
 * its dotted path (`users[1].password_hash`), so an operator can go straight
 * to the mistake. Zod issue paths are mapped back onto the YAML document to
 * find positions. Used for the config file and the rules file.
 */
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Document,
} from 'yaml';
import * as z from 'zod';

// ---------------------------------------------------------------------------
// Errors

/** One problem found in a config file. */
export interface ConfigIssue {
  /** The file name as given to loadConfig / parseConfig. */
  file: string;
  /** 1-based line, when the problem can be tied to a place in the file. */
  line?: number;
  /** 1-based column, when known. */
  column?: number;
  /** Dotted path of the field, e.g. `users[1].password_hash`; absent for syntax errors. */
  field?: string;
  /** What is wrong, without the location prefix. */
  message: string;
}

/** Formats one issue as `FILE:LINE:COL: field a.b: message`. */
function formatConfigIssue(issue: ConfigIssue): string {
  let where = issue.file;
  if (issue.line !== undefined) {
    where += `:${issue.line}`;
    if (issue.column !== undefined) where += `:${issue.column}`;
  }
  const field = issue.field ? `field ${issue.field}: ` : '';
  return `${where}: ${field}${issue.message}`;
}

/**
 * An invalid or unreadable config file. `file`, `line`, `column`, `field` and
 * `reason` describe the first problem (the earliest in the file); `issues`
 * holds all of them, and `message` is every issue formatted, one per line.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly file: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly field: string | undefined;
  /** The first issue's message without the location prefix. */
  readonly reason: string;
  readonly issues: readonly ConfigIssue[];

  constructor(issues: ConfigIssue | readonly ConfigIssue[], options?: { cause?: unknown }) {
    const list = Array.isArray(issues) ? [...(issues as readonly ConfigIssue[])] : [issues as ConfigIssue];
    if (list.length === 0) throw new TypeError('ConfigError needs at least one issue');
    super(list.map(formatConfigIssue).join('\n'), options);
    const first = list[0];
    this.file = first.file;
    this.line = first.line;
    this.column = first.column;
    this.field = first.field;
    this.reason = first.message;
    this.issues = list;
  }
}

// ---------------------------------------------------------------------------
// Zod issues to messages

/** A step in a field path: a mapping key or a list index. */
export type PathSegment = string | number;

/** Describes a value's YAML type without echoing it (it may be a secret). */
export function describeType(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (input === null) return 'an empty value';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  if (typeof input === 'string') return 'a string';
  if (typeof input === 'number') return 'a number';
  if (typeof input === 'boolean') return 'a boolean';
  return typeof input;
}

/** Default zod messages for anything without a schema-level message. */
function fallbackMessage(iss: { code: string; input?: unknown; expected?: unknown }): string {
  if (iss.code === 'invalid_type') {
    return iss.input === undefined ? 'is required' : `must be ${String(iss.expected)}, got ${describeType(iss.input)}`;
  }
  return 'is invalid';
}

/** Keys a strict object in the schema accepts at `path`, for "did you mean". */
function knownKeysAt(root: z.core.$ZodType, path: readonly PathSegment[]): string[] {
  const unwrap = (s: z.core.$ZodType): z.core.$ZodType => {
    for (;;) {
      const def = s._zod.def as { type: string; innerType?: z.core.$ZodType };
      if ((def.type === 'default' || def.type === 'optional') && def.innerType) s = def.innerType;
      else return s;
    }
  };
  const walk = (start: z.core.$ZodType, rest: readonly PathSegment[]): string[] => {
    const schema = unwrap(start);
    const def = schema._zod.def as {
      type: string;
      shape?: Record<string, z.core.$ZodType>;
      element?: z.core.$ZodType;
      options?: z.core.$ZodType[];
    };
    // A union (a rules file is a list or a mapping with "rules"): the first option the path fits.
    if (def.type === 'union' && def.options) {
      for (const option of def.options) {
        const keys = walk(option, rest);
        if (keys.length > 0) return keys;
      }
      return [];
    }
    if (rest.length === 0) return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
    const [seg, ...tail] = rest;
    if (def.type === 'object' && typeof seg === 'string' && def.shape?.[seg]) return walk(def.shape[seg], tail);
    if (def.type === 'array' && typeof seg === 'number' && def.element) return walk(def.element, tail);
    return [];
  };
  return walk(root, path);
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

function suggestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best !== undefined && bestDist <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** `users[1].password_hash`; odd keys are quoted: `limits["a b"]`. */
export function formatFieldPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Mapping paths to YAML positions

interface Located {
  line: number;
  column: number;
}

export class Locator {
  constructor(
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  private pos(offset: number): Located {
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  private nodeStart(node: unknown): number | undefined {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? range[0] : undefined;
  }

  private deref(node: unknown): unknown {
    return isAlias(node) ? (node.resolve(this.doc) ?? node) : node;
  }

  /**
   * Position of the node at `path`. With `keyOf`, position of that key in the
   * mapping at `path` (unknown keys). Falls back to the nearest existing
   * parent, preferring the key that introduces it ("listen:") over its value.
   */
  locate(path: readonly PathSegment[], keyOf?: string): Located {
    let node: unknown = this.doc.contents;
    let best: number | undefined = this.nodeStart(node);
    const full = keyOf === undefined ? path : [...path, keyOf];
    for (let i = 0; i < full.length; i++) {
      const seg = full[i];
      const last = i === full.length - 1;
      node = this.deref(node);
      if (isMap(node)) {
        const pair = node.items.find(
          (p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg),
        );
        if (!pair) break;
        const keyStart = this.nodeStart(pair.key);
        if (last && keyOf !== undefined) {
          best = keyStart ?? best;
          break;
        }
        const value = pair.value;
        const scalarValue = isScalar(value) && value.value !== null;
        // A scalar value is reported where it is; an empty value, a mapping
        // or list (which may start lines below), or a missing key further
        // down is reported at the key that introduces it.
        best = (last && scalarValue ? this.nodeStart(value) : undefined) ?? keyStart ?? best;
        node = value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined) break;
        best = this.nodeStart(item) ?? best;
        node = item;
      } else {
        break;
      }
    }
    return best === undefined ? { line: 1, column: 1 } : this.pos(best);
  }

  at(offset: number): Located {
    return this.pos(offset);
  }
}

// ---------------------------------------------------------------------------
// Validation

/**
 * Parses YAML `text` and validates it against `schema`: syntax errors, unknown
 * aliases, then zod issues, each located at its file, line and column. Throws
 * ConfigError; returns the parsed data and a locator for further checks.
 */
export function validateYaml<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
  emptyMessage: string,
): { data: z.output<S>; locator: Locator } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const locator = new Locator(doc, lineCounter);

  // 1. YAML syntax.
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        file,
        ...locator.at(e.pos[0]),
        message:
          e.code === 'MULTIPLE_DOCS'
            ? 'YAML syntax error: the file must be a single YAML document (remove the extra "---")'
            : `YAML syntax error: ${e.message}`,
      })),
    );
  }
  const aliasIssues: ConfigIssue[] = [];
  visit(doc, {
    Alias(_key, node) {
      if (!node.resolve(doc)) {
        const start = node.range?.[0];
        aliasIssues.push({
          file,
          ...(start === undefined ? {} : locator.at(start)),
          message:
            `YAML syntax error: unknown alias "*${node.source}"; a value starting with "*" ` +
            `must be quoted, e.g. password_hash: "*${node.source}"`,
        });
      }
    },
  });
  if (aliasIssues.length > 0) throw new ConfigError(aliasIssues);
  if (doc.contents === null) {
    throw new ConfigError({ file, line: 1, column: 1, message: emptyMessage });
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError({ file, line: 1, column: 1, message: `YAML error: ${(err as Error).message}` });
  }

  // 2. Shape, types, ranges.
  const parsed = schema.safeParse(data, { error: fallbackMessage });
  if (!parsed.success) {
    const issues: Array<ConfigIssue & { order: number }> = [];
    for (const iss of parsed.error.issues) {
      const path = iss.path.filter((p): p is PathSegment => typeof p !== 'symbol');
      if (iss.code === 'unrecognized_keys') {
        const known = knownKeysAt(schema, path);
        for (const key of iss.keys) {
          const hint = suggestKey(key, known);
          issues.push({
            file,
            ...locator.locate(path, key),
            field: formatFieldPath([...path, key]),
            message: `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
            order: issues.length,
          });
        }
      } else {
        issues.push({
          file,
          ...locator.locate(path),
          field: path.length ? formatFieldPath(path) : undefined,
          message: iss.message,
          order: issues.length,
        });
      }
    }
    throw new SchemaConfigError(sortIssues(issues), data, locator);
  }
  return { data: parsed.data, locator };
}

/**
 * Schema errors (step 2 of validateYaml), with the YAML read as it is and its
 * locator, so that the checks of later rounds can still run on the parts of
 * the file that are valid and every error is reported in one pass.
 */
export class SchemaConfigError extends ConfigError {
  constructor(
    issues: readonly ConfigIssue[],
    readonly data: unknown,
    readonly locator: Locator,
  ) {
    super(issues);
  }
}

/** Sorts issues by position in the file (then by the order they were found) and drops the order. */
export function sortIssues(issues: Array<ConfigIssue & { order: number }>): ConfigIssue[] {
  return issues
    .sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0) || a.order - b.order)
    .map(({ order: _order, ...issue }) => issue);
}
