/**
 * What the primary's schema holds that a statement's text does not show:
 * its views and the tables each one reads (so a cached read of a view
 * depends on its base tables: a write to a base table bumps the table's
 * generation, never the view's), and its stored functions (a call may read
 * or write any table, or change the session). Filled by the schema reader
 * (src/replication/schema_reader.ts) from information_schema; pure here.
 */
import { classify, qualifiedTableName } from '../sql/classifier.js';

/** One row of information_schema.VIEWS; `definition` is null when the account may not read it (no SHOW VIEW). */
export interface ViewDefinition {
  schema: string;
  name: string;
  definition: string | null;
}

/** Nested views deeper than this are treated as unknown (a definition cycle cannot happen, but a bound is cheap). */
const MAX_DEPTH = 16;

/** A stored function: its schema and name, as information_schema.ROUTINES has them. */
export interface FunctionName {
  schema: string;
  name: string;
}

/** A base table of the primary, as the server names it (information_schema.TABLES). */
export type TableName = FunctionName;

/** What the schema reader learns of the primary: views, stored functions, base tables. */
export interface PrimarySchema {
  views: ViewDefinition[];
  functions: FunctionName[];
  tables: TableName[];
}

export class SchemaCatalog {
  /** "schema.view" (lower case) -> the qualified tables its definition reads; null when the definition is unknown. */
  private bases = new Map<string, readonly string[] | null>();
  private definitions = new Map<string, string | null>();
  /** Matches a call of any stored function (`name(`, `` `name` (``, `schema.name(`); null when there are none. */
  private functionCall: RegExp | null = null;
  /** Views whose definition calls a stored function. */
  private functionViews = new Set<string>();
  /** "schema.table" of the primary's base tables, exactly as the server names them; null until first read. */
  private baseTables: Set<string> | null = null;
  /**
   * Bumped when what the cache's decisions read changes (the functions, the
   * views): decisions remembered under an older version are made again.
   */
  version = 0;

  /** Replaces the stored functions. */
  replaceFunctions(functions: readonly FunctionName[]): void {
    const names = new Set(functions.map((f) => f.name.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    // Function names are case-insensitive; a call is the name, maybe back-quoted, then '(' (spaces allowed: IGNORE_SPACE).
    const call = names.size === 0 ? null : new RegExp(`(?<![\\w$])\`?(?:${[...names].join('|')})\`?\\s*\\(`, 'i');
    if (call?.source !== this.functionCall?.source) this.version++;
    this.functionCall = call;
  }

  /**
   * Whether a statement's text calls a stored function. By name only: a
   * built-in or a column followed by '(' with the same name counts too,
   * which only costs that statement its caching or its replica.
   */
  callsFunction(text: string): boolean {
    return this.functionCall !== null && this.functionCall.test(text);
  }

  get size(): number {
    return this.bases.size;
  }

  /** Replaces the list of base tables. */
  replaceTables(tables: readonly TableName[]): void {
    // No version bump: the cache's decisions do not read the base tables (multiplexing does, each time).
    this.baseTables = new Set(tables.map((t) => `${t.schema}.${t.name}`));
  }

  /**
   * Whether every one of `tables` is a known base table (a name without a
   * schema is looked up in `schema`). A view, a sequence, a system view, a
   * table the reader's account cannot see, or any table before the first
   * read is not: reading it might run a function or show the session's own
   * counters. Names compare exactly, as the server stores them: a spelling
   * the server would fold to another case is not known.
   */
  onlyBaseTables(tables: readonly { schema: string | null; table: string }[], schema: string | null): boolean {
    const known = this.baseTables;
    if (known === null) return false;
    for (const t of tables) {
      const owner = t.schema ?? schema;
      if (owner === null || !known.has(`${owner}.${t.table}`)) return false;
    }
    return true;
  }

  /** Replaces the catalog. Returns the views that appeared, disappeared or changed definition. */
  replace(views: readonly ViewDefinition[]): string[] {
    const bases = new Map<string, readonly string[] | null>();
    const definitions = new Map<string, string | null>();
    for (const v of views) {
      const key = `${v.schema}.${v.name}`.toLowerCase();
      definitions.set(key, v.definition);
      bases.set(key, v.definition === null || v.definition === '' ? null : readsOf(v.definition, v.schema));
    }
    const changed: string[] = [];
    for (const [key, def] of definitions) if (this.definitions.get(key) !== def || !this.definitions.has(key)) changed.push(key);
    for (const key of this.definitions.keys()) if (!definitions.has(key)) changed.push(key);
    this.bases = bases;
    this.definitions = definitions;
    this.functionViews = new Set([...definitions].filter(([, def]) => def !== null && this.callsFunction(def)).map(([key]) => key));
    // Same definitions, same bases and function views (a change of functions bumped the version already).
    if (changed.length > 0) this.version++;
    return changed;
  }

  /** Whether one of `tables` (views expanded) is a view that calls a stored function. */
  readsFunctionView(tables: readonly string[]): boolean {
    if (this.functionViews.size === 0) return false;
    for (const t of tables) if (this.functionViews.has(t)) return true;
    return false;
  }

  /**
   * `tables` with the base tables of every view among them added (views of
   * views followed). Returns `tables` itself when none is a view, and null
   * when a view's definition is unknown: its base tables cannot be named.
   */
  expand(tables: readonly string[]): readonly string[] | null {
    if (this.bases.size === 0) return tables;
    let out: string[] | null = null;
    for (const t of tables) {
      if (!this.bases.has(t)) continue;
      out ??= [...tables];
      if (!this.addBases(t, out, 0)) return null;
    }
    return out ?? tables;
  }

  private addBases(view: string, out: string[], depth: number): boolean {
    const bases = this.bases.get(view);
    if (bases === null || bases === undefined || depth > MAX_DEPTH) return false;
    for (const b of bases) {
      if (out.includes(b)) continue;
      out.push(b);
      if (this.bases.has(b) && !this.addBases(b, out, depth + 1)) return false;
    }
    return true;
  }
}

/** The tables a view definition reads, qualified with the view's schema (the server writes them qualified anyway). */
function readsOf(definition: string, schema: string): string[] {
  const s = classify(definition);
  const out: string[] = [];
  for (const t of s.tablesRead) {
    const name = qualifiedTableName(t, schema).toLowerCase();
    if (!out.includes(name)) out.push(name);
  }
  return out;
}
