/**
 * Query rules as the config writes them (YAML, snake_case) and their
 * compiled form: matchers built once at load, actions resolved. The cache
 * (src/cache/cache_rules.ts) and the router use the compiled rules; only
 * this file knows the YAML shape.
 */
import { BlockList, isIP } from 'node:net';
import * as z from 'zod';
import { digestOf } from '../sql/classifier.js';

/** A rule as the rest of the proxy uses it: compiled matchers and resolved actions. */
export interface CacheRule {
  name: string;
  /** Where it was defined ("rules.yaml:12"), for explain output and logs. */
  source: string;
  match: {
    digest: string | null;
    regex: RegExp | null;
    /** Lower-cased; "schema.table" matches exactly, a bare "table" matches that table in any schema. */
    tables: string[] | null;
    users: string[] | null;
    schemas: string[] | null;
    /** Whether a client address is one the rule names (addresses and CIDR ranges). */
    clients: ((address: string) => boolean) | null;
  };
  /** true: cache; false: never cache (hints included); null: the rule does not decide (hints and mode do). */
  cache: boolean | null;
  ttlSeconds: number | null;
  softTtlSeconds: number | null;
  maxResultBytes: number | null;
  shareAcrossUsers: boolean;
  allowNondeterministic: boolean;
  /** Cache reads of information_schema, performance_schema, sys and mysql (never cached otherwise). */
  allowSystemSchemas: boolean;
  /** "primary", "replica" or a backend name; used by read/write routing. */
  route: string | null;
  /** Read-your-writes for the reads this rule matches; null: the global routing.consistency. */
  consistency: 'eventual' | 'session' | null;
}


const RULE_NAME_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

const stringOrList = (what: string) =>
  z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], {
    error: `must be a ${what} or a list of them`,
  });

const seconds = (what: string) =>
  z
    .number({ error: `${what} must be a whole number of seconds` })
    .int({ error: `${what} must be a whole number of seconds` })
    .min(0, { error: `${what} must be 0 or more` })
    .max(31_536_000, { error: `${what} must be at most a year (31536000)` });

/** One rule as written in YAML (snake_case). */
export const ruleSchema = z
  .strictObject(
    {
      name: z.string({ error: 'is required: a name for metrics and logs' }).regex(RULE_NAME_RE, {
        error: 'must be 1-64 letters, digits, "_", ".", ":" or "-"',
      }),
      match: z.strictObject(
        {
          digest: z.string({ error: 'must be a string' }).min(1).optional(),
          regex: z
            .string({ error: 'must be a string' })
            .min(1)
            .refine(
              (s) => {
                try {
                  new RegExp(s);
                  return true;
                } catch {
                  return false;
                }
              },
              { error: (iss) => `is not a valid regular expression: ${regexError(iss.input as string)}` },
            )
            .optional(),
          regex_ignore_case: z.boolean({ error: 'must be true or false' }).optional(),
          tables: stringOrList('table name').optional(),
          users: stringOrList('user name').optional(),
          schemas: stringOrList('schema name').optional(),
          clients: stringOrList('IP address or CIDR range')
            .refine((v) => (Array.isArray(v) ? v : [v]).every(validClient), {
              error: 'must be IP addresses or CIDR ranges such as 10.0.0.0/8',
            })
            .optional(),
        },
        { error: 'must be a mapping of conditions (digest, regex, tables, users, schemas, clients); {} matches everything' },
      ),
      cache: z.boolean({ error: 'must be true or false' }).optional(),
      ttl: seconds('ttl').optional(),
      soft_ttl: seconds('soft_ttl').optional(),
      max_result_bytes: z.number().int().min(1).max(1_073_741_824, { error: 'must be at most 1 GiB' }).optional(),
      share_across_users: z.boolean({ error: 'must be true or false' }).optional(),
      allow_nondeterministic: z.boolean({ error: 'must be true or false' }).optional(),
      allow_system_schemas: z.boolean({ error: 'must be true or false' }).optional(),
      route: z.string({ error: 'must be "primary", "replica" or a backend name' }).min(1).optional(),
      consistency: z.enum(['eventual', 'session'], { error: 'must be "eventual" or "session"' }).optional(),
    },
    { error: 'must be a mapping with name, match and actions' },
  )
  .refine((r) => r.soft_ttl === undefined || r.ttl === undefined || r.soft_ttl <= r.ttl, {
    error: 'soft_ttl must not be longer than ttl',
    path: ['soft_ttl'],
  });

export const rulesListSchema = z.array(ruleSchema, { error: 'must be a list of rules' });

/** A rules file: either a bare list or a mapping with `rules:`. */
export const rulesFileSchema = z.strictObject(
  { rules: rulesListSchema },
  { error: 'a rules file must be a list of rules, or a mapping with a "rules" list' },
);

export type RawRule = z.output<typeof ruleSchema>;

function regexError(s: string): string {
  try {
    new RegExp(s);
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

function validClient(v: string): boolean {
  const [addr, bits, extra] = v.split('/');
  if (extra !== undefined || isIP(addr) === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return Number.isInteger(n) && n >= 0 && n <= (isIP(addr) === 4 ? 32 : 128);
}

const list = (v: string | string[] | undefined): string[] | null => (v === undefined ? null : Array.isArray(v) ? v : [v]);

/** Turns a validated rule into its compiled form. */
export function compileRule(raw: RawRule, source: string): CacheRule {
  const m = raw.match;
  const clientList = list(m.clients);
  return {
    name: raw.name,
    source,
    match: {
      digest: m.digest === undefined ? null : digestOf(m.digest),
      regex: m.regex === undefined ? null : new RegExp(m.regex, m.regex_ignore_case ? 'i' : ''),
      tables: list(m.tables)?.map((t) => t.replace(/`/g, '').toLowerCase()) ?? null,
      users: list(m.users),
      schemas: list(m.schemas),
      clients: clientList ? clientMatcher(clientList) : null,
    },
    cache: raw.cache ?? null,
    ttlSeconds: raw.ttl ?? null,
    softTtlSeconds: raw.soft_ttl ?? null,
    maxResultBytes: raw.max_result_bytes ?? null,
    shareAcrossUsers: raw.share_across_users ?? false,
    allowNondeterministic: raw.allow_nondeterministic ?? false,
    allowSystemSchemas: raw.allow_system_schemas ?? false,
    route: raw.route ?? null,
    consistency: raw.consistency ?? null,
  };
}


/** Matches a client address against addresses and CIDR ranges. */
function clientMatcher(ranges: string[]): (address: string) => boolean {
  const blocks = new BlockList();
  for (const c of ranges) {
    const [addr, bits] = c.split('/');
    const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) blocks.addAddress(addr, type);
    else blocks.addSubnet(addr, Number(bits), type);
  }
  return (address) => {
    const family = isIP(address);
    return family !== 0 && blocks.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}
