import type { ClassifiedStatement } from './classifier.js';
import {
  AT,
  COLON,
  COMMA,
  DOT,
  EQ,
  findTop,
  identLower,
  identRaw,
  isIdentTok,
  isSym,
  type Lexed,
  LP,
  QI,
  RP,
  skipParen,
  STAR,
  SYM,
  textOf,
  W,
} from './lexer.js';
import { type Ctx, type NameAt, type Plan, readName, type TableRef, WriteMode } from './table_refs.js';

/**
 * Statement kinds: what a statement's head (its first keywords) says it is,
 * which tables it names as write targets (filled into a `Plan` for
 * `writtenTables`), and its session effects (SET assignments, USE, START
 * TRANSACTION READ ONLY, temporary tables).
 */

export type StatementType =
  | 'select'
  | 'show'
  | 'insert'
  | 'update'
  | 'delete'
  | 'replace'
  | 'load'
  | 'truncate'
  | 'alter'
  | 'drop'
  | 'rename'
  | 'create'
  | 'begin'
  | 'commit'
  | 'rollback'
  | 'savepoint'
  | 'set'
  | 'use'
  | 'do'
  | 'call'
  | 'lock'
  | 'unlock'
  | 'other';

export interface SessionAssignment {
  /** Variable name, lower-cased, without scope prefixes; 'names' and 'character set' for those forms. */
  name: string;
  /** The value expression's text: literals and case as written, whitespace and comments folded to one space. */
  value: string;
}

/** What one statement of a text is and changes, before the statements are merged into a `ClassifiedStatement`. */
export interface Stmt {
  type: StatementType;
  keyword: string;
  written: TableRef[] | null;
  assignments: SessionAssignment[] | null;
  setsGlobal: boolean;
  useSchema: string | null;
  readOnlyTx: boolean;
  temporary: boolean;
}

/** Index of the main statement after `WITH [RECURSIVE] name [(cols)] AS (...) [, ...]`, or -1. */
function mainOfWith(L: Lexed, i: number, e: number): number {
  if (L.up[i] === 'RECURSIVE') i++;
  for (;;) {
    if (!isIdentTok(L, i, e)) return -1;
    i++;
    if (isSym(L, i, LP)) i = skipParen(L, i, e);
    if (L.up[i] !== 'AS' || i >= e) return -1;
    i++;
    if (!isSym(L, i, LP)) return -1;
    i = skipParen(L, i, e);
    if (L.up[i] === 'CYCLE') {
      while (i < e && L.up[i] !== 'RESTRICT') i++;
      i++;
    }
    if (isSym(L, i, COMMA)) {
      i++;
      continue;
    }
    return i < e ? i : -1;
  }
}

const READ_ONLY_OTHER = new Set(['KILL', 'CHECK', 'HANDLER', 'SIGNAL', 'RESIGNAL', 'GET', 'FLUSH']);

function readTarget(L: Lexed, i: number, e: number, plan: Plan): NameAt | null {
  const r = readName(L, i, e);
  if (r) {
    plan.list.push(r.ref);
    if (plan.skipFrom < 0) {
      plan.skipFrom = i;
      plan.skipTo = r.next;
    }
  }
  return r;
}

