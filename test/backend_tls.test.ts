/**
 * TLS from wirecache to a backend: a MariaDB started with a certificate
 * signed by a CA made for the run. The backend's own Ssl_cipher status shows
 * that the proxy's connection is encrypted.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, stopMariaDB, type ServerInfo } from '../scripts/topology.js';
import { startProxy } from './proxy-harness.js';
import { runCommand } from './run-command.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
let dir: string;
let ca: string;
let server: ServerInfo;

async function openssl(args: string[]): Promise<void> {
  const r = await runCommand('openssl', args, { cwd: dir });
  expect(r.code, r.stderr).toBe(0);
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-backend-tls-'));
  ca = path.join(dir, 'ca.pem');
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=wirecache test CA']);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=localhost']);
  await fs.writeFile(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server-cert.pem', '-days', '2', '-extfile', 'san.ext']);
  server = await startMariaDB({
    name: 'tlsbackend',
    baseDir: dir,
    serverId: 90,
    templateDir: topo.templateDir,
    extraArgs: [`--ssl-ca=${ca}`, `--ssl-cert=${path.join(dir, 'server-cert.pem')}`, `--ssl-key=${path.join(dir, 'server-key.pem')}`],
  });
}, 120_000);

afterAll(async () => {
  if (server) await stopMariaDB(server);
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const backendOf = (s: { host: string; port: number }) => [{ name: 'tlsdb', host: s.host, port: s.port, role: 'primary' as const, weight: 1 }];

async function sslCipherThrough(port: number): Promise<string | { errno: number; message: string }> {
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'app', password: 'app_pw' }).catch((e: { errno: number; message: string }) => e);
  if (!('query' in c)) return c;
  const [rows] = await c.query<mysql.RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
  await c.end();
  return String(rows[0].Value);
}

describe('TLS to backends', () => {
  it('encrypts the connection and verifies the server certificate against the configured CA', async () => {
    const px = await startProxy(topo, { backends: backendOf(server), backendTls: { caFile: ca, verify: true } });
    try {
      expect(await sslCipherThrough(px.port)).toMatch(/^TLS_|^ECDHE|AES/);
    } finally {
      await px.stop();
    }
    const plain = await startProxy(topo, { backends: backendOf(server), backendTls: null });
    try {
      expect(await sslCipherThrough(plain.port)).toBe('');
    } finally {
      await plain.stop();
    }
  });

  it('refuses a certificate it cannot verify, unless verify is off', async () => {
    const strict = await startProxy(topo, { backends: backendOf(server), backendTls: { caFile: null, verify: true } });
    try {
      const failure = await sslCipherThrough(strict.port);
      expect(failure).toMatchObject({ errno: 9001 });
      expect((failure as { message: string }).message).toMatch(/TLS handshake failed: .*(certificate|self.signed|issuer)/i);
    } finally {
      await strict.stop();
    }
    const lax = await startProxy(topo, { backends: backendOf(server), backendTls: { caFile: null, verify: false } });
    try {
      expect(await sslCipherThrough(lax.port)).toMatch(/^TLS_|^ECDHE|AES/);
    } finally {
      await lax.stop();
    }
  });

  it('fails the login with a clear error when the backend offers no TLS', async () => {
    const px = await startProxy(topo, { backendTls: { caFile: null, verify: false } });
    try {
      const failure = await sslCipherThrough(px.port);
      expect(failure).toMatchObject({ errno: 9001 });
      expect((failure as { message: string }).message).toMatch(/does not offer TLS, which backend_tls requires/);
    } finally {
      await px.stop();
    }
  });
});
