/**
 * "Never wrong": for many statement forms the server accepts, what a client
 * sees through wirecache (cache on in `mode: 'all'`, reads split over two
 * replicas) equals what MariaDB answers directly on the primary after the
 * same statements.
 *
 * Each case runs its steps on a fresh proxied session (database wc_test) and
 * on a fresh direct session to the primary (database adv_direct, a twin of
 * wc_test holding the same fixture), step by step, comparing every answer:
 * rows as raw bytes with their column metadata, OK packets' counts, error
 * numbers. A read step (`R`) runs twice on both sides: the second may be a
 * cache hit, which must still be this session's own answer. `{db}` / `{db2}`
 * in a step stand for each side's database, and answers are compared with the
 * direct side's database names mapped to the proxied side's.
 *
 * Around each case a bystander (a fresh proxied session, compared with a fresh
 * direct one) runs the case's probe before the steps (filling the cache with
 * a plain session's answer) and after them, once the replicas caught up:
 * nothing leaks between sessions through the cache.
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForReplication } from '../scripts/topology.js';
import { plainUser } from '../src/config/accounts.js';
import { connect, routingConfig, startProxy, testCacheConfig, testConfig, type RunningProxy } from './proxy-harness.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
let px: RunningProxy;

const ROLE_USER = { name: 'adv_user', password: 'adv_user_pw' };

interface Side {
  name: 'proxied' | 'direct';
  port: () => number;
  db: string;
  db2: string;
}
const PROXIED: Side = { name: 'proxied', port: () => px.port, db: 'wc_test', db2: 'adv_p2' };
const DIRECT: Side = { name: 'direct', port: () => topo.primary.port, db: 'adv_direct', db2: 'adv_d2' };

interface Step {
  sql: string;
  /** Run twice on both sides (a read: the second run may be a cache hit). */
  read?: boolean;
  /** Binary protocol (COM_STMT_PREPARE/EXECUTE) with these parameters. */
  params?: (string | number | null)[];
}
type StepLike = string | Step;

interface Case {
  name: string;
  /** DDL run by root in both databases before the proxy starts. */
  ddl?: string;
  steps: StepLike[];
  /** What the bystander reads; defaults to the last read step. */
  bystander?: string;
  /** The last read's direct answer must differ from a plain session's: the case really changes something. */
  differs?: boolean;
  user?: { name: string; password: string };
}

const R = (sql: string): Step => ({ sql, read: true });
const X = (sql: string, params: (string | number | null)[], read = true): Step => ({ sql, params, read });

function open(side: Side, user = { name: 'app', password: 'app_pw' }): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: '127.0.0.1',
    port: side.port(),
    user: user.name,
    password: user.password,
    database: side.db,
    multipleStatements: true,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    // The raw bytes of every text-protocol value (latin1 maps bytes 1:1): a result cached under another
    // character set shows even where a decoder would hide it.
    typeCast: (field, next) => {
      if (typeof (field as { buffer?: unknown }).buffer !== 'function') return next();
      const b = field.buffer();
      return b === null ? null : b.toString('latin1');
    },
  });
}

const sub = (sql: string, side: Side) => sql.replaceAll('{db2}', side.db2).replaceAll('{db}', side.db);

function canon(text: string): string {
  return text.replaceAll('adv_direct', 'wc_test').replaceAll('adv_d2', 'adv_p2');
}

function normValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return `x'${v.toString('hex')}'`;
  return String(v);
}

function normFields(f: unknown): unknown {
  if (!Array.isArray(f)) return null;
  return f.map((x) => {
    if (Array.isArray(x)) return normFields(x);
    if (x === null || x === undefined) return null;
    const fd = x as { name: string; characterSet: number; columnType: number; decimals: number; columnLength: number };
    return `${fd.name}:${fd.characterSet}:${fd.columnType}:${fd.decimals}:${fd.columnLength}`;
  });
}

function normResult(r: unknown): unknown {
  if (Array.isArray(r)) return r.map(normResult);
  if (r && typeof r === 'object' && 'affectedRows' in r && 'fieldCount' in r) {
    const ok = r as unknown as { affectedRows: number; insertId: number | string; warningStatus: number };
    return { ok: true, affected: ok.affectedRows, insertId: String(ok.insertId), warnings: ok.warningStatus };
  }
  if (r && typeof r === 'object') return Object.entries(r).map(([k, v]) => `${k}=${JSON.stringify(normValue(v))}`);
  return normValue(r);
}

/** The answer to one statement, comparable across sides: rows and metadata, OK counts, or the error number. */
async function answer(conn: mysql.Connection, step: Step, side: Side): Promise<string> {
  const sql = sub(step.sql, side);
  try {
    const [rows, fields] = step.params ? await conn.execute(sql, step.params) : await conn.query(sql);
    return canon(JSON.stringify({ rows: normResult(rows), fields: normFields(fields) }));
  } catch (err) {
    const e = err as { errno?: number; code?: string; message?: string };
    return JSON.stringify({ error: e.errno ?? e.code ?? String(e.message) });
  }
}

const asStep = (s: StepLike): Step => (typeof s === 'string' ? { sql: s } : s);

async function runCase(c: Case): Promise<void> {
  const steps = c.steps.map(asStep);
  const probeSql = c.bystander ?? [...steps].reverse().find((s) => s.read && !s.params)?.sql;
  const probe: Step | undefined = probeSql === undefined ? undefined : { sql: probeSql };

  const byP = await open(PROXIED);
  const byD = await open(DIRECT);
  let plain: string | undefined;
  if (probe) {
    plain = await answer(byD, probe, DIRECT);
    expect.soft(await answer(byP, probe, PROXIED), `bystander before: ${probe.sql}`).toBe(plain);
  }

  const p = await open(PROXIED, c.user);
  const d = await open(DIRECT, c.user);
  let lastRead: string | undefined;
  try {
    for (const [i, step] of steps.entries()) {
      const runs = step.read ? 2 : 1;
      for (let n = 0; n < runs; n++) {
        const got = await answer(p, step, PROXIED);
        const want = await answer(d, step, DIRECT);
        expect.soft(got, `step ${i + 1}${runs > 1 ? ` run ${n + 1}` : ''}: ${step.sql}`).toBe(want);
        if (step.read && step.sql === probeSql && n === 0) lastRead = want;
      }
    }
  } finally {
    await p.end().catch(() => undefined);
    await d.end().catch(() => undefined);
  }
  if (c.differs) expect(lastRead, 'the case changes the probe on a direct session').not.toBe(plain);

  if (probe) {
    await waitForReplication(topo);
    const want = await answer(byD, probe, DIRECT);
    expect.soft(await answer(byP, probe, PROXIED), `bystander after: ${probe.sql}`).toBe(want);
  }
  await byP.end();
  await byD.end();
}

// ---------------------------------------------------------------------------