export function classifyHead(c: Ctx, st: Stmt, plan: Plan, h: number, e: number): void {
  const L = c.L;
  const up = L.up;
  st.type = 'other';
  plan.write = WriteMode.Unknown;
  if (h >= e || L.kind[h] !== W) return;
  const kw = up[h];
  switch (kw) {
    case 'SELECT':
    case 'VALUES':
    case 'TABLE':
      st.type = 'select';
      plan.write = WriteMode.None;
      if (kw === 'TABLE') plan.seeds.push(h + 1);
      return;
    case 'WITH': {
      let m = mainOfWith(L, h + 1, e);
      if (m < 0) return;
      while (isSym(L, m, LP)) m++;
      const u = up[m];
      if (u === 'SELECT' || u === 'VALUES' || u === 'TABLE' || u === 'UPDATE' || u === 'DELETE' || u === 'INSERT' || u === 'REPLACE') {
        classifyHead(c, st, plan, m, e);
      }
      return;
    }
    case 'SHOW':
    case 'HELP':
    case 'CHECKSUM':
      st.type = 'show';
      plan.write = WriteMode.None;
      return;
    case 'DESCRIBE':
    case 'DESC':
    case 'EXPLAIN': {
      st.type = 'show';
      plan.write = WriteMode.None;
      let i = h + 1;
      let analyze = false;
      for (;;) {
        const u = up[i];
        if (u === 'EXTENDED' || u === 'PARTITIONS') i++;
        else if (u === 'ANALYZE') {
          analyze = true;
          i++;
        } else if (u === 'FORMAT') {
          i++;
          if (isSym(L, i, EQ)) i++;
          i++;
        } else break;
      }
      if (analyze) {
        while (isSym(L, i, LP)) i++;
        if (!(up[i] === 'SELECT' || up[i] === 'TABLE' || up[i] === 'VALUES')) plan.write = WriteMode.Unknown; // EXPLAIN ANALYZE runs the statement
      }
      return;
    }
    case 'INSERT':
    case 'REPLACE': {
      st.type = kw === 'INSERT' ? 'insert' : 'replace';
      let i = h + 1;
      while (up[i] === 'LOW_PRIORITY' || up[i] === 'DELAYED' || up[i] === 'HIGH_PRIORITY' || up[i] === 'IGNORE') i++;
      if (up[i] === 'INTO') i++;
      const r = readTarget(L, i, e, plan);
      if (!r) return;
      plan.write = WriteMode.List;
      const t = findTop(L, r.next, e, 'TABLE'); // MySQL 8: INSERT INTO t TABLE u
      if (t >= 0) plan.seeds.push(t + 1);
      return;
    }
    case 'UPDATE': {
      st.type = 'update';
      let i = h + 1;
      while (up[i] === 'LOW_PRIORITY' || up[i] === 'IGNORE') i++;
      plan.seeds.push(i);
      plan.setIdx = findTop(L, i, e, 'SET');
      if (plan.setIdx >= 0) plan.write = WriteMode.Update;
      return;
    }
    case 'DELETE': {
      st.type = 'delete';
      let i = h + 1;
      while (up[i] === 'LOW_PRIORITY' || up[i] === 'QUICK' || up[i] === 'IGNORE') i++;
      if (up[i] === 'FROM') {
        plan.fromIdx = i;
        const u = findTop(L, i + 1, e, 'USING');
        if (u >= 0) {
          plan.usingIdx = u;
          plan.write = WriteMode.DeleteUsing;
        } else {
          plan.write = WriteMode.DeleteSingle;
        }
        return;
      }
      for (;;) {
        const r = readName(L, i, e);
        if (!r) return;
        plan.targets.push(r.ref);
        i = r.next;
        if (isSym(L, i, DOT) && isSym(L, i + 1, STAR)) i += 2;
        if (!isSym(L, i, COMMA)) break;
        i++;
      }
      if (up[i] === 'FROM') plan.write = WriteMode.DeleteMulti;
      return;
    }
    case 'LOAD': {
      if (up[h + 1] !== 'DATA' && up[h + 1] !== 'XML') return;
      st.type = 'load';
      const into = findTop(L, h + 2, e, 'INTO');
      if (into >= 0 && up[into + 1] === 'TABLE' && readTarget(L, into + 2, e, plan)) plan.write = WriteMode.List;
      return;
    }
    case 'TRUNCATE': {
      st.type = 'truncate';
      let i = h + 1;
      if (up[i] === 'TABLE') i++;
      if (readTarget(L, i, e, plan)) plan.write = WriteMode.List;
      return;
    }
    case 'ALTER': {
      st.type = 'alter';
      let i = h + 1;
      while (up[i] === 'ONLINE' || up[i] === 'OFFLINE' || up[i] === 'IGNORE') i++;
      if (up[i] !== 'TABLE') return;
      i++;
      if (up[i] === 'IF' && up[i + 1] === 'EXISTS') i += 2;
      const r = readTarget(L, i, e, plan);
      if (!r) return;
      plan.write = WriteMode.List;
      let depth = 0;
      for (let j = r.next; j < e; j++) {
        if (L.kind[j] === SYM) {
          if (L.ch[j] === LP) depth++;
          else if (L.ch[j] === RP) depth--;
          continue;
        }
        if (depth !== 0 || L.kind[j] !== W) continue;
        if (up[j] === 'RENAME') {
          const n = up[j + 1];
          if (n === 'COLUMN' || n === 'INDEX' || n === 'KEY' || n === 'CONSTRAINT') continue;
          let t = j + 1;
          if (n === 'TO' || n === 'AS') t++;
          const to = readName(L, t, e);
          if (to) plan.list.push(to.ref);
          else plan.write = WriteMode.Unknown;
        } else if (up[j] === 'WITH' && up[j + 1] === 'TABLE') {
          const other = readName(L, j + 2, e);
          if (other) plan.list.push(other.ref);
          else plan.write = WriteMode.Unknown;
        }
      }
      return;
    }
    case 'DROP': {
      st.type = 'drop';
      let i = h + 1;
      if (up[i] === 'TEMPORARY') {
        st.temporary = true;
        i++;
      }
      if (up[i] === 'TABLE' || up[i] === 'TABLES') {
        i++;
        if (up[i] === 'IF' && up[i + 1] === 'EXISTS') i += 2;
        for (;;) {
          const r = readTarget(L, i, e, plan);
          if (!r) return;
          i = r.next;
          if (!isSym(L, i, COMMA)) break;
          i++;
        }
        plan.write = WriteMode.List;
        return;
      }
      while (up[i] === 'ONLINE' || up[i] === 'OFFLINE') i++;
      if (up[i] === 'INDEX') {
        const on = findTop(L, i + 1, e, 'ON');
        if (on >= 0 && readTarget(L, on + 1, e, plan)) plan.write = WriteMode.List;
      }
      return;
    }
    case 'RENAME': {
      st.type = 'rename';
      if (up[h + 1] !== 'TABLE' && up[h + 1] !== 'TABLES') return;
      let i = h + 2;
      if (up[i] === 'IF' && up[i + 1] === 'EXISTS') i += 2;
      for (;;) {
        const from = readTarget(L, i, e, plan);
        if (!from) return;
        i = from.next;
        if (up[i] === 'WAIT') i += 2;
        else if (up[i] === 'NOWAIT') i++;
        if (up[i] !== 'TO') return;
        const to = readTarget(L, i + 1, e, plan);
        if (!to) return;
        i = to.next;
        if (!isSym(L, i, COMMA)) break;
        i++;
      }
      plan.write = WriteMode.List;
      return;
    }
    case 'CREATE': {
      st.type = 'create';
      let i = h + 1;
      if (up[i] === 'OR' && up[i + 1] === 'REPLACE') i += 2;
      if (up[i] === 'TEMPORARY') {
        st.temporary = true;
        i++;
      }
      if (up[i] === 'TABLE') {
        i++;
        if (up[i] === 'IF' && up[i + 1] === 'NOT' && up[i + 2] === 'EXISTS') i += 3;
        const r = readTarget(L, i, e, plan);
        if (!r) return;
        plan.write = WriteMode.List;
        if (up[r.next] === 'LIKE') plan.seeds.push(r.next + 1);
        else if (isSym(L, r.next, LP) && up[r.next + 1] === 'LIKE') plan.seeds.push(r.next + 2);
        return;
      }
      while (up[i] === 'UNIQUE' || up[i] === 'FULLTEXT' || up[i] === 'SPATIAL' || up[i] === 'ONLINE' || up[i] === 'OFFLINE') i++;
      if (up[i] === 'INDEX') {
        const on = findTop(L, i + 1, e, 'ON');
        if (on >= 0 && readTarget(L, on + 1, e, plan)) plan.write = WriteMode.List;
      }
      return;
    }
    case 'BEGIN':
      if (h + 1 >= e || up[h + 1] === 'WORK') {
        st.type = 'begin';
        plan.write = WriteMode.None;
      }
      return;
    case 'START':
      if (up[h + 1] === 'TRANSACTION') {
        st.type = 'begin';
        plan.write = WriteMode.None;
        for (let i = h + 2; i + 1 < e; i++) if (up[i] === 'READ' && up[i + 1] === 'ONLY') st.readOnlyTx = true;
      }
      return;
    case 'COMMIT':
      st.type = 'commit';
      plan.write = WriteMode.None;
      return;
    case 'ROLLBACK': {
      let i = h + 1;
      if (up[i] === 'WORK') i++;
      st.type = up[i] === 'TO' && i < e ? 'savepoint' : 'rollback';
      plan.write = WriteMode.None;
      return;
    }
    case 'SAVEPOINT':
      st.type = 'savepoint';
      plan.write = WriteMode.None;
      return;
    case 'RELEASE':
      if (up[h + 1] === 'SAVEPOINT') {
        st.type = 'savepoint';
        plan.write = WriteMode.None;
      }
      return;
    case 'SET':
      classifySet(c, st, plan, h, e);
      return;
    case 'USE':
      st.type = 'use';
      plan.write = WriteMode.None;
      if (isIdentTok(L, h + 1, e)) st.useSchema = identRaw(L, h + 1);
      return;
    case 'DO':
      st.type = 'do';
      plan.write = WriteMode.None;
      return;
    case 'CALL':
      st.type = 'call';
      return;
    case 'LOCK':
      st.type = 'lock';
      plan.write = WriteMode.None;
      return;
    case 'UNLOCK':
      st.type = 'unlock';
      plan.write = WriteMode.None;
      return;
    case 'ANALYZE': {
      // ANALYZE TABLE only reads; MariaDB's ANALYZE <statement> runs the statement.
      let i = h + 1;
      if (up[i] === 'FORMAT') {
        i++;
        if (isSym(L, i, EQ)) i++;
        i++;
      }
      while (isSym(L, i, LP)) i++;
      const u = up[i];
      if (u === 'TABLE' || u === 'NO_WRITE_TO_BINLOG' || u === 'LOCAL' || u === 'SELECT' || u === 'VALUES') plan.write = WriteMode.None;
      return;
    }
    default:
      if (READ_ONLY_OTHER.has(kw)) plan.write = WriteMode.None;
  }
}

