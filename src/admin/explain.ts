/**
 * What the proxy would do with one statement, without running it: its
 * classification, the rule it matches, whether it would be cached (and why
 * not), and where it would go. For the /explain admin endpoint; pure apart
 * from reading the monitor's current view of the servers.
 */
import { decide } from '../cache/cache_policy.js';
import type { WirecacheConfig } from '../config/types.js';
import { ServerStatus } from '../protocol/constants.js';
import { decideRoute } from '../routing/router.js';
import type { ServerSelector } from '../routing/server_selector.js';
import type { ServerStatus as MonitoredServer } from '../routing/server_monitor.js';
import { classify } from '../sql/classifier.js';

export interface ExplainRequest {
  sql: string;
  user: string;
  schema: string | null;
  clientAddress: string;
  /** Explain as if the session had a transaction open. */
  inTransaction: boolean;
}

export function explainStatement(
  req: ExplainRequest,
  config: WirecacheConfig,
  selector: ServerSelector,
  servers: readonly MonitoredServer[],
): Record<string, unknown> {
  const s = classify(req.sql);
  const status = req.inTransaction ? ServerStatus.IN_TRANS | ServerStatus.AUTOCOMMIT : ServerStatus.AUTOCOMMIT;
  const cache = config.cache
    ? decide(config.cache, {
        statement: s,
        binary: false,
        metadataFlags: 0,
        params: '',
        user: req.user,
        schema: req.schema,
        stateKey: '',
        clientAddress: req.clientAddress,
        status,
      })
    : null;
  const rule = cache?.rule ?? null;
  const route = decideRoute(s, rule, { inTransaction: req.inTransaction, pinned: null });
  const primary = selector.primary();
  const replicas = servers.filter((x) => x.inRotation && x.name !== primary.endpoint?.name).map((x) => x.name);
  let servesFrom: string[];
  let note: string | null = null;
  if (route.target.kind === 'primary') servesFrom = primary.endpoint ? [primary.endpoint.name] : [];
  else if (route.target.kind === 'server') servesFrom = [route.target.name];
  else if (replicas.length > 0) servesFrom = replicas;
  else {
    servesFrom = primary.endpoint ? [primary.endpoint.name] : [];
    note = 'no replica is in rotation: reads go to the primary';
  }
  if (!selector.monitored && route.target.kind !== 'primary') {
    servesFrom = primary.endpoint ? [primary.endpoint.name] : [];
    note = 'no monitor section: every statement goes to the primary';
  }
  if (primary.conflict.length > 0 && route.target.kind === 'primary') note = `writes are refused: ${primary.conflict.join(' and ')} are all writable`;
  const cached = cache?.cache === true;
  return {
    statement: {
      type: s.type,
      keyword: s.keyword,
      multi_statement: s.multiStatement,
      digest: s.digestText,
      tables_read: s.tablesRead.map((t) => (t.schema ? `${t.schema}.${t.table}` : t.table)),
      tables_written: s.tablesWritten === null ? null : s.tablesWritten.map((t) => (t.schema ? `${t.schema}.${t.table}` : t.table)),
      locking_read: s.lockingRead,
      non_deterministic: s.nonDeterministic,
      needs_primary: s.needsPrimary,
      hints: s.hints,
    },
    rule: rule ? { name: rule.name, source: rule.source } : null,
    cache: config.cache
      ? {
          cached,
          label: cache!.label,
          reason: cache!.cache ? null : (cache!.reason ?? 'not chosen (no qc=on hint, no rule with cache: true, mode hinted)'),
          ttl_seconds: cache!.cache ? cache!.ttlMs / 1000 : null,
          soft_ttl_seconds: cache!.cache ? cache!.softTtlMs / 1000 : null,
        }
      : { cached: false, reason: 'the cache is off (no cache section)' },
    route: {
      target: route.target.kind === 'server' ? route.target.name : route.target.kind,
      reason: route.reason,
      detail: route.detail,
      // A miss that will be stored is read from the primary, so a lagging replica never fills the cache.
      on_cache_miss: cached && route.target.kind !== 'primary' ? 'primary (cache_fill)' : null,
      servers: servesFrom,
      consistency: rule?.consistency ?? config.routing.consistency,
      note,
    },
  };
}