const COMMON_DDL = `
  CREATE TABLE adv_t (id INT PRIMARY KEY, v VARCHAR(20), ts TIMESTAMP NULL, d DATE, tx TEXT) CHARACTER SET utf8mb4;
  INSERT INTO adv_t VALUES
    (1, 'one', '2024-01-01 12:00:00', '2024-01-01', CONCAT(REPEAT('a', 70), 'A')),
    (2, 'Two', '2024-06-01 00:00:00', '2024-06-01', CONCAT(REPEAT('a', 70), 'X')),
    (3, 'three', NULL, NULL, 'b'),
    (4, 'caf\u00e9', '2024-12-31 23:30:00', '2024-12-31', 'c');
  CREATE TABLE adv_q (x INT, \`1e\` INT, v INT);
  INSERT INTO adv_q VALUES (7, 5, 3);
  CREATE PROCEDURE adv_proc_week() BEGIN SET default_week_format = 3; END;
  CREATE FUNCTION adv_fn_tz() RETURNS INT NO SQL BEGIN SET time_zone = '+07:00'; RETURN 1; END;
  CREATE TABLE adv_shadow_ei (id INT); INSERT INTO adv_shadow_ei VALUES (1);
  CREATE TABLE adv_shadow_proc (id INT, v VARCHAR(20)); INSERT INTO adv_shadow_proc VALUES (1, 'real');
  CREATE PROCEDURE adv_proc_tmp() BEGIN CREATE TEMPORARY TABLE adv_shadow_proc (id INT, v VARCHAR(20)); INSERT INTO adv_shadow_proc VALUES (9, 'proc-temp'); END;
  CREATE TABLE adv_secret (id INT PRIMARY KEY, v VARCHAR(20));
  INSERT INTO adv_secret VALUES (1, 'only the role');
  CREATE TABLE adv_pub (id INT);
`;

const USE_DDL = `
  CREATE TABLE adv_t (id INT PRIMARY KEY, v VARCHAR(20));
  INSERT INTO adv_t VALUES (1, 'second-db');
`;

const PIPES = "SELECT 'a' || 'b' AS v";

