/**
 * The cache's storage layer: the in-process LRU, the generation counters, the
 * memcached entry codec, and the memcached store against real memcached
 * servers (the topology's, plus private ones this file kills, stops and restarts).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import memjs from 'memjs';
import { startMemcached, stopMemcached, type MemcachedInfo } from '../scripts/topology.js';
import {
  assembleEntry,
  decodeEntry,
  decodeHead,
  encodeEntry,
  itemCountFor,
  maxValueBytesFor,
  MEMCACHED_ITEM_OVERHEAD_BYTES,
  type CodecLimits,
} from '../src/cache/entry_codec.js';
import { LocalGenerations } from '../src/cache/generations.js';
import { MemcachedGenerations } from '../src/cache/memcached_generations.js';
import { PendingBumps, pendingBumpsBuffer } from '../src/cache/pending_bumps.js';
import { waitFor } from './wait.js';
import { Worker } from 'node:worker_threads';
import { MemcachedStore, memcachedExpiry } from '../src/cache/memcached_store.js';
import { MemoryStore, memoryEntryBytes } from '../src/cache/memory_store.js';
import { entryOverheadBytes, nullCacheObserver, type CacheEntry, type CacheObserver } from '../src/cache/types.js';
import { Metrics } from '../src/metrics/metrics.js';
import { getTopology } from './topology-context.js';
import { stopProcess } from './process-signals.js';

const topo = getTopology();
const sharedServer = `${topo.memcached.host}:${topo.memcached.port}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Recorder {
  observer: CacheObserver;
  evicted: number;
  problems: { op: string; kind: string }[];
}

function recorder(): Recorder {
  const rec: Recorder = {
    evicted: 0,
    problems: [],
    observer: {
      ...nullCacheObserver,
      evicted(n) {
        rec.evicted += n;
      },
      memcachedProblem(op, kind) {
        rec.problems.push({ op, kind });
      },
    },
  };
  return rec;
}

function entry(wireBytes: number | Buffer, over: Partial<CacheEntry> = {}): CacheEntry {
  const now = Date.now();
  const wire = typeof wireBytes === 'number' ? randomBytes(wireBytes) : wireBytes;
  return {
    wire,
    deprecateEof: false,
    deps: ['wc_test.t1', '*', 'rule:r1'],
    gens: [3, 1_795_271_081_966_123, 0],
    rule: 'r1',
    createdAt: now,
    softExpiresAt: now + 30_000,
    expiresAt: now + 60_000,
    ...over,
  };
}

/** Deterministic sizes for the LRU working set. */
function* prng(seed: number): Generator<number> {
  let x = seed >>> 0;
  for (;;) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    yield x;
  }
}

/** Awaits `p`, returning its value and how long it took. */
async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  const value = await p;
  return { value, ms: Date.now() - t0 };
}

/** Established TCP connections to 127.0.0.1:`port` (client ends, any process), from /proc/net/tcp. */
function connectionsTo(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 3 && f[2] === `0100007F:${hexPort}` && f[3] === '01').length;
}

/** A plain memjs client for looking behind the store's back (silent logger). */
function rawClient(server: string): memjs.Client {
  return memjs.Client.create(server, { retries: 0, timeout: 2, logger: { log() {} } });
}

// ---------------------------------------------------------------------------

