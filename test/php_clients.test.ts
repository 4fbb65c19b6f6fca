/**
 * PHP's mysqlnd-based drivers (mysqli, PDO_MySQL with emulated and with native
 * prepares) against MariaDB directly and through wirecache: each script prints
 * one JSON object of everything it saw, and the two runs must agree.
 *
 * The scripts run as child processes with async spawn: the proxy lives in this
 * worker's event loop, so a synchronous exec would deadlock.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from './run-command.js';
import { getTopology } from './topology-context.js';
import { startProxy, type RunningProxy } from './proxy-harness.js';

const topo = getTopology();
const CLIENTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'clients');
const RUN_TIMEOUT_MS = 60_000;
const run = (cmd: string, args: string[], timeoutMs = RUN_TIMEOUT_MS) => runCommand(cmd, args, { timeoutMs });
const BLOB_BYTES = 1024 * 1024;


/** Decoded script output: shapes are checked by the assertions, not by the type. */
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

interface ScriptOutput {
  results: Json;
  meta: Json;
}

/** Runs a PHP client script against `port`; fails the test with its stderr unless it exits 0 with one JSON object. */
async function runPhp(script: string, port: number, extra: string[] = []): Promise<ScriptOutput> {
  const r = await run('php', [path.join(CLIENTS, script), '127.0.0.1', String(port), 'app', 'app_pw', 'wc_test', ...extra]);
  const where = `${script} ${extra.join(' ')} on port ${port}`;
  expect(r.timedOut, `${where} timed out after ${RUN_TIMEOUT_MS} ms; stderr: ${r.stderr}`).toBe(false);
  expect(r.code, `${where} exited ${r.code} (signal ${r.signal}); stderr: ${r.stderr}`).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines.length, `${where} printed more than one line: ${r.stdout.slice(0, 500)}`).toBe(1);
  return JSON.parse(lines[0]) as ScriptOutput;
}

let px: RunningProxy;

/** wirecache_queries_total by command label. */
async function commandCounts(): Promise<Record<string, number>> {
  return px.metrics.queriesByCommand();
}

function delta(before: Record<string, number>, after: Record<string, number>, command: string): number {
  return (after[command] ?? 0) - (before[command] ?? 0);
}

beforeAll(async () => {
  px = await startProxy(topo);
});

afterAll(async () => {
  await px?.stop();
});

