/**
 * `wirecache rules test`: what the proxy would do with each statement of a
 * file, without a database or a monitor. For every statement: the rule it
 * matches, whether it would be cached (with the TTL) or why not, and where
 * it would go: "primary", "replica" (any replica in rotation) or a server by
 * name, with the router's reason. Server health is not known in a dry run,
 * so a read for a replica is reported as such, never as a particular server.
 *
 * Statements of one connection (the whole file for plain SQL) are read as
 * one session, in order: BEGIN ... COMMIT, autocommit=0, LOCK TABLES,
 * temporary tables and GET_LOCK keep later statements on the primary as
 * they would in the proxy.
 */
import { decide } from '../cache/cache_policy.js';
import type { RefusalReason } from '../cache/types.js';
import type { WirecacheConfig } from '../config/types.js';
import { ServerStatus } from '../protocol/constants.js';
import { decideRoute, type RouteReason } from '../routing/router.js';
import { PrimaryPins } from '../session/backend_links.js';
import { classify, type ClassifiedStatement } from '../sql/classifier.js';
import type { LoggedStatement } from './sql_log_reader.js';

export interface DryRunOptions {
  /** User for statements whose user the file does not give; default: the config's first user. */
  user?: string;
  /** Default schema for statements whose schema the file does not give; default: none. */
  schema?: string;
  /** Client address for `match.clients`, when the file does not give one; default 127.0.0.1. */
  client?: string;
}

/**
 * Why a statement would not be cached: a refusal of the cache policy, or
 * - cache_off: the config has no cache section;
 * - not_chosen: nothing asked for it (mode hinted, no /*qc=on*\/, no rule with cache: true);
 * - hint_qc_off: a /*qc=off*\/ hint;
 * - rule_cache_false: its rule says cache: false;
 * - ttl_zero: a TTL of 0 (hint or rule).
 */
export type DryRunCacheReason = RefusalReason | 'cache_off' | 'not_chosen' | 'hint_qc_off' | 'rule_cache_false' | 'ttl_zero';

/** Why a statement would go where it goes: the router's reason, or what replaces it without replicas to route to. */
export type DryRunRouteReason = RouteReason | 'no_monitor';

export interface DryRunRow {
  /** Line of the file where the statement starts. */
  line: number;
  sql: string;
  /** The user, schema and client address the statement was judged for. */
  user: string;
  schema: string | null;
  client: string;
  /** Connection id from a log; null for a plain SQL file. */
  connection: number | null;
  statement: {
    type: string;
    keyword: string;
    digest: string;
    tablesRead: string[];
    multiStatement: boolean;
    lockingRead: boolean;
    nonDeterministic: string | null;
    needsPrimary: string | null;
    hints: ClassifiedStatement['hints'];
  };
  /** The first matching rule and where it is defined (file:line). */
  rule: { name: string; source: string } | null;
  cache: {
    cached: boolean;
    /** Why not; null when cached. */
    reason: DryRunCacheReason | null;
    /** For non_deterministic: the function or variable. */
    detail: string | null;
    /** For a statement nothing chose (not_chosen): what would refuse it if a rule or hint chose it, else null. */
    ifChosen: RefusalReason | null;
    /** When cached: "hint", "all" (mode all) or the rule's name. */
    label: string | null;
    ttlSeconds: number | null;
    softTtlSeconds: number | null;
  };
  route: {
    /** "primary", "replica" (any replica in rotation) or a backend's name. */
    target: string;
    reason: DryRunRouteReason;
    /** The statement type of a write, the function, the hint or rule name. */
    detail: string | null;
    /** Read-your-writes for a read that may go to a replica; null for the primary. */
    consistency: 'eventual' | 'session' | null;
    /** Where a cached read's miss is read (to fill the cache): the primary; null otherwise. */
    onCacheMiss: 'primary' | null;
    note: string | null;
  };
}

const IMPLICIT_COMMIT = new Set(['alter', 'drop', 'rename', 'truncate', 'lock']);

/** What one connection holds while its statements are read in order. */
class DrySession {
  private inTransaction = false;
  private readOnly = false;
  private autocommitOff = false;
  private readonly pins = new PrimaryPins();