const CASES: Case[] = [
  // ---- session state through plain SET ----
  { name: 'sql_mode PIPES_AS_CONCAT', steps: [R(PIPES), "SET sql_mode = 'PIPES_AS_CONCAT'", R(PIPES)], differs: true },
  { name: 'sql_mode ANSI_QUOTES: "v" is a column', steps: ['SET sql_mode = ANSI_QUOTES', R('SELECT "v" FROM adv_t WHERE id = 1')], differs: true },
  {
    name: 'sql_mode ANSI_QUOTES: adjacent "a" "b"',
    steps: [R('SELECT "a" "b" FROM adv_q'), "SET sql_mode = 'ANSI_QUOTES'", R('SELECT "a" "b" FROM adv_q')],
    differs: true,
  },
  {
    name: 'sql_mode NO_BACKSLASH_ESCAPES',
    steps: [R("SELECT 'a\\\\b' AS v, LENGTH('a\\\\b') AS n"), "SET sql_mode = 'NO_BACKSLASH_ESCAPES'", R("SELECT 'a\\\\b' AS v, LENGTH('a\\\\b') AS n")],
    differs: true,
  },
  { name: 'sql_mode ORACLE: NULL || a', steps: ["SET sql_mode = 'ORACLE'", R("SELECT NULL || 'a' AS v")], differs: true },
  { name: 'sql_mode EMPTY_STRING_IS_NULL', steps: ["SET sql_mode = 'EMPTY_STRING_IS_NULL'", R("SELECT '' IS NULL AS v")], differs: true },
  { name: 'sql_mode HIGH_NOT_PRECEDENCE', steps: ["SET sql_mode = 'HIGH_NOT_PRECEDENCE'", R('SELECT NOT 1 BETWEEN -5 AND 5 AS v')], differs: true },
  { name: 'time_zone offset: TIMESTAMP column and FROM_UNIXTIME', steps: ["SET time_zone = '+05:00'", R('SELECT ts, FROM_UNIXTIME(0) AS e FROM adv_t ORDER BY id')], differs: true },
  { name: 'div_precision_increment', steps: ['SET div_precision_increment = 9', R('SELECT 1 / 7 AS v')], differs: true },
  { name: 'SET NAMES latin1', steps: [R("SELECT v, 'é' AS lit FROM adv_t WHERE id = 4"), 'SET NAMES latin1', R("SELECT v, 'é' AS lit FROM adv_t WHERE id = 4")], differs: true },
  { name: 'character_set_results = NULL', steps: ['SET character_set_results = NULL', R('SELECT v FROM adv_t WHERE id = 4')], differs: true },
  {
    name: 'the collation the client chose at login',
    steps: [R("SELECT COLLATION('a') AS c, @@collation_connection AS cc, 'ß' = 'ss' AS eq"), R("SELECT COLLATION('a') AS c, @@collation_connection AS cc, 'ß' = 'ss' AS eq")],
  },
  { name: 'collation_connection utf8mb4_bin', steps: ['SET collation_connection = utf8mb4_bin', R("SELECT 'a' = 'A' AS v")], differs: true },
  { name: 'lc_time_names de_DE', steps: ["SET lc_time_names = 'de_DE'", R("SELECT DATE_FORMAT(d, '%W %M') AS v FROM adv_t WHERE id = 1")], differs: true },
  { name: 'sql_select_limit', steps: ['SET sql_select_limit = 2', R('SELECT id FROM adv_t ORDER BY id')], differs: true },
  { name: 'group_concat_max_len', steps: ['SET group_concat_max_len = 6', R('SELECT GROUP_CONCAT(v ORDER BY id) AS v FROM adv_t')], differs: true },
  { name: 'default_week_format', steps: ['SET default_week_format = 3', R("SELECT WEEK('2024-01-01') AS v")], differs: true },
  { name: 'max_sort_length', steps: ['SET max_sort_length = 64', R('SELECT id FROM adv_t WHERE id < 3 ORDER BY tx, id DESC')], differs: true },
  {
    name: 'sql_auto_is_null finds the last insert',
    ddl: 'CREATE TABLE adv_ai (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10))',
    steps: [R('SELECT id, v FROM adv_ai WHERE id IS NULL'), "INSERT INTO adv_ai (v) VALUES ('x')", 'SET sql_auto_is_null = 1', R('SELECT id, v FROM adv_ai WHERE id IS NULL')],
    differs: true,
  },
  // ---- session state changed where the text does not say so ----
  { name: 'SET with a subquery', steps: ["SET time_zone = (SELECT '-03:00')", R('SELECT FROM_UNIXTIME(0) AS v')], differs: true },
  { name: 'EXECUTE IMMEDIATE SET time_zone', steps: ["EXECUTE IMMEDIATE 'SET time_zone = ''+03:00'''", R('SELECT FROM_UNIXTIME(0) AS v')], differs: true },
  { name: 'EXECUTE IMMEDIATE with a variable holding the SET', steps: ["SET @s = 'SET sql_mode = PIPES_AS_CONCAT'", 'EXECUTE IMMEDIATE @s', R(PIPES)], differs: true },
  { name: 'PREPARE/EXECUTE SET', steps: ["PREPARE st FROM 'SET div_precision_increment = 2'", 'EXECUTE st', R('SELECT 1 / 3 AS v')], differs: true },
  { name: 'multi-statement SET lc_time_names', steps: ["SELECT 1; SET lc_time_names = 'fr_FR'; SELECT 2", R("SELECT DATE_FORMAT('2024-03-04', '%W') AS v")], differs: true },
  { name: 'procedure sets default_week_format', steps: ['CALL adv_proc_week()', R("SELECT WEEK('2024-01-01') AS v")], differs: true },
  { name: 'stored function called by a SELECT sets time_zone', steps: [R('SELECT FROM_UNIXTIME(0) AS v'), 'SELECT adv_fn_tz() AS f', R('SELECT FROM_UNIXTIME(0) AS v')], differs: true },
  { name: 'BEGIN NOT ATOMIC sets collation_connection', steps: ["BEGIN NOT ATOMIC SET collation_connection = 'utf8mb4_bin'; END", R("SELECT 'a' = 'A' AS v")], differs: true },
  { name: 'two assignments in one SET', steps: ['SET @adv_x := 1, sql_select_limit = 1', R('SELECT id FROM adv_t ORDER BY id')], differs: true },
  {
    name: 'SET STATEMENT ... FOR leaves the session as it was',
    steps: [R("SET STATEMENT sql_mode = 'PIPES_AS_CONCAT' FOR SELECT 'a' || 'b' AS v"), R(PIPES)],
  },
  { name: 'sql_mode = ANSI (quotes and pipes at once)', steps: ["SET SESSION sql_mode = 'ANSI'", R('SELECT "v" || \'!\' AS v FROM adv_t WHERE id = 2')], differs: true },
  // ---- temporary tables ----
  {
    name: 'temporary table shadows a real table',
    steps: [R('SELECT * FROM adv_t ORDER BY id'), "CREATE TEMPORARY TABLE adv_t (id INT, v VARCHAR(20)); INSERT INTO adv_t VALUES (1, 'temp')", R('SELECT * FROM adv_t ORDER BY id')],
    differs: true,
  },
  {
    name: 'temporary table created by EXECUTE IMMEDIATE',
    steps: ["EXECUTE IMMEDIATE 'CREATE TEMPORARY TABLE adv_shadow_ei SELECT 42 AS id'", R('SELECT * FROM adv_shadow_ei ORDER BY id')],
    differs: true,
  },
  { name: 'temporary table created by a procedure', steps: ['CALL adv_proc_tmp()', R('SELECT * FROM adv_shadow_proc ORDER BY id')], differs: true },
  {
    name: 'temporary table dropped: the real one shows again',
    steps: ['CREATE TEMPORARY TABLE adv_t (id INT)', R('SELECT * FROM adv_t ORDER BY id'), 'DROP TEMPORARY TABLE adv_t', R('SELECT * FROM adv_t ORDER BY id')],
  },
  {
    name: 'temporary table read with a qualified name',
    steps: ["CREATE TEMPORARY TABLE adv_t (id INT, v VARCHAR(20)); INSERT INTO adv_t VALUES (5, 'temp')", R('SELECT * FROM {db}.adv_t ORDER BY id')],
    differs: true,
  },
  // ---- user variables ----
  { name: 'user variable set then read', steps: [R('SELECT @adv_u AS v'), 'SET @adv_u = 5', R('SELECT @adv_u AS v')], differs: true },
  { name: 'user variable assigned in a SELECT', steps: ['SELECT @adv_y := 7 AS a', R('SELECT @adv_y AS v, id FROM adv_t WHERE id = @adv_y - 5')], differs: true },
  { name: 'user variable through EXECUTE IMMEDIATE, used in WHERE', steps: ["EXECUTE IMMEDIATE 'SET @adv_w = 3'", R('SELECT v FROM adv_t WHERE id = @adv_w')], differs: true },
  { name: 'SELECT ... INTO a variable', steps: ['SELECT id INTO @adv_z FROM adv_t WHERE id = 2', R('SELECT @adv_z AS v')], differs: true },
  // ---- roles ----
  {
    name: 'SET ROLE then SET ROLE NONE',
    user: ROLE_USER,
    steps: [R('SELECT v FROM adv_secret'), 'SET ROLE adv_role', R('SELECT v FROM adv_secret'), 'SET ROLE NONE', R('SELECT v FROM adv_secret')],
  },
  {
    name: 'SET ROLE through EXECUTE IMMEDIATE',
    user: ROLE_USER,
    steps: [R('SELECT v FROM adv_secret'), "EXECUTE IMMEDIATE 'SET ROLE adv_role'", R('SELECT v FROM adv_secret'), R('SELECT CURRENT_ROLE() AS r')],
    bystander: 'SELECT v FROM adv_secret',
  },
  // ---- writes then reads, autocommit ----
  {
    name: 'UPDATE then read',
    ddl: "CREATE TABLE adv_w_upd (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_upd VALUES (1, 10), (2, 20)",
    steps: [R('SELECT * FROM adv_w_upd ORDER BY id'), 'UPDATE adv_w_upd SET v = v + 1 WHERE id = 1', 'SELECT ROW_COUNT() AS rc', R('SELECT * FROM adv_w_upd ORDER BY id')],
    differs: true,
  },
  {
    name: 'INSERT then LAST_INSERT_ID and read',
    ddl: 'CREATE TABLE adv_w_ins (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10)) AUTO_INCREMENT = 100',
    steps: [
      R('SELECT * FROM adv_w_ins ORDER BY id'),
      "INSERT INTO adv_w_ins (v) VALUES ('a')",
      R('SELECT LAST_INSERT_ID() AS v'),
      "INSERT INTO adv_w_ins (v) VALUES ('b'), ('c')",
      R('SELECT LAST_INSERT_ID() AS v'),
      R('SELECT * FROM adv_w_ins ORDER BY id'),
    ],
    differs: true,
  },
  {
    name: 'DELETE then read',
    ddl: 'CREATE TABLE adv_w_del (id INT PRIMARY KEY); INSERT INTO adv_w_del VALUES (1), (2), (3)',
    steps: [R('SELECT COUNT(*) AS n FROM adv_w_del'), 'DELETE FROM adv_w_del WHERE id > 1', R('SELECT COUNT(*) AS n FROM adv_w_del')],
    differs: true,
  },
  {
    name: 'REPLACE then read',
    ddl: "CREATE TABLE adv_w_rep (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO adv_w_rep VALUES (1, 'old')",
    steps: [R('SELECT * FROM adv_w_rep'), "REPLACE INTO adv_w_rep VALUES (1, 'new')", R('SELECT * FROM adv_w_rep')],
    differs: true,
  },
  {
    name: 'INSERT ... ON DUPLICATE KEY UPDATE then ROW_COUNT and read',
    ddl: 'CREATE TABLE adv_w_odku (id INT PRIMARY KEY, n INT); INSERT INTO adv_w_odku VALUES (1, 1)',
    steps: [R('SELECT * FROM adv_w_odku'), 'INSERT INTO adv_w_odku VALUES (1, 1) ON DUPLICATE KEY UPDATE n = n + 1', 'SELECT ROW_COUNT() AS rc', R('SELECT * FROM adv_w_odku')],
    differs: true,
  },
  {
    name: 'multi-table UPDATE then read of both tables',
    ddl: 'CREATE TABLE adv_w_mu1 (id INT PRIMARY KEY, v INT); CREATE TABLE adv_w_mu2 (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_mu1 VALUES (1, 1); INSERT INTO adv_w_mu2 VALUES (1, 2)',
    steps: [
      R('SELECT v FROM adv_w_mu1'),
      R('SELECT v FROM adv_w_mu2'),
      'UPDATE adv_w_mu1 a JOIN adv_w_mu2 b ON a.id = b.id SET a.v = 11, b.v = 22',
      R('SELECT v FROM adv_w_mu1'),
      R('SELECT v FROM adv_w_mu2'),
    ],
    differs: true,
  },
  {
    name: 'multi-table DELETE then read of the second table',
    ddl: 'CREATE TABLE adv_w_md1 (id INT PRIMARY KEY); CREATE TABLE adv_w_md2 (id INT PRIMARY KEY); INSERT INTO adv_w_md1 VALUES (1), (2); INSERT INTO adv_w_md2 VALUES (1), (2)',
    steps: [R('SELECT COUNT(*) AS n FROM adv_w_md2'), 'DELETE a, b FROM adv_w_md1 a JOIN adv_w_md2 b ON a.id = b.id WHERE a.id = 1', R('SELECT COUNT(*) AS n FROM adv_w_md2')],
    differs: true,
  },
  {
    name: 'TRUNCATE then read',
    ddl: 'CREATE TABLE adv_w_tr (id INT PRIMARY KEY); INSERT INTO adv_w_tr VALUES (1), (2)',
    steps: [R('SELECT COUNT(*) AS n FROM adv_w_tr'), 'TRUNCATE TABLE adv_w_tr', R('SELECT COUNT(*) AS n FROM adv_w_tr')],
    differs: true,
  },
  {
    name: 'ALTER TABLE ADD COLUMN then SELECT *',
    ddl: 'CREATE TABLE adv_w_alt (id INT PRIMARY KEY); INSERT INTO adv_w_alt VALUES (1)',
    steps: [R('SELECT * FROM adv_w_alt'), "ALTER TABLE adv_w_alt ADD COLUMN extra VARCHAR(5) DEFAULT 'new'", R('SELECT * FROM adv_w_alt')],
    differs: true,
  },
  {
    name: 'RENAME TABLE swap then read',
    ddl: "CREATE TABLE adv_w_ren (v VARCHAR(10)); INSERT INTO adv_w_ren VALUES ('first'); CREATE TABLE adv_w_ren2 (v VARCHAR(10)); INSERT INTO adv_w_ren2 VALUES ('second')",
    steps: [R('SELECT v FROM adv_w_ren'), 'RENAME TABLE adv_w_ren TO adv_w_ren_old, adv_w_ren2 TO adv_w_ren', R('SELECT v FROM adv_w_ren')],
    differs: true,
  },
  {
    name: 'DROP and CREATE the same table again',
    ddl: "CREATE TABLE adv_w_dc (v VARCHAR(10)); INSERT INTO adv_w_dc VALUES ('before')",
    steps: [R('SELECT v FROM adv_w_dc'), "DROP TABLE adv_w_dc; CREATE TABLE adv_w_dc (v VARCHAR(10)); INSERT INTO adv_w_dc VALUES ('after')", R('SELECT v FROM adv_w_dc')],
    differs: true,
  },
  {
    name: 'CREATE OR REPLACE TABLE ... SELECT',
    ddl: "CREATE TABLE adv_w_cor (v VARCHAR(10)); INSERT INTO adv_w_cor VALUES ('before')",
    steps: [R('SELECT v FROM adv_w_cor'), "CREATE OR REPLACE TABLE adv_w_cor SELECT 'replaced' AS v", R('SELECT v FROM adv_w_cor')],
    differs: true,
  },
  {
    name: 'INSERT ... SELECT into another table',
    ddl: 'CREATE TABLE adv_w_is (id INT); CREATE TABLE adv_w_is_src (id INT); INSERT INTO adv_w_is_src VALUES (1), (2)',
    steps: [R('SELECT COUNT(*) AS n FROM adv_w_is'), 'INSERT INTO adv_w_is SELECT id FROM adv_w_is_src', R('SELECT COUNT(*) AS n FROM adv_w_is')],
    differs: true,
  },
  {
    name: 'DELETE ... RETURNING then read',
    ddl: 'CREATE TABLE adv_w_ret (id INT PRIMARY KEY); INSERT INTO adv_w_ret VALUES (1), (2)',
    steps: [R('SELECT COUNT(*) AS n FROM adv_w_ret'), 'DELETE FROM adv_w_ret WHERE id = 1 RETURNING id', R('SELECT COUNT(*) AS n FROM adv_w_ret')],
    differs: true,
  },
  {
    name: 'INSERT ... RETURNING then read',
    ddl: 'CREATE TABLE adv_w_iret (id INT PRIMARY KEY)',
    steps: [R('SELECT COUNT(*) AS n FROM adv_w_iret'), 'INSERT INTO adv_w_iret VALUES (7) RETURNING id', R('SELECT COUNT(*) AS n FROM adv_w_iret')],
    differs: true,
  },
  // ---- writes hidden from a naive classifier ----
  {
    name: 'UPDATE through EXECUTE IMMEDIATE',
    ddl: 'CREATE TABLE adv_w_ei (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_ei VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_w_ei'), "EXECUTE IMMEDIATE 'UPDATE adv_w_ei SET v = 5'", R('SELECT v FROM adv_w_ei')],
    differs: true,
  },
  {
    name: 'UPDATE through PREPARE/EXECUTE with a variable',
    ddl: 'CREATE TABLE adv_w_pe (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_pe VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_w_pe'), "SET @q = 'UPDATE adv_w_pe SET v = 6'; PREPARE s FROM @q; EXECUTE s; DEALLOCATE PREPARE s", R('SELECT v FROM adv_w_pe')],
    differs: true,
  },
  {
    name: 'UPDATE hidden after a SELECT in a multi-statement',
    ddl: 'CREATE TABLE adv_w_ms (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_ms VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_w_ms'), 'SELECT 1; UPDATE adv_w_ms SET v = 7', R('SELECT v FROM adv_w_ms')],
    differs: true,
  },
  {
    name: 'UPDATE inside BEGIN NOT ATOMIC',
    ddl: 'CREATE TABLE adv_w_bna (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_bna VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_w_bna'), 'BEGIN NOT ATOMIC UPDATE adv_w_bna SET v = 8; END', R('SELECT v FROM adv_w_bna')],
    differs: true,
  },
  {
    name: 'SET STATEMENT ... FOR UPDATE',
    ddl: 'CREATE TABLE adv_w_ss (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_ss VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_w_ss'), 'SET STATEMENT max_statement_time = 100 FOR UPDATE adv_w_ss SET v = 9', R('SELECT v FROM adv_w_ss')],
    differs: true,
  },
  {
    name: 'UPDATE after comments of every style',
    ddl: 'CREATE TABLE adv_w_cm (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_cm VALUES (1, 0)',
    steps: [
      R('SELECT v FROM adv_w_cm'),
      '/* c */ UPDATE adv_w_cm SET v = 1',
      R('SELECT v FROM adv_w_cm'),
      '-- c\nUPDATE adv_w_cm SET v = 2',
      R('SELECT v FROM adv_w_cm'),
      '# c\nUPDATE adv_w_cm SET v = 3',
      R('SELECT v FROM adv_w_cm'),
      '/*!UPDATE adv_w_cm SET v = 4 */',
      R('SELECT v FROM adv_w_cm'),
    ],
    differs: true,
  },
  {
    name: 'UPDATE of a double-quoted identifier under ANSI_QUOTES',
    ddl: 'CREATE TABLE adv_w_aq (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_aq VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_w_aq'), "SET sql_mode = 'ANSI_QUOTES'", 'UPDATE "adv_w_aq" SET "v" = 4', R('SELECT v FROM adv_w_aq'), R('SELECT `v` FROM `adv_w_aq`')],
    bystander: 'SELECT v FROM adv_w_aq',
    differs: true,
  },
  {
    name: 'UPDATE with a schema-qualified backticked name',
    ddl: 'CREATE TABLE adv_w_qn (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_qn VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_w_qn'), 'UPDATE `{db}`.`adv_w_qn` SET v = 12', R('SELECT v FROM adv_w_qn')],
    differs: true,
  },
  {
    name: 'UPDATE through an updatable view, read of the base table and the view',
    ddl: 'CREATE TABLE adv_w_vb (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_vb VALUES (1, 0); CREATE VIEW adv_w_vv AS SELECT id, v FROM adv_w_vb',
    steps: [R('SELECT v FROM adv_w_vv'), R('SELECT v FROM adv_w_vb'), 'UPDATE adv_w_vv SET v = 13', R('SELECT v FROM adv_w_vv'), R('SELECT v FROM adv_w_vb')],
    differs: true,
  },
  {
    name: 'a view read after its base table changes',
    ddl: 'CREATE TABLE adv_w_vb2 (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_vb2 VALUES (1, 0); CREATE VIEW adv_w_vv2 AS SELECT SUM(v) AS s FROM adv_w_vb2',
    steps: [R('SELECT s FROM adv_w_vv2'), 'UPDATE adv_w_vb2 SET v = 14', R('SELECT s FROM adv_w_vv2')],
    differs: true,
  },
  {
    name: 'a stored function reading a table, after the table changes',
    ddl: 'CREATE TABLE adv_w_fr (id INT PRIMARY KEY, v INT); INSERT INTO adv_w_fr VALUES (1, 0); CREATE FUNCTION adv_fn_read() RETURNS INT READS SQL DATA RETURN (SELECT v FROM adv_w_fr WHERE id = 1)',
    steps: [R('SELECT adv_fn_read() AS v'), 'UPDATE adv_w_fr SET v = 15', R('SELECT adv_fn_read() AS v')],
    differs: true,
  },
  {
    name: 'a stored function that writes, called from a SELECT',
    ddl: 'CREATE TABLE adv_w_fw (id INT PRIMARY KEY, n INT); INSERT INTO adv_w_fw VALUES (1, 0); CREATE FUNCTION adv_fn_bump() RETURNS INT DETERMINISTIC MODIFIES SQL DATA BEGIN UPDATE adv_w_fw SET n = n + 1; RETURN (SELECT n FROM adv_w_fw); END',
    steps: [R('SELECT n FROM adv_w_fw'), 'SELECT adv_fn_bump() AS b', R('SELECT n FROM adv_w_fw')],
    differs: true,
  },
  {
    name: 'a procedure that writes',
    ddl: 'CREATE TABLE adv_w_pw (id INT PRIMARY KEY, n INT); INSERT INTO adv_w_pw VALUES (1, 0); CREATE PROCEDURE adv_proc_bump() UPDATE adv_w_pw SET n = n + 10',
    steps: [R('SELECT n FROM adv_w_pw'), 'CALL adv_proc_bump()', R('SELECT n FROM adv_w_pw')],
    differs: true,
  },
  {
    name: 'a trigger writes another table',
    ddl: 'CREATE TABLE adv_w_tg (id INT PRIMARY KEY); CREATE TABLE adv_w_tg_log (n INT); INSERT INTO adv_w_tg_log VALUES (0); CREATE TRIGGER adv_tg_ai AFTER INSERT ON adv_w_tg FOR EACH ROW UPDATE adv_w_tg_log SET n = n + 1',
    steps: [R('SELECT n FROM adv_w_tg_log'), 'INSERT INTO adv_w_tg VALUES (1), (2)', R('SELECT n FROM adv_w_tg_log')],
    differs: true,
  },
  {
    name: 'FK ON DELETE CASCADE empties the child',
    ddl: 'CREATE TABLE adv_w_fkp (id INT PRIMARY KEY) ENGINE=InnoDB; CREATE TABLE adv_w_fkc (id INT PRIMARY KEY, p INT, FOREIGN KEY (p) REFERENCES adv_w_fkp (id) ON DELETE CASCADE ON UPDATE CASCADE) ENGINE=InnoDB; INSERT INTO adv_w_fkp VALUES (1), (2); INSERT INTO adv_w_fkc VALUES (10, 1), (20, 2)',
    steps: [R('SELECT id, p FROM adv_w_fkc ORDER BY id'), 'DELETE FROM adv_w_fkp WHERE id = 1', R('SELECT id, p FROM adv_w_fkc ORDER BY id'), 'UPDATE adv_w_fkp SET id = 5 WHERE id = 2', R('SELECT id, p FROM adv_w_fkc ORDER BY id')],
    differs: true,
  },
  // ---- transactions ----
  {
    name: 'transaction COMMIT: own writes inside and after',
    ddl: 'CREATE TABLE adv_x_c (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; INSERT INTO adv_x_c VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_x_c'), 'BEGIN', R('SELECT v FROM adv_x_c'), 'UPDATE adv_x_c SET v = 1', R('SELECT v FROM adv_x_c'), 'COMMIT', R('SELECT v FROM adv_x_c')],
    differs: true,
  },
  {
    name: 'string columns read inside a transaction (on the primary)',
    steps: ['BEGIN', R("SELECT v, 'lit' AS l FROM adv_t WHERE id = 1"), 'COMMIT', R("SELECT v, 'lit' AS l FROM adv_t WHERE id = 1")],
  },
  {
    name: 'transaction ROLLBACK: the write is gone',
    ddl: 'CREATE TABLE adv_x_r (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; INSERT INTO adv_x_r VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_x_r'), 'START TRANSACTION', 'UPDATE adv_x_r SET v = 1', R('SELECT v FROM adv_x_r'), 'ROLLBACK', R('SELECT v FROM adv_x_r')],
  },
  {
    name: 'autocommit = 0: a write read back, then ROLLBACK',
    ddl: 'CREATE TABLE adv_x_ac (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; INSERT INTO adv_x_ac VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_x_ac'), 'SET autocommit = 0', 'UPDATE adv_x_ac SET v = 2', R('SELECT v FROM adv_x_ac'), 'ROLLBACK', R('SELECT v FROM adv_x_ac'), 'UPDATE adv_x_ac SET v = 3', 'COMMIT', R('SELECT v FROM adv_x_ac')],
    differs: true,
  },
  {
    name: 'SAVEPOINT and ROLLBACK TO SAVEPOINT',
    ddl: 'CREATE TABLE adv_x_sp (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; INSERT INTO adv_x_sp VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_x_sp'), 'BEGIN', 'UPDATE adv_x_sp SET v = 1', 'SAVEPOINT s1', 'UPDATE adv_x_sp SET v = 2', R('SELECT v FROM adv_x_sp'), 'ROLLBACK TO SAVEPOINT s1', R('SELECT v FROM adv_x_sp'), 'COMMIT', R('SELECT v FROM adv_x_sp')],
    differs: true,
  },
  {
    name: 'MyISAM written inside a transaction survives ROLLBACK',
    ddl: 'CREATE TABLE adv_x_my (id INT PRIMARY KEY, v INT) ENGINE=MyISAM; INSERT INTO adv_x_my VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_x_my'), 'BEGIN', 'UPDATE adv_x_my SET v = 9', 'ROLLBACK', R('SHOW WARNINGS'), R('SELECT v FROM adv_x_my')],
    bystander: 'SELECT v FROM adv_x_my',
    differs: true,
  },
  {
    name: 'XA transaction commit',
    ddl: 'CREATE TABLE adv_x_xa (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; INSERT INTO adv_x_xa VALUES (1, 0)',
    steps: [R('SELECT v FROM adv_x_xa'), "XA START '{db}'", 'UPDATE adv_x_xa SET v = 5', "XA END '{db}'", "XA PREPARE '{db}'", "XA COMMIT '{db}'", R('SELECT v FROM adv_x_xa')],
    differs: true,
  },
  // ---- sequences ----
  {
    name: 'sequence: NEXTVAL then SELECT * FROM seq, SETVAL, LASTVAL',
    ddl: 'CREATE SEQUENCE adv_seq START WITH 1 INCREMENT BY 1 CACHE 0',
    steps: [
      R('SELECT next_not_cached_value FROM adv_seq'),
      'SELECT NEXTVAL(adv_seq) AS n',
      R('SELECT next_not_cached_value FROM adv_seq'),
      R('SELECT LASTVAL(adv_seq) AS l, PREVIOUS VALUE FOR adv_seq AS p'),
      'SELECT SETVAL(adv_seq, 100) AS s',
      'SELECT NEXT VALUE FOR adv_seq AS n',
      R('SELECT next_not_cached_value FROM adv_seq'),
    ],
    differs: true,
  },
  {
    name: 'sequence used by a DEFAULT on INSERT',
    ddl: 'CREATE SEQUENCE adv_seq2 CACHE 0; CREATE TABLE adv_seq2_t (id INT DEFAULT NEXTVAL(adv_seq2), v INT)',
    steps: [R('SELECT next_not_cached_value FROM adv_seq2'), 'INSERT INTO adv_seq2_t (v) VALUES (1), (2)', R('SELECT next_not_cached_value FROM adv_seq2'), R('SELECT id FROM adv_seq2_t ORDER BY id')],
    bystander: 'SELECT next_not_cached_value FROM adv_seq2',
    differs: true,
  },
  // ---- dictionary reads ----
  {
    name: 'information_schema.tables after CREATE TABLE',
    steps: [
      R("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'adv_is_%' ORDER BY 1"),
      'CREATE TABLE adv_is_new (id INT)',
      R("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'adv_is_%' ORDER BY 1"),
    ],
    differs: true,
  },
  {
    name: 'information_schema.columns and SHOW CREATE TABLE after ALTER',
    ddl: 'CREATE TABLE adv_is_alt (id INT)',
    steps: [
      R("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'adv_is_alt' ORDER BY ordinal_position"),
      R('SHOW CREATE TABLE adv_is_alt'),
      'ALTER TABLE adv_is_alt ADD COLUMN c2 INT',
      R("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'adv_is_alt' ORDER BY ordinal_position"),
      R('SHOW CREATE TABLE adv_is_alt'),
    ],
    bystander: 'SHOW CREATE TABLE adv_is_alt',
    differs: true,
  },
  {
    name: 'information_schema.session_variables and SHOW VARIABLES after SET',
    steps: [
      'SET div_precision_increment = 11',
      R("SELECT variable_value FROM information_schema.session_variables WHERE variable_name = 'DIV_PRECISION_INCREMENT'"),
      R("SHOW VARIABLES LIKE 'div_precision_increment'"),
      R('SELECT @@div_precision_increment AS a, @@session.div_precision_increment AS b'),
    ],
    differs: true,
  },
  {
    name: 'performance_schema.session_variables after SET',
    steps: ["SET lc_time_names = 'sv_SE'", R("SELECT variable_value FROM performance_schema.session_variables WHERE variable_name = 'lc_time_names'")],
  },
  {
    name: 'mysql.user after CREATE USER',
    steps: [R("SELECT user FROM mysql.user WHERE user = 'adv_u_{db}'"), "CREATE USER 'adv_u_{db}'@'localhost'", R("SELECT user FROM mysql.user WHERE user = 'adv_u_{db}'"), "DROP USER 'adv_u_{db}'@'localhost'", R("SELECT user FROM mysql.user WHERE user = 'adv_u_{db}'")],
  },
  {
    name: 'mysql.proc / information_schema.routines after CREATE PROCEDURE',
    steps: [
      R("SELECT routine_name FROM information_schema.routines WHERE routine_schema = DATABASE() AND routine_name = 'adv_new_proc'"),
      'CREATE PROCEDURE adv_new_proc() SELECT 1',
      R("SELECT routine_name FROM information_schema.routines WHERE routine_schema = DATABASE() AND routine_name = 'adv_new_proc'"),
      R("SELECT name FROM mysql.proc WHERE db = DATABASE() AND name = 'adv_new_proc'"),
    ],
    bystander: "SELECT routine_name FROM information_schema.routines WHERE routine_schema = DATABASE() AND routine_name = 'adv_new_proc'",
    differs: true,
  },
  {
    name: 'USE another database',
    steps: [R('SELECT v FROM adv_t WHERE id = 1'), 'USE {db2}', R('SELECT v FROM adv_t WHERE id = 1'), R('SELECT DATABASE() AS d')],
    bystander: 'SELECT v FROM adv_t WHERE id = 1',
  },
  {
    name: 'USE in a multi-statement',
    steps: [R('SELECT v FROM adv_t WHERE id = 1'), 'SELECT 1; USE {db2}', R('SELECT v FROM adv_t WHERE id = 1')],
    differs: true,
  },
  // ---- text that looks alike ----
  {
    name: 'qc hints that look alike',
    ddl: 'CREATE TABLE adv_h (id INT PRIMARY KEY, v INT); INSERT INTO adv_h VALUES (1, 0)',
    steps: [
      R('/*qc=on*/ SELECT v FROM adv_h'),
      R('/* qc=on */ SELECT v FROM adv_h'),
      R('-- qc=on\nSELECT v FROM adv_h'),
      'UPDATE adv_h SET v = 1',
      R('/*qc=on*/ SELECT v FROM adv_h'),
      R('/* qc=on */ SELECT v FROM adv_h'),
      R('-- qc=on\nSELECT v FROM adv_h'),
      R('SELECT v FROM adv_h /*qc=on*/'),
    ],
    bystander: '/*qc=on*/ SELECT v FROM adv_h',
    differs: true,
  },
  {
    name: 'executable comments are not comments',
    steps: [R('SELECT 1 AS a /* , 2 AS b */'), R('SELECT 1 AS a /*! , 2 AS b */'), R('SELECT 1 AS a /*M!100000 , 3 AS c */'), R('SELECT 1 AS a /*!99999 , 4 AS d */'), R('SELECT 1 AS a /*M!999999 , 5 AS e */')],
  },
  { name: '--1 is not a comment, -- 1 is', steps: [R('SELECT 1 --1 AS v'), R('SELECT 1 -- 1 AS v'), R('SELECT 1 --1 AS v')] },
  { name: "x'41' versus x '41'", steps: [R("SELECT x'41' AS v FROM adv_q"), R("SELECT x '41' FROM adv_q"), R("SELECT X'41' AS v FROM adv_q")] },
  { name: '0x41 versus 0 x41', steps: [R('SELECT 0x41 AS v FROM adv_q'), R('SELECT 0 x41 FROM adv_q')] },
  { name: '1e+1 versus 1e + 1', steps: [R('SELECT 1e+1 AS v FROM adv_q'), R('SELECT 1e + 1 AS v FROM adv_q'), R('SELECT 1e+1 AS v FROM adv_q')] },
  { name: 'whitespace and case inside strings', steps: [R("SELECT 'a  b' AS v"), R("SELECT 'a b' AS v"), R("SELECT 'A b' AS v"), R("SELECT 'a\tb' AS v")] },
  { name: 'backslashes and doubled quotes', steps: [R("SELECT 'it''s' AS v"), R("SELECT 'it\\'s' AS v"), R("SELECT 'a\\nb' AS v"), R("SELECT 'a\\\\nb' AS v"), R("SELECT 'a\\%b' AS v"), R('SELECT "q""q" AS v')] },
  {
    name: 'backslash strings under NO_BACKSLASH_ESCAPES',
    steps: ["SET sql_mode = 'NO_BACKSLASH_ESCAPES'", R("SELECT 'a\\' AS w, 'b  c' AS v"), R("SELECT 'a\\' AS w, 'b c' AS v"), R("SELECT 'a\\nb' AS v"), R("SELECT 'x\\' AS v FROM adv_q WHERE 'y\\' <> ''")],
  },
  { name: 'numbers written alike', steps: [R('SELECT 1.0 AS v'), R('SELECT 1.00 AS v'), R('SELECT 1 AS v'), R('SELECT 01 AS v'), R('SELECT .1e1 AS v')] },
  { name: 'charset introducers', steps: [R("SELECT HEX(_latin1 x'E9') AS h, _latin1 x'E9' AS v"), R("SELECT HEX(_utf8mb4 x'C3A9') AS h, _utf8mb4 x'C3A9' AS v"), R("SELECT N'é' AS v"), R("SELECT _binary 'é' AS v")] },
  {
    name: 'backticks versus double quotes, with and without ANSI_QUOTES',
    steps: [R('SELECT `v` FROM adv_t WHERE id = 1'), R('SELECT "v" FROM adv_t WHERE id = 1'), "SET sql_mode = 'ANSI_QUOTES'", R('SELECT `v` FROM adv_t WHERE id = 1'), R('SELECT "v" FROM adv_t WHERE id = 1')],
    differs: true,
  },
  {
    name: 'a comment holding a semicolon and a statement',
    ddl: 'CREATE TABLE adv_cs (v INT); INSERT INTO adv_cs VALUES (1)',
    steps: [R('SELECT v FROM adv_cs /* ; UPDATE adv_cs SET v = 2 */'), R("SELECT v, '; DELETE FROM adv_cs' AS s FROM adv_cs"), R('SELECT v FROM adv_cs')],
  },
  // ---- diagnostics right after statements ----
  {
    name: 'FOUND_ROWS after a read that may be a hit',
    steps: [R('SELECT SQL_CALC_FOUND_ROWS id FROM adv_t ORDER BY id LIMIT 1'), 'SELECT FOUND_ROWS() AS f', 'SELECT id FROM adv_t WHERE id < 3', 'SELECT FOUND_ROWS() AS f', 'SELECT SQL_CALC_FOUND_ROWS id FROM adv_t ORDER BY id LIMIT 1', 'SELECT FOUND_ROWS() AS f'],
    bystander: 'SELECT id FROM adv_t WHERE id < 3',
  },
  {
    name: 'ROW_COUNT after a read that may be a hit',
    ddl: 'CREATE TABLE adv_rc (id INT PRIMARY KEY, v INT); INSERT INTO adv_rc VALUES (1, 0), (2, 0), (3, 0)',
    steps: ['SELECT id FROM adv_t WHERE id = 3', 'UPDATE adv_rc SET v = v + 1', 'SELECT id FROM adv_t WHERE id = 3', 'SELECT ROW_COUNT() AS rc'],
    bystander: 'SELECT id FROM adv_t WHERE id = 3',
  },
  {
    name: '@@warning_count and SHOW WARNINGS after a read that may be a hit',
    steps: ['SELECT id FROM adv_t WHERE id = 2', 'SELECT 1 / 0 AS z', 'SELECT @@warning_count AS w', 'SELECT id FROM adv_t WHERE id = 2', 'SELECT @@warning_count AS w', "SELECT CAST('12abc' AS INTEGER) AS c", 'SELECT id FROM adv_t WHERE id = 2', 'SHOW WARNINGS'],
    bystander: 'SELECT id FROM adv_t WHERE id = 2',
  },
  {
    name: '@@error_count after an error then a read that may be a hit',
    steps: ['SELECT id FROM adv_t WHERE id = 1', 'SELECT * FROM adv_no_such_table', 'SELECT id FROM adv_t WHERE id = 1', 'SELECT @@error_count AS e', 'SHOW ERRORS'],
    bystander: 'SELECT id FROM adv_t WHERE id = 1',
  },
  {
    name: 'LAST_INSERT_ID(expr) set in a SELECT',
    steps: [R('SELECT LAST_INSERT_ID() AS v'), 'SELECT LAST_INSERT_ID(77) AS s', R('SELECT LAST_INSERT_ID() AS v')],
    differs: true,
  },
  // ---- the binary protocol ----
  {
    name: 'prepared read before and after an UPDATE',
    ddl: 'CREATE TABLE adv_bp (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO adv_bp VALUES (1, \'a\')',
    steps: [X('SELECT v FROM adv_bp WHERE id = ?', [1]), X('UPDATE adv_bp SET v = ? WHERE id = ?', ['b', 1], false), X('SELECT v FROM adv_bp WHERE id = ?', [1]), R('SELECT v FROM adv_bp WHERE id = 1')],
    differs: true,
  },
  { name: 'prepared concat under PIPES_AS_CONCAT', steps: [X('SELECT ? || ? AS v', ['a', 'b']), "SET sql_mode = 'PIPES_AS_CONCAT'", X('SELECT ? || ? AS v', ['a', 'b']), R(PIPES)], differs: true },
  // ---- locks ----
  {
    name: 'IS_FREE_LOCK after GET_LOCK',
    steps: [R("SELECT IS_FREE_LOCK('adv_lock_{db}') AS f"), "SELECT GET_LOCK('adv_lock_{db}', 0) AS g", R("SELECT IS_FREE_LOCK('adv_lock_{db}') AS f"), R("SELECT IS_USED_LOCK('adv_lock_{db}') IS NOT NULL AS u")],
    bystander: "SELECT IS_FREE_LOCK('adv_lock_{db}') AS f",
    differs: true,
  },
];