describe('PHP mysqli through wirecache', () => {
  it('gives the same results directly and through the proxy', async () => {
    const direct = await runPhp('php_mysqli.php', topo.primary.port);
    const before = await commandCounts();
    const proxied = await runPhp('php_mysqli.php', px.port);
    const after = await commandCounts();

    expect(proxied.results).toEqual(direct.results);
    expect(proxied.meta.server_info).toBe(direct.meta.server_info);
    for (const out of [direct, proxied]) expect(out.meta.stat).toMatch(/^Uptime: \d+ +Threads: \d+ +Questions: \d+/);

    const r = proxied.results;
    expect(r.connect).toEqual({ charset: 'utf8mb4', protocol_version: 10, database: 'wc_test', current_user: 'app@%' });
    expect(r.simple.rows).toEqual([{ one: 1, s: 'abc', d: '2.5', neg: -7, dbl: 1.5, big: '18446744073709551615' }]);
    expect(r.special.row).toEqual({ n: null, emoji: '😀 héllo ✓', bin: '00ff7f80', chars: 1, bytes: 4, n2: null, empty: '', hex: 'F09F9880' });
    expect(r.insert_multi).toMatchObject({ affected_rows: 3, insert_id: 1 });
    expect(r.insert_one).toEqual({ affected_rows: 1, insert_id: 4 });
    expect(r.update).toEqual({ affected_rows: 3, info: 'Rows matched: 3  Changed: 3  Warnings: 0' });
    expect(r.table[2]).toEqual({ id: 3, name: 'c😀', qty: 4, price: '3.00', data: null });
    expect(r.warnings).toEqual({ count: 1, first: { errno: 1292, message: "Truncated incorrect INTEGER value: '12abc'" } });

    expect(r.errors.bad_table).toEqual({
      class: 'mysqli_sql_exception',
      code: 1146,
      sqlstate: '42S02',
      message: "Table 'wc_test.php_no_such_table' doesn't exist",
      errno: 1146,
      sqlstate_conn: '42S02',
    });
    expect(r.errors.syntax).toMatchObject({ code: 1064, sqlstate: '42000' });
    expect(r.errors.duplicate).toMatchObject({ code: 1062, sqlstate: '23000' });
    expect(r.errors.after).toEqual({ x: 7 });

    expect(r.multi).toEqual([
      { rows: [{ a: 1 }], fields: 1 },
      { rows: [{ b: 'x', c: null }], fields: 2 },
      { affected_rows: 0, insert_id: 0 },
      { affected_rows: 1, insert_id: 6 },
      { rows: [{ n: 5 }], fields: 1 },
    ]);
    expect(r.multi_error).toMatchObject({ results: [[{ first: 1 }]], error: { code: 1146, sqlstate: '42S02' }, after: { x: 8 } });

    expect(r.call_text).toEqual([
      { rows: [{ v: 2, tag: 'one' }], fields: 2 },
      { rows: [{ id: 1, name: 'a', qty: 2 }, { id: 2, name: 'b', qty: null }], fields: 3 },
      { affected_rows: 0, insert_id: 0 },
    ]);
    expect(r.call_prepared).toHaveLength(3);
    expect(r.call_prepared[0]).toEqual([{ v: 3, tag: 'one' }]);
    expect(r.call_prepared[1]).toHaveLength(3);
    expect(r.after_call).toEqual({ x: 9 });

    const tx = r.transactions;
    expect(tx.in_transaction).toBe(1);
    expect(tx.inside).toBe(tx.before + 1);
    expect(tx.after_rollback).toBe(tx.before);
    expect(tx.in_transaction_after_rollback).toBe(0);
    expect(tx.after_commit).toBe(tx.before + 1);
    expect(tx.qty_after_autocommit_rollback).toBe(2);

    const p = r.prepared;
    expect(p.select_loop).toHaveLength(6);
    expect(p.select_loop[4]).toEqual([]);
    expect(p.select_loop[5]).toEqual(p.select_loop[0]);
    expect(p.insert_loop).toHaveLength(25);
    expect(p.insert_loop.every((x: number[]) => x[0] === 1)).toBe(true);
    expect(p.typed.row).toEqual({ i: 41, s: 'hé 😀', n: null, dt: '2024-02-29 13:14:15', dbl: 1.5, dec_: '2.50' });
    expect(p.blobs).toEqual([
      { name: 'blob-long-data', len: BLOB_BYTES, sha: p.blob_sha_expected, fetched_len: BLOB_BYTES, fetched_matches: true },
      { name: 'blob-inline', len: BLOB_BYTES, sha: p.blob_sha_expected, fetched_len: BLOB_BYTES, fetched_matches: true },
    ]);
    expect(p.many_rows).toEqual({ count: 3000, sum: 4501500, last: [3000, 'row-3000'] });
    expect(p.prepare_error).toMatchObject({ code: 1146, sqlstate: '42S02' });

    expect(r.text_many_rows).toEqual({ count: 5000, sum: 12502500 });
    expect(r.ping).toBe(true);
    expect(r.select_db).toBe('mysql');
    expect(r.change_user).toEqual({ u: 'other@%', db: 'wc_test' });
    expect(r.change_user_back).toEqual({ u: 'app@%', t: 0 });

    // The proxy really carried the commands these features use.
    for (const command of ['COM_QUERY', 'COM_STMT_PREPARE', 'COM_STMT_EXECUTE', 'COM_STMT_SEND_LONG_DATA', 'COM_STATISTICS', 'COM_INIT_DB', 'COM_CHANGE_USER', 'COM_PING']) {
      expect(delta(before, after, command), command).toBeGreaterThan(0);
    }
  });
});

