import { describe, expect, it } from 'vitest';
import { decide, type CacheRequest } from '../src/cache/cache_policy.js';
import { compileRule, type RawRule } from '../src/config/rules.js';
import { findRule } from '../src/cache/cache_rules.js';
import { ServerStatus } from '../src/protocol/constants.js';
import { classify } from '../src/sql/classifier.js';
import { cacheRequest } from './cache_request.js';
import { testCacheConfig } from './proxy-harness.js';

const rule = (raw: RawRule) => compileRule(raw, 'test');

const request = cacheRequest;

const subject = (sql: string, over: Partial<{ user: string; schema: string | null; clientAddress: string }> = {}) => {
  const s = classify(sql);
  return {
    statement: s,
    tables: s.tablesRead.map((t) => `${t.schema ?? 'shop'}.${t.table}`),
    user: 'app',
    schema: 'shop' as string | null,
    clientAddress: '10.1.2.3',
    ...over,
  };
};

describe('rule matching', () => {
  it('first match wins, and every condition a rule gives must hold', () => {
    const rules = [
      rule({ name: 'reports', match: { users: 'report', tables: 'orders' }, cache: true }),
      rule({ name: 'orders', match: { tables: 'orders' }, cache: false }),
      rule({ name: 'catch-all', match: {}, cache: true }),
    ];
    expect(findRule(rules, subject('SELECT * FROM orders', { user: 'report' }))?.name).toBe('reports');
    expect(findRule(rules, subject('SELECT * FROM orders'))?.name).toBe('orders');
    expect(findRule(rules, subject('SELECT * FROM items'))?.name).toBe('catch-all');
  });

  it('matches tables qualified or bare, schemas, clients by address or CIDR, digests and regexes', () => {
    const rules = [
      rule({ name: 'q', match: { tables: 'other.items' } }),
      rule({ name: 'bare', match: { tables: ['Items'] } }),
      rule({ name: 'net', match: { clients: ['192.168.0.0/16', '::1'] } }),
      rule({ name: 'schema', match: { schemas: ['archive'] } }),
      rule({ name: 'digest', match: { digest: 'select name from users where id in (1, 2, 3)' } }),
      rule({ name: 'regex', match: { regex: 'report', regex_ignore_case: true } }),
    ];
    expect(findRule(rules, subject('SELECT * FROM other.items'))?.name).toBe('q');
    expect(findRule(rules, subject('SELECT * FROM items'))?.name).toBe('bare');
    expect(findRule(rules, subject('SELECT 1', { clientAddress: '192.168.7.7' }))?.name).toBe('net');
    expect(findRule(rules, subject('SELECT 1', { clientAddress: '::1' }))?.name).toBe('net');
    expect(findRule(rules, subject('SELECT 1', { schema: 'archive' }))?.name).toBe('schema');
    expect(findRule(rules, subject('SELECT name FROM users WHERE id IN (7, 8)'))?.name).toBe('digest');
    expect(findRule(rules, subject('SELECT 1 /* REPORT */ + 1'))).toBeNull();
    expect(findRule(rules, subject("SELECT 'Report'"))?.name).toBe('regex');
    expect(findRule(rules, subject('SELECT 1'))).toBeNull();
  });

  it('matches a regex against the statement as written (comments and hints aside), and still against the old key text', () => {
    const rules = [
      rule({ name: 'read_only', match: { regex: '@@GLOBAL\\.read_only', regex_ignore_case: true } }),
      rule({ name: 'orders', match: { regex: 'FROM\\s+orders\\b' } }),
      rule({ name: 'anchored', match: { regex: '^SELECT id FROM items WHERE id = \\?$' } }),
      rule({ name: 'old-style', match: { regex: 'FROM legacy WHERE id = 1' } }),
    ];
    expect(findRule(rules, subject('SELECT @@GLOBAL.read_only AS Value'))?.name).toBe('read_only');
    expect(findRule(rules, subject('/*qc=on*/ select   @@global.READ_ONLY'))?.name).toBe('read_only');
    expect(findRule(rules, subject('SELECT id\n  FROM   orders  -- recent\n WHERE id = 1'))?.name).toBe('orders');
    // Comments and hints between tokens are one space; leading and trailing ones are gone.
    expect(findRule(rules, subject('/* app:list */ SELECT id FROM items WHERE id = ? /* end */;'))?.name).toBe('anchored');
    expect(findRule(rules, subject('SELECT id FROM items WHERE id = ?  # why'))?.name).toBe('anchored');
    // A regex written for the key text (a space between every token) still matches.
    expect(findRule(rules, subject('SELECT * FROM legacy WHERE id=1'))?.name).toBe('old-style');
    // Neither the text as written nor the key text has it: no match.
    expect(findRule(rules, subject('SELECT @@session.read_only'))).toBeNull();
    expect(findRule(rules, subject('SELECT * FROM orders_archive'))).toBeNull();
  });
});

