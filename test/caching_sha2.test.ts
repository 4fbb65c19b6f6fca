/**
 * caching_sha2_password between clients and wirecache (the backends keep
 * mysql_native_password): fast authentication, full authentication over TLS
 * and with the RSA key exchange, with mysql2, the mariadb CLI and PHP.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doubleSha1, hashedUser } from '../src/config/accounts.js';
import { startProxy, testConfig, type RunningProxy } from './proxy-harness.js';
import { runCommand } from './run-command.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
let dir: string;
let cert: string;
let key: string;
let px: RunningProxy;

/** `other` is configured by its mysql.user hash only: its first login needs full authentication. */
const otherHash = () => `*${doubleSha1('other_pw').toString('hex').toUpperCase()}`;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-sha2-'));
  cert = path.join(dir, 'cert.pem');
  key = path.join(dir, 'key.pem');
  const r = await runCommand('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost']);
  expect(r.code, r.stderr).toBe(0);
  const base = testConfig(topo);
  px = await startProxy(topo, {
    tls: { certFile: cert, keyFile: key, requireTls: false },
    auth: { defaultPlugin: 'caching_sha2_password', rsaPrivateKeyFile: null, rsaPublicKeyFile: null },
    users: [...base.users.filter((u) => u.name !== 'other'), hashedUser('other', otherHash())],
  });
});

afterAll(async () => {
  await px?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const login = (user: string, password: string, ssl: boolean) =>
  mysql
    .createConnection({
      host: '127.0.0.1',
      port: px.port,
      user,
      password,
      database: 'wc_test',
      ...(ssl ? { ssl: { rejectUnauthorized: false } } : {}),
    })
    .catch((e: { errno: number; message: string }) => e);

async function authentications(p: RunningProxy = px): Promise<Record<string, number>> {
  const text = await p.metrics.metricsText();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^wirecache_client_authentications_total\{method="(\w+)"\} (\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

async function currentUser(c: mysql.Connection | { errno: number }): Promise<string> {
  const conn = c as mysql.Connection;
  const [rows] = await conn.query('SELECT CURRENT_USER() AS u');
  await conn.end();
  return (rows as { u: string }[])[0].u;
}

describe('caching_sha2_password for clients', () => {
  it('proposes caching_sha2_password in the greeting', async () => {
    const net = await import('node:net');
    const socket = net.connect({ host: '127.0.0.1', port: px.port });
    const greeting = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
    socket.destroy();
    expect(greeting.includes(Buffer.from('caching_sha2_password\0'))).toBe(true);
  });

  it('mysql2: fast authentication for an account whose password the config gives', async () => {
    const before = await authentications();
    expect(await currentUser(await login('app', 'app_pw', false))).toBe('app@%');
    expect(await login('app', 'wrong', false)).toMatchObject({ errno: 1045 });
    const after = await authentications();
    expect(after.sha2_fast - before.sha2_fast).toBe(1);
    expect(after.native - before.native).toBe(0);
  });

  it('mysql2 without TLS: full authentication through the RSA public key, then fast authentication next time', async () => {
    const before = await authentications();
    expect(await login('other', 'wrong', false)).toMatchObject({ errno: 1045 });
    expect(await currentUser(await login('other', 'other_pw', false))).toBe('other@%');
    const mid = await authentications();
    expect(mid.sha2_full_rsa - before.sha2_full_rsa).toBe(1);
    // The digest learnt from the full authentication now allows the fast path (and a wrong password still fails).
    expect(await currentUser(await login('other', 'other_pw', false))).toBe('other@%');
    expect(await login('other', 'wrong', false)).toMatchObject({ errno: 1045 });
    const after = await authentications();
    expect(after.sha2_fast - mid.sha2_fast).toBe(1);
    expect(after.sha2_full_rsa - mid.sha2_full_rsa).toBe(0);
  });

  it('mysql2 over TLS: full authentication with the password sent inside TLS', async () => {
    const base = testConfig(topo);
    const fresh = await startProxy(topo, {
      tls: { certFile: cert, keyFile: key, requireTls: false },
      auth: { defaultPlugin: 'caching_sha2_password', rsaPrivateKeyFile: null, rsaPublicKeyFile: null },
      users: [...base.users.filter((u) => u.name !== 'other'), hashedUser('other', otherHash())],
    });
    try {
      const c = (await mysql.createConnection({ host: '127.0.0.1', port: fresh.port, user: 'other', password: 'other_pw', ssl: { rejectUnauthorized: false } })) as mysql.Connection;
      expect((c as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream.encrypted).toBe(true);
      expect(await currentUser(c)).toBe('other@%');
      expect((await authentications(fresh)).sha2_full_tls).toBe(1);
      const bad = await mysql
        .createConnection({ host: '127.0.0.1', port: fresh.port, user: 'other', password: 'nope', ssl: { rejectUnauthorized: false } })
        .catch((e: { errno: number }) => e);
      expect(bad).toMatchObject({ errno: 1045 });
      expect(await mysql.createConnection({ host: '127.0.0.1', port: fresh.port, user: 'ghost', password: 'x', ssl: { rejectUnauthorized: false } }).catch((e: { errno: number }) => e)).toMatchObject({ errno: 1045 });
    } finally {
      await fresh.stop();
    }
  });

  it('the mariadb client and PHP mysqlnd log in with caching_sha2_password over TLS', async () => {
    const cli = await runCommand('mariadb', ['-h127.0.0.1', `-P${px.port}`, '-uother', '-pother_pw', '--ssl', '--ssl-verify-server-cert=0', 'wc_test', '-N', '-e', 'SELECT CURRENT_USER()']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout.trim()).toBe('other@%');
    const php = await runCommand('php', [path.join(import.meta.dirname, 'clients/php_tls.php'), '127.0.0.1', String(px.port), 'app', 'app_pw', 'wc_test', cert]);
    expect(php.code, php.stderr + php.stdout).toBe(0);
    expect(String((JSON.parse(php.stdout) as { pdo: { value: string } }).pdo.value)).toBe('42');
  });
});
