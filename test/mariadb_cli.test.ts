/**
 * The `mariadb` command-line client (MariaDB Connector/C inside) through
 * wirecache: batch output, client commands (USE, status -> COM_STATISTICS),
 * server and login errors, and LOAD DATA LOCAL INFILE.
 *
 * The client runs as a child process with async spawn: the proxy lives in this
 * worker's event loop, so a synchronous exec would deadlock.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, type RunResult } from './run-command.js';
import { getTopology } from './topology-context.js';
import { connect, startProxy, type RunningProxy } from './proxy-harness.js';
import { waitFor } from './wait.js';

const topo = getTopology();
const RUN_TIMEOUT_MS = 60_000;
const run = (cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}) =>
  runCommand(cmd, args, { timeoutMs: RUN_TIMEOUT_MS, ...opts });


interface CliOptions {
  user?: string;
  /** null: no -p at all (no password). */
  password?: string | null;
  database?: string | null;
  extra?: string[];
  execute?: string;
  input?: string;
}

/**
 * `mariadb --no-defaults` (so no /etc/mysql option file changes the behaviour)
 * against 127.0.0.1:port in --batch --raw mode.
 */
async function mariadb(port: number, opts: CliOptions): Promise<RunResult> {
  const args = ['--no-defaults', '-h127.0.0.1', `-P${port}`, `-u${opts.user ?? 'app'}`, '--batch', '--raw', '--connect-timeout=10'];
  const password = opts.password === undefined ? 'app_pw' : opts.password;
  if (password !== null) args.push(`-p${password}`);
  args.push(...(opts.extra ?? []));
  if (opts.execute !== undefined) args.push('-e', opts.execute);
  const database = opts.database === undefined ? 'wc_test' : opts.database;
  if (database !== null) args.push(database);
  const r = await run('mariadb', args, { input: opts.input });
  expect(r.timedOut, `mariadb ${args.join(' ')} timed out; stderr: ${r.stderr}`).toBe(false);
  return r;
}

function expectOk(r: RunResult): void {
  expect(r.code, `mariadb exited ${r.code}; stderr: ${r.stderr}`).toBe(0);
  expect(r.stderr).toBe('');
}

let px: RunningProxy;
let root: mysql.Connection;
let tmpDir: string;

async function commandCount(command: string): Promise<number> {
  const metric = px.metrics.registry.getSingleMetric('wirecache_queries_total');
  if (!metric) throw new Error('wirecache_queries_total not registered');
  const data = await metric.get();
  return data.values.find((v) => v.labels.command === command)?.value ?? 0;
}

beforeAll(async () => {
  px = await startProxy(topo);
  root = await connect(topo.primary.port, topo, { user: 'root', multipleStatements: true });
  await root.query(`
    DROP TABLE IF EXISTS wc_test.cli_items;
    CREATE TABLE wc_test.cli_items (id INT PRIMARY KEY, name VARCHAR(64) NULL, note TEXT NULL) DEFAULT CHARSET=utf8mb4;
    INSERT INTO wc_test.cli_items VALUES (1, 'one', NULL), (2, NULL, 'tab\\there'), (3, '😀', '');
    DROP TABLE IF EXISTS wc_test.cli_load;
    CREATE TABLE wc_test.cli_load (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, v DOUBLE NULL) DEFAULT CHARSET=utf8mb4;
  `);
  tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-cli-'));
});

afterAll(async () => {
  await root?.query('DROP TABLE IF EXISTS wc_test.cli_items; DROP TABLE IF EXISTS wc_test.cli_load');
  await root?.end();
  await px?.stop();
  if (tmpDir) await fs.rm(tmpDir, { recursive: true, force: true });
});