/** wc_test belongs to the topology: drops only the tables, views, sequences and routines this file made there (adv_*). */
async function dropOwnObjects(root: mysql.Connection): Promise<void> {
  const [old] = await root.query<mysql.RowDataPacket[]>(
    "SELECT table_name AS t, table_type AS k FROM information_schema.tables WHERE table_schema = 'wc_test' AND table_name LIKE 'adv\\_%'",
  );
  for (const r of old) await root.query(`DROP ${r.k === 'VIEW' ? 'VIEW' : r.k === 'SEQUENCE' ? 'SEQUENCE' : 'TABLE'} IF EXISTS wc_test.\`${r.t}\``);
  const [routines] = await root.query<mysql.RowDataPacket[]>(
    "SELECT routine_name AS n, routine_type AS k FROM information_schema.routines WHERE routine_schema = 'wc_test' AND routine_name LIKE 'adv\\_%'",
  );
  for (const r of routines) await root.query(`DROP ${r.k} IF EXISTS wc_test.\`${r.n}\``);
}

beforeAll(async () => {
  const root = await connect(topo.primary.port, topo, { user: 'root', multipleStatements: true });
  await root.query(`
    DROP DATABASE IF EXISTS adv_direct; CREATE DATABASE adv_direct;
    DROP DATABASE IF EXISTS adv_p2; CREATE DATABASE adv_p2;
    DROP DATABASE IF EXISTS adv_d2; CREATE DATABASE adv_d2;
  `);
  await dropOwnObjects(root);
  for (const db of ['wc_test', 'adv_direct']) {
    await root.query(`USE ${db}`);
    await root.query(COMMON_DDL);
    for (const c of CASES) if (c.ddl) await root.query(c.ddl);
  }
  for (const db of ['adv_p2', 'adv_d2']) {
    await root.query(`USE ${db}`);
    await root.query(USE_DDL);
  }
  await root.query(`
    DROP ROLE IF EXISTS adv_role;
    CREATE ROLE adv_role;
    GRANT SELECT ON wc_test.adv_secret TO adv_role;
    GRANT SELECT ON adv_direct.adv_secret TO adv_role;
    DROP USER IF EXISTS '${ROLE_USER.name}'@'%';
    CREATE USER '${ROLE_USER.name}'@'%' IDENTIFIED BY '${ROLE_USER.password}';
    GRANT SELECT ON wc_test.adv_pub TO '${ROLE_USER.name}'@'%';
    GRANT SELECT ON adv_direct.adv_pub TO '${ROLE_USER.name}'@'%';
    GRANT adv_role TO '${ROLE_USER.name}'@'%';
  `);
  await root.end();
  await waitForReplication(topo);
  px = await startProxy(topo, {
    ...routingConfig(topo),
    users: [...testConfig(topo).users, plainUser(ROLE_USER.name, ROLE_USER.password)],
    cache: testCacheConfig({ mode: 'all' }),
    // As deployed by default (binlog.enabled: auto with an account that may replicate).
    binlog: { enabled: 'on', user: 'root', password: topo.rootPassword, serverId: 4250, maxDelayMs: 5000, onUnavailable: 'fail_closed' },
  });
});

