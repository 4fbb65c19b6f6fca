import {
  AT,
  COMMA,
  DOT,
  identLower,
  identRaw,
  isIdentTok,
  isNumberWord,
  isSym,
  type Lexed,
  LP,
  QI,
  RP,
  SEMI,
  skipParen,
  STR,
  SYM,
  touches,
  W,
} from './lexer.js';
import type { StatementType } from './statement_kinds.js';

/**
 * Table references: the tables a statement reads (one scan over its tokens,
 * following FROM/JOIN/USING lists into subqueries) and the tables it writes
 * (from the `Plan` the statement's head filled in). The same scan also sets
 * the flags found token by token (locking read, SELECT ... INTO,
 * non-deterministic, needs-primary, named locks), so that the statement is
 * walked once.
 */

/** A table, lower-cased, quotes removed. */
export interface TableRef {
  schema: string | null;
  table: string;
}

export interface NameAt {
  ref: TableRef;
  /** Index of the token after the name. */
  next: number;
}

/** Reads `name` or `schema.name` at token i. */
export function readName(L: Lexed, i: number, e: number): NameAt | null {
  if (!isIdentTok(L, i, e)) return null;
  const first = identLower(L, i);
  L.names.add(i);
  if (isSym(L, i + 1, DOT) && isIdentTok(L, i + 2, e)) {
    L.names.add(i + 2);
    return { ref: { schema: first, table: identLower(L, i + 2) }, next: i + 3 };
  }
  return { ref: { schema: null, table: first }, next: i + 1 };
}

/** Functions that are non-deterministic or session-dependent when called: `NAME(`. */
const NONDET_CALL = new Set([
  'NOW', 'CURDATE', 'CURTIME', 'SYSDATE', 'UNIX_TIMESTAMP', 'RAND', 'RANDOM_BYTES', 'UUID', 'UUID_SHORT', 'SYS_GUID',
  'CONNECTION_ID', 'LAST_INSERT_ID', 'FOUND_ROWS', 'ROW_COUNT', 'SESSION_USER', 'SYSTEM_USER', 'USER', 'DATABASE',
  'SCHEMA', 'SLEEP', 'BENCHMARK', 'GET_LOCK', 'RELEASE_LOCK', 'RELEASE_ALL_LOCKS', 'IS_FREE_LOCK', 'IS_USED_LOCK',
  'NEXTVAL', 'LASTVAL', 'SETVAL', 'MASTER_POS_WAIT', 'MASTER_GTID_WAIT', 'SOURCE_POS_WAIT', 'LOAD_FILE',
  'WAIT_FOR_EXECUTED_GTID_SET', 'WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS', 'ENCRYPT', 'PS_CURRENT_THREAD_ID', 'PS_THREAD_ID',
  // Also valid bare, listed here too so the call form is found by the same lookup.
  'CURRENT_TIMESTAMP', 'CURRENT_DATE', 'CURRENT_TIME', 'CURRENT_USER', 'CURRENT_ROLE', 'LOCALTIME', 'LOCALTIMESTAMP',
  'UTC_TIMESTAMP', 'UTC_DATE', 'UTC_TIME', 'SQL_CALC_FOUND_ROWS',
]);

/**
 * Functions that make a read run on the primary when called (see
 * `ClassifiedStatement.needsPrimary`). Every one is also in NONDET_CALL: the
 * scanner looks here only after a NONDET_CALL hit.
 */
const PRIMARY_CALL = new Set([
  'GET_LOCK', 'RELEASE_LOCK', 'RELEASE_ALL_LOCKS', 'IS_FREE_LOCK', 'IS_USED_LOCK', 'LAST_INSERT_ID', 'FOUND_ROWS',
  'ROW_COUNT', 'NEXTVAL', 'LASTVAL', 'SETVAL', 'CONNECTION_ID', 'MASTER_POS_WAIT', 'MASTER_GTID_WAIT', 'SOURCE_POS_WAIT',
  'WAIT_FOR_EXECUTED_GTID_SET', 'LOAD_FILE',
]);

/** System variables (the name after `@@` and any scope prefix) that make a read run on the primary. */
const PRIMARY_SYSVARS = new Set(['LAST_INSERT_ID', 'IDENTITY', 'LAST_GTID', 'INSERT_ID']);