function classifySet(c: Ctx, st: Stmt, plan: Plan, h: number, e: number): void {
  const L = c.L;
  const up = L.up;
  const next = up[h + 1];
  if (next === 'STATEMENT') {
    // SET STATEMENT a=1 [, b=2] FOR <statement>: the assignments last for that statement only.
    const f = findTop(L, h + 2, e, 'FOR');
    if (f < 0) return;
    plan.ignoreFor = f;
    let inner = f + 1;
    while (isSym(L, inner, LP)) inner++;
    classifyHead(c, st, plan, inner, e);
    st.assignments = null;
    st.setsGlobal = false;
    st.useSchema = null;
    return;
  }
  if (next === 'PASSWORD' || (next === 'DEFAULT' && up[h + 2] === 'ROLE')) return; // changes mysql.* tables: 'other'
  st.type = 'set';
  plan.write = WriteMode.None;
  st.assignments = [];
  if (next === 'ROLE') {
    st.assignments.push({ name: 'role', value: textOf(L, h + 2, e) });
    return;
  }
  let i = h + 1;
  let scopeGlobal = false; // GLOBAL/SESSION keywords carry over to later unprefixed assignments
  while (i < e) {
    const u = up[i];
    if (u === 'GLOBAL' || u === 'PERSIST' || u === 'PERSIST_ONLY') {
      scopeGlobal = true;
      i++;
    } else if (u === 'SESSION' || u === 'LOCAL') {
      scopeGlobal = false;
      i++;
    }
    if (up[i] === 'TRANSACTION') {
      // SET [GLOBAL|SESSION] TRANSACTION characteristics: nothing the cache keys on.
      if (scopeGlobal) st.setsGlobal = true;
      return;
    }
    let global = scopeGlobal;
    let user = false;
    let name: string | null = null;
    let needEq = true;
    if (isSym(L, i, AT)) {
      if (isSym(L, i + 1, AT)) {
        i += 2;
        global = false;
        const p = up[i];
        if (isSym(L, i + 1, DOT) && (p === 'GLOBAL' || p === 'PERSIST' || p === 'PERSIST_ONLY')) {
          global = true;
          i += 2;
        } else if (isSym(L, i + 1, DOT) && (p === 'SESSION' || p === 'LOCAL')) {
          i += 2;
        }
      } else {
        user = true;
        i += 2; // '@' and the name
      }
    }
    if (!user) {
      if (up[i] === 'NAMES') {
        name = 'names';
        needEq = false;
        i++;
      } else if (up[i] === 'CHARACTER' && up[i + 1] === 'SET') {
        name = 'character set';
        needEq = false;
        i += 2;
      } else if (up[i] === 'CHARSET') {
        name = 'character set';
        needEq = false;
        i++;
      } else if (i < e && (L.kind[i] === W || L.kind[i] === QI)) {
        name = identLower(L, i);
        i++;
        while (isSym(L, i, DOT) && i + 1 < e && (L.kind[i + 1] === W || L.kind[i + 1] === QI)) {
          name += `.${identLower(L, i + 1)}`;
          i += 2;
        }
      } else {
        return fail();
      }
    }
    if (needEq) {
      if (isSym(L, i, EQ)) i++;
      else if (isSym(L, i, COLON) && isSym(L, i + 1, EQ)) i += 2;
      else return fail();
    }
    const vs = i;
    let depth = 0;
    for (; i < e; i++) {
      if (L.kind[i] !== SYM) continue;
      const ch = L.ch[i];
      if (ch === LP) depth++;
      else if (ch === RP) depth--;
      else if (ch === COMMA && depth === 0) break;
    }
    if (i === vs || i > e) return fail();
    if (name !== null) {
      if (global) st.setsGlobal = true;
      else st.assignments.push({ name, value: textOf(L, vs, i) });
    }
    i++; // the ','
  }
  return;

  function fail(): void {
    st.type = 'other';
    st.assignments = null;
    st.setsGlobal = false;
    plan.write = WriteMode.Unknown;
  }
}

