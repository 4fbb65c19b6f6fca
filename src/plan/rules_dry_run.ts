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
import type { WirecacheConfig } from '../config/types.js';
import { configuredPrimary } from '../config/lookup.js';
import { ServerStatus } from '../protocol/constants.js';
import { PrimaryPins } from '../routing/primary_pins.js';
import { writtenText, type ClassifiedStatement } from '../sql/classifier.js';
import type { LoggedStatement } from './sql_log_reader.js';
import { planStatement, tableNames, type CacheVerdict, type CacheVerdictReason, type PlannedRoute, type PlanRouteReason, type ServerView } from './statement_plan.js';

export interface DryRunOptions {
  /** User for statements whose user the file does not give; default: the config's first user. */
  user?: string;
  /** Default schema for statements whose schema the file does not give; default: none. */
  schema?: string;
  /** Client address for `match.clients`, when the file does not give one; default 127.0.0.1. */
  client?: string;
}

/** Why a statement would not be cached (see CacheVerdictReason). */
export type DryRunCacheReason = CacheVerdictReason;

/** Why a statement would go where it goes. */
export type DryRunRouteReason = PlanRouteReason;

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
    /** What rule regexes are matched against: the statement as written, comments and hints aside. */
    regexText: string;
    tablesRead: string[];
    multiStatement: boolean;
    lockingRead: boolean;
    nonDeterministic: string | null;
    needsPrimary: string | null;
    hints: ClassifiedStatement['hints'];
  };
  /** The first matching rule and where it is defined (file:line). */
  rule: { name: string; source: string } | null;
  cache: CacheVerdict;
  route: Omit<PlannedRoute, 'servers'>;
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

/** The servers as the config alone gives them: no health is known in a dry run. */
function configuredView(config: WirecacheConfig): ServerView {
  const primary = configuredPrimary(config.backends)?.name ?? null;
  return {
    monitored: config.monitor !== null,
    primary,
    conflict: [],
    replicas: config.backends.filter((b) => b.name !== primary).map((b) => b.name),
    source: 'config',
    hasServer: (name) => config.backends.some((b) => b.name === name),
  };
}

/** Judges every statement, in order, against the config's rules and routing. */
export function dryRun(config: WirecacheConfig, statements: readonly LoggedStatement[], opts: DryRunOptions = {}): DryRunRow[] {
  const sessions = new Map<number, DrySession>();
  const view = configuredView(config);
  const rows: DryRunRow[] = [];
  for (const stmt of statements) {
    const key = stmt.connection ?? -1;
    let session = sessions.get(key);
    if (!session) sessions.set(key, (session = new DrySession()));
    const user = stmt.user ?? opts.user ?? config.users[0]?.name ?? '';
    const schema = stmt.schema ?? opts.schema ?? null;
    const client = stmt.host ?? opts.client ?? '127.0.0.1';
    const plan = planStatement(
      config,
      { sql: stmt.sql, binary: stmt.prepared === true, user, schema, clientAddress: client, status: session.status(), pins: session.routePins() },
      view,
    );
    const s = plan.statement;
    const { servers: _servers, ...route } = plan.route;
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
        regexText: writtenText(s),
        tablesRead: tableNames(s.tablesRead),
        multiStatement: s.multiStatement,
        lockingRead: s.lockingRead,
        nonDeterministic: s.nonDeterministic,
        needsPrimary: s.needsPrimary,
        hints: s.hints,
      },
      rule: plan.rule ? { name: plan.rule.name, source: plan.rule.source } : null,
      cache: plan.cache,
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
export function formatDryRun(rows: readonly DryRunRow[], opts: { regexText?: boolean } = {}): string {
  const header = ['LINE', 'RULE', 'CACHED', 'ROUTE', 'STATEMENT'];
  const table = rows.map((r) => [String(r.line), r.rule?.name ?? '-', cacheText(r.cache), routeText(r.route), shortStatement(r.sql)]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((cells) => cells[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padStart(widths[i]) : i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [line(header)];
  // With regex rules, each row says what the regexes were matched against, under its statement.
  const indent = ' '.repeat(widths.slice(0, 4).reduce((a, w) => a + w + 2, 0));
  rows.forEach((r, i) => {
    out.push(line(table[i]));
    if (opts.regexText) out.push(`${indent}regex text: ${shortStatement(r.statement.regexText, 200)}`);
  });
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
