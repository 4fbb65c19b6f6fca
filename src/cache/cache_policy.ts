/**
 * Decides, from a classified statement and the session's state, whether a
 * query is served from and recorded into the cache, under which key, for
 * how long, and what it depends on. Never touches storage or sockets.
 */
import { ServerStatus } from '../protocol/constants.js';
import { qualifiedTableName, type ClassifiedStatement } from '../sql/classifier.js';
import type { CacheConfig } from '../config/types.js';
import type { CacheRule } from '../config/rules.js';
import { findRule } from './cache_rules.js';
import type { RefusalReason } from './types.js';
import type { SchemaCatalog } from './schema_catalog.js';

/** What the session knows when a statement arrives. */
export interface CacheRequest {
  statement: ClassifiedStatement;
  /** COM_STMT_EXECUTE (binary rows) rather than COM_QUERY. */
  binary: boolean;
  /**
   * Capabilities that change the bytes of column definitions (MariaDB's
   * extended type info adds a field to each): entries are never shared
   * across them. DEPRECATE_EOF is not here: replay converts its framing.
   */
  metadataFlags: number;
  /** For COM_STMT_EXECUTE: parameter types, NULL bitmap and values, as a latin1 string; '' otherwise. */
  params: string;
  user: string;
  schema: string | null;
  /** Everything else about the session that can change a result (character sets, sql_mode, time_zone, ...); null when unknown. */
  stateKey: string | null;
  clientAddress: string;
  /** The server's last status flags for this session (IN_TRANS, AUTOCOMMIT, ...). */
  status: number;
  /** The session reads uncommitted rows (READ UNCOMMITTED): nothing it reads is stored. */
  readUncommitted?: boolean;
  /** The session has sql_auto_is_null on: `WHERE id IS NULL` answers its last insert, once. */
  autoIsNull?: boolean;
  /**
   * Everything above but the statement and `params`, as one string the
   * session keeps and rebuilds only when one of them changes (see
   * decisionTag). With it, QueryCache.decide remembers its decision for the
   * statement object and gives it again for the same tag.
   */
  tag?: string;
}

interface DecisionBase {
  /** The matching rule, if any. */
  rule: CacheRule | null;
  /** Metric label: the rule's name, "hint" or "all". */
  label: string;
}

export interface CacheBypass extends DecisionBase {
  cache: false;
  /** Why a statement chosen for caching cannot be cached; null when nothing chose it. */
  reason: RefusalReason | null;
}

export interface CachePlan extends DecisionBase {
  cache: true;
  key: string;
  /** Generation names the result depends on: "*", "rule:<name>", and each table read. */
  deps: string[];
  ttlMs: number;
  softTtlMs: number;
  maxResultBytes: number;
  /** Inside START TRANSACTION READ ONLY (allow_read_only_transactions): hits are served, results never stored. */
  readOnlyTransaction: boolean;
}

export type CacheDecision = CacheBypass | CachePlan;

const TRANSACTION_FLAGS = ServerStatus.IN_TRANS | ServerStatus.AUTOCOMMIT;

/** Status flags that say how the server reads quotes and backslashes in this session (its sql_mode). */
export const QUOTING_FLAGS = ServerStatus.ANSI_QUOTES | ServerStatus.NO_BACKSLASH_ESCAPES;

/** The status flags a decision reads: the transaction's, and the quoting mode's. */
export const DECISION_STATUS_FLAGS = TRANSACTION_FLAGS | ServerStatus.IN_TRANS_READONLY | QUOTING_FLAGS;

/**
 * The tag of a request: every input of `decide` but the statement and the
 * parameters of an execution, so that two requests with the same tag get the
 * same decision for the same statement (CacheRequest.tag).
 */
export function decisionTag(req: Omit<CacheRequest, 'statement' | 'params' | 'tag'>): string {
  const flags = `${req.binary ? 'B' : 'T'}${req.metadataFlags}.${req.status & DECISION_STATUS_FLAGS}.${req.readUncommitted ? 1 : 0}${req.autoIsNull ? 1 : 0}`;
  // A name may hold any character but NUL: "no schema" and "state unknown" are told apart by a mark before the value.
  return `${flags}\0${req.user}\0${req.clientAddress}\0${req.schema === null ? '-' : `+${req.schema}`}\0${req.stateKey === null ? '-' : `+${req.stateKey}`}`;
}

/**
 * The tokenizer reads `"` as a string quote and `\` as an escape, as the
 * server does by default. Under ANSI_QUOTES (`"` quotes an identifier) or
 * NO_BACKSLASH_ESCAPES (`\` is a plain character) a text holding one of them
 * may have other tables or string boundaries for the server than for the
 * proxy: its tables cannot be trusted. (The status flags of the server's last
 * reply say which mode the session is in.)
 */
export function quotingAmbiguous(statement: ClassifiedStatement, status: number): boolean {
  if (!(status & QUOTING_FLAGS)) return false;
  const text = statement.keyText;
  return ((status & ServerStatus.ANSI_QUOTES) !== 0 && text.includes('"')) || ((status & ServerStatus.NO_BACKSLASH_ESCAPES) !== 0 && text.includes('\\'));
}

