/**
 * The query cache's decision (src/cache/cache_policy.ts decide()) beyond what
 * test/cache_policy.test.ts covers: rules that do not decide, how a rule,
 * a hint and the mode combine, the order of refusals, TTL and soft TTL
 * resolution, result size limits, the read-only-transaction flag, labels and
 * dependencies. Real classified statements; no database.
 */
import { describe, expect, it } from 'vitest';
import { decide, qualifiedTables, type CacheDecision, type CachePlan, type CacheRequest } from '../src/cache/cache_policy.js';
import { compileRule, type CacheRule, type RawRule } from '../src/config/rules.js';
import { ServerStatus } from '../src/protocol/constants.js';
import { classify } from '../src/sql/classifier.js';
import { cacheRequest } from './cache_request.js';
import { testCacheConfig } from './proxy-harness.js';

const rule = (raw: RawRule): CacheRule => compileRule(raw, 'cache_decide.test');

const config = testCacheConfig;

const request = cacheRequest;

function plan(d: CacheDecision): CachePlan {
  if (!d.cache) throw new Error(`expected a cache plan, got a bypass (reason ${String(d.reason)}, label ${d.label})`);
  return d;
}

const READ_ONLY_TX = ServerStatus.AUTOCOMMIT | ServerStatus.IN_TRANS | ServerStatus.IN_TRANS_READONLY;

describe('rules, hints and mode together', () => {
  it('a rule without cache: does not decide: hints and the mode do, and the rule still names the label and TTL', () => {
    const routeOnly = rule({ name: 'to-replica', match: { tables: 'items' }, route: 'replica', ttl: 9 });
    expect(routeOnly.cache).toBeNull();
    const hinted = config({ rules: [routeOnly] });
    expect(decide(hinted, request('SELECT * FROM items'))).toMatchObject({ cache: false, reason: null, rule: routeOnly, label: 'to-replica' });
    expect(plan(decide(hinted, request('/*qc=on*/ SELECT * FROM items')))).toMatchObject({ label: 'to-replica', ttlMs: 9000, rule: routeOnly });
    expect(plan(decide(config({ mode: 'all', rules: [routeOnly] }), request('SELECT * FROM items')))).toMatchObject({ label: 'to-replica', ttlMs: 9000 });
  });

  it('cache: false beats cache-everything mode and a qc=on hint; qc=off beats cache: true and the mode', () => {
    const no = rule({ name: 'never', match: { tables: 'secret' }, cache: false });
    const yes = rule({ name: 'always', match: { tables: 'items' }, cache: true });
    const all = config({ mode: 'all', rules: [no, yes] });
    expect(decide(all, request('SELECT * FROM secret'))).toMatchObject({ cache: false, reason: null, label: 'never' });
    expect(decide(all, request('/*qc=on*/ SELECT * FROM secret'))).toMatchObject({ cache: false, reason: null, label: 'never' });
    expect(decide(all, request('/*qc=off*/ SELECT * FROM items'))).toMatchObject({ cache: false, reason: null, label: 'always' });
    expect(decide(all, request('/*qc=off*/ SELECT * FROM other'))).toMatchObject({ cache: false, reason: null });
    // qc=off wins over qc=on in the same statement, whatever the order.
    expect(decide(all, request('/*qc=on*/ /*qc=off*/ SELECT * FROM other')).cache).toBe(false);
    expect(decide(all, request('/*qc=off*/ /*qc=on*/ SELECT * FROM other')).cache).toBe(false);
    expect(plan(decide(all, request('SELECT * FROM items'))).label).toBe('always');
  });

  it('labels: the rule name when a rule matches (hint or not), "hint" for a hint alone, "all" in cache-everything mode', () => {
    const yes = rule({ name: 'items', match: { tables: 'items' }, cache: true });
    expect(plan(decide(config({ rules: [yes] }), request('/*qc=on*/ SELECT * FROM items'))).label).toBe('items');
    expect(plan(decide(config({ rules: [yes] }), request('/*qc=on*/ SELECT * FROM other'))).label).toBe('hint');
    expect(plan(decide(config({ mode: 'all', rules: [yes] }), request('SELECT * FROM other'))).label).toBe('all');
    expect(plan(decide(config({ mode: 'all' }), request('/*qc=on*/ SELECT 1'))).label).toBe('hint');
    // A refusal carries the same label, for the refusal metric.
    expect(decide(config({ rules: [yes] }), request('SELECT * FROM items FOR UPDATE'))).toMatchObject({ cache: false, reason: 'locking_read', label: 'items' });
    expect(decide(config(), request('/*qc=on*/ SELECT NOW()'))).toMatchObject({ cache: false, reason: 'non_deterministic', label: 'hint' });
  });

  it('matches rules on the request: user, default schema for bare tables, client address', () => {
    const rules = [
      rule({ name: 'reports', match: { users: 'report' }, cache: true, ttl: 300 }),
      rule({ name: 'shop-orders', match: { tables: 'shop.orders' }, cache: true, ttl: 30 }),
      rule({ name: 'office', match: { clients: '192.168.0.0/16' }, cache: true, ttl: 5 }),
    ];
    const c = config({ rules });
    expect(plan(decide(c, request('SELECT * FROM orders', { user: 'report' })))).toMatchObject({ label: 'reports', ttlMs: 300_000 });
    expect(plan(decide(c, request('SELECT * FROM orders')))).toMatchObject({ label: 'shop-orders', ttlMs: 30_000 });
    expect(decide(c, request('SELECT * FROM orders', { schema: 'archive' }))).toMatchObject({ cache: false, rule: null });
    expect(plan(decide(c, request('SELECT * FROM shop.orders', { schema: 'archive' }))).label).toBe('shop-orders');
    expect(plan(decide(c, request('SELECT 1', { clientAddress: '192.168.1.20' })))).toMatchObject({ label: 'office', ttlMs: 5000 });
    expect(decide(c, request('SELECT 1', { clientAddress: '10.0.0.1' })).cache).toBe(false);
  });
});

