/**
 * The statement plan: classification, then the cache decision, then the
 * route. The session, `/explain` and `wirecache rules test` all decide with
 * these functions, so what they report cannot disagree with what the proxy
 * does. Pure: no sockets, no monitor; where the servers come in, they are
 * given as a `ServerView` (the monitor's live view, or the config alone).
 */
import { decide, type CacheDecision, type CacheRequest } from '../cache/cache_policy.js';
import type { CacheRule } from '../config/rules.js';
import type { RefusalReason } from '../cache/types.js';
import type { WirecacheConfig } from '../config/types.js';
import { decideRoute, type RouteDecision, type RouteReason, type SessionPins } from '../routing/router.js';
import { classify, qualifiedTableName, type ClassifiedStatement } from '../sql/classifier.js';

/** A miss that will be stored is read from the primary: a lagging replica's answer must not be kept for a whole TTL. */
const CACHE_FILL: RouteDecision = { target: { kind: 'primary' }, reason: 'cache_fill', detail: null };

/**
 * The route of a statement whose cache decision is known. `fillsCache`: its
 * result will be stored (a miss of a cached statement).
 */
export function planRoute(statement: ClassifiedStatement, rule: CacheRule | null, pins: SessionPins, fillsCache: boolean): RouteDecision {
  const decision = decideRoute(statement, rule, pins);
  return fillsCache && decision.target.kind !== 'primary' ? CACHE_FILL : decision;
}

/**
 * Why a statement would not be cached: a refusal of the cache policy, or
 * - cache_off: the config has no cache section;
 * - not_chosen: nothing asked for it (mode hinted, no /*qc=on*\/, no rule with cache: true);
 * - hint_qc_off: a /*qc=off*\/ hint;
 * - rule_cache_false: its rule says cache: false;
 * - ttl_zero: a TTL of 0 (hint or rule).
 */
export type CacheVerdictReason = RefusalReason | 'cache_off' | 'not_chosen' | 'hint_qc_off' | 'rule_cache_false' | 'ttl_zero';

/** The cache decision as people read it. */
export interface CacheVerdict {
  cached: boolean;
  /** Why not; null when cached. */
  reason: CacheVerdictReason | null;
  /** For non_deterministic: the function or variable. */
  detail: string | null;
  /** For a statement nothing chose (not_chosen): what would refuse it if a rule or hint chose it, else null. */
  ifChosen: RefusalReason | null;
  /** When cached: "hint", "all" (mode all) or the rule's name. */
  label: string | null;
  ttlSeconds: number | null;
  softTtlSeconds: number | null;
}

/** Why the plan's destination is what it is: the router's reason, or what replaces it without replicas to route to. */
export type PlanRouteReason = RouteReason | 'no_monitor';

/** The servers as the plan sees them: the monitor's live view for /explain, the config alone for a dry run. */
export interface ServerView {
  /** A monitor watches the servers: reads may go to replicas. */
  monitored: boolean;
  /** The primary's name, or null (none known, or two writable servers). */
  primary: string | null;
  /** Servers that are all writable at once (reads go on, writes are refused). */
  conflict: readonly string[];
  /** Replicas that would take reads. */
  replicas: readonly string[];
  /** Where the view comes from: the monitor's last checks (replicas in rotation) or the config alone (replicas configured). */
  source: 'monitor' | 'config';
  hasServer(name: string): boolean;
}

/** Where a statement goes. */
export interface PlannedRoute {
  /** "primary", "replica" (any replica in rotation) or a backend's name. */
  target: string;
  reason: PlanRouteReason;
  /** The statement type of a write, the function, the hint or rule name. */
  detail: string | null;
  /** The servers that would answer. */
  servers: string[];
  /** Read-your-writes for a read that may go to a replica; null for the primary. */
  consistency: 'eventual' | 'session' | null;
  /** Where a cached read's miss is read (to fill the cache): the primary; null otherwise. */
  onCacheMiss: 'primary' | null;
  note: string | null;
}

export interface StatementPlan {
  statement: ClassifiedStatement;
  /** The first matching rule. */
  rule: CacheRule | null;
  cache: CacheVerdict;
  route: PlannedRoute;
}

/** What a statement is planned for: the session it would run in. */
export interface PlanInput {
  sql: string;
  /** COM_STMT_EXECUTE rather than COM_QUERY. */
  binary: boolean;
  user: string;
  schema: string | null;
  clientAddress: string;
  /** The session's status flags (IN_TRANS, AUTOCOMMIT, ...). */
  status: number;
  pins: SessionPins;
}