/**
 * System variables about the server's role, replication and identity: a
 * client talks to wirecache as to the primary, so reads of these answer as
 * the primary would (a replica says read_only=1, and an installer that asked
 * would think the database read-only). The names here, and every name with
 * one of SERVER_STATE_PREFIXES. Not server_id: a bare `SELECT @@server_id`
 * is how a DBA sees which server answered a read (as through ProxySQL or
 * MaxScale); read with any variable here it goes to the primary too.
 */
const SERVER_STATE_SYSVARS = new Set([
  'READ_ONLY',
  'SUPER_READ_ONLY',
  'INNODB_READ_ONLY',
  'LOG_BIN',
  'LOG_BIN_BASENAME',
  'LOG_BIN_INDEX',
  'LOG_SLAVE_UPDATES',
  'LOG_REPLICA_UPDATES',
  'SQL_LOG_BIN',
  'SERVER_UUID',
  'HOSTNAME',
  'PORT',
  'SOCKET',
  'REPORT_HOST',
  'REPORT_PORT',
]);
const SERVER_STATE_PREFIXES = ['GTID_', 'BINLOG_', 'RPL_', 'SLAVE_', 'REPLICA_', 'MASTER_', 'SOURCE_', 'WSREP_'];

export function isServerStateVariable(name: string): boolean {
  return SERVER_STATE_SYSVARS.has(name) || SERVER_STATE_PREFIXES.some((p) => name.startsWith(p));
}

export type NamedLock = 'acquire' | 'release' | 'release_all' | null;

/**
 * Non-deterministic even without parentheses (reserved words, never column
 * names when unquoted). SQL_CALC_FOUND_ROWS is here because the statement
 * sets the session's FOUND_ROWS(), which a cached answer would not.
 */
const NONDET_BARE = new Set([
  'CURRENT_TIMESTAMP', 'CURRENT_DATE', 'CURRENT_TIME', 'CURRENT_USER', 'CURRENT_ROLE', 'LOCALTIME', 'LOCALTIMESTAMP',
  'UTC_TIMESTAMP', 'UTC_DATE', 'UTC_TIME', 'SQL_CALC_FOUND_ROWS',
]);

/** Words that end a table factor: never read as a bare alias. */
const FACTOR_END = new Set([
  'ON', 'USING', 'WHERE', 'GROUP', 'HAVING', 'ORDER', 'LIMIT', 'WINDOW', 'UNION', 'EXCEPT', 'INTERSECT', 'MINUS', 'INTO',
  'SET', 'VALUES', 'VALUE', 'SELECT', 'FOR', 'LOCK', 'JOIN', 'INNER', 'LEFT', 'RIGHT', 'CROSS', 'NATURAL',
  'STRAIGHT_JOIN', 'FULL', 'OUTER', 'RETURNING', 'PROCEDURE', 'FETCH', 'OFFSET', 'USE', 'FORCE', 'IGNORE', 'PARTITION',
  'WITH', 'AS', 'CHARACTER', 'CHARSET', 'FIELDS', 'COLUMNS', 'LINES', 'ROWS', 'TABLE', 'KEY', 'DEFAULT', 'UPDATE',
  'DELETE', 'INSERT', 'REPLACE', 'LIKE', 'TO', 'WAIT', 'NOWAIT', 'READ', 'WRITE', 'LOW_PRIORITY', 'AND', 'OR', 'NOT',
  'XOR', 'ELSE', 'THEN', 'END', 'WHEN', 'ENGINE', 'ALGORITHM', 'IN', 'IS', 'BETWEEN', 'ESCAPE', 'DUPLICATE',
  'TABLESAMPLE', 'SYSTEM_TIME',
]);

/** Words that end a comma-separated table list at their parenthesis depth. */
const LIST_END = new Set([
  'WHERE', 'GROUP', 'HAVING', 'ORDER', 'LIMIT', 'WINDOW', 'UNION', 'EXCEPT', 'INTERSECT', 'MINUS', 'INTO', 'SET',
  'VALUES', 'VALUE', 'SELECT', 'RETURNING', 'PROCEDURE', 'FOR', 'LOCK', 'UPDATE', 'FETCH', 'OFFSET', 'DUPLICATE',
  'FIELDS', 'COLUMNS', 'LINES', 'IGNORE', 'CHARACTER',
]);

/** Functions whose arguments use FROM (`EXTRACT(YEAR FROM d)`): no table list there. */
const FUNC_WITH_FROM = new Set(['EXTRACT', 'TRIM', 'SUBSTRING', 'SUBSTR', 'MID']);

/** Select modifiers after which STRAIGHT_JOIN is a modifier, not a join. */
const SELECT_MODIFIERS = new Set(['SELECT', 'ALL', 'DISTINCT', 'DISTINCTROW', 'HIGH_PRIORITY']);

