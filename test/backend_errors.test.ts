/**
 * Backend failures as every kind of client sees them: the `mariadb` CLI
 * (libmariadb rejects client-range codes such as 2003/2013 from a server with
 * "2027 Received malformed packet"), PHP (mysqli, PDO) and mysql2 must each
 * show wirecache's message, and the proxy logs one warn line per failure.
 */
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerInfo } from '../scripts/topology.js';
import { createLogger } from '../src/logger.js';
import { Metrics } from '../src/metrics/metrics.js';
import { ProxyServer } from '../src/proxy_server.js';
import { testConfig } from './proxy-harness.js';
import { runCommand } from './run-command.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
const CLIENTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'clients');

interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

interface Proxy {
  proxy: ProxyServer;
  port: number;
  logs: LogLine[];
}

async function start(primary: ServerInfo): Promise<Proxy> {
  const logs: LogLine[] = [];
  const config = testConfig(topo, {}, primary);
  const metrics = new Metrics({ backendNames: ['primary'] });
  const logger = createLogger('warn', { destination: { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) } });
  const proxy = new ProxyServer(config, logger, metrics, metrics.cache, metrics.routing);
  const address = await proxy.start();
  return { proxy, port: address.port, logs };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

function mariadbCli(port: number, sql: string) {
  return runCommand('mariadb', ['--no-defaults', '-h127.0.0.1', `-P${port}`, '-uapp', '-papp_pw', '--batch', '--connect-timeout=10', '-e', sql, 'wc_test'], { timeoutMs: 30_000 });
}

async function php(port: number, driver: 'mysqli' | 'pdo', sql = ''): Promise<{ ok: boolean; errno?: number; sqlstate?: string; message?: string }> {
  const r = await runCommand('php', [path.join(CLIENTS, 'php_backend_error.php'), '127.0.0.1', String(port), 'app', 'app_pw', 'wc_test', driver, sql], { timeoutMs: 30_000 });
  expect(r.code, `php exited ${r.code}; stderr: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout.trim()) as { ok: boolean; errno?: number; sqlstate?: string; message?: string };
}

function mysql2Connect(port: number) {
  return mysql.createConnection({ host: '127.0.0.1', port, user: 'app', password: 'app_pw', database: 'wc_test' });
}

describe('a backend that cannot be reached', () => {
  let px: Proxy;
  beforeAll(async () => {
    const port = await closedPort();
    px = await start({ ...topo.primary, name: 'gone', port });
  });
  afterAll(async () => {
    await px?.proxy.shutdown(500);
  });

  const unreachable = /wirecache: backend 'primary' \(127\.0\.0\.1:\d+\) unavailable: .*ECONNREFUSED/;

  it('the mariadb CLI shows ERROR 9001 with the message, not 2027 malformed packet', async () => {
    const r = await mariadbCli(px.port, 'SELECT 1');
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toMatch(/2027|malformed/i);
    expect(r.stderr).toMatch(/ERROR 9001 \(HY000\)/);
    expect(r.stderr).toMatch(unreachable);
  });

  it('PHP mysqli and PDO show the message', async () => {
    for (const driver of ['mysqli', 'pdo'] as const) {
      const out = await php(px.port, driver);
      expect(out.ok).toBe(false);
      expect(out.errno).toBe(9001);
      expect(out.message).toMatch(unreachable);
    }
  });

  it('mysql2 shows the message', async () => {
    const err = (await mysql2Connect(px.port).catch((e: unknown) => e)) as mysql.QueryError;
    expect(err.errno).toBe(9001);
    expect(err.sqlState).toBe('HY000');
    expect(err.message).toMatch(unreachable);
  });

  it('logs a warn line for each failed login', () => {
    const warns = px.logs.filter((l) => l.level === 'warn' && l.msg === 'backend unreachable; the login fails');
    expect(warns.length).toBeGreaterThanOrEqual(4);
    expect(warns[0]).toMatchObject({ code: 9001, err: expect.stringMatching(/ECONNREFUSED/) });
  });
});

describe('a backend connection lost during a query', () => {
  let px: Proxy;
  let root: mysql.Connection;
  beforeAll(async () => {
    px = await start(topo.primary);
    root = await mysql.createConnection({ host: '127.0.0.1', port: topo.primary.port, user: 'root', password: topo.rootPassword });
  });
  afterAll(async () => {
    await root?.end();
    await px?.proxy.shutdown(500);
  });

  /** Runs `client` (which sends `SELECT SLEEP(n)` through the proxy) and cuts the backend connection once the statement runs there. */
  async function cutDuring<T>(marker: number, client: () => Promise<T>): Promise<T> {
    const pending = client();
    const sql = `SELECT SLEEP(${marker})`;
    const end = Date.now() + 20_000;
    for (;;) {
      const [rows] = await root.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO = ?', [sql]);
      if (Number(rows[0].n) > 0) break;
      if (Date.now() > end) throw new Error(`${sql} never reached the backend`);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const s of px.proxy.sessions.values()) (s as unknown as { backend: { socket: { destroy(): void } } | null }).backend?.socket.destroy();
    return pending;
  }

  const lost = /Lost connection to backend primary \(127\.0\.0\.1:\d+\) during query/;

  it('the mariadb CLI shows ERROR 1927 with the message', async () => {
    const r = await cutDuring(11, () => mariadbCli(px.port, 'SELECT SLEEP(11)'));
    expect(r.stderr).not.toMatch(/2027|malformed/i);
    expect(r.stderr).toMatch(/ERROR 1927 \(08S01\)/);
    expect(r.stderr).toMatch(lost);
  });

  it('PHP mysqli and PDO show the message', async () => {
    const m = await cutDuring(12, () => php(px.port, 'mysqli', 'SELECT SLEEP(12)'));
    expect(m).toMatchObject({ ok: false, errno: 1927 });
    expect(m.message).toMatch(lost);
    const p = await cutDuring(13, () => php(px.port, 'pdo', 'SELECT SLEEP(13)'));
    expect(p).toMatchObject({ ok: false, errno: 1927 });
    expect(p.message).toMatch(lost);
  });

  it('mysql2 shows the message', async () => {
    const conn = await mysql2Connect(px.port);
    conn.on('error', () => {});
    const err = (await cutDuring(14, () => conn.query('SELECT SLEEP(14)').catch((e: unknown) => e))) as mysql.QueryError;
    expect(err.errno).toBe(1927);
    expect(err.message).toMatch(lost);
  });

  it('logs a warn line for each lost connection', () => {
    const warns = px.logs.filter((l) => l.level === 'warn' && l.msg === 'backend connection lost');
    expect(warns.length).toBeGreaterThanOrEqual(4);
  });
});