describe('refusals', () => {
  it('a write chosen by a rule or the mode is quietly not a candidate; only a qc=on hint makes it a not_select refusal', () => {
    const items = rule({ name: 'items', match: { tables: 'items' }, cache: true });
    expect(decide(config({ rules: [items] }), request('INSERT INTO t2 SELECT * FROM items'))).toMatchObject({ cache: false, reason: null, label: 'items' });
    expect(decide(config({ mode: 'all' }), request('DELETE FROM t'))).toMatchObject({ cache: false, reason: null });
    expect(decide(config({ mode: 'all' }), request('SHOW TABLES'))).toMatchObject({ cache: false, reason: null });
    expect(decide(config(), request('/*qc=on*/ SHOW TABLES'))).toMatchObject({ cache: false, reason: 'not_select' });
    expect(decide(config(), request('/*qc=on*/ CALL p()'))).toMatchObject({ cache: false, reason: 'not_select' });
  });

  it('in cache-everything mode the other refusals are counted, not quiet', () => {
    const all = config({ mode: 'all' });
    expect(decide(all, request('SELECT * FROM t FOR UPDATE'))).toMatchObject({ cache: false, reason: 'locking_read', label: 'all' });
    expect(decide(all, request('SELECT RAND()'))).toMatchObject({ cache: false, reason: 'non_deterministic' });
    expect(decide(all, request('SELECT 1', { stateKey: null }))).toMatchObject({ cache: false, reason: 'session_state' });
  });

  it('reports the first reason in a fixed order: multi_statement, not_select, locking_read, select_into, in_transaction, non_deterministic, session_state', () => {
    const c = config();
    const reason = (sql: string, over: Partial<CacheRequest> = {}) => {
      const d = decide(c, request(sql, over));
      return d.cache ? 'cached' : d.reason;
    };
    const inTx = { status: ServerStatus.AUTOCOMMIT | ServerStatus.IN_TRANS, stateKey: null };
    expect(reason('/*qc=on*/ UPDATE t SET a = 1; SELECT 1', inTx)).toBe('multi_statement');
    expect(reason('/*qc=on*/ UPDATE t SET a = NOW()', inTx)).toBe('not_select');
    expect(reason('/*qc=on*/ SELECT NOW() FROM t FOR UPDATE', inTx)).toBe('locking_read');
    expect(reason('/*qc=on*/ SELECT NOW() INTO @x', inTx)).toBe('select_into');
    expect(reason('/*qc=on*/ SELECT NOW()', inTx)).toBe('in_transaction');
    expect(reason('/*qc=on*/ SELECT NOW()', { stateKey: null })).toBe('non_deterministic');
    expect(reason('/*qc=on*/ SELECT 1', { stateKey: null })).toBe('session_state');
    expect(reason('/*qc=on*/ SELECT 1')).toBe('cached');
  });

  it('a session variable or user variable read is non-deterministic unless the rule allows it', () => {
    const strict = rule({ name: 'strict', match: {}, cache: true });
    const lenient = rule({ name: 'lenient', match: {}, cache: true, allow_nondeterministic: true });
    for (const sql of ['SELECT @a', 'SELECT @@session.sql_mode', 'SELECT UUID()', 'SELECT * FROM t WHERE d < CURDATE()']) {
      expect(decide(config({ rules: [strict] }), request(sql)), sql).toMatchObject({ cache: false, reason: 'non_deterministic', label: 'strict' });
      expect(plan(decide(config({ rules: [lenient] }), request(sql))).label, sql).toBe('lenient');
    }
  });

  it('inside START TRANSACTION READ ONLY: refused unless allowed, and then marked so results are served but not stored', () => {
    expect(decide(config(), request('/*qc=on*/ SELECT 1', { status: READ_ONLY_TX }))).toMatchObject({ cache: false, reason: 'in_transaction' });
    const allowed = config({ allowReadOnlyTransactions: true });
    expect(plan(decide(allowed, request('/*qc=on*/ SELECT 1', { status: READ_ONLY_TX }))).readOnlyTransaction).toBe(true);
    expect(plan(decide(allowed, request('/*qc=on*/ SELECT 1'))).readOnlyTransaction).toBe(false);
    // A read-write transaction stays refused even when read-only ones are allowed.
    expect(decide(allowed, request('/*qc=on*/ SELECT 1', { status: ServerStatus.AUTOCOMMIT | ServerStatus.IN_TRANS }))).toMatchObject({
      cache: false,
      reason: 'in_transaction',
    });
    // autocommit=0 outside a transaction is one about to start.
    expect(decide(allowed, request('/*qc=on*/ SELECT 1', { status: 0 }))).toMatchObject({ cache: false, reason: 'in_transaction' });
  });
});