const enum St {
  None,
  /** Expecting a table factor. */
  Table,
  /** After a table factor: an alias, PARTITION or index hints may follow. */
  After,
  /** After an alias: index hints may follow. */
  AfterAlias,
}

export interface Ref {
  ref: TableRef;
  idx: number;
  alias: string | null;
}

/** How a statement's written tables are found. */
export const enum WriteMode {
  None,
  Unknown,
  /** `Plan.list` */
  List,
  /** The table refs before the top-level SET. */
  Update,
  /** The first table after FROM. */
  DeleteSingle,
  /** `Plan.targets` resolved through aliases. */
  DeleteMulti,
  /** The refs between FROM and USING, resolved through the aliases after USING. */
  DeleteUsing,
}

export interface Plan {
  write: WriteMode;
  list: TableRef[];
  /** Token indexes where a table list starts that the scanner would not find by itself. */
  seeds: number[];
  setIdx: number;
  fromIdx: number;
  usingIdx: number;
  targets: TableRef[];
  /** The FOR of SET STATEMENT ... FOR (not a locking clause). */
  ignoreFor: number;
  /** Tokens of a write target's name, not read as function names. */
  skipFrom: number;
  skipTo: number;
}

export interface Ctx {
  L: Lexed;
  reads: TableSet;
  nonDet: string | null;
  needsPrimary: string | null;
  /** The first system variable about the server's role, replication or identity read, as written. */
  serverState: string | null;
  namedLock: NamedLock;
  lockingRead: boolean;
  selectInto: boolean;
}

const tableKey = (r: TableRef) => `${r.schema ?? ''}\u0000${r.table}`;

/** A list of distinct tables in insertion order: a linear search while short, a Set of keys once long. */
export class TableSet {
  readonly list: TableRef[] = [];
  private keys: Set<string> | null = null;

  add(t: TableRef): void {
    if (this.keys === null) {
      for (const x of this.list) if (x.table === t.table && x.schema === t.schema) return;
      this.list.push(t);
      if (this.list.length > 16) this.keys = new Set(this.list.map(tableKey));
      return;
    }
    const k = tableKey(t);
    if (this.keys.has(k)) return;
    this.keys.add(k);
    this.list.push(t);
  }
}

/** Index after an index hint `USE|FORCE|IGNORE INDEX|KEY [FOR JOIN|ORDER BY|GROUP BY] (...)` starting at i. */
function skipIndexHint(L: Lexed, i: number, e: number): number {
  let j = i + 2;
  if (L.up[j] === 'FOR') {
    j++;
    if (L.up[j] === 'ORDER' || L.up[j] === 'GROUP') j += 2;
    else j++;
  }
  return isSym(L, j, LP) ? skipParen(L, j, e) : j;
}

