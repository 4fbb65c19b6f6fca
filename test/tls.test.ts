/**
 * TLS between clients and wirecache: mysql2, the mariadb CLI, PHP mysqli and
 * PDO over TLS; require_tls globally and per user, with the errors clients
 * expect. The certificate is a self-signed pair made with openssl for the run.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plainUser } from '../src/config/accounts.js';
import { startProxy, testConfig, type RunningProxy } from './proxy-harness.js';
import { runCommand } from './run-command.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
let dir: string;
let cert: string;
let key: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-tls-'));
  cert = path.join(dir, 'cert.pem');
  key = path.join(dir, 'key.pem');
  const root = await mysql.createConnection({ host: '127.0.0.1', port: topo.primary.port, user: 'root', password: topo.rootPassword });
  await root.query("CREATE USER IF NOT EXISTS 'tlsonly'@'%' IDENTIFIED BY 'app_pw'");
  await root.query("GRANT SELECT ON wc_test.* TO 'tlsonly'@'%'");
  await root.end();
  const r = await runCommand('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost']);
  expect(r.code, r.stderr).toBe(0);
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
  const root = await mysql.createConnection({ host: '127.0.0.1', port: topo.primary.port, user: 'root', password: topo.rootPassword });
  await root.query("DROP USER IF EXISTS 'tlsonly'@'%'");
  await root.end();
});

const tlsProxy = (requireTls: boolean) => {
  const base = testConfig(topo);
  return startProxy(topo, {
    tls: { certFile: cert, keyFile: key, requireTls },
    users: [...base.users, { ...plainUser('tlsonly', 'app_pw'), requireTls: true }],
  });
};

const connectTls = async (port: number, user = 'app') => {
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user, password: 'app_pw', database: 'wc_test', ssl: { ca: await fs.readFile(cert), rejectUnauthorized: false } });
  return c;
};

describe('TLS for clients', () => {
  let px: RunningProxy;
  beforeAll(async () => {
    px = await tlsProxy(false);
  });
  afterAll(async () => {
    await px?.stop();
  });

  it('mysql2 logs in and runs queries over TLS, and still without it when TLS is optional', async () => {
    const c = await connectTls(px.port);
    const stream = (c as unknown as { connection: { stream: { encrypted?: boolean; getProtocol?: () => string } } }).connection.stream;
    expect(stream.encrypted).toBe(true);
    expect(stream.getProtocol?.()).toMatch(/^TLSv1\.[23]$/);
    const [rows] = await c.query('SELECT 40 + 2 AS v, REPEAT("x", 100000) AS big');
    expect((rows as { v: number; big: string }[])[0].v).toBe(42);
    expect((rows as { v: number; big: string }[])[0].big.length).toBe(100000);
    const [prepared] = await c.execute('SELECT ? + 1 AS n', [41]);
    expect(prepared).toEqual([{ n: 42 }]);
    await c.end();
    const plain = await mysql.createConnection({ host: '127.0.0.1', port: px.port, user: 'app', password: 'app_pw' });
    const [one] = await plain.query('SELECT 1 AS one');
    expect(one).toEqual([{ one: 1 }]);
    await plain.end();
  });

  it('the mariadb command-line client connects with --ssl and says so', async () => {
    const r = await runCommand('mariadb', ['-h127.0.0.1', `-P${px.port}`, '-uapp', '-papp_pw', '--ssl', '--ssl-ca', cert, '--ssl-verify-server-cert=0', 'wc_test'], {
      input: 'SELECT 40 + 2 AS v;\nstatus\n',
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^v\n42\n/);
    expect(r.stdout).toMatch(/SSL:\s+Cipher in use is \S+/);
  });

  it('PHP mysqli and PDO (mysqlnd) connect over TLS', async () => {
    const r = await runCommand('php', [path.join(import.meta.dirname, 'clients/php_tls.php'), '127.0.0.1', String(px.port), 'app', 'app_pw', 'wc_test', cert]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const out = JSON.parse(r.stdout) as { mysqli: { value: string | number }; pdo: { value: string | number } };
    expect(String(out.mysqli.value)).toBe('42');
    expect(String(out.pdo.value)).toBe('42');
  });

  it('an account with require_tls is refused without TLS (ERR 1045) and accepted with it', async () => {
    const refused = await mysql
      .createConnection({ host: '127.0.0.1', port: px.port, user: 'tlsonly', password: 'app_pw' })
      .catch((e: { errno: number; message: string }) => e);
    expect(refused).toMatchObject({ errno: 1045 });
    expect((refused as unknown as Error).message).toMatch(/Access denied for user 'tlsonly'/);
    const overTls = await connectTls(px.port, 'tlsonly');
    const [rows] = await overTls.query('SELECT CURRENT_USER() AS u');
    expect(rows).toEqual([{ u: 'tlsonly@%' }]);
    await overTls.end();
  });

  it('refuses a second SSLRequest and garbage instead of a TLS hello without crashing', async () => {
    const net = await import('node:net');
    const socket = net.connect({ host: '127.0.0.1', port: px.port });
    socket.on('error', () => {});
    await new Promise((r) => socket.once('connect', r));
    await new Promise((r) => socket.once('data', r));
    const ssl = Buffer.alloc(36);
    ssl.writeUIntLE(32, 0, 3);
    ssl[3] = 1;
    ssl.writeUInt32LE(0x0800 | 0x0200 | 0x8000 | 0x80000, 4);
    socket.write(Buffer.concat([ssl, Buffer.from('this is not a TLS client hello at all')]));
    const closed = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 6000);
      socket.once('close', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    expect(closed).toBe(true);
    const c = await connectTls(px.port);
    await c.query('SELECT 1');
    await c.end();
  });
});

describe('tls.require_tls', () => {
  it('refuses a plain connection with ERR 3159 and accepts TLS', async () => {
    const px = await tlsProxy(true);
    try {
      const refused = await mysql
        .createConnection({ host: '127.0.0.1', port: px.port, user: 'app', password: 'app_pw' })
        .catch((e: { errno: number; sqlState: string; message: string }) => e);
      expect(refused).toMatchObject({ errno: 3159, sqlState: '08004' });
      expect((refused as unknown as Error).message).toMatch(/insecure transport are prohibited/);
      const c = await connectTls(px.port);
      const [rows] = await c.query('SELECT 1 AS one');
      expect(rows).toEqual([{ one: 1 }]);
      await c.end();
    } finally {
      await px.stop();
    }
  });
});