describe('cache decisions', () => {
  it('hinted mode caches only hints and cache: true rules; qc=off and cache: false always win', () => {
    const config = testCacheConfig({
      rules: [rule({ name: 'no', match: { tables: 'secret' }, cache: false }), rule({ name: 'yes', match: { tables: 'items' }, cache: true, ttl: 7, soft_ttl: 3 })],
    });
    expect(decide(config, request('SELECT * FROM other'))).toMatchObject({ cache: false, reason: null });
    expect(decide(config, request('/*qc=on*/ SELECT * FROM other'))).toMatchObject({ cache: true, label: 'hint', ttlMs: 60_000, softTtlMs: 60_000 });
    expect(decide(config, request('/*qc=on*/ /*qc_ttl=5*/ SELECT * FROM other'))).toMatchObject({ cache: true, ttlMs: 5000 });
    expect(decide(config, request('/*qc=on*/ /*qc_ttl=0*/ SELECT * FROM other'))).toMatchObject({ cache: false, reason: null });
    expect(decide(config, request('SELECT * FROM items'))).toMatchObject({ cache: true, label: 'yes', ttlMs: 7000, softTtlMs: 3000 });
    expect(decide(config, request('/*qc=off*/ SELECT * FROM items'))).toMatchObject({ cache: false, reason: null });
    expect(decide(config, request('/*qc=on*/ SELECT * FROM secret'))).toMatchObject({ cache: false, reason: null, label: 'no' });
    const all = testCacheConfig({ mode: 'all' });
    expect(decide(all, request('SELECT * FROM other'))).toMatchObject({ cache: true, label: 'all' });
    // In cache-everything mode writes are simply not candidates, not refusals.
    expect(decide(all, request('UPDATE other SET a = 1'))).toMatchObject({ cache: false, reason: null });
  });

  it('refuses what must never be cached, with the reason', () => {
    const config = testCacheConfig();
    const refused = (sql: string, over: Partial<CacheRequest> = {}) => {
      const d = decide(config, request(sql, over));
      return d.cache ? null : d.reason;
    };
    expect(refused('/*qc=on*/ UPDATE t SET a = 1')).toBe('not_select');
    expect(refused('/*qc=on*/ SELECT * FROM t FOR UPDATE')).toBe('locking_read');
    expect(refused('/*qc=on*/ SELECT a INTO @x FROM t')).toBe('select_into');
    expect(refused('/*qc=on*/ SELECT NOW()')).toBe('non_deterministic');
    expect(refused('/*qc=on*/ SELECT 1; SELECT 2')).toBe('multi_statement');
    expect(refused('/*qc=on*/ SELECT 1', { status: ServerStatus.AUTOCOMMIT | ServerStatus.IN_TRANS })).toBe('in_transaction');
    expect(refused('/*qc=on*/ SELECT 1', { status: 0 })).toBe('in_transaction');
    expect(refused('/*qc=on*/ SELECT 1', { stateKey: null })).toBe('session_state');
    const readOnly = ServerStatus.AUTOCOMMIT | ServerStatus.IN_TRANS | ServerStatus.IN_TRANS_READONLY;
    expect(refused('/*qc=on*/ SELECT 1', { status: readOnly })).toBe('in_transaction');
    expect(decide(testCacheConfig({ allowReadOnlyTransactions: true }), request('/*qc=on*/ SELECT 1', { status: readOnly })).cache).toBe(true);
    const lenient = testCacheConfig({ rules: [rule({ name: 'clock', match: {}, cache: true, allow_nondeterministic: true })] });
    expect(decide(lenient, request('SELECT NOW()')).cache).toBe(true);
  });

  it('keys: per user unless shared, per schema, state, protocol and parameters; depends on the tables read', () => {
    const config = testCacheConfig({ rules: [rule({ name: 'shared', match: { tables: 'pub' }, cache: true, share_across_users: true })] });
    const key = (sql: string, over: Partial<CacheRequest> = {}) => {
      const d = decide(config, request(sql, over));
      if (!d.cache) throw new Error('not cached');
      return d.key;
    };
    const sql = '/*qc=on*/ SELECT * FROM t WHERE a = 1';
    expect(key(sql)).toBe(key('SELECT  * FROM t /* trace 42 */ WHERE a = 1 /*qc=on*/'.replace(/^/, '/*qc=on*/ ')));
    // Tokens that touch stay joined in the key: `a=1` is another key than `a = 1`.
    expect(key(sql)).not.toBe(key('/*qc=on*/ SELECT * FROM t WHERE a=1'));
    expect(key(sql)).not.toBe(key(sql, { user: 'other' }));
    expect(key(sql)).not.toBe(key(sql, { schema: 'shop2' }));
    expect(key(sql)).not.toBe(key(sql, { stateKey: 'login=8/0' }));
    expect(key(sql)).not.toBe(key(sql, { binary: true }));
    expect(key(sql)).not.toBe(key(sql, { metadataFlags: 1 }));
    expect(key(sql, { binary: true, params: 'a' })).not.toBe(key(sql, { binary: true, params: 'b' }));
    expect(key('SELECT * FROM pub')).toBe(key('SELECT * FROM pub', { user: 'other' }));
    const d = decide(config, request('/*qc=on*/ SELECT * FROM t JOIN other.u USING (id)'));
    expect(d.cache && d.deps).toEqual(['*', 'rule:', 'shop.t', 'other.u']);
  });
});
