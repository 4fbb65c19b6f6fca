import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { restartMariaDB, startMariaDB, stopMariaDB, type ServerInfo } from '../scripts/topology.js';
import { NO_LOGIN_LIMITS, connect, startProxy, type RunningProxy } from './proxy-harness.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();

function metricValue(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || l.startsWith(`${name}${labels}{`));
  return line ? Number(line.split(' ').pop()) : NaN;
}

describe('a backend that dies and comes back', () => {
  let server: ServerInfo;
  let px: RunningProxy;

  beforeAll(async () => {
    server = await startMariaDB({ name: 'doomed', baseDir: path.join(topo.baseDir, 'doomed'), serverId: 91, templateDir: topo.templateDir });
    px = await startProxy(topo, {}, server);
  });

  afterAll(async () => {
    await px?.stop();
    await stopMariaDB(server).catch(() => {});
  });

  it('gives clear errors while down, keeps the proxy up, and recovers', async () => {
    const busy = await connect(px.port, topo);
    const idle = await connect(px.port, topo);
    // A session holding state keeps its backend connection (multiplexing gives the idle one's back): it hears of the loss.
    const holding = await connect(px.port, topo);
    await holding.query('CREATE TEMPORARY TABLE kept (n INT)');
    const holdingError = new Promise<Error>((resolve) => holding.on('error', resolve));
    const inFlight = busy.query('SELECT SLEEP(30)').catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 300));

    await stopMariaDB(server, { signal: 'SIGKILL' });

    const err = (await inFlight) as mysql.QueryError;
    expect(err).toBeInstanceOf(Error);
    expect(err.errno).toBe(1927);
    expect(err.message).toMatch(/^Lost connection to backend primary \(127\.0\.0\.1:\d+\) during query/);
    const holdingErr = (await holdingError) as mysql.QueryError;
    expect(holdingErr.message).toMatch(/Lost connection to backend primary/);
    // The idle session held nothing there: its next statement gets a clear error, and it lives on.
    const idleErr = (await idle.query('SELECT 1').catch((e) => e)) as mysql.QueryError;
    expect(idleErr.message).toMatch(/primary/);

    // While the backend is down, logins fail fast with a message naming the backend.
    const started = Date.now();
    const loginErr = (await connect(px.port, topo).catch((e) => e)) as mysql.QueryError;
    expect(loginErr.errno).toBe(9001);
    expect(loginErr.message).toMatch(/^wirecache: backend 'primary' \(127\.0\.0\.1:\d+\) unavailable: .*ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(3000);
    const text = await px.metrics.metricsText();
    expect(metricValue(text, 'wirecache_backend_connect_errors_total', '{backend="primary"}')).toBeGreaterThanOrEqual(1);

    // The proxy process itself is fine: another proxy in this process still serves the shared primary.
    const other = await startProxy(topo);
    const c = await connect(other.port, topo);
    expect((await c.query('SELECT 1 AS up'))[0]).toEqual([{ up: 1 }]);
    await c.end();
    await other.stop();

    server = await restartMariaDB(server);
    const back = await connect(px.port, topo);
    expect((await back.query('SELECT 2 AS back'))[0]).toEqual([{ back: 2 }]);
    await back.end();
    expect((await idle.query('SELECT 3 AS again'))[0]).toEqual([{ again: 3 }]);
    busy.destroy();
    idle.destroy();
    holding.destroy();
  }, 60_000);
});

describe('limits and shutdown', () => {
  it('answers ERR 1040 past max_client_connections', async () => {
    const px = await startProxy(topo, { limits: { ...NO_LOGIN_LIMITS, maxClientConnections: 2, maxPacketBytes: 1 << 20 } });
    try {
      const a = await connect(px.port, topo);
      const b = await connect(px.port, topo);
      const err = (await connect(px.port, topo).catch((e) => e)) as mysql.QueryError;
      expect(err.errno).toBe(1040);
      expect(err.message).toBe('Too many connections');
      const text = await px.metrics.metricsText();
      expect(metricValue(text, 'wirecache_client_connections_refused_total', '{reason="max_connections"}')).toBe(1);
      await a.end();
      // A slot frees up once a client leaves.
      await new Promise((r) => setTimeout(r, 100));
      const c = await connect(px.port, topo);
      await c.end();
      await b.end();
    } finally {
      await px.stop();
    }
  });

  it('shuts down gracefully: queries in flight finish, idle sessions close, new clients are refused', async () => {
    const px = await startProxy(topo);
    const busy = await connect(px.port, topo);
    const idle = await connect(px.port, topo);
    const idleClosed = new Promise<void>((resolve) => idle.on('error', () => resolve()));
    const running = busy.query('SELECT SLEEP(1) AS slept');
    await new Promise((r) => setTimeout(r, 200));
    const stopped = px.proxy.shutdown(5000);
    await idleClosed;
    expect((await running)[0]).toEqual([{ slept: 0 }]);
    await stopped;
    await expect(connect(px.port, topo)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(px.proxy.sessions.size).toBe(0);
    busy.destroy();
  });

  it('closes sessions idle past client_idle_seconds, but not one running a long query', async () => {
    const px = await startProxy(topo, {
      timeouts: { backendConnectMs: 3000, clientHandshakeMs: 5000, clientReadMs: 5000, clientIdleSeconds: 1, shutdownGraceMs: 500 },
    });
    try {
      const idle = await connect(px.port, topo);
      const idleClosed = new Promise<Error>((resolve) => idle.on('error', resolve));
      const busy = await connect(px.port, topo);
      const [slept] = await busy.query('SELECT SLEEP(2.5) AS s');
      expect(slept).toEqual([{ s: 0 }]);
      // The proxy closed the idle session's socket (no ERR packet first), on its own, with no command pending.
      expect(await idleClosed).toMatchObject({ code: 'PROTOCOL_CONNECTION_LOST', fatal: true, message: 'Connection lost: The server closed the connection.' });
      await expect(idle.query('SELECT 1')).rejects.toMatchObject({ fatal: true, message: "Can't add new command when connection is in closed state" });
      expect([...px.proxy.sessions.keys()]).toEqual([busy.threadId]);
      busy.destroy();
    } finally {
      await px.stop();
    }
  });

  it('cuts queries that outlive the shutdown grace period', async () => {
    const px = await startProxy(topo);
    const busy = await connect(px.port, topo);
    const running = busy.query('SELECT SLEEP(20)').catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await px.proxy.shutdown(300);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await running).toBeInstanceOf(Error);
    busy.destroy();
  });
});