describe('TTLs and limits', () => {
  it('TTL: the qc_ttl hint, else the rule ttl, else the default', () => {
    const r = rule({ name: 'r', match: { tables: 'items' }, cache: true, ttl: 7 });
    const c = config({ rules: [r], defaultTtlSeconds: 60 });
    expect(plan(decide(c, request('SELECT * FROM items'))).ttlMs).toBe(7000);
    expect(plan(decide(c, request('/*qc_ttl=3*/ SELECT * FROM items'))).ttlMs).toBe(3000);
    expect(plan(decide(c, request('/*qc=on*/ SELECT * FROM other'))).ttlMs).toBe(60_000);
    expect(plan(decide(c, request('/*qc=on*/ /*qc_ttl=120*/ SELECT * FROM other'))).ttlMs).toBe(120_000);
  });

  it('a TTL of 0, from a rule or a hint, means no caching and is no refusal', () => {
    const zero = rule({ name: 'zero', match: { tables: 'items' }, cache: true, ttl: 0 });
    const c = config({ rules: [zero] });
    expect(decide(c, request('SELECT * FROM items'))).toMatchObject({ cache: false, reason: null, label: 'zero' });
    // A hint TTL overrides the rule's 0.
    expect(plan(decide(c, request('/*qc_ttl=4*/ SELECT * FROM items'))).ttlMs).toBe(4000);
    expect(decide(config({ mode: 'all' }), request('/*qc_ttl=0*/ SELECT 1'))).toMatchObject({ cache: false, reason: null });
    expect(decide(config({ mode: 'all', defaultTtlSeconds: 0 }), request('SELECT 1'))).toMatchObject({ cache: false, reason: null });
  });

  it('soft TTL: the rule soft_ttl, else the default soft TTL, else the TTL; never above the TTL', () => {
    const soft = rule({ name: 'soft', match: { tables: 'items' }, cache: true, ttl: 30, soft_ttl: 10 });
    const plain = rule({ name: 'plain', match: { tables: 'other' }, cache: true, ttl: 30 });
    const noDefault = config({ rules: [soft, plain] });
    expect(plan(decide(noDefault, request('SELECT * FROM items')))).toMatchObject({ ttlMs: 30_000, softTtlMs: 10_000 });
    expect(plan(decide(noDefault, request('SELECT * FROM other')))).toMatchObject({ ttlMs: 30_000, softTtlMs: 30_000 });
    const withDefault = config({ rules: [soft, plain], defaultSoftTtlSeconds: 20 });
    expect(plan(decide(withDefault, request('SELECT * FROM items')))).toMatchObject({ softTtlMs: 10_000 });
    expect(plan(decide(withDefault, request('SELECT * FROM other')))).toMatchObject({ softTtlMs: 20_000 });
    // A hint's shorter TTL caps the soft TTL.
    expect(plan(decide(withDefault, request('/*qc_ttl=5*/ SELECT * FROM items')))).toMatchObject({ ttlMs: 5000, softTtlMs: 5000 });
    expect(plan(decide(withDefault, request('/*qc_ttl=15*/ SELECT * FROM other')))).toMatchObject({ ttlMs: 15_000, softTtlMs: 15_000 });
  });

  it('result size limit: the rule max_result_bytes, else the configured one', () => {
    const small = rule({ name: 'small', match: { tables: 'items' }, cache: true, max_result_bytes: 4096 });
    const c = config({ rules: [small], maxResultBytes: 2_000_000 });
    expect(plan(decide(c, request('SELECT * FROM items'))).maxResultBytes).toBe(4096);
    expect(plan(decide(c, request('/*qc=on*/ SELECT * FROM other'))).maxResultBytes).toBe(2_000_000);
  });
});

