/**
 * The worker threads' shared memory tier (src/cache/shared_store.ts):
 * entries round-trip, a key's newer entry replaces the older, the ring
 * overwrites the oldest records within its bound, purges and clears, and
 * another thread reading while this one writes never gets another key's
 * entry or a torn one.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SharedStore, sharedStoreBuffers } from '../src/cache/shared_store.js';
import type { CacheEntry, CacheObserver } from '../src/cache/types.js';

function observer(): CacheObserver & { evictions: number } {
  const o = {
    evictions: 0,
    hit: () => {},
    miss: () => {},
    stored: () => {},
    refused: () => {},
    invalidated: () => {},
    coalescedWait: () => {},
    evicted: (n: number) => {
      o.evictions += n;
    },
    memcachedProblem: () => {},
  };
  return o as unknown as CacheObserver & { evictions: number };
}

function entry(tag: string, wireBytes = 100): CacheEntry {
  const now = Date.now();
  const wire = Buffer.alloc(wireBytes, tag.charCodeAt(tag.length - 1));
  wire.write(tag);
  return { wire, deprecateEof: true, deps: ['db.t', '*'], gens: [3, 1], rule: 'r', createdAt: now, softExpiresAt: now + 60_000, expiresAt: now + 120_000 };
}

describe('SharedStore', () => {
  it('stores and returns entries; a newer entry of a key replaces the older', () => {
    const store = new SharedStore(sharedStoreBuffers(1024 * 1024), observer(), 64 * 1024);
    expect(store.get('k1')).toBeUndefined();
    expect(store.set('k1', entry('one'))).toBe(true);
    expect(store.set('k2 with ünïcode ✓', entry('two'))).toBe(true);
    const got = store.get('k1')!;
    expect(got.wire.toString('latin1', 0, 3)).toBe('one');
    expect(got.deps).toEqual(['db.t', '*']);
    expect(got.gens).toEqual([3, 1]);
    expect(store.get('k2 with ünïcode ✓')!.wire.toString('latin1', 0, 3)).toBe('two');
    expect(store.set('k1', entry('uno'))).toBe(true);
    expect(store.get('k1')!.wire.toString('latin1', 0, 3)).toBe('uno');
    expect(store.entries).toBe(2);
    store.delete('k1');
    expect(store.get('k1')).toBeUndefined();
    expect(store.entries).toBe(1);
  });

  it('another store over the same buffers (another thread) sees the same entries', () => {
    const buffers = sharedStoreBuffers(1024 * 1024);
    const a = new SharedStore(buffers, observer(), 0);
    const b = new SharedStore(buffers, observer(), 0);
    a.set('k', entry('from-a'));
    expect(b.get('k')!.wire.toString('latin1', 0, 6)).toBe('from-a');
    b.delete('k');
    expect(a.get('k')).toBeUndefined();
  });

  it('overwrites the oldest records when full and stays within its ring', () => {
    const obs = observer();
    const buffers = sharedStoreBuffers(256 * 1024);
    const ring = buffers.ring.byteLength;
    const store = new SharedStore(buffers, obs, 16 * 1024);
    const n = 3000; // about 1 MB of entries through a ring of about 240 KB
    for (let i = 0; i < n; i++) expect(store.set(`key-${i}`, entry(`v${i}`, 300))).toBe(true);
    expect(store.bytes).toBeLessThanOrEqual(ring);
    expect(obs.evictions).toBeGreaterThan(0);
    expect(store.entries).toBe(n - obs.evictions);
    // The newest are there, the oldest are not; whatever is found is its own key's.
    expect(store.get(`key-${n - 1}`)!.wire.toString('latin1', 0, 5)).toBe(`v${n - 1}`);
    expect(store.get('key-0')).toBeUndefined();
    let found = 0;
    for (let i = 0; i < n; i++) {
      const e = store.get(`key-${i}`);
      if (!e) continue;
      found++;
      expect(e.wire.toString('latin1', 0, `v${i}`.length)).toBe(`v${i}`);
    }
    expect(found).toBeGreaterThan(500);
    expect(found).toBeLessThanOrEqual(store.entries);
  });

  it('keeps entries that are read while the ring laps under a stream of new ones (FIFO with reinsertion)', () => {
    const obs = observer();
    const store = new SharedStore(sharedStoreBuffers(256 * 1024), obs, 0);
    const hot = Array.from({ length: 20 }, (_, i) => `hot-${i}`);
    for (const k of hot) store.set(k, entry(k, 300));
    // Ten laps of the ring in entries nobody reads again; the hot ones are read all along.
    for (let i = 0; i < 8000; i++) {
      store.set(`cold-${i}`, entry(`c${i}`, 300));
      if (i % 20 === 0) {
        for (const k of hot) {
          const e = store.get(k);
          expect(e?.wire.toString('latin1', 0, k.length), `${k} after ${i} cold entries`).toBe(k);
          store.touch(k, e!);
        }
      }
    }
    expect(store.reinserted).toBeGreaterThanOrEqual(20 * 9);
    // Each hot entry has one live record; the cold ones from the first laps are gone.
    for (const k of hot) expect(store.get(k)!.wire.toString('latin1', 0, k.length)).toBe(k);
    expect(store.get('cold-0')).toBeUndefined();
    expect(store.bytes).toBeLessThanOrEqual(256 * 1024);
    expect(store.entries).toBe(20 + 8000 - obs.evictions);
  });

  it('a record read in the oldest quarter is not rewritten while another thread holds the lock (a hit never waits)', () => {
    const buffers = sharedStoreBuffers(256 * 1024);
    const store = new SharedStore(buffers, observer(), 0);
    store.set('hot', entry('hot', 300));
    // About 80% of the ring after it: 'hot' is in the oldest quarter, not yet overwritten.
    for (let i = 0; i < 470; i++) store.set(`cold-${i}`, entry(`c${i}`, 300));
    const control = new Int32Array(buffers.control);
    // Another thread's lock (as a writer elsewhere holds it): the read still answers at once.
    Atomics.store(control, 0, 999_999);
    const started = Date.now();
    const e = store.get('hot')!;
    expect(e.wire.toString('latin1', 0, 3)).toBe('hot');
    store.touch('hot', e);
    expect(Date.now() - started).toBeLessThan(5);
    expect(store.reinserted).toBe(0);
    Atomics.store(control, 0, 0);
    store.touch('hot', store.get('hot')!);
    expect(store.reinserted).toBe(1);
    expect(store.get('hot')!.wire.toString('latin1', 0, 3)).toBe('hot');
  });

  it('never puts an older entry back over a newer one stored since it was read, nor one it did not just return', () => {
    const store = new SharedStore(sharedStoreBuffers(256 * 1024), observer(), 0);
    store.set('k', entry('old', 300));
    for (let i = 0; i < 470; i++) store.set(`cold-${i}`, entry(`c${i}`, 300));
    const read = store.get('k')!;
    // Another thread stores a fresh entry for the key (a refresh) after this one read the old record.
    store.set('k', entry('new', 300));
    store.touch('k', read);
    expect(store.reinserted).toBe(0);
    expect(store.get('k')!.wire.toString('latin1', 0, 3)).toBe('new');
    // An entry that is not the one get() returned last is not written either.
    store.touch('k', entry('forged', 300));
    expect(store.get('k')!.wire.toString('latin1', 0, 3)).toBe('new');
  });

  it('refuses an entry bigger than half its ring, and an expired one', () => {
    const store = new SharedStore(sharedStoreBuffers(256 * 1024), observer(), 0);
    expect(store.set('big', entry('big', 200 * 1024))).toBe(false);
    expect(store.set('old', { ...entry('old'), expiresAt: Date.now() - 1 })).toBe(false);
    expect(store.entries).toBe(0);
  });

  it('purges by predicate and clears', () => {
    const store = new SharedStore(sharedStoreBuffers(1024 * 1024), observer(), 64 * 1024);
    for (let i = 0; i < 10; i++) store.set(`k${i}`, { ...entry(`v${i}`), rule: i % 2 === 0 ? 'even' : 'odd' });
    expect(store.deleteWhere((e) => e.rule === 'even')).toBe(5);
    expect(store.get('k0')).toBeUndefined();
    expect(store.get('k1')).toBeDefined();
    expect(store.entries).toBe(5);
    store.clear();
    expect(store.entries).toBe(0);
    expect(store.get('k1')).toBeUndefined();
  });

  it('a thread reading while another writes and wraps the ring gets only its key\'s whole entries', async () => {
    const buffers = sharedStoreBuffers(128 * 1024);
    const store = new SharedStore(buffers, observer(), 0);
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.module).then(({ SharedStore }) => {
        const obs = { evicted() {} };
        const store = new SharedStore(workerData.buffers, obs, 0);
        let wrong = 0, found = 0;
        const end = Date.now() + 1500;
        while (Date.now() < end) {
          for (let i = 0; i < 200; i++) {
            const e = store.get('key-' + i);
            if (!e) continue;
            found++;
            const tag = e.wire.toString('latin1', 0, e.wire.indexOf(0x2f));
            if (tag !== 'key-' + i || e.wire.length !== 400 + i) wrong++;
          }
        }
        parentPort.postMessage({ wrong, found });
      });`;
    const module = new URL('../dist/cache/shared_store.js', import.meta.url).href;
    const reader = new Worker(code, { eval: true, workerData: { buffers, module } });
    const result = new Promise<{ wrong: number; found: number }>((resolve, reject) => {
      reader.once('message', resolve);
      reader.once('error', reject);
    });
    const end = Date.now() + 1500;
    let writes = 0;
    while (Date.now() < end) {
      for (let i = 0; i < 200; i++, writes++) {
        const now = Date.now();
        const wire = Buffer.alloc(400 + i, 0x61);
        wire.write(`key-${i}/`);
        store.set(`key-${i}`, { wire, deprecateEof: false, deps: [], gens: [], rule: '', createdAt: now, softExpiresAt: now + 60_000, expiresAt: now + 60_000 });
      }
      await new Promise((r) => setImmediate(r));
    }
    const { wrong, found } = await result;
    await reader.terminate();
    expect(writes).toBeGreaterThan(1000);
    expect(found).toBeGreaterThan(1000);
    expect(wrong).toBe(0);
  });

  it('a thread ended inside a write leaves the lock to recoverFrom(): the tier is emptied and works again', async () => {
    const buffers = sharedStoreBuffers(256 * 1024);
    const store = new SharedStore(buffers, observer(), 0);
    store.set('kept', entry('kept'));
    // As a terminated writer leaves it: the lock held with its id (41 + 1), the sequence odd.
    const control = new Int32Array(buffers.control);
    control[0] = 42;
    control[1] += 1;
    expect(store.get('kept')).toBeUndefined(); // a write seems in progress: a miss, not a wait
    const started = Date.now();
    expect(store.set('new', entry('new'))).toBe(false); // gives up on the lock rather than block
    expect(Date.now() - started).toBeLessThan(2000);
    expect(() => store.clear()).toThrow(/stayed locked/);
    expect(store.recoverFrom(7)).toBe(false); // another thread's death changes nothing
    expect(store.recoverFrom(41)).toBe(true);
    expect(store.entries).toBe(0);
    expect(store.set('new', entry('new'))).toBe(true);
    expect(store.get('new')!.wire.toString('latin1', 0, 3)).toBe('new');
  });

  it('a writer thread terminated at any point leaves a tier that recoverFrom() makes whole', async () => {
    const module = new URL('../dist/cache/shared_store.js', import.meta.url).href;
    for (let round = 0; round < 5; round++) {
      const buffers = sharedStoreBuffers(128 * 1024);
      const store = new SharedStore(buffers, observer(), 0);
      const code = `
        const { workerData, parentPort } = require('node:worker_threads');
        import(workerData.module).then(({ SharedStore }) => {
          const store = new SharedStore(workerData.buffers, { evicted() {} }, 0);
          parentPort.postMessage('writing');
          for (let i = 0; ; i++) {
            const now = Date.now();
            const k = i % 500;
            store.set('k' + k, { wire: Buffer.alloc(300 + (k % 200), 0x62), deprecateEof: false, deps: [], gens: [], rule: '', createdAt: now, softExpiresAt: now + 60000, expiresAt: now + 60000 });
          }
        });`;
      const writer = new Worker(code, { eval: true, workerData: { buffers, module } });
      await new Promise((resolve) => writer.once('message', resolve));
      await new Promise((r) => setTimeout(r, 20 + round * 15));
      const threadId = writer.threadId;
      await writer.terminate();
      store.recoverFrom(threadId);
      expect(new Int32Array(buffers.control)[0]).toBe(0);
      for (let i = 0; i < 50; i++) expect(store.set(`after-${i}`, entry(`a${i}`))).toBe(true);
      for (let i = 0; i < 50; i++) expect(store.get(`after-${i}`)!.wire.toString('latin1', 0, `a${i}`.length)).toBe(`a${i}`);
      for (let i = 0; i < 500; i++) {
        const e = store.get(`k${i}`);
        if (e) expect(e.wire.length).toBe(300 + (i % 200));
      }
    }
  });
});
