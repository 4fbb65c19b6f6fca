/**
 * What the hit path remembers instead of working out again: the
 * classification of a repeated text (src/sql/statement_memo.ts) and the
 * cache's decision for a statement under the session's tag
 * (QueryCache.decide with CacheRequest.tag). A remembered answer must
 * always equal the one made afresh. No database.
 */
import { describe, expect, it } from 'vitest';
import { decide, decisionTag, type CacheDecision, type CacheRequest } from '../src/cache/cache_policy.js';
import { QueryCache } from '../src/cache/query_cache.js';
import { nullCacheObserver } from '../src/cache/types.js';
import { compileRule } from '../src/config/rules.js';
import { ServerStatus } from '../src/protocol/constants.js';
import { classify } from '../src/sql/classifier.js';
import { MEMO_MAX_TEXT, StatementMemo } from '../src/sql/statement_memo.js';
import { cacheRequest } from './cache_request.js';
import { prng } from './prng.js';
import { testCacheConfig } from './proxy-harness.js';

const tagged = (req: CacheRequest): CacheRequest => ({ ...req, tag: decisionTag(req) });

describe('StatementMemo', () => {
  it('gives the same classification object for a repeated SELECT or SHOW text, equal to a fresh one', () => {
    const memo = new StatementMemo(1024 * 1024);
    const first = memo.classify('SELECT c FROM sbtest1 WHERE id=7');
    // A different string object with the same characters, as each packet gives.
    const again = memo.classify(['SELECT c FROM sbtest1', 'WHERE id=7'].join(' '));
    expect(again).toBe(first);
    expect(again).toEqual(classify('SELECT c FROM sbtest1 WHERE id=7'));
    expect(memo.classify('SHOW TABLES')).toBe(memo.classify('SHOW TABLES'));
    expect(memo.stats).toMatchObject({ hits: 2, misses: 2, entries: 2 });
  });

  it('classifies writes, other statements and very long texts every time', () => {
    const memo = new StatementMemo(1024 * 1024);
    for (const sql of ['UPDATE t SET a = 1 WHERE id = 2', 'SET @v = 1', `SELECT '${'x'.repeat(MEMO_MAX_TEXT)}'`]) {
      const a = memo.classify(sql);
      expect(memo.classify(sql)).not.toBe(a);
      expect(memo.classify(sql)).toEqual(a);
    }
    expect(memo.stats).toMatchObject({ entries: 0, hits: 0, misses: 0 });
  });

  it('stays within its bytes, dropping the least recently used text first', () => {
    const memo = new StatementMemo(64 * 1024);
    const hot = memo.classify('SELECT 1 FROM hot');
    for (let i = 0; i < 1000; i++) {
      memo.classify(`SELECT c FROM t WHERE id=${i}`);
      expect(memo.classify('SELECT 1 FROM hot')).toBe(hot);
    }
    expect(memo.stats.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(memo.stats.entries).toBeGreaterThan(10);
    expect(memo.stats.entries).toBeLessThan(100);
    // The first texts are long gone: classified afresh.
    const misses = memo.stats.misses;
    memo.classify('SELECT c FROM t WHERE id=0');
    expect(memo.stats.misses).toBe(misses + 1);
  });

  it('with a bound smaller than one entry keeps nothing, and says so', () => {
    const memo = new StatementMemo(100);
    expect(memo.classify('SELECT 1')).not.toBe(memo.classify('SELECT 1'));
    expect(memo.stats).toEqual({ hits: 0, misses: 2, entries: 0, bytes: 0 });
  });

  it('with 0 bytes remembers nothing', () => {
    const memo = new StatementMemo(0);
    expect(memo.classify('SELECT 1')).not.toBe(memo.classify('SELECT 1'));
    expect(memo.stats).toEqual({ hits: 0, misses: 0, entries: 0, bytes: 0 });
  });
});

describe('QueryCache.decide with a tag', () => {
  const itemsRule = compileRule({ name: 'items', match: { tables: 'items' }, cache: true, ttl: 30 }, 'decision_memo.test');
  const clientRule = compileRule({ name: 'office', match: { clients: ['10.9.0.0/16'] }, cache: false }, 'decision_memo.test');
  const userRule = compileRule({ name: 'reports', match: { users: ['report'], schemas: ['shop'] }, cache: true, ttl: 5 }, 'decision_memo.test');

  it('remembered decisions equal fresh ones over every input a session can change (5,000 random requests)', () => {
    const config = testCacheConfig({ mode: 'all', rules: [clientRule, userRule, itemsRule] });
    const cache = new QueryCache(config, nullCacheObserver);
    // The same statement objects again and again, as the classification memo and prepared statements give them.
    const statements = [
      'SELECT * FROM items WHERE id = 1',
      'SELECT * FROM shop.items JOIN other.prices USING (id)',
      'SELECT name FROM users WHERE "a" = \'b\'',
      "SELECT 'x\\'' FROM items",
      'SELECT NOW() FROM items',
      '/*qc=off*/ SELECT * FROM items',
      '/*qc_ttl=0*/ SELECT 1',
      'SELECT * FROM items FOR UPDATE',
      'UPDATE items SET a = 1',
      'SELECT * FROM mysql.user',
    ].map(classify);
    const pick = <T>(rand: () => number, values: readonly T[]): T => values[Math.floor(rand() * values.length)];
    const rand = prng(20261207);
    for (let i = 0; i < 5000; i++) {
      const binary = rand() < 0.3;
      const req: CacheRequest = {
        statement: pick(rand, statements),
        binary,
        metadataFlags: pick(rand, [0, 1]),
        params: binary ? pick(rand, ['', '\u0003\u0000\u0001', '\u0003\u0000\u0002']) : '',
        user: pick(rand, ['app', 'report']),
        // '\u0001' and '-': schema names that must not pass for "no schema" in the tag.
        schema: pick(rand, ['shop', 'other', null, '\u0001', '-', '+']),
        stateKey: pick(rand, ['login=45/0', 'login=45/0\u0001sql_mode=ANSI', null, '-', '\u0001']),
        clientAddress: pick(rand, ['10.1.2.3', '10.9.4.4']),
        status: pick(rand, [
          ServerStatus.AUTOCOMMIT,
          ServerStatus.AUTOCOMMIT | ServerStatus.IN_TRANS,
          ServerStatus.AUTOCOMMIT | ServerStatus.IN_TRANS | ServerStatus.IN_TRANS_READONLY,
          0,
          ServerStatus.AUTOCOMMIT | ServerStatus.ANSI_QUOTES,
          ServerStatus.AUTOCOMMIT | ServerStatus.NO_BACKSLASH_ESCAPES,
        ]),
        readUncommitted: rand() < 0.1,
        autoIsNull: rand() < 0.1,
      };
      const fresh = decide(config, req, cache.views);
      const remembered: CacheDecision = cache.decide(tagged(req));
      expect(remembered, `request ${i}`).toEqual(fresh);
    }
  });

  it('the same tag gives the same decision and the very same key string; a changed session gets a new one', () => {
    const cache = new QueryCache(testCacheConfig({ mode: 'all' }), nullCacheObserver);
    const req = tagged(cacheRequest('SELECT * FROM items WHERE id = 1'));
    const first = cache.decide(req);
    const again = cache.decide({ ...req });
    expect(again).toBe(first);
    expect(first.cache && again.cache && first.key === again.key).toBe(true);
    const otherSchema = tagged({ ...req, schema: 'archive' });
    const moved = cache.decide(otherSchema);
    expect(moved).not.toBe(first);
    expect(moved).toEqual(decide(cache.config, otherSchema, cache.views));
  });

  it('a session without a schema never shares a decision with one in a schema named like the mark for none', () => {
    const cache = new QueryCache(testCacheConfig({ mode: 'all' }), nullCacheObserver);
    const statement = classify('SELECT * FROM t');
    for (const odd of ['\u0001', '-', '+', '']) {
      const inSchema = tagged(cacheRequest('', { statement, schema: odd }));
      const none = tagged(cacheRequest('', { statement, schema: null }));
      expect(inSchema.tag).not.toBe(none.tag);
      expect(cache.decide(inSchema)).toEqual(decide(cache.config, inSchema, cache.views));
      expect(cache.decide(none)).toEqual(decide(cache.config, none, cache.views));
    }
  });

  it('a write is decided afresh every time (nothing kept for it)', () => {
    const cache = new QueryCache(testCacheConfig({ mode: 'all' }), nullCacheObserver);
    const req = tagged(cacheRequest('UPDATE items SET a = 1'));
    expect(cache.decide(req)).not.toBe(cache.decide(req));
    expect(cache.decide(req)).toEqual(decide(cache.config, req, cache.views));
  });

  it('the schema catalog moves its version only when what a decision reads changed', () => {
    const cache = new QueryCache(testCacheConfig({ mode: 'all' }), nullCacheObserver);
    const views = [{ schema: 'shop', name: 'v', definition: 'select 1 from `shop`.`items`' }];
    const functions = [{ schema: 'shop', name: 'price_of' }];
    void cache.replaceSchema(views, functions);
    const version = cache.views.version;
    expect(version).toBeGreaterThan(0);
    const req = tagged(cacheRequest('SELECT * FROM shop.v'));
    const first = cache.decide(req);
    // The schema reader's next read, unchanged, with the base tables too: the kept decision stands.
    void cache.replaceSchema(views, functions);
    cache.views.replaceTables([{ schema: 'shop', name: 'items' }]);
    expect(cache.views.version).toBe(version);
    expect(cache.decide(req)).toBe(first);
    void cache.replaceSchema(views, [...functions, { schema: 'shop', name: 'tax' }]);
    expect(cache.views.version).toBe(version + 1);
    void cache.replaceSchema([{ schema: 'shop', name: 'v', definition: 'select 1 from `shop`.`prices`' }], [...functions, { schema: 'shop', name: 'tax' }]);
    expect(cache.views.version).toBe(version + 2);
    expect(cache.decide(req)).toMatchObject({ cache: true, deps: ['*', 'rule:', 'shop.v', 'shop.prices'] });
  });

  it('an execution appends its parameters to the remembered key', () => {
    const cache = new QueryCache(testCacheConfig({ mode: 'all' }), nullCacheObserver);
    const req = tagged(cacheRequest('SELECT * FROM items WHERE id = ?', { binary: true }));
    for (const params of ['\u0003\u0000\u0007', '\u0003\u0000\u0008', '\u0003\u0000\u0007']) {
      const d = cache.decide({ ...req, params });
      expect(d).toEqual(decide(cache.config, { ...req, params }, cache.views));
    }
  });

  it('a reloaded config or a new schema catalog is decided afresh', () => {
    const cache = new QueryCache(testCacheConfig({ mode: 'hinted' }), nullCacheObserver);
    const req = tagged(cacheRequest('SELECT * FROM shop.items_view'));
    expect(cache.decide(req).cache).toBe(false);
    cache.reconfigure(testCacheConfig({ mode: 'all' }));
    const planned = cache.decide(req);
    expect(planned).toMatchObject({ cache: true, deps: ['*', 'rule:', 'shop.items_view'] });
    // The view's base table becomes a dependency once the catalog knows the view.
    void cache.replaceSchema([{ schema: 'shop', name: 'items_view', definition: 'select `id` from `shop`.`items`' }], []);
    expect(cache.decide(req)).toMatchObject({ cache: true, deps: ['*', 'rule:', 'shop.items_view', 'shop.items'] });
    // A view whose definition the account cannot read: not cached at all.
    void cache.replaceSchema([{ schema: 'shop', name: 'items_view', definition: null }], []);
    expect(cache.decide(req)).toMatchObject({ cache: false, reason: 'view' });
  });
});