describe('dependencies and keys', () => {
  it('depends on "*", the rule and each table read, bare names in the (lower-cased) default schema', () => {
    const r = rule({ name: 'joined', match: { tables: 'orders' }, cache: true });
    const c = config({ rules: [r] });
    expect(plan(decide(c, request('SELECT * FROM orders o JOIN archive.items i ON i.id = o.item', { schema: 'Shop' }))).deps).toEqual([
      '*',
      'rule:joined',
      'shop.orders',
      'archive.items',
    ]);
    expect(plan(decide(c, request('/*qc=on*/ SELECT 1'))).deps).toEqual(['*', 'rule:']);
    // A table read twice is one dependency.
    expect(plan(decide(c, request('/*qc=on*/ SELECT * FROM t WHERE a IN (SELECT a FROM t)'))).deps).toEqual(['*', 'rule:', 'shop.t']);
  });

  it('shares one dependency array between plans with the same rule and tables', () => {
    const r = rule({ name: 'shared-deps', match: { tables: 'items' }, cache: true });
    const c = config({ rules: [r] });
    const a = plan(decide(c, request('SELECT * FROM items WHERE id = 1')));
    const b = plan(decide(c, request('SELECT name FROM items WHERE id = 2', { user: 'other' })));
    expect(b.deps).toBe(a.deps);
    const hint = plan(decide(c, request('/*qc=on*/ SELECT * FROM items2')));
    expect(hint.deps).not.toBe(a.deps);
  });

  it('qualifiedTables: explicit schemas kept, bare names in the default schema, none when there is no default', () => {
    expect(qualifiedTables(classify('SELECT * FROM a JOIN other.b USING (id)'), 'Shop')).toEqual(['shop.a', 'other.b']);
    expect(qualifiedTables(classify('SELECT * FROM a'), null)).toEqual(['.a']);
  });

  it('keys ignore the client address and the rule, but not the query text or the protocol', () => {
    const c = config({ mode: 'all' });
    const key = (sql: string, over: Partial<CacheRequest> = {}) => plan(decide(c, request(sql, over))).key;
    expect(key('SELECT * FROM t WHERE a = 1', { clientAddress: '10.9.9.9' })).toBe(key('SELECT * FROM t WHERE a = 1'));
    expect(key('SELECT * FROM t WHERE a = 1')).not.toBe(key('SELECT * FROM t WHERE a = 2'));
    expect(key("SELECT * FROM t WHERE a = 'x'")).not.toBe(key("SELECT * FROM t WHERE a = 'X'"));
    expect(key('SELECT * FROM t', { params: 'p' })).not.toBe(key('SELECT * FROM t', { binary: true, params: 'p' }));
    const ruled = config({ rules: [rule({ name: 'items', match: { tables: 't' }, cache: true })] });
    expect(plan(decide(ruled, request('SELECT * FROM t'))).key).toBe(key('SELECT * FROM t'));
  });
});

