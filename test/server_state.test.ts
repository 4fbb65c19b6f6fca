/**
 * Reads about the server itself (its role, replication state, identity)
 * through the read/write split get the primary's answer: each form is run
 * through wirecache and directly on the primary, and the two must agree,
 * while a replica answers differently (read_only=1, a slave status). Rule
 * regexes match the statement as written, in a live session. A PHP
 * installer's "is the database writable" checks pass with the default
 * configuration.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForReplication } from '../scripts/topology.js';
import { compileRule } from '../src/config/rules.js';
import { connect, routingConfig, startProxy, testCacheConfig, type RunningProxy } from './proxy-harness.js';
import { runCommand } from './run-command.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
type Row = mysql.RowDataPacket;

/** What a statement answers on `conn`: its rows (values as text), or its error code. */
async function answer(conn: mysql.Connection, sql: string, prepared = false): Promise<unknown> {
  try {
    const [rows] = prepared ? await conn.execute<Row[]>(sql) : await conn.query<Row[]>(sql);
    return (rows as Row[]).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? null : String(v)])));
  } catch (err) {
    return { error: (err as { errno?: number }).errno };
  }
}

const asApp = (port: number) => mysql.createConnection({ host: '127.0.0.1', port, user: 'app', password: 'app_pw', database: 'wc_test' });

/**
 * Columns that move between two reads (binary log positions, timers; the monitor writes its heartbeat on the
 * primary every 200 ms): compared for presence and type only.
 */
const MOVING =
  /^(Position|File_size|@@gtid_binlog_pos|@@gtid_current_pos|Read_Master_Log_Pos|Relay_Log_Pos|Exec_Master_Log_Pos|Relay_Log_Space|Seconds_Behind_Master|Gtid_IO_Pos|Slave_SQL_Running_State|Master_last_event_time|Slave_last_event_time|Master_Slave_time_diff)$/;
const steady = (a: unknown): unknown =>
  Array.isArray(a) ? a.map((r) => Object.fromEntries(Object.entries(r as Record<string, unknown>).map(([k, v]) => [k, MOVING.test(k) ? typeof v : v]))) : a;

const FORMS = [
  'SELECT @@GLOBAL.read_only AS Value',
  // As MediaWiki sends it: a trace comment right after the verb.
  'SELECT /* Wikimedia\\Rdbms\\DatabaseMysqlBase::serverIsReadOnly  */ @@GLOBAL.read_only AS Value',
  'SELECT @@read_only',
  'select @@global.read_only',
  'SELECT 1 AS one, @@GLOBAL.read_only AS ro, 2 AS two',
  'SELECT @@innodb_read_only',
  'SELECT @@super_read_only',
  'SELECT @@log_bin, @@log_bin_basename',
  'SELECT @@gtid_binlog_pos, @@gtid_current_pos, @@gtid_slave_pos',
  'SELECT @@gtid_domain_id, @@gtid_strict_mode',
  'SELECT @@hostname, @@port, @@report_host',
  'SELECT @@server_id, @@log_slave_updates',
  '/*route=replica*/ SELECT @@GLOBAL.read_only',
  'SHOW MASTER STATUS',
  'SHOW BINARY LOGS',
  'SHOW SLAVE STATUS',
  'SHOW REPLICA STATUS',
  'SHOW ALL SLAVES STATUS',
  "SHOW VARIABLES LIKE 'read_only'",
  "SHOW GLOBAL VARIABLES LIKE 'read_only'",
  "SHOW GLOBAL STATUS LIKE 'Slave_running'",
  "SHOW STATUS LIKE 'Slave_running'",
  "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'READ_ONLY'",
  "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SLAVE_RUNNING'",
];

