/**
 * High availability on a replication set of its own (the shared topology is
 * never promoted or killed): promotion of a replica, two writable servers,
 * a replica killed under sysbench, a write whose connection dies.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { restartMariaDB, startReplicationSet, stopMariaDB, stopReplicationSet, waitForReplication, type ReplicationSetInfo } from '../scripts/topology.js';
import { connect, routingConfig, startProxy, type RunningProxy } from './proxy-harness.js';
import { runCommand as run } from './run-command.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
type Row = mysql.RowDataPacket;

let set: ReplicationSetInfo;
let baseDir: string;

const rootOn = (port: number) => mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: set.rootPassword });

async function serverIdOf(conn: mysql.Connection, sql = 'SELECT @@server_id AS id'): Promise<number> {
  const [rows] = await conn.query<Row[]>(sql);
  return Number(rows[0].id);
}

beforeAll(async () => {
  baseDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-failover-'));
  set = await startReplicationSet({ baseDir, templateDir: topo.templateDir, replicas: 2 });
  const root = await rootOn(set.primary.port);
  await root.query('CREATE TABLE wc_test.ha (id INT PRIMARY KEY AUTO_INCREMENT, sid INT)');
  await root.end();
  await waitForReplication({ ...set, memcached: topo.memcached });
});

afterAll(async () => {
  if (set) await stopReplicationSet(set);
  if (baseDir) await fs.rm(baseDir, { recursive: true, force: true });
});

describe('a replica dies', () => {
  it('a replica killed while sysbench oltp_read_only runs through the proxy: zero client errors', async () => {
    const px = await startProxy(topo, routingConfig(set, { monitor: { intervalMs: 300 } }), set.primary);
    const common = [
      '--db-driver=mysql',
      '--mysql-host=127.0.0.1',
      `--mysql-user=app`,
      '--mysql-password=app_pw',
      '--mysql-db=wc_test',
      '--tables=2',
      '--table-size=2000',
    ];
    try {
      const prepare = await run('sysbench', ['oltp_read_only', ...common, `--mysql-port=${set.primary.port}`, 'prepare']);
      expect(prepare.code, prepare.stderr + prepare.stdout).toBe(0);
      await waitForReplication({ ...set, memcached: topo.memcached });
      const victim = set.replicas[0];
      const running = run('sysbench', [
        'oltp_read_only',
        ...common,
        `--mysql-port=${px.port}`,
        '--threads=4',
        '--time=6',
        '--skip_trx=on',
        '--report-interval=1',
        'run',
        // A hung session must fail this test within its time, with the replica restarted for the next tests.
      ], { timeoutMs: 30_000 });
      await new Promise((r) => setTimeout(r, 2000));
      await stopMariaDB(victim, { signal: 'SIGKILL' });
      const result = await running;
      expect(result.timedOut, 'sysbench hung: a session never answered').toBe(false);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toMatch(/ignored errors:\s+0 /);
      expect(result.stdout).toMatch(/reconnects:\s+0 /);
      expect(result.stderr).not.toMatch(/FATAL|error/i);
      await vi.waitFor(() => expect(px.proxy.monitor!.server(victim.name)!.state).toBe('down'), { timeout: 5000 });
      expect(px.proxy.monitor!.server(victim.name)!.inRotation).toBe(false);
      const metrics = await px.metrics.metricsText();
      // Reads did run on the replica before it died.
      expect(px.metrics.routing.routedCount('replica', victim.name, 'read')).toBeGreaterThan(0);
      expect(metrics).toMatch(/wirecache_server_state\{server="replica1",state="down"\} 1/);
    } finally {
      await px.stop();
      set.replicas[0] = await restartMariaDB(set.replicas[0]);
      await run('sysbench', ['oltp_read_only', ...common, `--mysql-port=${set.primary.port}`, 'cleanup']);
      await waitForReplication({ ...set, memcached: topo.memcached });
    }
  });

  it('reports a write whose connection fails and never runs it twice', async () => {
    const px = await startProxy(topo, routingConfig(set), set.primary);
    const conn = await connect(px.port, set as never);
    const root = await rootOn(set.primary.port);
    try {
      await conn.query('INSERT INTO ha (id, sid) VALUES (1000, 0)');
      const [[{ thread }]] = await conn.query<Row[]>('SELECT CONNECTION_ID() AS thread');
      const slow = conn.query('UPDATE ha SET sid = sid + 1 WHERE id = 1000 AND SLEEP(1) = 0').catch((e: Error) => e);
      await new Promise((r) => setTimeout(r, 300));
      await root.query(`KILL ${Number(thread)}`);
      expect(await slow).toMatchObject({ errno: 1927 });
      await new Promise((r) => setTimeout(r, 1500));
      const [rows] = await root.query<Row[]>('SELECT sid FROM wc_test.ha WHERE id = 1000');
      expect(rows[0].sid).toBe(0);
    } finally {
      await conn.end().catch(() => undefined);
      await root.end();
      await px.stop();
    }
  });
});

describe('primary discovery', () => {
  let px: RunningProxy;

  beforeAll(async () => {
    px = await startProxy(topo, routingConfig(set, { monitor: { intervalMs: 300 } }), set.primary);
  });

  afterAll(async () => {
    await px?.stop();
  });

  it('follows a promoted replica within two monitor intervals, without reconnecting idle clients, and rolls back a transaction open on the old primary with a clear error', async () => {
    const idle = await connect(px.port, set as never);
    const inTransaction = await connect(px.port, set as never);
    const oldPrimary = await rootOn(set.primary.port);
    const promoted = await rootOn(set.replicas[0].port);
    try {
      await idle.query('INSERT INTO ha (sid) VALUES (@@server_id)');
      await inTransaction.query('BEGIN');
      await inTransaction.query('INSERT INTO ha (sid) VALUES (@@server_id)');
      await waitForReplication({ ...set, memcached: topo.memcached });

      await promoted.query('STOP SLAVE');
      await promoted.query('SET GLOBAL read_only = OFF');
      await oldPrimary.query('SET GLOBAL read_only = ON');
      const promotedAt = Date.now();
      await vi.waitFor(() => expect(px.proxy.monitor!.primary()?.name).toBe('replica1'), { timeout: 5000, interval: 20 });
      expect(Date.now() - promotedAt).toBeLessThan(2 * 300 + 300);

      // The idle client's next write lands on the new primary.
      await idle.query('INSERT INTO ha (sid) VALUES (@@server_id)');
      const [rows] = await promoted.query<Row[]>('SELECT sid FROM wc_test.ha ORDER BY id DESC LIMIT 1');
      expect(rows[0].sid).toBe(2);
      // The transaction on the old primary is lost: the client is told, with a retryable error.
      const failure = await inTransaction.query('INSERT INTO ha (sid) VALUES (@@server_id)').catch((e: { errno: number; sqlState: string; message: string }) => e);
      expect(failure).toMatchObject({ errno: 1213, sqlState: '40001' });
      expect((failure as unknown as Error).message).toMatch(/primary moved from primary to replica1/);
      // ... and the session goes on, on the new primary.
      expect(await serverIdOf(inTransaction, 'SELECT @@server_id AS id FROM ha LIMIT 1 FOR UPDATE')).toBe(2);
      const metrics = await px.metrics.metricsText();
      expect(metrics).toMatch(/wirecache_primary_changes_total [1-9]/);
      expect(metrics).toMatch(/wirecache_primary_move_interruptions_total\{what="transaction"\} 1/);
    } finally {
      await idle.end().catch(() => undefined);
      await inTransaction.end().catch(() => undefined);
      await oldPrimary.end();
      await promoted.end();
    }
  });

  it('refuses writes while two servers are writable, and takes them again once one is read-only', async () => {
    const conn = await connect(px.port, set as never);
    const oldPrimary = await rootOn(set.primary.port);
    try {
      await oldPrimary.query('SET GLOBAL read_only = OFF');
      await vi.waitFor(() => expect(px.proxy.monitor!.writableConflict()).toEqual(['primary', 'replica1']), { timeout: 5000, interval: 20 });
      const failure = await conn.query('INSERT INTO ha (sid) VALUES (@@server_id)').catch((e: { errno: number; message: string }) => e);
      expect(failure).toMatchObject({ errno: 1290 });
      expect((failure as unknown as Error).message).toMatch(/primary and replica1 are all writable/);
      // Reads still work.
      expect([1, 2, 3]).toContain(await serverIdOf(conn));
      expect(await px.metrics.metricsText()).toMatch(/wirecache_writes_refused_total\{reason="writable_conflict"\} [1-9]/);
      await oldPrimary.query('SET GLOBAL read_only = ON');
      await vi.waitFor(() => expect(px.proxy.monitor!.primary()?.name).toBe('replica1'), { timeout: 5000, interval: 20 });
      await conn.query('INSERT INTO ha (sid) VALUES (@@server_id)');
    } finally {
      await conn.end();
      await oldPrimary.end();
    }
  });
});