describe('reads of the schemas the server keeps itself', () => {
  it('are never stored (system_schema), named with their schema or bare in that schema, unless a rule allows them', () => {
    const all = testCacheConfig({ mode: 'all' });
    for (const sql of [
      'SELECT * FROM information_schema.TABLES',
      'SELECT * FROM performance_schema.threads',
      'SELECT * FROM sys.session',
      'SELECT User FROM mysql.user',
      'SELECT a.x FROM shop.t a JOIN information_schema.COLUMNS c ON c.COLUMN_NAME = a.x',
    ]) {
      expect(decide(all, cacheRequest(sql)), sql).toMatchObject({ cache: false, reason: 'system_schema' });
    }
    expect(decide(all, cacheRequest('SELECT * FROM TABLES', { schema: 'information_schema' }))).toMatchObject({ cache: false, reason: 'system_schema' });
    // Other schemas, even with a look-alike name, are cached.
    expect(decide(all, cacheRequest('SELECT * FROM shop.mysql_users'))).toMatchObject({ cache: true });
    expect(decide(all, cacheRequest('SELECT * FROM mysql_archive.user'))).toMatchObject({ cache: true });
    const allowed = testCacheConfig({ mode: 'all', rules: [compileRule({ name: 'catalog', match: { tables: 'information_schema.tables' }, allow_system_schemas: true }, 'test')] });
    expect(decide(allowed, cacheRequest('SELECT * FROM information_schema.TABLES'))).toMatchObject({ cache: true, label: 'catalog' });
  });
});

describe('sessions that read uncommitted rows', () => {
  it('are never stored (read_uncommitted)', () => {
    const all = testCacheConfig({ mode: 'all' });
    expect(decide(all, cacheRequest('SELECT * FROM shop.t', { readUncommitted: true }))).toMatchObject({ cache: false, reason: 'read_uncommitted' });
    expect(decide(all, cacheRequest('SELECT * FROM shop.t', { readUncommitted: false }))).toMatchObject({ cache: true });
  });
});