/** Classifies the statement, decides on caching, routes it, and places it on the servers of `view`. */
export function planStatement(config: WirecacheConfig, input: PlanInput, view: ServerView): StatementPlan {
  const statement = classify(input.sql);
  const req: CacheRequest = {
    statement,
    binary: input.binary,
    metadataFlags: 0,
    params: '',
    user: input.user,
    schema: input.schema,
    stateKey: '',
    clientAddress: input.clientAddress,
    status: input.status,
  };
  const decision = config.cache ? decide(config.cache, req) : null;
  const cache = cacheVerdict(config, req, decision);
  const rule = decision?.rule ?? null;
  const decided = decideRoute(statement, rule, input.pins);
  const route = placeRoute(decided, view);
  if (route.target !== 'primary') {
    route.consistency = rule?.consistency ?? config.routing.consistency;
    if (cache.cached) route.onCacheMiss = 'primary';
  }
  return { statement, rule, cache, route };
}

/** The cache decision with the reason a person needs when it says no. */
export function cacheVerdict(config: WirecacheConfig, req: CacheRequest, d: CacheDecision | null): CacheVerdict {
  const verdict: CacheVerdict = { cached: false, reason: null, detail: null, ifChosen: null, label: null, ttlSeconds: null, softTtlSeconds: null };
  const cacheConfig = config.cache;
  const s = req.statement;
  if (!cacheConfig || !d) {
    verdict.reason = 'cache_off';
    return verdict;
  }
  if (d.cache) {
    verdict.cached = true;
    verdict.label = d.label;
    verdict.ttlSeconds = d.ttlMs / 1000;
    verdict.softTtlSeconds = d.softTtlMs / 1000;
    return verdict;
  }
  if (d.reason) verdict.reason = d.reason;
  else if (s.multiStatement) verdict.reason = 'multi_statement';
  // A write or other non-SELECT is never a candidate: say so rather than "not chosen".
  else if (s.type !== 'select') verdict.reason = 'not_select';
  else if (s.hints.cache === 'off') verdict.reason = 'hint_qc_off';
  else if (d.rule?.cache === false) verdict.reason = 'rule_cache_false';
  else if (d.rule?.cache === true || s.hints.cache === 'on' || cacheConfig.mode === 'all') verdict.reason = 'ttl_zero';
  else {
    verdict.reason = 'not_chosen';
    const would = decide({ ...cacheConfig, mode: 'all' }, req);
    if (!would.cache && would.reason) verdict.ifChosen = would.reason;
  }
  if (verdict.reason === 'non_deterministic' || verdict.ifChosen === 'non_deterministic') verdict.detail = s.nonDeterministic;
  return verdict;
}

/** The router's decision placed on the servers of `view`: which would answer, and why when it is not what the router asked. */
export function placeRoute(decision: RouteDecision, view: ServerView): PlannedRoute {
  const t = decision.target;
  const route: PlannedRoute = {
    target: t.kind === 'server' ? t.name : t.kind,
    reason: decision.reason,
    detail: decision.detail,
    servers: [],
    consistency: null,
    onCacheMiss: null,
    note: null,
  };
  const primary = view.primary ? [view.primary] : [];
  if (!view.monitored) {
    route.target = 'primary';
    route.reason = 'no_monitor';
    route.detail = null;
    route.servers = primary;
    route.note = 'no monitor section: every statement goes to the primary';
    return route;
  }
  if (t.kind === 'server' && !view.hasServer(t.name)) {
    route.target = 'replica';
    route.note = `no backend named "${t.name}": any replica in rotation`;
  } else if (t.kind === 'server' && t.name === view.primary) {
    route.note = `${t.name} is the ${view.source === 'config' ? 'configured ' : ''}primary: the read goes to whichever server is the primary`;
  }
  if (route.target === 'replica' && view.replicas.length === 0) {
    route.target = 'primary';
    route.detail = route.reason;
    route.reason = 'no_replica';
    route.note = `no replica is ${view.source === 'monitor' ? 'in rotation' : 'configured'}: reads go to the primary`;
  }
  if (route.target === 'primary') route.servers = primary;
  else if (route.target === 'replica') route.servers = [...view.replicas];
  else route.servers = [route.target];
  if (view.conflict.length > 0 && route.target === 'primary') route.note = `writes are refused: ${view.conflict.join(' and ')} are all writable`;
  return route;
}

/** "schema.table" (or "table") for each table, as plans show them. */
export function tableNames(tables: readonly { schema: string | null; table: string }[]): string[] {
  return tables.map((t) => qualifiedTableName(t));
}