/**
 * Whether a SET assigns a value computed by a subquery: its text does not
 * tell the value, and run again elsewhere it may give another.
 */
export function assignsFromSubquery(s: ClassifiedStatement): boolean {
  return s.sessionAssignments?.some((a) => /\bSELECT\b/i.test(a.value)) ?? false;
}

/** Whether a classified statement may change table data (written tables unknown, or any named). */
export function writesData(s: ClassifiedStatement): boolean {
  return s.tablesWritten === null || s.tablesWritten.length > 0;
}

/**
 * A table's name as one string. Without `defaultSchema`: 'schema.table', or
 * just 'table' when it names no schema (for display). With `defaultSchema`
 * (even null): always 'schema.table', a bare name qualified with the default
 * schema lower-cased (table references are lower-cased, `useSchema` is not),
 * '' when there is none ('.table'), the form used to key invalidations.
 */
/** DDL: CREATE, ALTER, DROP or RENAME (of a table, a view, a schema, ...). */
export function changesSchema(s: { type: StatementType }): boolean {
  return s.type === 'create' || s.type === 'alter' || s.type === 'drop' || s.type === 'rename';
}

export function qualifiedTableName(t: { schema: string | null; table: string }, defaultSchema?: string | null): string {
  if (defaultSchema === undefined) return t.schema ? `${t.schema}.${t.table}` : t.table;
  return `${t.schema ?? defaultSchema?.toLowerCase() ?? ''}.${t.table}`;
}