describe('mariadb CLI through wirecache', () => {
  it('runs statements in batch mode with the same output as directly', async () => {
    const sql = [
      'SHOW DATABASES',
      'SELECT id, name, note FROM cli_items ORDER BY id',
      'SELECT NULL AS n, 1 + 1 AS two',
      'USE mysql',
      'SELECT DATABASE() AS db',
    ].join('; ');
    const proxied = await mariadb(px.port, { execute: sql, extra: ['--default-character-set=utf8mb4'] });
    expectOk(proxied);
    // The monitor's heartbeat schema exists once a routing test has run on the shared topology.
    expect(proxied.stdout.replace(/^wirecache\n/m, '')).toBe(
      [
        'Database',
        'information_schema',
        'mysql',
        'performance_schema',
        'sys',
        'wc_test',
        'id\tname\tnote',
        '1\tone\tNULL',
        '2\tNULL\ttab\there',
        '3\t😀\t',
        'n\ttwo',
        'NULL\t2',
        'db',
        'mysql',
        '',
      ].join('\n'),
    );
    const direct = await mariadb(topo.primary.port, { execute: sql, extra: ['--default-character-set=utf8mb4'] });
    expectOk(direct);
    expect(proxied.stdout).toBe(direct.stdout);
  });

  it('runs the status command, which uses COM_STATISTICS', async () => {
    const before = await commandCount('COM_STATISTICS');
    // Client commands are only recognised at the start of a line.
    const r = await mariadb(px.port, { execute: 'SELECT 1 AS x;\nstatus' });
    expectOk(r);
    expect(r.stdout).toMatch(/^x\n1\n/);
    expect(r.stdout).toMatch(/Current database:\s+wc_test\n/);
    expect(r.stdout).toMatch(/Current user:\s+app@127\.0\.0\.1\n/);
    expect(r.stdout).toMatch(/Server:\s+MariaDB\n/);
    expect(r.stdout).toMatch(/Protocol version:\s+10\n/);
    expect(r.stdout).toMatch(new RegExp(`TCP port:\\s+${px.port}\\n`));
    // The Uptime line and the "Threads: ..." line are the server's COM_STATISTICS string.
    expect(r.stdout).toMatch(/Uptime:\s+\d+ (sec|min)/);
    expect(r.stdout).toMatch(/Threads: \d+ {2}Questions: \d+ {2}Slow queries: \d+/);
    expect(await commandCount('COM_STATISTICS')).toBeGreaterThan(before);
  });

  it('reports a server error with code and SQLSTATE and a non-zero exit code', async () => {
    const r = await mariadb(px.port, { execute: 'SELECT 1 AS first; SELECT * FROM no_such_cli_table; SELECT 2 AS never' });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('first\n1\n');
    expect(r.stderr).toContain("ERROR 1146 (42S02) at line 1: Table 'wc_test.no_such_cli_table' doesn't exist");
    const direct = await mariadb(topo.primary.port, { execute: 'SELECT 1 AS first; SELECT * FROM no_such_cli_table; SELECT 2 AS never' });
    expect(r.stderr).toBe(direct.stderr);
  });

  it('refuses a wrong password with MySQL wording', async () => {
    const r = await mariadb(px.port, { password: 'wrong', execute: 'SELECT 1' });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe("ERROR 1045 (28000): Access denied for user 'app'@'127.0.0.1' (using password: YES)");
    const direct = await mariadb(topo.primary.port, { password: 'wrong', execute: 'SELECT 1' });
    expect(r.stderr).toBe(direct.stderr);

    const noPassword = await mariadb(px.port, { password: null, execute: 'SELECT 1' });
    expect(noPassword.code).toBe(1);
    expect(noPassword.stderr.trim()).toBe("ERROR 1045 (28000): Access denied for user 'app'@'127.0.0.1' (using password: NO)");

    const unknownUser = await mariadb(px.port, { user: 'nosuchuser', password: 'x', execute: 'SELECT 1' });
    expect(unknownUser.code).toBe(1);
    expect(unknownUser.stderr.trim()).toBe("ERROR 1045 (28000): Access denied for user 'nosuchuser'@'127.0.0.1' (using password: YES)");
  });

  it('loads a file with LOAD DATA LOCAL INFILE', async () => {
    const rows: { id: number; name: string; v: number | null }[] = [];
    for (let i = 1; i <= 50_000; i++) {
      const name = i % 1000 === 0 ? `emoji 😀 ${i}` : i % 777 === 0 ? `comma, "quoted" ${i}` : `name-${i}-${'x'.repeat(i % 20)}`;
      rows.push({ id: i, name, v: i % 10 === 0 ? null : i / 4 });
    }
    const csv = rows.map((r) => `${r.id},"${r.name.replace(/"/g, '""')}",${r.v === null ? '\\N' : String(r.v)}\n`).join('');
    const file = path.join(tmpDir, 'load.csv');
    await fs.writeFile(file, csv);
    expect(csv.length).toBeGreaterThan(1024 * 1024); // several LOCAL INFILE packets

    await root.query('TRUNCATE wc_test.cli_load');
    const r = await mariadb(px.port, {
      extra: ['--local-infile=1', '--default-character-set=utf8mb4'],
      execute:
        `LOAD DATA LOCAL INFILE '${file}' INTO TABLE cli_load CHARACTER SET utf8mb4 ` +
        `FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' LINES TERMINATED BY '\\n' (id, name, v); ` +
        'SELECT ROW_COUNT() AS loaded',
    });
    expectOk(r);
    expect(r.stdout).toBe('loaded\n50000\n');

    // Check on the primary itself, not through the proxy.
    const [count] = await root.query('SELECT COUNT(*) AS n, SUM(id) AS s, SUM(v IS NULL) AS nulls FROM wc_test.cli_load');
    expect(count).toEqual([{ n: 50_000, s: '1250025000', nulls: '5000' }]);
    const [loaded] = await root.query('SELECT id, name, v FROM wc_test.cli_load ORDER BY id');
    expect(loaded).toEqual(rows);
  });

  it('gives a clean client error for a LOCAL INFILE that does not exist, and the session stays usable', async () => {
    const missing = path.join(tmpDir, 'does-not-exist.csv');
    // Fed on stdin with --force so the same session goes on after the error.
    const input = `LOAD DATA LOCAL INFILE '${missing}' INTO TABLE cli_load;\nSELECT 42 AS after_error;\nSELECT COUNT(*) AS n FROM cli_load WHERE id < 0;\n`;
    const r = await mariadb(px.port, { extra: ['--local-infile=1', '--force'], input });
    expect(r.stderr).toContain(`ERROR 2 (HY000) at line 1: File '${missing}' not found (Errcode: 2)`);
    expect(r.stdout).toBe('after_error\n42\nn\n0\n');
    const direct = await mariadb(topo.primary.port, { extra: ['--local-infile=1', '--force'], input });
    expect(r.stdout).toBe(direct.stdout);
    expect(r.stderr).toBe(direct.stderr);
    expect(r.code).toBe(direct.code);

    // The client refusing (local-infile disabled) takes the same path: the server asked, the client sent nothing.
    const refused = await mariadb(px.port, { extra: ['--local-infile=0', '--force'], input });
    const refusedDirect = await mariadb(topo.primary.port, { extra: ['--local-infile=0', '--force'], input });
    expect(refused.stdout).toBe('after_error\n42\nn\n0\n');
    expect(refused.stderr).toBe(refusedDirect.stderr);

    // Other clients are unaffected and the proxy dropped no session state.
    const c = await connect(px.port, topo);
    try {
      const [rows] = await c.query('SELECT COUNT(*) AS n FROM cli_load');
      const [expected] = await root.query('SELECT COUNT(*) AS n FROM wc_test.cli_load');
      expect(rows).toEqual(expected);
    } finally {
      await c.end();
    }
    const again = await mariadb(px.port, { execute: 'SELECT 1 AS ok' });
    expectOk(again);
    expect(again.stdout).toBe('ok\n1\n');
    await waitFor('all proxy sessions to end', () => px.proxy.sessions.size === 0, 5000, 25);
  });
});
