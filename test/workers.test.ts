/**
 * Worker threads (`workers:` above 1) against the real primary: clients are
 * spread over the threads, a write in one is seen by the very next read in
 * another, the admin views sum the workers, KILL and the connection limits
 * reach across them, and a worker that dies loses only its own sessions.
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunningApp } from '../src/app.js';
import { createLogger } from '../src/logger.js';
import { PROXY_ID_BASE } from '../src/proxy_server.js';
import { doubleSha1, hashedUser } from '../src/config/accounts.js';
import { connect, routingConfig, testCacheConfig, testConfig } from './proxy-harness.js';
import { getTopology } from './topology-context.js';
import { waitFor } from './wait.js';
import { runCommand } from './run-command.js';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startCli, writeTemp, yamlFor } from './cli-process.js';

const topo = getTopology();
const DB = 'wc_workers';
const WORKERS = 2;

let root: mysql.Connection;
let app: RunningApp;

/** The worker thread serving a client: proxy connection ids are handed out modulo the worker count. */
const workerOf = (c: mysql.Connection) => (c.threadId! - PROXY_ID_BASE - 1) % WORKERS;

/** Connections until there is one on each worker (the kernel decides which thread accepts). */
async function onEachWorker(port: number, opts: Parameters<typeof connect>[2] = {}): Promise<mysql.Connection[]> {
  const found: (mysql.Connection | undefined)[] = new Array(WORKERS);
  const spare: mysql.Connection[] = [];
  for (let i = 0; i < 200 && found.includes(undefined); i++) {
    const c = await connect(port, topo, { database: DB, ...opts });
    if (found[workerOf(c)] === undefined) found[workerOf(c)] = c;
    else spare.push(c);
  }
  await Promise.all(spare.map((c) => c.end()));
  if (found.includes(undefined)) throw new Error('200 connections all went to one worker');
  return found as mysql.Connection[];
}

/** wirecache with WORKERS worker threads on the test topology; `overrides` as for testConfig. */
function startWorkers(overrides: Parameters<typeof testConfig>[1] = {}): Promise<RunningApp> {
  return startApp(testConfig(topo, { workers: WORKERS, ...overrides }), createLogger('error'));
}

