/**
 * sysbench oltp_read_write (MariaDB Connector/C, 4 threads) through wirecache:
 * prepare, a run with server-side prepared statements (--db-ps-mode=auto), a
 * run with the text protocol (--db-ps-mode=disable), cleanup.
 *
 * InnoDB deadlocks between the 4 threads are real server behaviour (they also
 * happen without the proxy), and sysbench retries them as "ignored errors".
 * Only error 1213 is allowed to be ignored (any other error makes sysbench
 * fail), and the number of ignored errors must equal the deadlocks the server
 * itself counted (Innodb_deadlocks): nothing else may go wrong.
 *
 * sysbench runs as a child process with async spawn: the proxy lives in this
 * worker's event loop, so a synchronous exec would deadlock.
 */
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, type RunResult } from './run-command.js';
import { getTopology } from './topology-context.js';
import { connect, startProxy, type RunningProxy } from './proxy-harness.js';

const topo = getTopology();
const DB = 'sbtest_wc';
const RUN_TIMEOUT_MS = 60_000;
const run = (cmd: string, args: string[], timeoutMs = RUN_TIMEOUT_MS) => runCommand(cmd, args, { timeoutMs });
const RUN_SECONDS = 8;
const TABLES = 2;
const TABLE_SIZE = 1000;


let px: RunningProxy;
let root: mysql.Connection;

async function sysbench(phase: 'prepare' | 'run' | 'cleanup', extra: string[] = []): Promise<RunResult> {
  const args = [
    'oltp_read_write',
    '--db-driver=mysql',
    '--mysql-host=127.0.0.1',
    `--mysql-port=${px.port}`,
    '--mysql-user=app',
    '--mysql-password=app_pw',
    `--mysql-db=${DB}`,
    '--mysql-ignore-errors=1213',
    `--tables=${TABLES}`,
    `--table-size=${TABLE_SIZE}`,
    '--threads=4',
    '--report-interval=0',
    ...extra,
    phase,
  ];
  const r = await run('sysbench', args);
  const where = `sysbench ${phase} ${extra.join(' ')}`;
  expect(r.timedOut, `${where} timed out after ${RUN_TIMEOUT_MS} ms\n${r.stdout}\n${r.stderr}`).toBe(false);
  expect(r.code, `${where} exited ${r.code} (signal ${r.signal})\n${r.stdout}\n${r.stderr}`).toBe(0);
  expect(r.stdout + r.stderr).not.toMatch(/FATAL|ALERT/);
  return r;
}

interface RunStats {
  read: number;
  write: number;
  other: number;
  total: number;
  transactions: number;
  queries: number;
  ignoredErrors: number;
  reconnects: number;
}

function parseRun(out: string): RunStats {
  const num = (re: RegExp): number => {
    const m = re.exec(out);
    if (!m) throw new Error(`sysbench output lacks ${re}:\n${out}`);
    return Number(m[1]);
  };
  return {
    read: num(/^\s+read:\s+(\d+)$/m),
    write: num(/^\s+write:\s+(\d+)$/m),
    other: num(/^\s+other:\s+(\d+)$/m),
    total: num(/^\s+total:\s+(\d+)$/m),
    transactions: num(/^\s+transactions:\s+(\d+)\s/m),
    queries: num(/^\s+queries:\s+(\d+)\s/m),
    ignoredErrors: num(/^\s+ignored errors:\s+(\d+)\s/m),
    reconnects: num(/^\s+reconnects:\s+(\d+)\s/m),
  };
}

async function serverStatus(): Promise<Record<string, number>> {
  const [rows] = await root.query(
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_deadlocks', 'Com_stmt_execute', 'Com_stmt_prepare')",
  );
  const out: Record<string, number> = {};
  for (const r of rows as { Variable_name: string; Value: string }[]) out[r.Variable_name] = Number(r.Value);
  return out;
}

/** wirecache_queries_total by command label. */
async function proxyCounts(): Promise<Record<string, number>> {
  return px.metrics.queriesByCommand();
}

const diff = (a: Record<string, number>, b: Record<string, number>, key: string): number => (b[key] ?? 0) - (a[key] ?? 0);

beforeAll(async () => {
  px = await startProxy(topo);
  root = await connect(topo.primary.port, topo, { user: 'root' });
  await root.query(`DROP DATABASE IF EXISTS ${DB}`);
  await root.query(`CREATE DATABASE ${DB}`);
});

afterAll(async () => {
  await root?.query(`DROP DATABASE IF EXISTS ${DB}`);
  await root?.end();
  await px?.stop();
});

describe('sysbench oltp_read_write through wirecache', () => {
  it('prepares the tables', async () => {
    const r = await sysbench('prepare');
    expect(r.stdout).toContain(`Inserting ${TABLE_SIZE} records into 'sbtest1'`);
    for (let t = 1; t <= TABLES; t++) {
      const [rows] = await root.query(`SELECT COUNT(*) AS n FROM ${DB}.sbtest${t}`);
      expect(rows).toEqual([{ n: TABLE_SIZE }]);
    }
  });

  for (const psMode of ['auto', 'disable'] as const) {
    it(`runs with --db-ps-mode=${psMode} without errors`, async () => {
      const server0 = await serverStatus();
      const proxy0 = await proxyCounts();
      const r = await sysbench('run', [`--time=${RUN_SECONDS}`, `--db-ps-mode=${psMode}`]);
      const server1 = await serverStatus();
      const proxy1 = await proxyCounts();
      const s = parseRun(r.stdout);

      expect(s.transactions).toBeGreaterThan(0);
      expect(s.reconnects).toBe(0);
      // Each ignored error is an InnoDB deadlock victim the server itself counted.
      expect(s.ignoredErrors).toBe(diff(server0, server1, 'Innodb_deadlocks'));
      expect(s.ignoredErrors).toBeLessThan(Math.max(5, s.transactions / 50));
      expect(s.total).toBe(s.queries);
      // 10 point selects + 4 ranges, 4 writes, BEGIN + COMMIT per transaction (plus the rolled-back tries).
      expect(s.read).toBeGreaterThanOrEqual(s.transactions * 14);
      expect(s.write).toBeGreaterThanOrEqual(s.transactions * 4);

      const serverExecutes = diff(server0, server1, 'Com_stmt_execute');
      const proxyExecutes = diff(proxy0, proxy1, 'COM_STMT_EXECUTE');
      if (psMode === 'auto') {
        // Server-side prepared statements: every read and write went as COM_STMT_EXECUTE.
        expect(proxyExecutes).toBeGreaterThanOrEqual(s.read + s.write);
        expect(serverExecutes).toBe(proxyExecutes);
        expect(diff(proxy0, proxy1, 'COM_STMT_PREPARE')).toBeGreaterThan(0);
      } else {
        expect(proxyExecutes).toBe(0);
        expect(serverExecutes).toBe(0);
        expect(diff(proxy0, proxy1, 'COM_QUERY')).toBeGreaterThanOrEqual(s.total);
      }
    });
  }

  it('cleans up', async () => {
    await sysbench('cleanup');
    const [rows] = await root.query('SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ?', [DB]);
    expect(rows).toEqual([{ n: 0 }]);
    // Every sysbench connection has ended its proxy session.
    const deadline = Date.now() + 5000;
    while (px.proxy.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(px.proxy.sessions.size).toBe(0);
  });
});
