/**
 * The memcached API's cache tier on its own: a read's row is kept only if no
 * write or binlog event moved its key (or its container) since the read's
 * ticket, a kept row stops answering once they do, expired items read as
 * misses, and the byte bound holds.
 */
import { describe, expect, it } from 'vitest';
import { ItemCache } from '../src/memcached_api/item_cache.js';

const key = (k: string) => Buffer.from(k);
const row = (value: string, expiry = 0) => ({ item: { key: key('k'), flags: 0, cas: 1n, value: Buffer.from(value) }, expiry });

describe('ItemCache', () => {
  it('keeps what a read saw, and answers with it until the key is invalidated', () => {
    const cache = new ItemCache(1 << 20);
    const t = cache.ticket('c', key('k'));
    cache.fill('c', key('k'), t, row('v1'));
    expect(cache.lookup('c', key('k'), 100)?.item?.value.toString()).toBe('v1');
    cache.invalidateKey('c', key('k'));
    expect(cache.lookup('c', key('k'), 100)).toBeUndefined();
  });

  it('refuses a row whose key was written while it was being read (the write bumps before and after)', () => {
    const cache = new ItemCache(1 << 20);
    const t = cache.ticket('c', key('k'));
    cache.invalidateKey('c', key('k')); // a write started (or a binlog row arrived) during the read
    cache.fill('c', key('k'), t, row('old'));
    expect(cache.lookup('c', key('k'), 100)).toBeUndefined();
  });

  it('a container epoch and invalidateAll drop every key of the container, and in-flight reads too', () => {
    const cache = new ItemCache(1 << 20);
    for (const k of ['a', 'b']) cache.fill('c', key(k), cache.ticket('c', key(k)), row(k));
    cache.fill('other', key('a'), cache.ticket('other', key('a')), row('x'));
    const inFlight = cache.ticket('c', key('z'));
    cache.invalidateContainer('c');
    expect(cache.lookup('c', key('a'), 100)).toBeUndefined();
    expect(cache.lookup('c', key('b'), 100)).toBeUndefined();
    expect(cache.lookup('other', key('a'), 100)?.item?.value.toString()).toBe('x');
    cache.fill('c', key('z'), inFlight, row('stale'));
    expect(cache.lookup('c', key('z'), 100)).toBeUndefined();
    const before = cache.ticket('never-bumped', key('q'));
    cache.invalidateAll();
    cache.fill('never-bumped', key('q'), before, row('stale'));
    expect(cache.lookup('never-bumped', key('q'), 100)).toBeUndefined();
    expect(cache.lookup('other', key('a'), 100)).toBeUndefined();
  });

  it('keeps known misses, and reads an expired item as a miss', () => {
    const cache = new ItemCache(1 << 20);
    cache.fill('c', key('gone'), cache.ticket('c', key('gone')), { item: null, expiry: 0 });
    expect(cache.lookup('c', key('gone'), 100)).toEqual(expect.objectContaining({ item: null }));
    cache.fill('c', key('k'), cache.ticket('c', key('k')), row('v', 150));
    expect(cache.lookup('c', key('k'), 149)?.item?.value.toString()).toBe('v');
    expect(cache.lookup('c', key('k'), 150)?.item).toBeNull();
  });

  it('stays within its byte bound, and is off at 0 bytes', () => {
    const cache = new ItemCache(64 * 1024);
    for (let i = 0; i < 1000; i++) cache.fill('c', key(`k${i}`), cache.ticket('c', key(`k${i}`)), row('x'.repeat(1000)));
    expect(cache.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(cache.entries).toBeGreaterThan(0);
    const off = new ItemCache(0);
    expect(off.enabled).toBe(false);
    off.fill('c', key('k'), off.ticket('c', key('k')), row('v'));
    expect(off.lookup('c', key('k'), 100)).toBeUndefined();
  });
});