afterAll(async () => {
  await px?.stop();
  // Other files list the server's databases and accounts: leave only what the topology made.
  const root = await connect(topo.primary.port, topo, { user: 'root', multipleStatements: true });
  await root.query(`
    DROP DATABASE IF EXISTS adv_direct; DROP DATABASE IF EXISTS adv_p2; DROP DATABASE IF EXISTS adv_d2;
    DROP USER IF EXISTS '${ROLE_USER.name}'@'%'; DROP ROLE IF EXISTS adv_role;
  `);
  await dropOwnObjects(root);
  await root.end();
  await waitForReplication(topo);
});

describe('what a client sees through wirecache equals what the primary answers directly', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      await runCase(c);
    });
  }
});

describe('sessions that read other sessions', () => {
  it('READ UNCOMMITTED sees another session\'s uncommitted write, as it does directly', async () => {
    const writer = await open(DIRECT);
    const p = await open(PROXIED);
    const d = await open(DIRECT);
    const read: Step = { sql: 'SELECT v FROM adv_t WHERE id = 3' };
    try {
      for (const c of [p, d]) await c.query('SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED');
      expect(await answer(p, read, PROXIED)).toBe(await answer(d, read, DIRECT));
      await writer.query('BEGIN');
      await writer.query("UPDATE wc_test.adv_t SET v = 'dirty' WHERE id = 3");
      await writer.query("UPDATE adv_direct.adv_t SET v = 'dirty' WHERE id = 3");
      const want = await answer(d, read, DIRECT);
      expect(want).toContain('dirty');
      expect.soft(await answer(p, read, PROXIED), 'first read').toBe(want);
      expect.soft(await answer(p, read, PROXIED), 'second read').toBe(want);
    } finally {
      await writer.query('ROLLBACK');
      for (const c of [writer, p, d]) await c.end();
    }
  });

  it('a write by another proxied session is seen by the next read once replicas caught up', async () => {
    const a = await open(PROXIED);
    const b = await open(PROXIED);
    const d = await open(DIRECT);
    const read: Step = { sql: 'SELECT v FROM adv_t WHERE id = 2' };
    try {
      expect(await answer(a, read, PROXIED)).toBe(await answer(d, read, DIRECT));
      for (const [c, s] of [[b, PROXIED], [d, DIRECT]] as const) await c.query(sub("UPDATE {db}.adv_t SET v = 'changed' WHERE id = 2", s));
      await waitForReplication(topo);
      const want = await answer(d, read, DIRECT);
      expect(want).toContain('changed');
      expect(await answer(a, read, PROXIED)).toBe(want);
    } finally {
      for (const c of [a, b, d]) await c.end();
    }
  });
});