  status(): number {
    let status = this.autocommitOff ? 0 : ServerStatus.AUTOCOMMIT;
    if (this.inTransaction) status |= ServerStatus.IN_TRANS;
    if (this.inTransaction && this.readOnly) status |= ServerStatus.IN_TRANS_READONLY;
    return status;
  }

  routePins(): { inTransaction: boolean; pinned: string | null } {
    return { inTransaction: this.inTransaction || this.autocommitOff, pinned: this.pins.reason() };
  }

  after(s: ClassifiedStatement, schema: string | null): void {
    this.pins.afterStatement(s, schema);
    if (s.type === 'begin') {
      this.inTransaction = true;
      this.readOnly = s.readOnlyTransaction;
    } else if (s.type === 'commit' || s.type === 'rollback' || IMPLICIT_COMMIT.has(s.type) || (s.type === 'create' && !s.temporaryTable)) {
      this.inTransaction = false;
      this.readOnly = false;
    }
    for (const a of s.sessionAssignments ?? []) {
      if (a.name !== 'autocommit') continue;
      const v = a.value.replace(/^'|'$/g, '').toLowerCase();
      if (v === '0' || v === 'off' || v === 'false') this.autocommitOff = true;
      else if (v === '1' || v === 'on' || v === 'true') {
        // SET autocommit=1 commits what is open.
        this.autocommitOff = false;
        this.inTransaction = false;
      }
    }
  }
}

const qualified = (t: { schema: string | null; table: string }) => (t.schema ? `${t.schema}.${t.table}` : t.table);

/** Judges every statement, in order, against the config's rules and routing. */
export function dryRun(config: WirecacheConfig, statements: readonly LoggedStatement[], opts: DryRunOptions = {}): DryRunRow[] {
  const sessions = new Map<number, DrySession>();
  const backends = new Set(config.backends.map((b) => b.name));
  const configuredPrimary = (config.backends.find((b) => b.role === 'primary') ?? config.backends[0])?.name ?? null;
  const haveReplicas = config.backends.some((b) => b.name !== configuredPrimary);
  const rows: DryRunRow[] = [];
  for (const stmt of statements) {
    const key = stmt.connection ?? -1;
    let session = sessions.get(key);
    if (!session) sessions.set(key, (session = new DrySession()));
    const user = stmt.user ?? opts.user ?? config.users[0]?.name ?? '';
    const schema = stmt.schema ?? opts.schema ?? null;
    const client = stmt.host ?? opts.client ?? '127.0.0.1';
    const s = classify(stmt.sql);

    // Cache.
    const cache: DryRunRow['cache'] = { cached: false, reason: null, detail: null, ifChosen: null, label: null, ttlSeconds: null, softTtlSeconds: null };
    let rule: DryRunRow['rule'] = null;
    let ruleObj = null;
    if (!config.cache) cache.reason = 'cache_off';
    else {
      const req = {
        statement: s,
        binary: stmt.prepared === true,
        metadataFlags: 0,
        params: '',
        user,
        schema,
        stateKey: '',
        clientAddress: client,
        status: session.status(),
      };
      const d = decide(config.cache, req);
      ruleObj = d.rule;
      if (d.rule) rule = { name: d.rule.name, source: d.rule.source };
      if (d.cache) {
        cache.cached = true;
        cache.label = d.label;
        cache.ttlSeconds = d.ttlMs / 1000;
        cache.softTtlSeconds = d.softTtlMs / 1000;
      } else if (d.reason) {
        cache.reason = d.reason;
      } else if (s.multiStatement) {
        cache.reason = 'multi_statement';
      } else if (s.type !== 'select') {
        // A write or other non-SELECT is never a candidate: say so rather than "not chosen".
        cache.reason = 'not_select';
      } else if (s.hints.cache === 'off') {
        cache.reason = 'hint_qc_off';
      } else if (d.rule?.cache === false) {
        cache.reason = 'rule_cache_false';
      } else if (d.rule?.cache === true || s.hints.cache === 'on' || config.cache.mode === 'all') {
        cache.reason = 'ttl_zero';
      } else {
        cache.reason = 'not_chosen';
        const would = decide({ ...config.cache, mode: 'all' }, req);
        if (!would.cache && would.reason) cache.ifChosen = would.reason;
      }
      if (cache.reason === 'non_deterministic' || cache.ifChosen === 'non_deterministic') cache.detail = s.nonDeterministic;
    }

    // Route.
    const decision = decideRoute(s, ruleObj, session.routePins());
    const route: DryRunRow['route'] = {
      target: decision.target.kind === 'server' ? decision.target.name : decision.target.kind,
      reason: decision.reason,
      detail: decision.detail,
      consistency: null,
      onCacheMiss: null,
      note: null,
    };
    if (!config.monitor) {
      route.target = 'primary';
      route.reason = 'no_monitor';
      route.detail = null;
      route.note = 'no monitor section: every statement goes to the primary';
    } else if (decision.target.kind === 'server' && !backends.has(decision.target.name)) {
      route.target = 'replica';
      route.note = `no backend named "${decision.target.name}": any replica in rotation`;
    } else if (decision.target.kind === 'server' && decision.target.name === configuredPrimary) {
      route.note = `${configuredPrimary} is the configured primary: the read goes to whichever server is the primary`;
    }
    if (config.monitor && route.target === 'replica' && !haveReplicas) {
      route.target = 'primary';
      route.detail = route.reason;
      route.reason = 'no_replica';
      route.note = 'no replica is configured: reads go to the primary';
    }
    if (route.target !== 'primary') {
      route.consistency = ruleObj?.consistency ?? config.routing.consistency;
      if (cache.cached) route.onCacheMiss = 'primary';
    }

    rows.push({
      line: stmt.line,
      sql: stmt.sql,
      user,
      schema,
      client,
      connection: stmt.connection ?? null,
      statement: {
        type: s.type,
        keyword: s.keyword,
        digest: s.digestText,
        tablesRead: s.tablesRead.map(qualified),
        multiStatement: s.multiStatement,
        lockingRead: s.lockingRead,
        nonDeterministic: s.nonDeterministic,
        needsPrimary: s.needsPrimary,
        hints: s.hints,
      },
      rule,
      cache,
      route,
    });
    session.after(s, schema);
  }
  return rows;
}