describe.each(['emulate', 'native'] as const)('PHP PDO (%s prepares) through wirecache', (mode) => {
  it('gives the same results directly and through the proxy', async () => {
    const direct = await runPhp('php_pdo.php', topo.primary.port, [mode]);
    const before = await commandCounts();
    const proxied = await runPhp('php_pdo.php', px.port, [mode]);
    const after = await commandCounts();

    expect(proxied.results).toEqual(direct.results);
    expect(proxied.meta.server_version).toBe(direct.meta.server_version);

    const r = proxied.results;
    expect(r.mode).toBe(mode);
    expect(r.connect).toEqual({ emulate_prepares: mode === 'emulate', driver: 'mysql', row: { db: 'wc_test', u: 'app@%', cs: 'utf8mb4' } });
    expect(r.simple.rows).toEqual([{ one: 1, s: 'abc', d: '2.5', neg: -7, dbl: 1.5 }]);
    expect(r.special.row).toEqual({ n: null, emoji: '😀 héllo ✓', bin: '00ff7f80', chars: 1, bytes: 4, empty: '', hex: 'F09F9880' });
    expect(r.insert_multi).toEqual({ exec: 3, last_insert_id: '1' });
    expect(r.insert_one).toEqual({ row_count: 1, last_insert_id: '4' });
    expect(r.update).toBe(3);
    expect(r.update_nochange).toBe(0);

    expect(r.errors.bad_table).toEqual({
      class: 'PDOException',
      code: '42S02',
      sqlstate: '42S02',
      errno: 1146,
      message: "Table 'wc_test.php_no_such_table' doesn't exist",
    });
    expect(r.errors.prepared_bad_table).toMatchObject({ sqlstate: '42S02', errno: 1146 });
    expect(r.errors.syntax).toMatchObject({ sqlstate: '42000', errno: 1064 });
    expect(r.errors.duplicate).toMatchObject({ sqlstate: '23000', errno: 1062 });
    expect(r.errors.after).toEqual({ x: 7 });

    expect(r.call.slice(0, 2)).toEqual([[{ v: 2, tag: 'one' }], [{ id: 1, name: 'a', qty: 2 }, { id: 2, name: 'b', qty: null }]]);
    expect(r.call_prepared[1][0]).toEqual([{ v: 3, tag: 'one' }]);
    expect(r.call_prepared[1][1]).toHaveLength(3);
    expect(r.after_call).toEqual({ x: 9 });

    const tx = r.transactions;
    expect(tx.in_transaction).toBe(true);
    expect(tx.server_in_transaction).toBe(1);
    expect(tx.inside).toBe(tx.before + 1);
    expect(tx.after_rollback).toBe(tx.before);
    expect(tx.in_transaction_after_rollback).toBe(false);
    expect(tx.after_commit).toBe(tx.before + 1);

    const p = r.prepared;
    expect(p.insert_loop).toHaveLength(60);
    const ids = p.insert_loop.map((x: [number, string]) => Number(x[1]));
    expect(ids).toEqual(ids.map((_: number, i: number) => ids[0] + i));
    expect(p.insert_loop.every((x: [number, string]) => x[0] === 1)).toBe(true);
    expect(p.select_loop).toHaveLength(24);
    expect(p.select_loop[0]).toEqual([{ id: 1, name: 'a', qty: 2, price: '1.50' }]);
    expect(p.update_loop).toEqual([4, 11, 0]);
    expect(p.null_param).toEqual({ is_null: 1, c: 'dflt', s: 'hé 😀' });
    expect(p.null_safe_count).toBe(7);
    expect(p.blobs).toEqual([
      { name: 'blob-string', len: BLOB_BYTES, sha: p.blob_sha_expected, fetched_len: BLOB_BYTES, fetched_matches: true },
      { name: 'blob-stream', len: BLOB_BYTES, sha: p.blob_sha_expected, fetched_len: BLOB_BYTES, fetched_matches: true },
    ]);
    expect(p.many_rows).toEqual({ count: 3000, sum: 4501500, last: [3000, 'row-3000'] });

    // Emulated prepares never reach the server as COM_STMT_*; native ones do, many times over.
    if (mode === 'emulate') {
      expect(delta(before, after, 'COM_STMT_PREPARE')).toBe(0);
      expect(delta(before, after, 'COM_STMT_EXECUTE')).toBe(0);
    } else {
      expect(delta(before, after, 'COM_STMT_PREPARE')).toBeGreaterThan(5);
      expect(delta(before, after, 'COM_STMT_EXECUTE')).toBeGreaterThan(60 + 24);
    }
  });
});