async function admin(path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${app.adminAddress.port}${path}`, { method });
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  root = await mysql.createConnection({ host: '127.0.0.1', port: topo.primary.port, user: 'root', password: topo.rootPassword, multipleStatements: true });
  await root.query(`DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}; CREATE TABLE ${DB}.t (id INT PRIMARY KEY, v INT); INSERT INTO ${DB}.t VALUES (1, 0), (2, 0)`);
  app = await startWorkers({
    cache: testCacheConfig(),
    limits: { maxUserConnections: 0, loginFailuresPerMinute: 0, loginBlockSeconds: 60, maxClientConnections: 500, maxPacketBytes: 64 * 1024 * 1024 },
  });
});

afterAll(async () => {
  await app?.stop();
  await root?.query(`DROP DATABASE IF EXISTS ${DB}`);
  await root?.end();
});

describe('worker threads', () => {
  it('spread clients over the threads, each answering as the server would', async () => {
    const clients = await onEachWorker(app.mysqlAddress.port);
    for (const c of clients) {
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT id, v FROM t ORDER BY id');
      expect(rows.map((r) => [r.id, r.v])).toEqual([
        [1, 0],
        [2, 0],
      ]);
    }
    expect(app.workers?.sessions).toBeGreaterThanOrEqual(2);
    await Promise.all(clients.map((c) => c.end()));
  });

  it('a write in one worker is seen by the very next cached read in another, 1,000 times', async () => {
    const [writer, reader] = await onEachWorker(app.mysqlAddress.port);
    const read = async () => {
      const [rows] = await reader.query<mysql.RowDataPacket[]>('/*qc=on*/ SELECT v FROM t WHERE id = 1');
      return rows[0].v as number;
    };
    let stale = 0;
    for (let i = 1; i <= 1000; i++) {
      // The reader caches the current value, the writer (another thread) changes it, the reader reads again at once.
      await read();
      await writer.query('UPDATE t SET v = ? WHERE id = 1', [i]);
      if ((await read()) !== i) stale++;
    }
    expect(stale).toBe(0);
    const cache = JSON.parse((await admin('/cache')).body) as { rules: { rule: string; hits: number; misses: number }[]; memory: { entries: number } };
    const hint = cache.rules.find((r) => r.rule === 'hint')!;
    // Each round's first read hits what the previous round's second read stored; every second read misses.
    expect(hint.hits).toBe(999);
    expect(hint.misses).toBe(1001);
    await Promise.all([writer.end(), reader.end()]);
  });

  it('coalesces identical misses across threads: one query reaches the server, every thread is served its result', async () => {
    const clients = [...(await onEachWorker(app.mysqlAddress.port)), ...(await onEachWorker(app.mysqlAddress.port)), ...(await onEachWorker(app.mysqlAddress.port))];
    const before = JSON.parse((await admin('/cache')).body) as { rules: { rule: string; hits: number; misses: number }[] };
    const hint = (c: typeof before) => c.rules.find((r) => r.rule === 'hint')!;
    // The table is locked: the first reader's query waits on the server while the others arrive.
    await root.query(`LOCK TABLES ${DB}.t WRITE`);
    const reads = clients.map((c) => c.query<mysql.RowDataPacket[]>('/*qc=on*/ SELECT v, id * 7 AS coalesced FROM t WHERE id = 2'));
    await new Promise((r) => setTimeout(r, 300));
    await root.query('UNLOCK TABLES');
    for (const [rows] of await Promise.all(reads)) expect(rows).toEqual([{ v: 0, coalesced: 14 }]);
    const after = JSON.parse((await admin('/cache')).body) as typeof before;
    expect(hint(after).misses - hint(before).misses).toBe(1);
    expect(hint(after).hits - hint(before).hits).toBe(clients.length - 1);
    const metrics = (await admin('/metrics')).body;
    expect(metrics).toMatch(/^wirecache_cache_coalesced_waits_total\{rule="hint",outcome="served"\} 5$/m);
    await Promise.all(clients.map((c) => c.end()));
  });

  it('sums the workers in /metrics, /stats/queries and /servers', async () => {
    const clients = await onEachWorker(app.mysqlAddress.port);
    for (const c of clients) for (let i = 0; i < 5; i++) await c.query('SELECT 42 AS answer_for_stats');
    const metrics = (await admin('/metrics')).body;
    const line = metrics.split('\n').find((l) => l.startsWith('wirecache_client_connections '));
    expect(Number(line?.split(' ')[1])).toBeGreaterThanOrEqual(2);
    expect(metrics).toMatch(/^wirecache_workers 2$/m);
    // Each thread's own connections, which add up to the total.
    const perWorker = [...metrics.matchAll(/^wirecache_worker_client_connections\{worker="(\d)"\} (\d+)$/gm)].map((m) => Number(m[2]));
    expect(perWorker).toHaveLength(2);
    expect(perWorker.every((n) => n >= 1)).toBe(true);
    expect(perWorker[0] + perWorker[1]).toBe(Number(line?.split(' ')[1]));
    const stats = JSON.parse((await admin('/stats/queries?limit=1000')).body) as { digests: { digest: string; count: number }[] };
    const digest = stats.digests.find((d) => /answer_for_stats/i.test(d.digest));
    expect(digest?.count).toBe(10);
    const servers = JSON.parse((await admin('/servers')).body) as { servers: { pool: { open: number } }[] };
    expect(servers.servers[0].pool.open).toBeGreaterThanOrEqual(1);
    await Promise.all(clients.map((c) => c.end()));
  });

  it('KILL reaches a session of another worker', async () => {
    const [a, b] = await onEachWorker(app.mysqlAddress.port);
    const victim = b.threadId!;
    await a.query(`KILL ${victim}`);
    await expect(b.query('SELECT 1')).rejects.toThrow();
    await expect(a.query('KILL 4000000000')).rejects.toMatchObject({ errno: 1094 });
    await a.end();
    b.destroy();
  });

  it('a KILL inside a multi-statement text reaches a session of another worker, idle (multiplexed) or running', async () => {
    const [a, b] = await onEachWorker(app.mysqlAddress.port, { multipleStatements: true });
    // c is on b's thread, another than a's.
    const pair = await onEachWorker(app.mysqlAddress.port);
    const c = pair[workerOf(b)];
    await pair[workerOf(a)].end();
    // b idles (its connection went back to the pool); c runs a long query.
    // Its outcome is taken at once: the KILL QUERY may end it before a's reply is read.
    const running = c.query('SELECT SLEEP(5) AS slept').then(() => null, (err: { errno?: number }) => err.errno);
    await new Promise((r) => setTimeout(r, 200));
    const [results] = await a.query<mysql.ResultSetHeader[]>(`SELECT 1; KILL QUERY ${c.threadId}; KILL ${b.threadId}`);
    expect(results).toHaveLength(3);
    // KILL QUERY: the sleep is interrupted, as the server reports it.
    expect(await running).toBe(1317);
    await expect(b.query('SELECT 1')).rejects.toThrow();
    expect((await c.query<mysql.RowDataPacket[]>('SELECT 2 AS two'))[0]).toEqual([{ two: 2 }]);
    await Promise.all([a.end(), c.end()]);
    b.destroy();
  });

  it('a worker that dies loses only its own sessions; the others run on and a new worker takes its place', async () => {
    const clients = await onEachWorker(app.mysqlAddress.port);
    const [onDead, onLive] = clients;
    const dead = workerOf(onDead);
    const errors: unknown[] = [];
    onDead.on('error', (err) => errors.push(err));
    await app.workers!.thread(dead)!.terminate();
    await expect(onDead.query('SELECT 1')).rejects.toThrow();
    // The other worker's client never notices.
    for (let i = 0; i < 20; i++) await onLive.query('SELECT 1');
    // New connections are served, by both threads again once the new one listens.
    await waitFor('the worker restarted', async () => (await onEachWorker(app.mysqlAddress.port).then(async (cs) => (await Promise.all(cs.map((c) => c.end())), true))));
    expect(Number(/^wirecache_worker_restarts_total (\d+)$/m.exec((await admin('/metrics')).body)?.[1])).toBeGreaterThanOrEqual(1);
    await onLive.end();
    onDead.destroy();
  });
});

describe('TLS and caching_sha2_password in worker threads', () => {
  it('clients log in over TLS and with the RSA exchange through both threads (one key pair, made by the main thread)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-workers-tls-'));
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    const made = await runCommand('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost']);
    expect(made.code, made.stderr).toBe(0);
    const secure = await startWorkers({
      tls: { certFile: cert, keyFile: key, requireTls: false },
      auth: { defaultPlugin: 'caching_sha2_password', rsaPrivateKeyFile: null, rsaPublicKeyFile: null },
      // Configured by its mysql.user hash only: its first login in each thread needs full authentication.
      users: [...testConfig(topo).users.filter((u) => u.name !== 'other'), hashedUser('other', `*${doubleSha1('other_pw').toString('hex').toUpperCase()}`)],
    });
    const fullAuths = async (method: string) =>
      Number(new RegExp(`^wirecache_client_authentications_total\\{method="${method}"\\} (\\d+)$`, 'm').exec(await (await fetch(`http://127.0.0.1:${secure.adminAddress.port}/metrics`)).text())?.[1] ?? 0);
    try {
      // RSA first: no thread has learnt the account yet, so each thread's first login is a full one; then over TLS.
      for (const ssl of [false, true]) {
        const seen = new Set<number>();
        for (let i = 0; i < 40 && seen.size < WORKERS; i++) {
          const c = await mysql.createConnection({ host: '127.0.0.1', port: secure.mysqlAddress.port, user: 'other', password: 'other_pw', database: DB, ...(ssl ? { ssl: { rejectUnauthorized: false } } : {}) });
          seen.add(workerOf(c));
          expect((await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u'))[0][0].u).toBe('other@%');
          await c.end();
        }
        expect(seen.size, ssl ? 'TLS logins on both threads' : 'RSA logins on both threads').toBe(WORKERS);
      }
      // One full authentication with the RSA exchange per thread (the pair was made once, in the main thread).
      expect(await fullAuths('sha2_full_rsa')).toBe(WORKERS);
    } finally {
      await secure.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('worker threads with memcached storage', () => {
  it('a write in one thread is seen by the next cached read in another, 200 times', async () => {
    const servers = [`${topo.memcached.host}:${topo.memcached.port}`];
    const mc = await startWorkers({ cache: testCacheConfig({ storage: 'memcached', memcached: { servers, timeoutMs: 200, itemLimitBytes: 1_048_576, maxItemsPerEntry: 16, keyPrefix: `wcw${process.pid}` } }) });
    try {
      const [writer, reader] = await onEachWorker(mc.mysqlAddress.port);
      const read = async () => (await reader.query<mysql.RowDataPacket[]>('/*qc=on*/ SELECT v FROM t WHERE id = 1'))[0][0].v as number;
      let stale = 0;
      for (let i = 1; i <= 200; i++) {
        await read();
        await writer.query('UPDATE t SET v = ? WHERE id = 1', [5000 + i]);
        if ((await read()) !== 5000 + i) stale++;
      }
      expect(stale).toBe(0);
      const cache = JSON.parse(await (await fetch(`http://127.0.0.1:${mc.adminAddress.port}/cache`)).text()) as { rules: { rule: string; hits: number }[] };
      expect(cache.rules.find((r) => r.rule === 'hint')!.hits).toBeGreaterThanOrEqual(150);
      await Promise.all([writer.end(), reader.end()]);
    } finally {
      await mc.stop();
    }
  });
});

describe('a worker that dies under sysbench load', () => {
  it('costs only its own clients: the sysbench runs on the other thread finish without an error', { timeout: 60_000 }, async () => {
    const sb = (phase: string, port: number, extra: string[] = []) =>
      runCommand(
        'sysbench',
        ['oltp_point_select', '--db-driver=mysql', '--mysql-host=127.0.0.1', `--mysql-port=${port}`, '--mysql-user=app', '--mysql-password=app_pw', `--mysql-db=${DB}`, '--tables=1', '--table-size=1000', ...extra, phase],
        { timeoutMs: 30_000 },
      );
    expect((await sb('prepare', topo.primary.port)).code).toBe(0);
    // sysbench 1.0.20 crashes when it reconnects a lost connection (against MariaDB itself too), so each
    // run has one thread: a run whose connection was on the dead thread fails, the others must not.
    const runs = Array.from({ length: 10 }, () => sb('run', app.mysqlAddress.port, ['--threads=1', '--time=4', '--report-interval=0']));
    await waitFor('every run connected', () => app.workers!.sessions >= 10, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    const onDead = app.workers!.sessionsOf(0);
    await app.workers!.thread(0)!.terminate();
    const results = await Promise.all(runs);
    const failed = results.filter((r) => r.code !== 0);
    const finished = results.filter((r) => r.code === 0);
    expect(failed.length).toBe(onDead);
    for (const r of failed) expect(r.stdout + r.stderr).toMatch(/Lost connection|server has gone away|2013/);
    for (const r of finished) {
      expect(r.stdout + r.stderr).not.toMatch(/FATAL|ALERT/);
      expect(Number(/total:\s+(\d+)/.exec(r.stdout)?.[1])).toBeGreaterThan(100);
    }
    expect((await sb('cleanup', topo.primary.port)).code).toBe(0);
    await waitFor('the thread restarted', async () => app.workers!.thread(0) !== null && (await onEachWorker(app.mysqlAddress.port).then(async (cs) => (await Promise.all(cs.map((c) => c.end())), true))));
  });
});

describe('the shared memory tier under a working set ten times its bound', () => {
  it('stays within cache.memory.max_bytes over every thread, evicting the oldest', async () => {
    const maxBytes = 2 * 1024 * 1024;
    const small = await startWorkers({ cache: testCacheConfig({ memory: { maxBytes } }) });
    try {
      const clients = await onEachWorker(small.mysqlAddress.port);
      // 200 distinct results of 100 kB: 20 MB through a 2 MiB tier, from both threads.
      for (let i = 0; i < 200; i++) {
        const [rows] = await clients[i % 2].query<mysql.RowDataPacket[]>(`/*qc=on*/ SELECT ${i} AS n, REPEAT('x', 100000) AS pad`);
        expect(rows[0].n).toBe(i);
      }
      const sharing = small.proxy.cache!.sharing!;
      const ring = sharing.store!.ring.byteLength;
      const index = sharing.store!.hashes.byteLength + sharing.store!.slots.byteLength;
      expect(ring + index + sharing.decodedBytes * WORKERS).toBeLessThanOrEqual(maxBytes);
      const cache = JSON.parse(await (await fetch(`http://127.0.0.1:${small.adminAddress.port}/cache`)).text()) as { memory: { bytes: number; entries: number; max_bytes: number } };
      expect(cache.memory.max_bytes).toBe(maxBytes);
      expect(cache.memory.bytes).toBeLessThanOrEqual(ring);
      expect(cache.memory.entries).toBeGreaterThan(5);
      expect(cache.memory.entries).toBeLessThan(20);
      const metrics = await (await fetch(`http://127.0.0.1:${small.adminAddress.port}/metrics`)).text();
      expect(Number(/^wirecache_cache_evictions_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(150);
      // The newest results are still hits, in either thread.
      const [again] = await clients[0].query<mysql.RowDataPacket[]>(`/*qc=on*/ SELECT 199 AS n, REPEAT('x', 100000) AS pad`);
      expect(again[0].n).toBe(199);
      await Promise.all(clients.map((c) => c.end()));
    } finally {
      await small.stop();
    }
  });
});

describe('worker threads with the split and the binlog reader', () => {
  let split: RunningApp;
  const port = () => split.mysqlAddress.port;

  beforeAll(async () => {
    split = await startWorkers({
      ...routingConfig(topo),
      cache: testCacheConfig(),
      binlog: { enabled: 'on', user: 'root', password: topo.rootPassword, serverId: 4343, maxDelayMs: 5000, onUnavailable: 'fail_closed' },
    });
  });

  afterAll(async () => {
    await split?.stop();
  });

  it('reads go to the replicas the main thread monitors, and each thread reads its own writes', async () => {
    const primaryId = Number((await root.query<mysql.RowDataPacket[]>('SELECT @@server_id AS id'))[0][0].id);
    const clients = await onEachWorker(port());
    for (const c of clients) {
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@server_id AS id');
      expect(Number(rows[0].id)).not.toBe(primaryId);
      for (let i = 0; i < 20; i++) {
        const value = 1000 + i + 100 * workerOf(c);
        await c.query('UPDATE t SET v = ? WHERE id = 2', [value]);
        const [after] = await c.query<mysql.RowDataPacket[]>('SELECT v FROM t WHERE id = 2');
        expect(after[0].v).toBe(value);
      }
    }
    await Promise.all(clients.map((c) => c.end()));
  });

  it('a write made beside the proxy reaches every thread\'s cache through the main thread\'s binlog reader', async () => {
    const clients = await onEachWorker(port());
    const read = async (c: mysql.Connection) => (await c.query<mysql.RowDataPacket[]>('/*qc=on*/ SELECT v FROM t WHERE id = 1'))[0][0].v as number;
    await root.query(`UPDATE ${DB}.t SET v = 5 WHERE id = 1`);
    for (const c of clients) await waitFor('the cached value 5', async () => (await read(c)) === 5);
    for (const c of clients) expect(await read(c)).toBe(5); // now from the cache
    await root.query(`UPDATE ${DB}.t SET v = 6 WHERE id = 1`);
    for (const c of clients) await waitFor('the direct write seen', async () => (await read(c)) === 6, 3000);
    await Promise.all(clients.map((c) => c.end()));
  });

});

describe('accounts read from the database, in every worker thread', () => {
  it('an account created on the server logs in through each thread once the main thread has read it', async () => {
    const fromDb = await startWorkers({ usersFromDatabase: { refreshSeconds: 1, user: 'root', password: topo.rootPassword } });
    const login = (user: string, password: string) => mysql.createConnection({ host: '127.0.0.1', port: fromDb.mysqlAddress.port, user, password });
    try {
      await root.query("DROP USER IF EXISTS 'wc_workers_late'@'%'; CREATE USER 'wc_workers_late'@'%' IDENTIFIED BY 'late_pw'");
      // Read at the next refresh (1 s), then known in both threads.
      const seen = new Set<number>();
      await waitFor('the new account in both threads', async () => {
        const c = await login('wc_workers_late', 'late_pw').catch(() => null);
        if (c) {
          seen.add(workerOf(c));
          expect((await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u'))[0][0].u).toBe('wc_workers_late@%');
          await c.end();
        }
        return seen.size === WORKERS;
      }, 15_000, 50);
      await expect(login('wc_workers_late', 'wrong')).rejects.toMatchObject({ errno: 1045 });
    } finally {
      await fromDb.stop();
      await root.query("DROP USER IF EXISTS 'wc_workers_late'@'%'");
    }
  });
});

describe('connection limits and login throttles over worker threads', () => {
  let limited: RunningApp;
  const port = () => limited.mysqlAddress.port;

  beforeAll(async () => {
    limited = await startWorkers({ limits: { maxUserConnections: 3, loginFailuresPerMinute: 2, loginBlockSeconds: 60, maxClientConnections: 500, maxPacketBytes: 64 * 1024 * 1024 } });
  });

  afterAll(async () => {
    await limited?.stop();
  });

  it('counts max_user_connections over every thread', async () => {
    const held: mysql.Connection[] = [];
    for (let i = 0; i < 3; i++) held.push(await connect(port(), topo, { user: 'other', database: DB }));
    // Whichever thread takes it, a fourth session of the account is refused.
    for (let i = 0; i < 6; i++) await expect(connect(port(), topo, { user: 'other', database: DB })).rejects.toMatchObject({ errno: 1203 });
    await held.pop()!.end();
    await waitFor('a place given back', async () => {
      const c = await connect(port(), topo, { user: 'other', database: DB }).catch(() => null);
      if (c) held.push(c);
      return c !== null;
    });
    await Promise.all(held.map((c) => c.end()));
  });

  it('counts a session under the account COM_CHANGE_USER moved it to', async () => {
    const others = [await connect(port(), topo, { user: 'other', database: DB }), await connect(port(), topo, { user: 'other', database: DB })];
    const moved = await connect(port(), topo, { database: DB });
    await moved.changeUser({ user: 'other', password: 'other_pw' });
    expect((await moved.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u'))[0][0].u).toBe('other@%');
    // Three sessions of other now, whichever threads they are on.
    for (let i = 0; i < 4; i++) await expect(connect(port(), topo, { user: 'other', database: DB })).rejects.toMatchObject({ errno: 1203 });
    await moved.changeUser({ user: 'app', password: 'app_pw' });
    await waitFor('a place of other given back', async () => {
      const c = await connect(port(), topo, { user: 'other', database: DB }).catch(() => null);
      if (c) others.push(c);
      return c !== null;
    });
    await Promise.all([...others, moved].map((c) => c.end()));
  });

  it('blocks an account in every thread after failed logins in any of them (last: it blocks 127.0.0.1 too)', async () => {
    for (let i = 0; i < 3; i++) await expect(mysql.createConnection({ host: '127.0.0.1', port: port(), user: 'limited', password: 'wrong' })).rejects.toMatchObject({ errno: 1045 });
    // Ten tries with the right password, spread over the threads by the kernel: every one is refused.
    for (let i = 0; i < 10; i++) {
      await expect(connect(port(), topo, { user: 'limited', database: DB })).rejects.toMatchObject({ errno: expect.toSatisfy((n: number) => n === 1129 || n === 3955) });
    }
  });
});

describe('wirecache run with worker threads', () => {
  it('applies a reload (SIGHUP) in every thread, and on SIGTERM lets a query in flight in a thread finish', async () => {
    const limits = (n: number) => `workers: ${WORKERS}\nlog: { level: info }\nlimits: { max_user_connections: ${n}, login_failures_per_minute: 0 }\n`;
    const file = await writeTemp('workers.yaml', yamlFor(topo, limits(0)));
    const proc = await startCli(['--config', file]);
    try {
      expect((await fetch(`http://127.0.0.1:${proc.adminPort}/healthz`)).status).toBe(200);
      const c = await onEachWorker(proc.port, { database: 'wc_test' });
      await Promise.all(c.slice(1).map((x) => x.end()));
      await fs.writeFile(file, yamlFor(topo, limits(1)));
      proc.child.kill('SIGHUP');
      await waitFor('the reload', () => /"msg":"config reloaded/.test(proc.output()));
      // One session of app is open: in either thread, a second is refused now.
      for (let i = 0; i < 6; i++) await expect(connect(proc.port, topo, { database: 'wc_test' })).rejects.toMatchObject({ errno: 1203 });
      const running = c[0].query('SELECT SLEEP(1) AS slept');
      await new Promise((r) => setTimeout(r, 200));
      proc.child.kill('SIGTERM');
      expect((await running)[0]).toEqual([{ slept: 0 }]);
      expect(await proc.exited).toBe(0);
      c[0].destroy();
    } finally {
      proc.child.kill('SIGKILL');
    }
  });
});