/** Scans statement tokens s..e-1 for table references, locking/INTO clauses and non-deterministic calls. */
export function scan(c: Ctx, s: number, e: number, plan: Plan, type: StatementType): Ref[] {
  const L = c.L;
  const refs: Ref[] = [];
  const seeds = plan.seeds;
  if (seeds.length > 1) seeds.sort((a, b) => a - b);
  let seedPos = 0;
  let state = St.None;
  let depth = 0;
  const listActive: boolean[] = [false];
  const openedInTable: boolean[] = [false];
  const fromIsArg: boolean[] = [false];
  let lastRef: Ref | null = null;

  const setAlias = (i: number) => {
    if (lastRef) lastRef.alias = identLower(L, i);
  };

  let i = s;
  while (i < e) {
    while (seedPos < seeds.length && seeds[seedPos] < i) seedPos++;
    if (seedPos < seeds.length && seeds[seedPos] === i) {
      seedPos++;
      state = St.Table;
      listActive[depth] = true;
    }
    const k = L.kind[i];

    if (state === St.Table) {
      if (k === SYM && L.ch[i] === LP) {
        depth++;
        listActive[depth] = true;
        openedInTable[depth] = true;
        fromIsArg[depth] = false;
        i++;
        continue;
      }
      const u = L.up[i];
      if (k === W && (u === 'LATERAL' || u === 'TABLE')) {
        i++;
        continue;
      }
      if (k === W && (u === 'SELECT' || u === 'WITH' || u === 'VALUES')) {
        listActive[depth] = false;
        state = St.None;
      } else if (isIdentTok(L, i, e)) {
        const r = readName(L, i, e)!;
        if (isSym(L, r.next, LP)) {
          state = St.None; // a table function (JSON_TABLE): read on as an expression
        } else {
          if (k === W && r.ref.schema === null && u === 'DUAL') {
            lastRef = null;
          } else {
            lastRef = { ref: r.ref, idx: i, alias: null };
            refs.push(lastRef);
          }
          state = St.After;
          i = r.next;
          continue;
        }
      } else {
        state = St.None;
      }
    } else if (state === St.After || state === St.AfterAlias) {
      if (k === W) {
        const u = L.up[i];
        if ((u === 'USE' || u === 'FORCE' || u === 'IGNORE') && (L.up[i + 1] === 'INDEX' || L.up[i + 1] === 'KEY')) {
          i = skipIndexHint(L, i, e);
          state = St.AfterAlias;
          continue;
        }
        if (state === St.After) {
          if (u === 'PARTITION' && isSym(L, i + 1, LP)) {
            i = skipParen(L, i + 1, e);
            continue;
          }
          if (u === 'AS' || (!FACTOR_END.has(u) && !isNumberWord(L, i))) {
            if (u === 'AS') i++;
            if (i < e && (L.kind[i] === W || L.kind[i] === QI || L.kind[i] === STR)) {
              setAlias(i);
              i++;
            }
            if (isSym(L, i, LP)) i = skipParen(L, i, e); // derived table column list
            state = St.AfterAlias;
            continue;
          }
        }
      } else if (state === St.After && (k === QI || k === STR)) {
        setAlias(i);
        i++;
        if (isSym(L, i, LP)) i = skipParen(L, i, e);
        state = St.AfterAlias;
        continue;
      }
      state = St.None;
    }

    // Ordinary token.
    if (k === SYM) {
      const ch = L.ch[i];
      if (ch === LP) {
        depth++;
        listActive[depth] = false;
        openedInTable[depth] = false;
        fromIsArg[depth] = i > s && L.kind[i - 1] === W && FUNC_WITH_FROM.has(L.up[i - 1]);
      } else if (ch === RP) {
        if (depth > 0) {
          const wasTable = openedInTable[depth];
          depth--;
          if (wasTable) {
            state = St.After;
            lastRef = null;
          }
        }
      } else if (ch === COMMA) {
        if (listActive[depth]) state = St.Table;
      } else if (ch === AT) {
        // @var, @'var', @`var`, @a.b, @@name, @@session.name
        let j = i + 1;
        let primary = false;
        let serverState = false;
        if (isSym(L, j, AT)) {
          j++;
          if (j < e && L.kind[j] !== SYM) j++;
          if (isSym(L, j, DOT) && j + 1 < e && L.kind[j + 1] !== SYM) j += 2;
          const last = j - 1;
          if (last > i + 1 && (c.needsPrimary === null || c.serverState === null)) {
            const k2 = L.kind[last];
            const name = k2 === W ? L.up[last] : k2 === QI ? identRaw(L, last).toUpperCase() : '';
            primary = c.needsPrimary === null && PRIMARY_SYSVARS.has(name);
            serverState = c.serverState === null && isServerStateVariable(name);
          }
        } else if (j < e && L.kind[j] !== SYM && L.kind[j] !== SEMI) {
          j++;
          // Unquoted user variable names may hold '.' (`@a.b`): one name while the tokens touch.
          if (L.kind[j - 1] === W && touches(L, i, i + 1)) {
            while (isSym(L, j, DOT) && j + 1 < e && L.kind[j + 1] === W && touches(L, j - 1, j) && touches(L, j, j + 1)) j += 2;
          }
          // 'user'@'host' (an account name, in SHOW GRANTS FOR ...) is no variable: a quoted token touches the '@'.
          primary = c.needsPrimary === null && !(i > s && (L.kind[i - 1] === STR || L.kind[i - 1] === QI) && touches(L, i - 1, i));
        }
        if (c.nonDet === null || primary || serverState) {
          const text = L.sql.slice(L.start[i], L.end[j - 1]);
          if (c.nonDet === null) c.nonDet = text;
          if (primary && c.needsPrimary === null) c.needsPrimary = text;
          if (serverState) c.serverState = text;
        }
        i = j;
        continue;
      }
      i++;
      continue;
    }
    if (k === W) {
      const u = L.up[i];
      if (LIST_END.has(u)) listActive[depth] = false;
      switch (u) {
        case 'FROM':
          if (!fromIsArg[depth]) {
            listActive[depth] = true;
            state = St.Table;
          }
          break;
        case 'STRAIGHT_JOIN':
        case 'JOIN':
          // SELECT STRAIGHT_JOIN ... is a modifier, not a join
          if (u === 'JOIN' || !(i > s && L.kind[i - 1] === W && (SELECT_MODIFIERS.has(L.up[i - 1]) || L.up[i - 1].startsWith('SQL_')))) {
            listActive[depth] = true;
            state = St.Table;
          }
          break;
        case 'USING':
          if (!isSym(L, i + 1, LP)) {
            listActive[depth] = true;
            state = St.Table;
          }
          break;
        case 'TABLE': {
          // MySQL's TABLE statement inside a query: ... UNION TABLE t, (TABLE t)
          const p = L.up[i - 1];
          if (i > s && (p === 'UNION' || p === 'EXCEPT' || p === 'INTERSECT' || p === 'ALL' || p === 'DISTINCT' || isSym(L, i - 1, LP))) {
            state = St.Table;
          }
          break;
        }
        case 'FOR':
          if (i !== plan.ignoreFor && (L.up[i + 1] === 'UPDATE' || L.up[i + 1] === 'SHARE') && i + 1 < e) c.lockingRead = true;
          break;
        case 'LOCK':
          if (L.up[i + 1] === 'IN' && L.up[i + 2] === 'SHARE' && i + 2 < e) c.lockingRead = true;
          break;
        case 'INTO':
          if (type === 'select' || isSym(L, i + 1, AT) || L.up[i + 1] === 'OUTFILE' || L.up[i + 1] === 'DUMPFILE') {
            c.selectInto = true;
            if (c.needsPrimary === null) c.needsPrimary = 'INTO';
          }
          break;
        case 'NEXT':
        case 'PREVIOUS':
          if ((c.nonDet === null || c.needsPrimary === null) && L.up[i + 1] === 'VALUE' && L.up[i + 2] === 'FOR' && i + 2 < e) {
            const what = u === 'NEXT' ? 'NEXT VALUE FOR' : 'PREVIOUS VALUE FOR';
            if (c.nonDet === null) c.nonDet = what;
            if (c.needsPrimary === null) c.needsPrimary = what;
          }
          break;
        default:
          if (
            (c.nonDet === null || c.needsPrimary === null || c.namedLock !== 'release_all') &&
            NONDET_CALL.has(u) &&
            !(i > s && isSym(L, i - 1, DOT)) &&
            !(i >= plan.skipFrom && i < plan.skipTo)
          ) {
            const called = isSym(L, i + 1, LP) && i + 1 < e;
            if (c.nonDet === null && (called || NONDET_BARE.has(u))) c.nonDet = u;
            if (called) {
              if (c.needsPrimary === null && PRIMARY_CALL.has(u)) c.needsPrimary = u;
              if (u === 'RELEASE_ALL_LOCKS') c.namedLock = 'release_all';
              else if (u === 'GET_LOCK') {
                if (c.namedLock !== 'release_all') c.namedLock = 'acquire';
              } else if (u === 'RELEASE_LOCK' && c.namedLock === null) c.namedLock = 'release';
            }
          }
      }
    }
    i++;
  }
  return refs;
}