/** The statement on one line, at most `max` characters. */
export function shortStatement(sql: string, max = 80): string {
  const one = sql.replace(/\s+/g, ' ').trim();
  return one.length <= max ? one : `${one.slice(0, max - 3)}...`;
}

export function cacheText(c: DryRunRow['cache']): string {
  if (c.cached) {
    let text = `yes, ttl ${c.ttlSeconds}s`;
    if (c.softTtlSeconds !== null && c.ttlSeconds !== null && c.softTtlSeconds < c.ttlSeconds) text += `, soft ${c.softTtlSeconds}s`;
    if (c.label === 'hint') text += ' (hint)';
    else if (c.label === 'all') text += ' (mode all)';
    return text;
  }
  let text = `no: ${c.reason}`;
  if (c.detail && c.reason === 'non_deterministic') text += ` (${c.detail})`;
  if (c.ifChosen) text += `; if chosen: ${c.ifChosen}${c.detail ? ` (${c.detail})` : ''}`;
  return text;
}

export function routeText(r: DryRunRow['route']): string {
  const why = [r.detail && r.detail !== r.target ? `${r.reason}: ${r.detail}` : r.reason];
  if (r.consistency) why.push(`consistency: ${r.consistency}`);
  if (r.onCacheMiss) why.push(`miss: ${r.onCacheMiss}`);
  return `${r.target} (${why.join('; ')})`;
}

/** A table, one statement a row: line, rule, cache decision, route, statement; then notes and a summary. */
export function formatDryRun(rows: readonly DryRunRow[]): string {
  const header = ['LINE', 'RULE', 'CACHED', 'ROUTE', 'STATEMENT'];
  const table = rows.map((r) => [String(r.line), r.rule?.name ?? '-', cacheText(r.cache), routeText(r.route), shortStatement(r.sql)]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((cells) => cells[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padStart(widths[i]) : i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...table.map(line)];
  const notes = [...new Set(rows.map((r) => r.route.note).filter((n): n is string => n !== null))];
  if (notes.length > 0) out.push('', ...notes.map((n) => `note: ${n}`));
  const cached = rows.filter((r) => r.cache.cached).length;
  const primary = rows.filter((r) => r.route.target === 'primary').length;
  out.push(
    '',
    `${rows.length} statement(s): ${cached} cached, ${primary} to the primary, ${rows.length - primary} to a replica or named server`,
  );
  return `${out.join('\n')}\n`;
}