describe('reads about the server through the read/write split', () => {
  let px: RunningProxy;
  let proxied: mysql.Connection;
  let primary: mysql.Connection;
  let replica: mysql.Connection;

  beforeAll(async () => {
    await waitForReplication(topo);
    px = await startProxy(topo, routingConfig(topo));
    proxied = await connect(px.port, topo);
    primary = await asApp(topo.primary.port);
    replica = await asApp(topo.replicas[0].port);
  });

  afterAll(async () => {
    await Promise.all([proxied?.end(), primary?.end(), replica?.end()]);
    await px?.stop();
  });

  it('a replica answers differently from the primary (what the split must not show)', async () => {
    expect(await answer(primary, 'SELECT @@GLOBAL.read_only AS Value')).toEqual([{ Value: '0' }]);
    expect(await answer(replica, 'SELECT @@GLOBAL.read_only AS Value')).toEqual([{ Value: '1' }]);
    expect(await answer(primary, 'SHOW SLAVE STATUS')).toEqual([]);
    expect(await answer(replica, 'SHOW SLAVE STATUS')).not.toEqual([]);
  });

  for (const sql of FORMS) {
    it(`answers as the primary: ${sql}`, async () => {
      const before = px.metrics.routing.routedCount('primary', 'primary', 'server_state');
      const direct = await answer(primary, sql);
      expect(steady(await answer(proxied, sql))).toEqual(steady(direct));
      expect(px.metrics.routing.routedCount('primary', 'primary', 'server_state')).toBe(before + 1);
    });
  }

  it('answers as the primary for a prepared statement too', async () => {
    expect(await answer(proxied, 'SELECT @@GLOBAL.read_only AS Value', true)).toEqual([{ Value: '0' }]);
    expect(await answer(proxied, 'SELECT @@hostname AS h, @@port AS p', true)).toEqual(await answer(primary, 'SELECT @@hostname AS h, @@port AS p', true));
  });

  it('still spreads other reads, @@server_id alone included, over the replicas', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const rows = (await answer(proxied, 'SELECT @@server_id AS id')) as { id: string }[];
      ids.add(rows[0].id);
    }
    expect(ids).toEqual(new Set(['2', '3']));
  });

  it("lets a PHP installer's writable checks and first writes succeed with the default configuration", async () => {
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'clients', 'php_installer_checks.php');
    const r = await runCommand('php', [script, '127.0.0.1', String(px.port), 'app', 'app_pw', 'wc_test'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out).toMatchObject({
      mysqli_read_only: '0',
      mysqli_show_read_only: 'OFF',
      mysqli_written: '1.0',
      pdo_read_only: 0,
      pdo_global_variables: 'OFF',
      pdo_written: '1.1',
    });
  });
});

describe('rule regexes match the statement as written, in a live session', () => {
  let px: RunningProxy;
  let conn: mysql.Connection;

  beforeAll(async () => {
    const rules = [
      compileRule({ name: 'orders-as-written', match: { regex: 'FROM\\s+rx_orders\\b' }, cache: true, ttl: 60 }, 'test'),
    ];
    px = await startProxy(topo, { cache: testCacheConfig({ rules }) });
    conn = await connect(px.port, topo);
    await conn.query('CREATE TABLE IF NOT EXISTS rx_orders (id INT PRIMARY KEY, v INT)');
    await conn.query('REPLACE INTO rx_orders VALUES (1, 10)');
  });

  afterAll(async () => {
    await conn?.query('DROP TABLE IF EXISTS rx_orders');
    await conn?.end();
    await px?.stop();
  });

  it('never stores a read of the schemas the server keeps itself: each answer is the live one', async () => {
    const sql = "/*qc=on*/ SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = 'app'";
    const count = async () => Number(((await conn.query<Row[]>(sql))[0] as Row[])[0].n);
    const before = await count();
    const extra = await asApp(topo.primary.port);
    try {
      expect(await count()).toBe(before + 1);
    } finally {
      await extra.end();
    }
    expect(px.metrics.cache.value('hits', 'hint')).toBe(0);
    expect(await px.metrics.metricsText()).toMatch(/wirecache_cache_refused_total\{rule="hint",reason="system_schema"\} 2\b/);
  });

  it('caches by a regex written as the query reads (FROM\\s+orders), with comments and odd spacing around it', async () => {
    const sql = 'SELECT v /* app: order page */\n  FROM   rx_orders WHERE id = 1';
    const first = await conn.query<Row[]>(sql);
    const second = await conn.query<Row[]>(sql);
    expect(first[0]).toEqual([{ v: 10 }]);
    expect(second[0]).toEqual([{ v: 10 }]);
    expect(px.metrics.cache.value('hits', 'orders-as-written')).toBe(1);
  });
});
