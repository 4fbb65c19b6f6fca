/**
 * What the proxy would do with one statement, without running it: its
 * classification, the rule it matches, whether it would be cached (and why
 * not), and where it would go, from the statement plan the sessions use.
 * For the /explain admin endpoint; pure apart from reading the monitor's
 * current view of the servers.
 */
import type { WirecacheConfig } from '../config/types.js';
import { planStatement, tableNames, type ServerView } from '../plan/statement_plan.js';
import { ServerStatus } from '../protocol/constants.js';
import { writtenText } from '../sql/classifier.js';
import { ignoredHintComments } from '../sql/key_text.js';
import type { ServerSelector } from '../routing/server_selector.js';
import type { ServerStatus as MonitoredServer } from '../routing/server_status.js';

export interface ExplainRequest {
  sql: string;
  user: string;
  schema: string | null;
  clientAddress: string;
  /** Explain as if the session had a transaction open. */
  inTransaction: boolean;
}

/** The servers as the monitor saw them last. */
export function liveServerView(config: WirecacheConfig, selector: ServerSelector, servers: readonly MonitoredServer[]): ServerView {
  const primary = selector.primary();
  const name = primary.endpoint?.name ?? null;
  return {
    monitored: selector.monitored,
    primary: name,
    conflict: primary.conflict,
    replicas: servers.filter((x) => x.inRotation && x.name !== name).map((x) => x.name),
    source: 'monitor',
    hasServer: (server) => config.backends.some((b) => b.name === server),
  };
}

export function explainStatement(
  req: ExplainRequest,
  config: WirecacheConfig,
  selector: ServerSelector,
  servers: readonly MonitoredServer[],
): Record<string, unknown> {
  const plan = planStatement(
    config,
    {
      sql: req.sql,
      binary: false,
      user: req.user,
      schema: req.schema,
      clientAddress: req.clientAddress,
      status: req.inTransaction ? ServerStatus.IN_TRANS | ServerStatus.AUTOCOMMIT : ServerStatus.AUTOCOMMIT,
      pins: { inTransaction: req.inTransaction, pinned: null },
    },
    liveServerView(config, selector, servers),
  );
  const { statement: s, rule, cache, route } = plan;
  return {
    statement: {
      type: s.type,
      keyword: s.keyword,
      multi_statement: s.multiStatement,
      digest: s.digestText,
      regex_text: writtenText(s),
      tables_read: tableNames(s.tablesRead),
      tables_written: s.tablesWritten === null ? null : tableNames(s.tablesWritten),
      locking_read: s.lockingRead,
      non_deterministic: s.nonDeterministic,
      needs_primary: s.needsPrimary,
      hints: s.hints,
    },
    rule: rule ? { name: rule.name, source: rule.source } : null,
    cache: {
      cached: cache.cached,
      label: cache.label,
      reason: cache.reason,
      detail: cache.detail,
      if_chosen: cache.ifChosen,
      ttl_seconds: cache.ttlSeconds,
      soft_ttl_seconds: cache.softTtlSeconds,
    },
    route: {
      target: route.target,
      reason: route.reason,
      detail: route.detail,
      on_cache_miss: route.onCacheMiss,
      servers: route.servers,
      consistency: route.consistency,
      note: route.note,
    },
    // Comments that look like hints but are ignored (looked for here only, never on the statement path).
    warnings: ignoredHintComments(req.sql),
  };
}