/** "schema.table" for each table the statement reads, qualifying bare names with the default schema. */
export function qualifiedTables(statement: ClassifiedStatement, schema: string | null): string[] {
  const out: string[] = [];
  for (const t of statement.tablesRead) {
    const name = qualifiedTableName(t, schema);
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/**
 * One shared array per distinct dependency list: an entry keeps the array its
 * plan had, so checking on a hit that the entry depends on what the query
 * reads is one pointer comparison instead of comparing strings (bounded: cleared when large).
 */
const depsByKey = new Map<string, string[]>();
const MAX_INTERNED_DEPS = 10_000;

function internDeps(ruleName: string, tables: readonly string[]): string[] {
  const key = tables.length === 1 ? `${ruleName}\0${tables[0]}` : `${ruleName}\0${tables.join('\0')}`;
  let deps = depsByKey.get(key);
  if (!deps) {
    if (depsByKey.size >= MAX_INTERNED_DEPS) depsByKey.clear();
    deps = ['*', `rule:${ruleName}`, ...tables];
    depsByKey.set(key, deps);
  }
  return deps;
}

/** `views`: the primary's views, so that a read of a view depends on its base tables. */
export function decide(config: CacheConfig, req: CacheRequest, views: SchemaCatalog | null = null): CacheDecision {
  const s = req.statement;
  const tables = qualifiedTables(s, req.schema);
  const rule =
    config.rules.length === 0
      ? null
      : findRule(config.rules, {
          statement: s,
          tables,
          user: req.user,
          schema: req.schema,
          clientAddress: req.clientAddress,
        });
  const label = rule ? rule.name : s.hints.cache === 'on' ? 'hint' : 'all';
  const chosen =
    s.hints.cache !== 'off' &&
    rule?.cache !== false &&
    (rule?.cache === true || s.hints.cache === 'on' || config.mode === 'all');
  if (!chosen) return { cache: false, rule, label, reason: null };
  // A view's result changes with its base tables: it depends on them (null: a view whose definition is unknown).
  const deps = views ? views.expand(tables) : tables;
  const reason =
    refusal(config, req, rule, tables) ??
    (deps === null ? 'view' : null) ??
    ((views?.callsFunction(s.keyText) || views?.readsFunctionView(deps!)) && !rule?.allowNondeterministic ? 'stored_function' : null);
  if (reason || deps === null) {
    // A write is simply not a candidate (cache-everything mode, a rule matching its table): only a
    // /*qc=on*/ hint on a non-SELECT is worth counting as a refusal.
    const quiet = reason === 'not_select' && s.hints.cache !== 'on';
    return { cache: false, rule, label, reason: quiet ? null : (reason ?? 'view') };
  }
  const ttlSeconds = s.hints.ttlSeconds ?? rule?.ttlSeconds ?? config.defaultTtlSeconds;
  // A TTL of 0 (/*qc_ttl=0*/ or ttl: 0) asks for no caching.
  if (ttlSeconds === 0) return { cache: false, rule, label, reason: null };
  const softSeconds = rule?.softTtlSeconds ?? config.defaultSoftTtlSeconds ?? ttlSeconds;
  const shared = rule?.shareAcrossUsers ?? false;
  // The quoting mode is in the key too: the same bytes can be two statements in two modes.
  const key = `${req.binary ? 'B' : 'T'}${req.metadataFlags}.${req.status & QUOTING_FLAGS}\0${shared ? '' : req.user}\0${req.schema ?? ''}\0${req.stateKey}\0${s.keyText}\0${req.params}`;
  return {
    cache: true,
    rule,
    label,
    key,
    deps: internDeps(rule?.name ?? '', deps),
    ttlMs: ttlSeconds * 1000,
    softTtlMs: Math.min(softSeconds, ttlSeconds) * 1000,
    maxResultBytes: rule?.maxResultBytes ?? config.maxResultBytes,
    readOnlyTransaction: (req.status & ServerStatus.IN_TRANS) !== 0,
  };
}

function refusal(config: CacheConfig, req: CacheRequest, rule: CacheRule | null, tables: readonly string[]): RefusalReason | null {
  const s = req.statement;
  if (s.multiStatement) return 'multi_statement';
  if (s.type !== 'select') return 'not_select';
  if (s.lockingRead) return 'locking_read';
  if (s.selectInto) return 'select_into';
  const readOnlyTransaction = config.allowReadOnlyTransactions && (req.status & ServerStatus.IN_TRANS_READONLY) !== 0;
  if ((req.status & TRANSACTION_FLAGS) !== ServerStatus.AUTOCOMMIT && !readOnlyTransaction) return 'in_transaction';
  if (s.nonDeterministic !== null && !rule?.allowNondeterministic) return 'non_deterministic';
  if (req.stateKey === null) return 'session_state';
  if (req.readUncommitted) return 'read_uncommitted';
  if (req.autoIsNull) return 'sql_auto_is_null';
  if (quotingAmbiguous(s, req.status)) return 'sql_mode_quoting';
  if (!rule?.allowSystemSchemas && readsSystemSchema(tables)) return 'system_schema';
  return null;
}

/**
 * Schemas the server keeps itself: their tables change without a write a
 * client makes (processlists, statistics, grants), so a stored answer would
 * soon be wrong and no write would invalidate it.
 */
const SYSTEM_SCHEMAS = ['information_schema.', 'performance_schema.', 'sys.', 'mysql.'];

function readsSystemSchema(tables: readonly string[]): boolean {
  for (const t of tables) for (const prefix of SYSTEM_SCHEMAS) if (t.startsWith(prefix)) return true;
  return false;
}
