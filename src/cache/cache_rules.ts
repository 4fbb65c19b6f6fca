/**
 * Matching query rules: an ordered list, first match wins. A rule matches on
 * any combination of digest, regular expression, tables read, user, default
 * schema and client address (every condition given must hold). What a rule
 * says (cache, TTLs, route, ...) and how it is compiled from the config is in
 * src/config/rules.ts.
 */
import type { CacheRule } from '../config/rules.js';
import { spacedText, writtenText, type ClassifiedStatement } from '../sql/classifier.js';

/** What a statement offers for matching. */
export interface RuleSubject {
  statement: ClassifiedStatement;
  /** Tables read, as "schema.table" (lower-case). */
  tables: readonly string[];
  user: string;
  schema: string | null;
  clientAddress: string;
}

function matches(rule: CacheRule, s: RuleSubject): boolean {
  const m = rule.match;
  if (m.users && !m.users.includes(s.user)) return false;
  if (m.schemas && (s.schema === null || !m.schemas.includes(s.schema))) return false;
  if (m.digest !== null && m.digest !== s.statement.digestText) return false;
  if (m.tables && !m.tables.some((t) => readsTable(s.tables, t))) return false;
  // The statement as written (comments and hints aside), as a DBA writes the regex; the spaced text
  // (a space between every token), which regexes were matched against before, keeps old rules working.
  if (m.regex && !m.regex.test(writtenText(s.statement)) && !m.regex.test(spacedText(s.statement))) return false;
  if (m.clients && !m.clients(s.clientAddress)) return false;
  return true;
}

function readsTable(tables: readonly string[], wanted: string): boolean {
  const qualified = wanted.includes('.');
  for (const t of tables) {
    if (qualified ? t === wanted : t.slice(t.indexOf('.') + 1) === wanted) return true;
  }
  return false;
}

/** The first rule that matches, or null. */
export function findRule(rules: readonly CacheRule[], subject: RuleSubject): CacheRule | null {
  for (const rule of rules) if (matches(rule, subject)) return rule;
  return null;
}
