/**
 * Read/write split: where one classified statement must or may run. A pure
 * decision over the statement, the matching rule and what the session holds
 * on the primary; picking an actual server, health and lag are the
 * ServerSelector's job, and sockets the session's.
 */
import type { CacheRule } from '../config/rules.js';
import { writesData, type ClassifiedStatement } from '../sql/classifier.js';

/** Where a statement goes: the primary, any replica in rotation, or one named server. */
export type RouteTarget = { kind: 'primary' } | { kind: 'replica' } | { kind: 'server'; name: string };

/** Why a statement went where it went; bounded, used as a metric label and in /explain. */
export type RouteReason =
  | 'write'
  | 'multi_statement'
  | 'transaction'
  | 'locking_read'
  | 'primary_function'
  | 'stored_function'
  | 'server_state'
  | 'session_pinned'
  | 'hint'
  | 'rule'
  | 'read'
  | 'not_a_read'
  | 'cache_fill'
  | 'diagnostics'
  | 'no_replica'
  | 'consistency_timeout';

export interface RouteDecision {
  target: RouteTarget;
  reason: RouteReason;
  /** A human-readable detail: the function, the pin, the rule name. */
  detail: string | null;
}

/** What the session holds on its primary connection that a replica cannot see. */
export interface SessionPins {
  /** An open transaction (IN_TRANS), or autocommit off. */
  inTransaction: boolean;
  /** Why the session is pinned to the primary (temporary table, LOCK TABLES, GET_LOCK, ...), or null. */
  pinned: string | null;
}

const PRIMARY: RouteTarget = { kind: 'primary' };
const CALC_FOUND_ROWS = /\bSQL_CALC_FOUND_ROWS\b/i;
const REPLICA: RouteTarget = { kind: 'replica' };

/** Statement types that only read: the ones a rule, a hint or the splitter may send to a replica. */
export function isRead(statement: ClassifiedStatement): boolean {
  return (statement.type === 'select' || statement.type === 'show') && statement.tablesWritten !== null && statement.tablesWritten.length === 0;
}

function targetOf(route: string): RouteTarget {
  if (route === 'primary') return PRIMARY;
  if (route === 'replica') return REPLICA;
  return { kind: 'server', name: route };
}

/**
 * The routing decision. Order matters: what would make a replica answer
 * wrongly (a write, a transaction, state only the primary has) wins over
 * hints and rules; a hint wins over a rule; a plain SELECT goes to a replica.
 */
export function decideRoute(statement: ClassifiedStatement, rule: CacheRule | null, pins: SessionPins): RouteDecision {
  if (statement.multiStatement) return { target: PRIMARY, reason: 'multi_statement', detail: null };
  if (!isRead(statement)) {
    return { target: PRIMARY, reason: writesData(statement) ? 'write' : 'not_a_read', detail: statement.type };
  }
  // A client talks to wirecache as to the primary: questions about the server itself get the primary's answer, whatever a hint or rule says.
  if (statement.serverState !== null) return { target: PRIMARY, reason: 'server_state', detail: statement.serverState };
  if (pins.inTransaction) return { target: PRIMARY, reason: 'transaction', detail: null };
  if (statement.lockingRead) return { target: PRIMARY, reason: 'locking_read', detail: null };
  if (statement.needsPrimary !== null) return { target: PRIMARY, reason: 'primary_function', detail: statement.needsPrimary };
  // FOUND_ROWS() later reads what this SELECT counted, and FOUND_ROWS() runs on the primary.
  if (statement.type === 'select' && CALC_FOUND_ROWS.test(statement.keyText)) return { target: PRIMARY, reason: 'primary_function', detail: 'SQL_CALC_FOUND_ROWS' };
  if (pins.pinned !== null) return { target: PRIMARY, reason: 'session_pinned', detail: pins.pinned };
  if (statement.hints.route !== null) return { target: targetOf(statement.hints.route), reason: 'hint', detail: statement.hints.route };
  if (rule?.route) return { target: targetOf(rule.route), reason: 'rule', detail: rule.name };
  if (statement.type !== 'select') return { target: PRIMARY, reason: 'not_a_read', detail: statement.type };
  return { target: REPLICA, reason: 'read', detail: null };
}