describe('MemoryStore', () => {
  /**
   * What wirecache charges an entry, written out here rather than taken from
   * memoryEntryBytes(): wire bytes, 160 for the object, 2 per character of the
   * key and the rule name, 48 + 2 per character for each dependency name.
   */
  const charged = (key: string, e: CacheEntry): number =>
    e.wire.length + 160 + 2 * key.length + 2 * e.rule.length + e.deps.reduce((n, d) => n + 48 + 2 * d.length, 0);

  it('charges each entry its wire bytes plus wirecache\'s overhead estimate', () => {
    // deps: 'wc_test.t1' (10 chars), '*' (1), 'rule:r1' (7); rule 'r1'; key 'k' -> 100 + 160 + 2 + 4 + 68 + 50 + 62
    const e = entry(100);
    expect(entryOverheadBytes('k', e)).toBe(346);
    expect(memoryEntryBytes('k', e)).toBe(446);
    expect(charged('k', e)).toBe(446);
    // Longer keys, rule names and more dependencies cost more; the wire bytes count once.
    expect(memoryEntryBytes('kk', e)).toBe(448);
    expect(memoryEntryBytes('k', entry(100, { rule: 'r12' }))).toBe(448);
    expect(memoryEntryBytes('k', entry(100, { deps: [...e.deps, 'db.t2'], gens: [...e.gens, 0] }))).toBe(446 + 48 + 10);
    expect(memoryEntryBytes('k', entry(0))).toBe(346);

    const store = new MemoryStore({ maxBytes: 1 << 20, observer: nullCacheObserver });
    const entries: [string, CacheEntry][] = [
      ['SELECT 1', entry(10)],
      ['SELECT * FROM t WHERE id = 42', entry(5000, { rule: '', deps: ['*', 'rule:', 'shop.t'] })],
      ['SELECT \u00e9', entry(1, { rule: 'a-much-longer-rule-name' })],
    ];
    for (const [k, v] of entries) expect(store.set(k, v)).toBe(true);
    expect(store.bytes).toBe(entries.reduce((n, [k, v]) => n + charged(k, v), 0));
    // Replacing an entry charges the new one instead of the old one (and is not an eviction).
    const rec = recorder();
    const one = new MemoryStore({ maxBytes: 100_000, observer: rec.observer });
    one.set('q', entry(1000));
    one.set('q', entry(10));
    expect(one.bytes).toBe(charged('q', entry(10)));
    expect(one.entries).toBe(1);
    expect(rec.evicted).toBe(0);
  });

  it('counts the overhead against the bound: an entry whose wire bytes fit but whose charge does not is refused', () => {
    const rec = recorder();
    const store = new MemoryStore({ maxBytes: 1000, observer: rec.observer });
    const key = 'SELECT * FROM t';
    const fits = entry(1000 - charged(key, entry(0)));
    expect(charged(key, fits)).toBe(1000);
    expect(store.set(key, fits)).toBe(true);
    expect(store.bytes).toBe(1000);
    // One more wire byte: still far below 1000 wire bytes, but charged 1001.
    const over = entry(fits.wire.length + 1);
    expect(over.wire.length).toBeLessThan(1000);
    expect(store.set(key, over)).toBe(false);
    expect(store.set('SELECT * FROM u', over)).toBe(false);
    expect(store.get(key)).toBe(fits);
    expect(store.bytes).toBe(1000);
    expect(rec.evicted).toBe(0);
  });

  it('fills to exactly its bound, then evicts the oldest entries one by one, reporting each eviction to the metrics', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const evictionsMetric = async (): Promise<number> => {
      const line = (await metrics.metricsText()).split('\n').find((l) => l.startsWith('wirecache_cache_evictions_total '));
      return Number(line?.split(' ')[1]);
    };
    const keyOf = (i: number) => `SELECT * FROM t WHERE id = ${String(i).padStart(4, '0')}`; // all keys the same length
    const sized = (i: number) => entry(1000 + (i % 7) * 100, { rule: i % 2 ? 'r1' : 'r2' });
    const n = 20;
    const maxBytes = Array.from({ length: n }, (_, i) => charged(keyOf(i), sized(i))).reduce((a, b) => a + b, 0);
    const store = new MemoryStore({ maxBytes, observer: metrics.cache });
    for (let i = 0; i < n; i++) expect(store.set(keyOf(i), sized(i))).toBe(true);
    expect(store.entries).toBe(n);
    expect(store.bytes).toBe(maxBytes);
    expect(await evictionsMetric()).toBe(0);

    // Stream 10x the bound through: each new entry pushes out the least recently used ones, just enough of them.
    const present: number[] = Array.from({ length: n }, (_, i) => i);
    let evicted = 0;
    for (let i = n; i < 12 * n; i++) {
      const e = sized(i);
      const need = charged(keyOf(i), e);
      let free = maxBytes - present.reduce((a, j) => a + charged(keyOf(j), sized(j)), 0);
      while (free < need) {
        const gone = present.shift()!;
        free += charged(keyOf(gone), sized(gone));
        evicted++;
      }
      expect(store.set(keyOf(i), e)).toBe(true);
      present.push(i);
      expect(store.bytes).toBe(present.reduce((a, j) => a + charged(keyOf(j), sized(j)), 0));
    }
    expect(store.entries).toBe(present.length);
    // The survivors are exactly the newest entries; everything older is gone.
    for (let i = 0; i < 12 * n; i++) expect(store.get(keyOf(i)) !== undefined, `entry ${i}`).toBe(present.includes(i));
    expect(evicted).toBe(12 * n - store.entries);
    expect(await evictionsMetric()).toBe(evicted);

    // Purges, deletes and clear() are not evictions.
    store.deleteWhere((e) => e.rule === 'r1');
    store.delete(keyOf(12 * n - 1));
    store.clear();
    expect(store.bytes).toBe(0);
    expect(await evictionsMetric()).toBe(evicted);
  });

  it('evicts the least recently used entry, not one that was just read', () => {
    const rec = recorder();
    const e0 = entry(1000);
    const per = memoryEntryBytes('k0', e0);
    const store = new MemoryStore({ maxBytes: per * 5, observer: rec.observer });
    for (let i = 0; i < 5; i++) expect(store.set(`k${i}`, entry(1000))).toBe(true);
    expect(store.entries).toBe(5);
    expect(rec.evicted).toBe(0);
    expect(store.get('k0')).toBeDefined(); // k0 becomes the most recent; k1 is now the oldest
    store.set('k5', entry(1000));
    expect(rec.evicted).toBe(1);
    expect(store.get('k1')).toBeUndefined();
    expect(store.get('k0')).toBeDefined();
    expect(store.get('k5')).toBeDefined();
  });

  it('refuses an entry bigger than the whole store and leaves the others alone', () => {
    const rec = recorder();
    const store = new MemoryStore({ maxBytes: 10_000, observer: rec.observer });
    const small = entry(100);
    expect(store.set('q', small)).toBe(true);
    expect(store.set('q', entry(20_000))).toBe(false);
    expect(store.set('big', entry(20_000))).toBe(false);
    expect(store.get('q')).toBe(small);
    expect(store.get('big')).toBeUndefined();
    expect(store.entries).toBe(1);
    expect(rec.evicted).toBe(0);
  });

  it('does not return an expired entry', () => {
    const store = new MemoryStore({ maxBytes: 100_000, observer: nullCacheObserver });
    const now = Date.now();
    expect(store.set('old', entry(10, { expiresAt: now - 1 }))).toBe(false);
    const e = entry(10, { expiresAt: now + 40 });
    expect(store.set('soon', e)).toBe(true);
    expect(store.get('soon')).toBe(e);
    vi.useFakeTimers({ now: now + 41, toFake: ['Date'] });
    try {
      expect(store.get('soon')).toBeUndefined();
      expect(store.entries).toBe(0);
      expect(store.bytes).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('deleteWhere purges matching entries, delete and clear drop the rest', () => {
    const rec = recorder();
    const store = new MemoryStore({ maxBytes: 1 << 20, observer: rec.observer });
    for (let i = 0; i < 10; i++) {
      store.set(`a${i}`, entry(100, { rule: 'ra', deps: ['wc_test.a'], gens: [1] }));
      store.set(`b${i}`, entry(100, { rule: 'rb', deps: ['wc_test.b', '*'], gens: [1, 1] }));
    }
    expect(store.deleteWhere((e) => e.rule === 'ra')).toBe(10);
    expect(store.entries).toBe(10);
    expect(store.get('a3')).toBeUndefined();
    expect(store.get('b3')).toBeDefined();
    expect(store.deleteWhere((e, key) => e.deps.includes('wc_test.b') && key.endsWith('7'))).toBe(1);
    expect(store.get('b7')).toBeUndefined();
    store.delete('b0');
    expect(store.get('b0')).toBeUndefined();
    expect(store.entries).toBe(8);
    store.clear();
    expect(store.entries).toBe(0);
    expect(store.bytes).toBe(0);
    expect(rec.evicted).toBe(0); // purges are not evictions
  });
});

describe('LocalGenerations', () => {
  it('reads unknown names as 0 and bumps each named counter', () => {
    const g = new LocalGenerations();
    const before = g.read(['wc_test.t1', '*', 'rule:r']);
    expect(before).toEqual([0, 0, 0]);
    g.bump(['wc_test.t1']);
    g.bump(['wc_test.t1', '*']);
    const after = g.read(['wc_test.t1', '*', 'rule:r']);
    expect(after).toEqual([2, 1, 0]);
    expect(before).toEqual([0, 0, 0]); // a read is a snapshot, not a live view
    expect(g.matches(['wc_test.t1', '*'], [2, 1])).toBe(true);
    expect(g.matches(['wc_test.t1', '*'], [1, 1])).toBe(false);
    expect(g.read([])).toEqual([]);
  });

  it('shares its counters with another thread: a bump there is the next read here', async () => {
    const g = new LocalGenerations();
    const recorded = g.read(['wc_test.t1']);
    // A worker thread bumps the same counter (its low word) 1,000 times.
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const words = new Int32Array(workerData.buffer);
       for (let i = 0; i < 1000; i++) Atomics.add(words, workerData.slot, 1);
       parentPort.postMessage('done');`,
      { eval: true, workerData: { buffer: g.buffer, slot: slotOf('wc_test.t1') } },
    );
    await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(g.matches(['wc_test.t1'], recorded)).toBe(false);
    expect(g.get('wc_test.t1')).toBe(1000);
    const other = new LocalGenerations(g.buffer);
    other.bump(['wc_test.t1']);
    expect(g.get('wc_test.t1')).toBe(1001);
    expect(() => new LocalGenerations(new SharedArrayBuffer(8))).toThrow(RangeError);
  });

  it('carries into the high word when the low one wraps: values go on past 2^32', () => {
    const g = new LocalGenerations();
    const words = new Int32Array(g.buffer);
    words[slotOf('db.t')] = -2; // 0xfffffffe
    expect(g.get('db.t')).toBe(2 ** 32 - 2);
    g.bump(['db.t']);
    expect(g.get('db.t')).toBe(2 ** 32 - 1);
    g.bump(['db.t']);
    expect(g.get('db.t')).toBe(2 ** 32);
    g.bump(['db.t']);
    expect(g.read(['db.t'])).toEqual([2 ** 32 + 1]);
    expect(g.matches(['db.t'], [1])).toBe(false);
  });
});

/** The index of the low word of `name`'s counter, found by bumping it on a scratch copy of the counters. */
function slotOf(name: string): number {
  const scratch = new LocalGenerations();
  scratch.bump([name]);
  return new Int32Array(scratch.buffer).findIndex((v) => v === 1);
}

// ---------------------------------------------------------------------------

describe('MemcachedGenerations with worker threads (PendingBumps)', () => {
  /** A counter engine over a Map, whose bumps fail while `down`. */
  function engine(values: Map<string, number>) {
    const e = {
      down: false,
      isClosed: () => false,
      counters: async (_op: string, names: readonly string[], amount: number) => {
        if (e.down && amount > 0) return null;
        return names.map((n) => {
          const v = (values.get(n) ?? 100) + amount;
          values.set(n, v);
          return v;
        });
      },
    };
    return e;
  }

  it('a bump one thread could not send keeps every thread from trusting memcached until it lands', async () => {
    const values = new Map<string, number>();
    const buffer = pendingBumpsBuffer(3);
    const engA = engine(values);
    const a = new MemcachedGenerations(engA, 20, new PendingBumps(buffer, 0));
    const b = new MemcachedGenerations(engine(values), 20, new PendingBumps(buffer, 1));
    expect(await b.read(['db.t'])).toEqual([100]);
    engA.down = true;
    await a.bump(['db.t']);
    // memcached still has the old value: thread b must not use it.
    expect(await b.read(['db.t'])).toBeNull();
    expect(await b.read(['db.other'])).toEqual([100]);
    engA.down = false;
    await waitFor('the re-sent bump', async () => (await b.read(['db.t'])) !== null, 2000);
    expect(await b.read(['db.t'])).toEqual([101]);
    a.stop();
  });

  it('the counts of a thread that died can be dropped (after invalidating everything in its place)', () => {
    const buffer = pendingBumpsBuffer(2);
    const dead = new PendingBumps(buffer, 0);
    const main = new PendingBumps(buffer, 1);
    dead.mark('db.t');
    expect(main.anyPending(['db.t'])).toBe(true);
    expect(main.clearSegment(1)).toBe(false);
    expect(main.clearSegment(0)).toBe(true);
    expect(main.anyPending(['db.t'])).toBe(false);
  });
});

describe('entry codec', () => {
  const limits: CodecLimits = { maxValueBytes: 4096, maxItemsPerEntry: 16 };

  it('round-trips a small entry, generations above 2^32 and unicode names included', () => {
    const e = entry(300, {
      deprecateEof: true,
      deps: ['wc_test.tëst', '*', 'rule:π'],
      gens: [2 ** 40 + 7, Date.now() * 1000 + 999, 0],
      rule: 'π',
    });
    const items = encodeEntry(e, limits)!;
    expect(items).toHaveLength(1);
    expect(decodeEntry(items)).toEqual(e);
    expect(decodeEntry(encodeEntry({ ...e, deprecateEof: false, rule: '', deps: [], gens: [] }, limits)!)).toEqual({
      ...e,
      deprecateEof: false,
      rule: '',
      deps: [],
      gens: [],
    });
    expect(decodeEntry(encodeEntry(entry(0), limits)!)?.wire.length).toBe(0);
  });

  it('fills one item exactly at the limit and splits one byte above it', () => {
    const probe = entry(0);
    const headerLen = encodeEntry(probe, limits)![0].length;
    const exact = entry(4096 - headerLen);
    const one = encodeEntry(exact, limits)!;
    expect(one).toHaveLength(1);
    expect(one[0].length).toBe(4096);
    expect(itemCountFor(exact, limits)).toBe(1);
    expect(decodeEntry(one)).toEqual(exact);

    const over = entry(4096 - headerLen + 1);
    const two = encodeEntry(over, limits)!;
    expect(two).toHaveLength(2);
    expect(two[0].length).toBe(4096);
    expect(two[1].length).toBe(1);
    expect(decodeEntry(two)).toEqual(over);
  });

  it('splits a large entry over several parts and puts it back together', () => {
    const e = entry(20_000);
    const items = encodeEntry(e, limits)!;
    expect(items.length).toBe(itemCountFor(e, limits));
    expect(items.length).toBe(5);
    for (const it of items) expect(it.length).toBeLessThanOrEqual(4096);
    const head = decodeHead(items[0])!;
    expect(head.itemCount).toBe(5);
    expect(head.wireLength).toBe(20_000);
    const back = assembleEntry(head, items.slice(1))!;
    expect(Buffer.compare(back.wire, e.wire)).toBe(0);
    expect(back).toEqual(e);
  });

  it('treats a missing, corrupted, swapped or foreign part as a miss', () => {
    const e = entry(20_000);
    const items = encodeEntry(e, limits)!;
    const head = decodeHead(items[0])!;
    const parts = items.slice(1).map((b) => Buffer.from(b));
    expect(assembleEntry(head, parts)).not.toBeNull();

    expect(assembleEntry(head, [parts[0], undefined, parts[2], parts[3]])).toBeNull();
    expect(assembleEntry(head, [parts[0], null, parts[2], parts[3]])).toBeNull();
    expect(assembleEntry(head, parts.slice(0, 3))).toBeNull();

    const corrupted = parts.map((b) => Buffer.from(b));
    corrupted[2][100] ^= 0x01;
    expect(assembleEntry(head, corrupted)).toBeNull();

    expect(assembleEntry(head, [parts[1], parts[0], parts[2], parts[3]])).toBeNull();

    // Parts of another write of the same key (same sizes, other bytes).
    const other = encodeEntry(entry(20_000), limits)!;
    expect(assembleEntry(head, [parts[0], other[2], parts[2], parts[3]])).toBeNull();
    // A truncated last part.
    expect(assembleEntry(head, [parts[0], parts[1], parts[2], parts[3].subarray(1)])).toBeNull();
  });

  it('decodes garbage, truncated heads and other versions as null, never throwing', () => {
    expect(decodeHead(undefined)).toBeNull();
    expect(decodeHead(Buffer.alloc(0))).toBeNull();
    expect(decodeEntry([Buffer.from('hello world, not an entry at all, definitely not')])).toBeNull();
    const rnd = prng(7);
    for (let i = 0; i < 200; i++) {
      const len = (rnd.next().value as number) % 300;
      expect(decodeEntry([randomBytes(len)])).toBeNull();
    }
    const good = encodeEntry(entry(200), limits)![0];
    const v2 = Buffer.from(good);
    v2[3] = 2;
    expect(decodeHead(v2)).toBeNull();
    for (let cut = 0; cut < good.length; cut++) {
      // Every truncation is either rejected or (when only wire bytes are lost) fails the length check.
      expect(decodeEntry([good.subarray(0, cut)])).toBeNull();
    }
    // Random byte flips inside the header never throw (and a flipped length or crc never yields the original).
    for (let i = 0; i < good.length - 200; i++) {
      const bad = Buffer.from(good);
      bad[i] ^= 0xff;
      const d = decodeEntry([bad]);
      if (d !== null) expect(d).not.toEqual(decodeEntry([good]));
    }
  });

  it('refuses an entry needing more than maxItemsPerEntry items', () => {
    const small: CodecLimits = { maxValueBytes: 1024, maxItemsPerEntry: 3 };
    expect(encodeEntry(entry(2500), small)).toHaveLength(3);
    expect(encodeEntry(entry(3500), small)).toBeNull();
    expect(itemCountFor(entry(3500), small)).toBeNull();
    // A header that cannot fit in one item at all.
    const manyDeps = Array.from({ length: 100 }, (_, i) => `wc_test.table_${i}`);
    expect(encodeEntry(entry(10, { deps: manyDeps, gens: manyDeps.map(() => 1) }), small)).toBeNull();
  });

  it('leaves room for the key and item header below memcached\'s item limit', () => {
    expect(maxValueBytesFor(1 << 20)).toBe((1 << 20) - MEMCACHED_ITEM_OVERHEAD_BYTES);
    expect(memcachedExpiry(Date.now() + 100)).toBe(1);
    expect(memcachedExpiry(Date.now() + 61_500)).toBe(62);
    expect(memcachedExpiry(Date.now() - 1)).toBeNull();
    const far = Date.now() + 40 * 24 * 3600 * 1000;
    expect(memcachedExpiry(far)).toBe(Math.ceil(far / 1000)); // absolute unix time past 30 days
  });
});

// ---------------------------------------------------------------------------

describe('MemcachedStore on the shared memcached', () => {
  const prefix = `t${process.pid}x${Date.now() % 100_000}`;
  const stores: MemcachedStore[] = [];
  let raw: memjs.Client;
  const open = (rec: Recorder, over: Partial<ConstructorParameters<typeof MemcachedStore>[0]> = {}): MemcachedStore => {
    // A generous budget: these tests are about behaviour, not speed (and may run on a loaded machine).
    const s = new MemcachedStore({ servers: [sharedServer], timeoutMs: 1000, keyPrefix: prefix, observer: rec.observer, ...over });
    stores.push(s);
    return s;
  };

  beforeAll(() => {
    raw = rawClient(sharedServer);
  });
  afterAll(() => {
    for (const s of stores) s.close();
    raw.close();
  });

  it('round-trips small entries and a 3 MiB entry split over several items', async () => {
    const rec = recorder();
    const store = open(rec);
    expect(await store.get('SELECT nothing')).toBeUndefined();

    const small = entry(500, { deprecateEof: true });
    expect(await store.set('SELECT 1', small)).toBe(true);
    const gotSmall = await store.get('SELECT 1');
    expect(gotSmall).toEqual(small);
    // A compact copy, not a view into memjs' receive buffer.
    expect(gotSmall!.wire.buffer.byteLength).toBe(500);

    const big = entry(3 * 1024 * 1024);
    const key = `SELECT * FROM big WHERE x = '${'y'.repeat(500)}'`;
    expect(store.itemsFor(big)).toBe(4);
    expect(await store.set(key, big)).toBe(true);
    const got = await store.get(key);
    expect(got).toBeDefined();
    expect(Buffer.compare(got!.wire, big.wire)).toBe(0);
    expect({ ...got, wire: null }).toEqual({ ...big, wire: null });

    // It really is split: a part item exists under the hashed key.
    const headKey = store.entryKey(key);
    expect(headKey.length).toBeLessThan(250);
    expect((await raw.get(`${headKey}:p3`)).value?.length).toBeGreaterThan(0);
    expect((await raw.get(`${headKey}:p4`)).value).toBeNull();
    // Losing a part makes the entry a miss.
    await raw.delete(`${headKey}:p2`);
    expect(await store.get(key)).toBeUndefined();

    await store.delete('SELECT 1');
    expect(await store.get('SELECT 1')).toBeUndefined();
    expect(rec.problems).toEqual([]);
  });

  it('does not store what is expired or needs too many items', async () => {
    const rec = recorder();
    const store = open(rec, { maxItemsPerEntry: 2 });
    expect(await store.set('expired', entry(10, { expiresAt: Date.now() - 1 }))).toBe(false);
    const tooBig = entry(3 * 1024 * 1024);
    expect(store.itemsFor(tooBig)).toBeNull();
    expect(await store.set('too big', tooBig)).toBe(false);
    expect(await store.get('too big')).toBeUndefined();
    expect(rec.problems).toEqual([]);
  });

  it('shares generation counters between two proxies', async () => {
    const a = open(recorder());
    const b = open(recorder());
    const names = ['wc_test.t1', '*', 'rule:by id', `wc_test.${'long_'.repeat(60)}`];
    const ra = (await a.generations.read(names))!;
    expect(ra).not.toBeNull();
    expect(await b.generations.read(names)).toEqual(ra);
    for (const v of ra) expect(v).toBeGreaterThan(2 ** 40); // created fresh, far above any increment count

    await a.generations.bump(['wc_test.t1', `wc_test.${'long_'.repeat(60)}`]);
    const rb = (await b.generations.read(names))!;
    expect(rb).toEqual([ra[0] + 1, ra[1], ra[2], ra[3] + 1]);
    expect(a.generations.local.read(['wc_test.t1', '*'])).toEqual([1, 0]);
    await b.generations.bump(['*']);
    expect(await a.generations.read(names)).toEqual([ra[0] + 1, ra[1] + 1, ra[2], ra[3] + 1]);

    // While this proxy's own bump is on its way, it does not trust the counter at all.
    const inFlight = a.generations.bump(['wc_test.t1']);
    expect(a.generations.local.read(['wc_test.t1'])).toEqual([2]); // the mirror moved at once
    expect(await a.generations.read(['wc_test.t1', '*'])).toBeNull();
    await inFlight;
    expect(await a.generations.read(['wc_test.t1'])).toEqual([ra[0] + 2]);
    expect(a.generations.pendingNames).toBe(0);

    // Names memcached could not take as keys are hashed.
    expect(a.generationKey('rule:by id')).toMatch(/^t\d+x\d+:g:#[0-9a-f]{40}$/);
    expect(a.generationKey('wc_test.t1')).toBe(`${prefix}:g:wc_test.t1`);
  });

  it('reads a fresh, never seen value for a counter that went missing', async () => {
    const a = open(recorder());
    const b = open(recorder());
    const name = 'wc_test.evicted';
    const seen = new Set<number>();
    for (let i = 0; i < 3; i++) {
      const [v] = (await a.generations.read([name]))!;
      expect(seen.has(v)).toBe(false);
      seen.add(v);
      await a.generations.bump([name]);
      const [w] = (await a.generations.read([name]))!;
      expect(w).toBe(v + 1);
      seen.add(w);
      expect(await raw.delete(a.generationKey(name))).toBe(true); // evicted / memcached restarted
    }
    // Both proxies agree on the re-created value.
    const [x] = (await b.generations.read([name]))!;
    expect(seen.has(x)).toBe(false);
    expect(await a.generations.read([name])).toEqual([x]);
  });

  it('grants a lease to exactly one of 20 concurrent callers across two proxies', async () => {
    const a = open(recorder());
    const b = open(recorder());
    const key = `SELECT lease ${Date.now()}`;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).acquireLease(key, 1)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await a.acquireLease(key, 1)).toBe(false);
    expect(await a.acquireLease(`${key} other`, 1)).toBe(true);
    // memcached expiry has a one-second resolution: gone within 2 s.
    await sleep(2100);
    const again = await Promise.all([a.acquireLease(key, 1), b.acquireLease(key, 1)]);
    expect(again.filter(Boolean)).toHaveLength(1);
  });

  it('spreads keys over several servers', async () => {
    const second = await startMemcached(path.join(topo.baseDir, 'memcached-spread'));
    const rec = recorder();
    const both = [sharedServer, `127.0.0.1:${second.port}`];
    const store = open(rec, { servers: both });
    const rawSecond = rawClient(both[1]);
    try {
      const keys = Array.from({ length: 20 }, (_, i) => `SELECT ${i} FROM spread`);
      for (const k of keys) expect(await store.set(k, entry(100))).toBe(true);
      for (const k of keys) expect((await store.get(k))?.wire.length).toBe(100);
      let onShared = 0;
      let onSecond = 0;
      for (const k of keys) {
        if ((await raw.get(store.entryKey(k))).value !== null) onShared++;
        if ((await rawSecond.get(store.entryKey(k))).value !== null) onSecond++;
      }
      expect(onShared + onSecond).toBe(20);
      expect(onShared).toBeGreaterThan(0);
      expect(onSecond).toBeGreaterThan(0);
      expect(rec.problems).toEqual([]);
    } finally {
      rawSecond.close();
      store.close();
      await stopMemcached(second);
    }
  });
});

// ---------------------------------------------------------------------------

describe('MemcachedStore when memcached fails', () => {
  const timeoutMs = 50;
  /**
   * How long an operation may take here: a liveness bound (it resolves, it never hangs), not a
   * speed check, generous enough for a machine busy with MariaDB, sysbench or another suite.
   */
  const LIVENESS_MS = 3000;
  let mc: MemcachedInfo;
  // Under the topology's base dir: removed with it.
  const mcDir = path.join(topo.baseDir, 'memcached-failures');
  const stores: MemcachedStore[] = [];
  const logs: string[] = [];
  const open = (rec: Recorder, downBackoffMs = 300): MemcachedStore => {
    const s = new MemcachedStore({
      servers: [`127.0.0.1:${mc.port}`],
      timeoutMs,
      downBackoffMs,
      observer: rec.observer,
      log: (m) => logs.push(m),
    });
    stores.push(s);
    return s;
  };

  beforeAll(async () => {
    mc = await startMemcached(mcDir);
  });
  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
  });
  afterAll(async () => {
    if (mc) await stopMemcached(mc, 'SIGKILL').catch(() => {});
  });

  it('answers within budget while memcached is dead, re-sends bumps made meanwhile once it is back', async () => {
    const rec = recorder();
    const store = open(rec);
    const other = open(recorder());
    const consoleLog = vi.spyOn(console, 'log');
    try {
      const e = entry(100);
      expect(await store.set('q', e)).toBe(true);
      expect(await store.get('q')).toEqual(e);
      const [g0] = (await store.generations.read(['wc_test.down']))!;
      expect(store.available).toBe(true);

      await stopMemcached(mc, 'SIGKILL');

      const ops: { name: string; run: () => Promise<unknown>; expected: unknown }[] = [
        { name: 'get', run: () => store.get('q'), expected: undefined },
        { name: 'set', run: () => store.set('q2', entry(100)), expected: false },
        { name: 'read', run: () => store.generations.read(['wc_test.t1']), expected: null },
        { name: 'bump', run: () => store.generations.bump(['wc_test.down']), expected: undefined },
        { name: 'lease', run: () => store.acquireLease('q', 5), expected: false },
        { name: 'delete', run: () => store.delete('q'), expected: undefined },
        { name: 'get again', run: () => store.get('q'), expected: undefined },
      ];
      for (const op of ops) {
        const { value, ms } = await timed(op.run());
        expect(value, op.name).toEqual(op.expected);
        expect(ms, `${op.name} took ${ms} ms`).toBeLessThan(LIVENESS_MS);
      }
      // Connection refused is an 'error'; a request written on the socket the dead server left
      // half-open may instead get no answer at all (a 'timeout').
      expect(rec.problems.filter((p) => p.kind === 'error' || p.kind === 'timeout').length).toBe(3);
      expect(rec.problems.some((p) => p.kind === 'error')).toBe(true);
      expect(rec.problems.some((p) => p.kind === 'down')).toBe(true);
      expect(store.available).toBe(false);
      // The bump is remembered: reads of that name give null, even after the backoff's probe.
      expect(store.generations.pendingNames).toBe(1);
      expect(await store.generations.read(['wc_test.down'])).toBeNull();
      await sleep(400);
      expect(await store.generations.read(['wc_test.down'])).toBeNull();
      // memjs' complaints went to our logger, not the console.
      expect(logs.some((l) => /ECONNREFUSED/.test(l))).toBe(true);
      expect(consoleLog).not.toHaveBeenCalled();

      // Back on the same port (empty: a restarted memcached lost every counter).
      mc = await startMemcached(mcDir, mc.port);
      const raw = rawClient(`127.0.0.1:${mc.port}`);
      try {
        const key = store.generationKey('wc_test.down');
        // Nothing reads the counter: only the re-sent bump can create it.
        await waitFor('the re-sent bump', async () => (await raw.get(key)).value !== null, 10_000, 50);
        expect(store.generations.pendingNames).toBe(0);
        await waitFor('the store to be back', async () => (await store.generations.read(['wc_test.down'])) !== null, 10_000, 50);
        const [g1] = (await store.generations.read(['wc_test.down']))!;
        expect(g1).not.toBe(g0);
        expect(g1).toBe(Number((await raw.get(key)).value!.toString()));
        expect(await other.generations.read(['wc_test.down'])).toEqual([g1]);
        expect(store.available).toBe(true);
        expect(await store.set('q', e)).toBe(true);
        expect(await store.get('q')).toEqual(e);
      } finally {
        raw.close();
      }
    } finally {
      consoleLog.mockRestore();
    }
  });

  it('answers within budget while memcached is stopped (SIGSTOP), and recovers after SIGCONT', async () => {
    const rec = recorder();
    // A backoff longer than memjs' own socket timeout (10x ours): see the stall below.
    const store = open(rec, 700);
    const e = entry(100);
    expect(await store.set('slow', e)).toBe(true);
    expect(await store.get('slow')).toEqual(e);
    expect(await store.generations.read(['wc_test.slow'])).not.toBeNull();

    await stopProcess(mc.pid);
    try {
      const got = await timed(store.get('slow'));
      expect(got.value).toBeUndefined();
      expect(got.ms).toBeLessThan(LIVENESS_MS);
      expect(rec.problems).toContainEqual({ op: 'get', kind: 'timeout' });

      const set = await timed(store.set('slow2', entry(100)));
      expect(set.value).toBe(false);
      expect(set.ms).toBeLessThan(LIVENESS_MS);
      const read = await timed(store.generations.read(['wc_test.slow']));
      expect(read.value).toBeNull();
      expect(read.ms).toBeLessThan(LIVENESS_MS);
      const bump = await timed(store.generations.bump(['wc_test.slow']));
      expect(bump.ms).toBeLessThan(LIVENESS_MS);
      expect(rec.problems.filter((p) => p.kind === 'timeout').length).toBeGreaterThanOrEqual(3);
      // Down now: answered without waiting at all.
      const down = await timed(store.get('slow'));
      expect(down.value).toBeUndefined();
      expect(down.ms).toBeLessThan(LIVENESS_MS);
      expect(rec.problems.at(-1)).toEqual({ op: 'get', kind: 'down' });
      expect(await store.generations.read(['wc_test.slow'])).toBeNull();
      // Keep traffic going: memjs' own socket timeout gives up on its socket between two
      // probes, and the next probe opens another while the first is still half-open.
      const stallEnd = Date.now() + 2500;
      while (Date.now() < stallEnd) {
        const r = await timed(store.get('slow'));
        expect(r.value).toBeUndefined();
        expect(r.ms).toBeLessThan(LIVENESS_MS);
        await sleep(5);
      }
    } finally {
      process.kill(mc.pid, 'SIGCONT');
    }
    await waitFor('the store to recover', async () => (await store.get('slow')) !== undefined, 10_000, 50);
    expect(await store.get('slow')).toEqual(e);
    await waitFor('the re-sent bump', () => store.generations.pendingNames === 0, 10_000, 50);
    expect(await store.generations.read(['wc_test.slow'])).not.toBeNull();
    // No connection was orphaned along the way (memjs 1.3.2 leaks one per stall unless guarded).
    await sleep(300);
    expect(connectionsTo(mc.port)).toBe(1);
    store.close();
    await waitFor('the connection to close', () => connectionsTo(mc.port) === 0, 3000, 50);
  });
});