function resolveAlias(t: TableRef, refs: Ref[], fromIdx: number): TableRef {
  if (t.schema === null) {
    for (const r of refs) if (r.idx > fromIdx && r.alias === t.table) return r.ref;
  }
  return t;
}

export function writtenTables(plan: Plan, refs: Ref[]): TableRef[] | null {
  const out = new TableSet();
  switch (plan.write) {
    case WriteMode.None:
      return out.list;
    case WriteMode.Unknown:
      return null;
    case WriteMode.List:
      for (const t of plan.list) out.add(t);
      return out.list;
    case WriteMode.Update:
      for (const r of refs) if (r.idx < plan.setIdx) out.add(r.ref);
      break;
    case WriteMode.DeleteSingle:
      for (const r of refs) if (r.idx > plan.fromIdx) return [r.ref];
      break;
    case WriteMode.DeleteMulti:
      for (const t of plan.targets) out.add(resolveAlias(t, refs, -1));
      break;
    case WriteMode.DeleteUsing:
      for (const r of refs) if (r.idx > plan.fromIdx && r.idx < plan.usingIdx) out.add(resolveAlias(r.ref, refs, plan.usingIdx));
      break;
  }
  // A write whose tables were expected but not found: unknown.
  return out.list.length > 0 ? out.list : null;
}
