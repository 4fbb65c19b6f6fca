/**
 * `wirecache rules test`: the statement reader (plain SQL, general log, slow
 * log), the dry run over a config's rules and routing, and the command.
 *
 * Fixtures:
 * - test/fixtures/statements.sql is written by hand; the test below runs every
 *   statement read from it on the topology's primary, so each one is real SQL.
 * - test/fixtures/general.log and test/fixtures/slow.log are unedited files
 *   written by MariaDB 10.11 (general_log / slow_query_log with
 *   long_query_time = 0, log_output = FILE): captured once from a standalone
 *   server (scripts/topology.ts startMariaDB) while mysql2 sessions (app with
 *   schema wc_test; other without a schema, then USE) and the mariadb client
 *   (whose `use shop` is an Init DB) ran the statements they contain. The last
 *   test here does the same against the live topology, so the reader is also
 *   checked against the server the suite runs on.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import type { WirecacheConfig } from '../src/config/types.js';
import { cacheText, dryRun, formatDryRun, routeText, shortStatement, type DryRunRow } from '../src/plan/rules_dry_run.js';
import { readStatements } from '../src/plan/sql_log_reader.js';
import { runCli, writeTemp } from './cli-process.js';
import { getTopology } from './topology-context.js';

const FIXTURES = path.resolve(import.meta.dirname, 'fixtures');
const readFixture = (name: string) => fs.readFile(path.join(FIXTURES, name), 'utf8');

const BACKENDS = `backends:
  - { name: primary, host: 127.0.0.1, port: 3306, role: primary }
  - { name: replica1, host: 127.0.0.1, port: 3307, role: replica }
  - { name: replica2, host: 127.0.0.1, port: 3308, role: replica }
monitor: { user: wirecache_monitor, password: "" }
routing: { consistency: session }
users:
  - { name: app, password: app_pw }
  - { name: report, password: report_pw }
`;

const RULES = `  rules:
    - name: no-payments
      match: { tables: payments }
      cache: false
    - name: order-status
      match: { digest: "SELECT id, status FROM orders WHERE id = 1" }
      cache: true
      ttl: 30
      route: replica2
      consistency: eventual
    - name: orders
      match: { tables: orders }
      cache: true
      ttl: 10
    - name: catalog
      match: { tables: [products, wc_dryrun.categories] }
      cache: true
      ttl: 300
      soft_ttl: 240
    - name: reports
      match: { tables: daily_sales, users: report }
      route: replica1
      consistency: eventual
`;

const CONFIG_YAML = `${BACKENDS}cache:
  mode: hinted
${RULES}`;

const config = (yaml = CONFIG_YAML): WirecacheConfig => parseConfig(yaml, '/etc/wirecache/wirecache.yaml');

/** One row as "line rule | cache | route": cache is "yes TTL" or the reason, route "target reason". */
function summary(r: DryRunRow): string {
  const cache = r.cache.cached ? `yes ${r.cache.ttlSeconds}` : r.cache.reason;
  return `${r.line} ${r.rule?.name ?? '-'} | ${cache} | ${r.route.target} ${r.route.reason}`;
}

describe('reading statements', () => {
  it('splits a plain SQL file at top-level ";", keeping lines, quoted ";", hints, DELIMITER bodies and USE', async () => {
    const file = readStatements(await readFixture('statements.sql'));
    expect(file.format).toBe('sql');
    const st = file.statements;
    expect(st.map((s) => s.line)).toEqual([5, 7, 8, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 21, 24, 26, 27, 28, 29, 30, 31, 33, 35, 36]);
    // USE has no schema yet; everything after it runs in wc_dryrun.
    expect(st[0]).toEqual({ sql: 'USE wc_dryrun', line: 5 });
    expect(st.slice(1).every((s) => s.schema === 'wc_dryrun')).toBe(true);
    expect(st[2].sql).toBe("SELECT p.id, p.name, c.name AS category\n  FROM products p\n  JOIN categories c ON c.id = p.category_id\n WHERE c.slug = 'tools;hardware'");
    expect(st[6].sql).toBe('/*qc=on*/ SELECT id, email FROM customers WHERE id = 7');
    expect(st[9].sql).toBe(`INSERT INTO orders (customer_id, status, note) VALUES (7, 'new', 'call before; deliver "after" 5pm; it''s fine')`);
    // Two statements on one line; a ";" in a quoted identifier is not a boundary.
    expect(st[12].sql).toBe('SELECT 1 AS one');
    expect(st[13].sql).toBe('SELECT name AS `odd;name` FROM products WHERE id = 42');
    // The block comment on lines of its own is dropped, the "#" comment is cut out.
    expect(st[14].sql.replace(/\s+/g, ' ')).toBe('SELECT name FROM categories WHERE id = 3');
    expect(st[15].sql).toBe(String.raw`SELECT "double \"quoted\"; text" AS s, 'back\\slash;' AS t`);
    expect(st[21].sql).toBe('CREATE PROCEDURE order_count() BEGIN SELECT COUNT(*) FROM orders; SELECT 1; END');
    expect(st[22].sql).toBe('CALL order_count()');
  });

  it('handles edge cases of plain SQL: no final delimiter, comment-only text, executable comments, CRLF', () => {
    expect(readStatements('SELECT 1').statements).toEqual([{ sql: 'SELECT 1', line: 1 }]);
    expect(readStatements('-- nothing here;\n/* nor; here */\n# nor; here\n;;\n').statements).toEqual([]);
    expect(readStatements('/*!40101 SET NAMES utf8mb4 */;\r\nSELECT 2;\r\n').statements).toEqual([
      { sql: '/*!40101 SET NAMES utf8mb4 */', line: 1 },
      { sql: 'SELECT 2', line: 2 },
    ]);
    // A hint on a line of its own stays with the statement it precedes, and that is where the statement starts.
    expect(readStatements('\n/*qc=on*/\nSELECT 3;').statements).toEqual([{ sql: '/*qc=on*/\nSELECT 3', line: 2 }]);
    expect(readStatements('DELIMITER $$\nSELECT 1; SELECT 2$$\nDELIMITER ;\nSELECT 3;').statements.map((s) => s.sql)).toEqual([
      'SELECT 1; SELECT 2',
      'SELECT 3',
    ]);
    expect(readStatements("USE `my db`; SELECT 'a;b'").statements).toEqual([
      { sql: 'USE `my db`', line: 1 },
      { sql: "SELECT 'a;b'", line: 1, schema: 'my db' },
    ]);
  });

  it('reads a MariaDB general log: Query and Execute per connection, with user, schema and client address', async () => {
    const file = readStatements(await readFixture('general.log'));
    expect(file.format).toBe('general_log');
    const st = file.statements;
    expect(st.map((s) => [s.line, s.connection, s.user ?? null, s.schema ?? null])).toEqual([
      [5, 7, 'app', 'wc_test'],
      [6, 7, 'app', 'wc_test'],
      [10, 7, 'app', 'wc_test'],
      [12, 7, 'app', 'wc_test'],
      [13, 7, 'app', 'wc_test'],
      [14, 7, 'app', 'wc_test'],
      [15, 7, 'app', 'wc_test'],
      [17, 7, 'app', 'wc_test'],
      [18, 7, 'app', 'wc_test'],
      [19, 7, 'app', 'wc_test'],
      // Connected without a schema ("on  using TCP/IP"); its USE sets one for what follows.
      [21, 8, 'other', null],
      [22, 8, 'other', 'wc_test'],
      [24, 7, 'app', 'wc_test'],
      [27, 9, 'app', 'wc_test'],
      [28, 9, 'app', 'wc_test'],
      // After "Init DB shop" (the mariadb client's `use shop`).
      [30, 9, 'app', 'shop'],
      // Root's thread connected before the log was on: nothing known about it.
      [32, 6, null, null],
    ]);
    expect(st[1].sql).toBe("SELECT p.id, p.name, c.name AS category\n  FROM products p\n  JOIN categories c ON c.id = p.category_id\n WHERE c.slug = 'tools;hardware'");
    // The Prepare (with "?") is not a statement; its Execute (values filled in) is.
    expect(st[3]).toMatchObject({ sql: 'SELECT id, status FROM orders WHERE id = 1001', prepared: true });
    expect(st.filter((s) => s.prepared).length).toBe(1);
    expect(st.some((s) => s.sql.includes('?'))).toBe(false);
    expect(st[6].sql).toBe("INSERT INTO orders (customer_id, status, note) VALUES (7, 'new', 'call before;\ndeliver after 5pm')");
    expect(st[9].sql).toBe('SELECT 1 AS a; SELECT 2 AS b');
    expect(st[0].host).toBe('127.0.0.1');
  });

  it('reads a MySQL-style general log (ISO timestamps, "as anonymous" connects, Change user, a header after FLUSH LOGS)', () => {
    const log = [
      '/usr/sbin/mysqld, Version: 8.0.36 (MySQL Community Server - GPL). started with:',
      'Tcp port: 3306  Unix socket: /var/run/mysqld/mysqld.sock',
      'Time                 Id Command    Argument',
      '2024-11-21T16:02:38.123456Z\t   12 Connect\tshop@10.1.2.3 on sales using TCP/IP',
      '2024-11-21T16:02:38.223456Z\t   12 Query\tSELECT *',
      '  FROM orders',
      '2024-11-21T16:02:38.323456Z\t   13 Connect\tapp@localhost as anonymous on wc_test',
      '2024-11-21T16:02:38.423456Z\t   13 Query\tSELECT 2',
      '/usr/sbin/mysqld, Version: 8.0.36 (MySQL Community Server - GPL). started with:',
      'Tcp port: 3306  Unix socket: /var/run/mysqld/mysqld.sock',
      'Time                 Id Command    Argument',
      '2024-11-21T16:02:39.000000Z\t   12 Change user\treport@10.1.2.3 on  using TCP/IP',
      '2024-11-21T16:02:39.100000Z\t   12 Query\tSELECT 3',
      '2024-11-21T16:02:39.200000Z\t   12 Quit\t',
    ].join('\n');
    const file = readStatements(log);
    expect(file.format).toBe('general_log');
    expect(file.statements).toEqual([
      { sql: 'SELECT *\n  FROM orders', line: 5, connection: 12, user: 'shop', schema: 'sales', host: '10.1.2.3' },
      // "localhost" is no IP address: the client address is left to --client.
      { sql: 'SELECT 2', line: 8, connection: 13, user: 'app', schema: 'wc_test' },
      { sql: 'SELECT 3', line: 13, connection: 12, user: 'report', host: '10.1.2.3' },
    ]);
  });

  it('reads a MariaDB slow log: skips use/SET timestamp lines, keeps user, schema and thread id', async () => {
    const file = readStatements(await readFixture('slow.log'));
    expect(file.format).toBe('slow_log');
    const st = file.statements;
    expect(st.map((s) => [s.line, s.connection, s.user ?? null, s.schema ?? null, s.sql.split('\n')[0]])).toEqual([
      [11, 7, 'app', 'wc_test', 'SELECT id, name, price FROM products WHERE id = 42'],
      [17, 7, 'app', 'wc_test', 'SELECT p.id, p.name, c.name AS category'],
      [26, 7, 'app', 'wc_test', '/*qc=on*/ SELECT id, email FROM customers WHERE id = 7'],
      [32, 7, 'app', 'wc_test', 'SELECT id, status FROM orders WHERE id = 1001'],
      [38, 7, 'app', 'wc_test', 'START TRANSACTION'],
      [44, 7, 'app', 'wc_test', 'SELECT id, status FROM orders WHERE id = 1001 FOR UPDATE'],
      [50, 7, 'app', 'wc_test', "INSERT INTO orders (customer_id, status, note) VALUES (7, 'new', 'call before;"],
      [57, 7, 'app', 'wc_test', 'COMMIT'],
      [63, 7, 'app', 'wc_test', 'SELECT COUNT(*) FROM orders WHERE created_at > NOW() - INTERVAL 1 DAY'],
      // The server logs each statement of a multi-statement query on its own.
      [69, 7, 'app', 'wc_test', 'SELECT 1 AS a'],
      [75, 7, 'app', 'wc_test', 'SELECT 2 AS b'],
      [81, 8, 'other', 'wc_test', 'USE wc_test'],
      [87, 8, 'other', 'wc_test', "SELECT day, total FROM daily_sales WHERE day >= '2024-01-01'"],
      [93, 7, 'app', 'wc_test', '/*route=primary*/ SELECT id, amount FROM payments WHERE order_id = 1001'],
      [99, 9, 'app', 'wc_test', 'SELECT name FROM categories WHERE id = 3'],
      [105, 9, 'app', 'wc_test', 'SELECT DATABASE()'],
      [112, 9, 'app', 'shop', 'SELECT id, name FROM products WHERE id = 42'],
    ]);
    expect(st[1].sql).toBe("SELECT p.id, p.name, c.name AS category\n  FROM products p\n  JOIN categories c ON c.id = p.category_id\n WHERE c.slug = 'tools;hardware'");
    expect(st[6].sql).toBe("INSERT INTO orders (customer_id, status, note) VALUES (7, 'new', 'call before;\ndeliver after 5pm')");
    expect(st.some((s) => /SET timestamp|^use `/.test(s.sql))).toBe(false);
    expect(st.every((s) => s.host === '127.0.0.1')).toBe(true);
  });

  it('reads a MySQL-style slow log (no Thread_id line: Id on the User@Host line, schema from use)', () => {
    const log = [
      '# Time: 2024-11-21T16:02:38.123456Z',
      '# User@Host: report[report] @ db-client [10.0.0.9]  Id:    41',
      '# Query_time: 0.000200  Lock_time: 0.000001 Rows_sent: 1  Rows_examined: 1',
      'use sales;',
      'SET timestamp=1732204958;',
      'SELECT SUM(total)',
      '  FROM daily_sales;',
      '# User@Host: report[report] @ db-client [10.0.0.9]  Id:    41',
      '# Query_time: 0.000100  Lock_time: 0.000001 Rows_sent: 0  Rows_examined: 0',
      'SET timestamp=1732204958;',
      '# administrator command: Quit;',
    ].join('\n');
    expect(readStatements(log)).toEqual({
      format: 'slow_log',
      statements: [{ sql: 'SELECT SUM(total)\n  FROM daily_sales', line: 6, connection: 41, user: 'report', schema: 'sales', host: '10.0.0.9' }],
    });
  });
});

describe('dry run of the rules', () => {
  let statements: Awaited<ReturnType<typeof readStatements>>['statements'];
  beforeAll(async () => {
    statements = readStatements(await readFixture('statements.sql')).statements;
  });

  it('gives each statement its rule, cache decision and route', () => {
    const rows = dryRun(config(), statements, {});
    expect(rows.map(summary)).toEqual([
      '5 - | not_select | primary not_a_read',
      '7 catalog | yes 300 | replica read',
      '8 catalog | yes 300 | replica read',
      '12 order-status | yes 30 | replica2 rule',
      '13 orders | locking_read | primary locking_read',
      '14 orders | non_deterministic | replica read',
      '15 - | yes 60 | replica read',
      '16 no-payments | rule_cache_false | primary hint',
      '17 - | not_chosen | replica read',
      '18 - | not_select | primary write',
      '19 catalog | not_select | primary write',
      '20 no-payments | not_select | primary write',
      '21 - | not_chosen | replica read',
      '21 catalog | yes 300 | replica read',
      '24 catalog | yes 300 | replica read',
      '26 - | not_chosen | replica read',
      '27 - | not_select | primary not_a_read',
      // Inside START TRANSACTION ... COMMIT: not cached, and on the primary.
      '28 catalog | in_transaction | primary transaction',
      '29 orders | not_select | primary write',
      '30 - | not_select | primary not_a_read',
      '31 - | not_chosen | primary primary_function',
      // The procedure body's ";" make it a multi-statement text to the proxy too.
      '33 orders | multi_statement | primary multi_statement',
      '35 - | not_select | primary write',
      // After CALL the session stays on the primary (the procedure may have left state there).
      '36 catalog | yes 300 | primary session_pinned',
    ]);
    const byLine = (line: number) => rows.filter((r) => r.line === line);
    const [pointSelect] = byLine(7);
    expect(pointSelect.rule).toEqual({ name: 'catalog', source: expect.stringMatching(/^\/etc\/wirecache\/wirecache\.yaml:\d+$/) });
    expect(pointSelect.cache).toMatchObject({ cached: true, label: 'catalog', ttlSeconds: 300, softTtlSeconds: 240 });
    // A cached read's miss is read from the primary; consistency is the global one without a rule's.
    expect(pointSelect.route).toMatchObject({ target: 'replica', consistency: 'session', onCacheMiss: 'primary' });
    expect(byLine(12)[0].route).toMatchObject({ target: 'replica2', detail: 'order-status', consistency: 'eventual' });
    expect(byLine(14)[0].cache).toMatchObject({ reason: 'non_deterministic', detail: 'NOW' });
    expect(byLine(15)[0].cache).toMatchObject({ cached: true, label: 'hint' });
    expect(byLine(16)[0].route).toMatchObject({ target: 'primary', reason: 'hint', consistency: null, onCacheMiss: null });
    expect(byLine(18)[0].route.detail).toBe('insert');
    expect(byLine(31)[0].route.detail).toBe('LAST_INSERT_ID');
    // Nothing chose LAST_INSERT_ID(); were it chosen, it still could not be cached.
    expect(byLine(31)[0].cache).toMatchObject({ reason: 'not_chosen', ifChosen: 'non_deterministic', detail: 'LAST_INSERT_ID' });
    expect(byLine(36)[0].route.detail).toBe('call');
    expect(rows.every((r) => r.user === 'app' && r.client === '127.0.0.1')).toBe(true);
  });

  it('takes the user, schema and client address from the options when the file does not give them', () => {
    const withReport = dryRun(config(), statements, { user: 'report' });
    const sales = withReport.find((r) => r.sql.includes('daily_sales'))!;
    expect(sales.user).toBe('report');
    expect(sales.rule?.name).toBe('reports');
    expect(sales.route).toMatchObject({ target: 'replica1', reason: 'rule', consistency: 'eventual' });

    // Before the file's USE the schema comes from --schema; categories is matched as wc_dryrun.categories only.
    const cfg = config();
    const categories = [{ sql: 'SELECT name FROM categories WHERE id = 3', line: 1 }];
    expect(dryRun(cfg, categories, { schema: 'wc_dryrun' })[0].rule?.name).toBe('catalog');
    expect(dryRun(cfg, categories, { schema: 'wc_test' })[0].rule).toBeNull();
    expect(dryRun(cfg, categories, {})[0]).toMatchObject({ schema: null, rule: null });

    const clientRule = config(`${BACKENDS}cache:
  rules:
    - name: office
      match: { clients: 10.0.0.0/8 }
      cache: true
`);
    expect(dryRun(clientRule, categories, { client: '10.1.2.3' })[0].cache.cached).toBe(true);
    expect(dryRun(clientRule, categories, {})[0].cache).toMatchObject({ cached: false, reason: 'not_chosen' });
    // A log's own user and address win over the options.
    const logged = [{ sql: 'SELECT name FROM categories', line: 1, user: 'app', host: '10.9.9.9' }];
    expect(dryRun(clientRule, logged, { user: 'report', client: '192.168.0.1' })[0]).toMatchObject({ user: 'app', client: '10.9.9.9', cache: { cached: true } });
  });

  it('keeps session state per connection of a log', () => {
    const log = readStatements(
      [
        '\t\t     1 Connect\tapp@127.0.0.1 on wc_dryrun using TCP/IP',
        '\t\t     2 Connect\tapp@127.0.0.1 on wc_dryrun using TCP/IP',
        '\t\t     1 Query\tSET autocommit=0',
        '\t\t     1 Query\tSELECT price FROM products WHERE id = 1',
        '\t\t     2 Query\tSELECT price FROM products WHERE id = 1',
        '\t\t     2 Query\tLOCK TABLES products READ',
        '\t\t     2 Query\tSELECT price FROM products WHERE id = 2',
        '\t\t     1 Query\tSET autocommit=1',
        '\t\t     1 Query\tSELECT price FROM products WHERE id = 2',
        '\t\t     2 Query\tUNLOCK TABLES',
        '\t\t     2 Query\tSELECT price FROM products WHERE id = 3',
      ].join('\n'),
    );
    expect(log.format).toBe('general_log');
    const rows = dryRun(config(), log.statements).filter((r) => r.statement.type === 'select');
    expect(rows.map((r) => `${r.connection} ${r.cache.cached ? 'cached' : r.cache.reason} ${r.route.target} ${r.route.reason}`)).toEqual([
      '1 in_transaction primary transaction',
      '2 cached replica read',
      '2 cached primary session_pinned',
      '1 cached replica read',
      '2 cached replica read',
    ]);
    expect(rows[2].route.detail).toBe('lock_tables');
  });

  it('says what it cannot know: no cache section, no monitor, unknown or primary server names, mode all', () => {
    const sql = [
      { sql: 'SELECT id FROM products', line: 1 },
      { sql: '/*route=replica9*/ SELECT id FROM products', line: 2 },
      { sql: '/*route=primary*/ /*qc=off*/ SELECT id FROM products', line: 3 },
      { sql: 'SELECT NOW()', line: 4 },
      { sql: '/*qc=on*/ /*qc_ttl=0*/ SELECT 1', line: 5 },
    ];
    const noCache = dryRun(config(BACKENDS), sql);
    expect(noCache.map((r) => r.cache.reason)).toEqual(['cache_off', 'cache_off', 'cache_off', 'cache_off', 'cache_off']);
    expect(noCache[1].route).toMatchObject({ target: 'replica', reason: 'hint', note: 'no backend named "replica9": any replica in rotation' });

    const single = config(`backends:
  - { name: db1, host: 127.0.0.1 }
users:
  - { name: app, password: app_pw }
cache: { mode: all }
`);
    const rows = dryRun(single, sql);
    expect(rows.map((r) => `${r.route.target} ${r.route.reason}`)).toEqual(Array(5).fill('primary no_monitor'));
    expect(rows[0].route.note).toBe('no monitor section: every statement goes to the primary');
    expect(rows.map((r) => (r.cache.cached ? `yes ${r.cache.label}` : r.cache.reason))).toEqual(['yes all', 'yes all', 'hint_qc_off', 'non_deterministic', 'ttl_zero']);

    const monitoredSingle = config(`backends:
  - { name: db1, host: 127.0.0.1 }
monitor: { user: m, password: "" }
users:
  - { name: app, password: app_pw }
`);
    expect(dryRun(monitoredSingle, sql.slice(0, 1))[0].route).toMatchObject({ target: 'primary', reason: 'no_replica', detail: 'read' });
    const named = dryRun(config(), [{ sql: '/*route=primary*/ SELECT 1', line: 1 }, { sql: '/*route=replica1*/ SELECT 1', line: 2 }]);
    expect(named[0].route).toMatchObject({ target: 'primary', reason: 'hint', consistency: null });
    expect(named[1].route).toMatchObject({ target: 'replica1', reason: 'hint', consistency: 'session', note: null });
  });

  it('formats a table with one line per statement, the notes and a summary', () => {
    const rows = dryRun(config(), statements);
    const text = formatDryRun(rows);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^LINE +RULE +CACHED +ROUTE +STATEMENT$/);
    expect(lines).toHaveLength(1 + rows.length + 2);
    expect(lines[2]).toMatch(/^ +7 +catalog +yes, ttl 300s, soft 240s +replica \(read; consistency: session; miss: primary\) +SELECT id, name, price FROM products WHERE id = 42$/);
    expect(lines[4]).toMatch(/^ +12 +order-status +yes, ttl 30s +replica2 \(rule: order-status; consistency: eventual; miss: primary\) +SELECT id, status FROM orders/);
    expect(lines[5]).toMatch(/ no: locking_read +primary \(locking_read\) +SELECT id, status FROM orders WHERE id = 1001 FOR UPDATE$/);
    expect(lines[6]).toMatch(/ no: non_deterministic \(NOW\) +replica \(read; consistency: session\) /);
    expect(lines[10]).toMatch(/ no: not_select +primary \(write: insert\) +INSERT INTO orders \(customer_id, status, note\) VALUES \(7, 'new', 'call before\.\.\.$/);
    expect(lines.at(-1)).toBe('24 statement(s): 7 cached, 14 to the primary, 10 to a replica or named server');
    // Columns line up: every row's STATEMENT starts where the header's does.
    const at = lines[0].indexOf('STATEMENT');
    for (const [i, r] of rows.entries()) expect(lines[i + 1].slice(at)).toBe(shortStatement(r.sql));
    // Multi-line statements are shown on one line, shortened to 80 characters.
    expect(shortStatement(rows[2].sql)).toBe('SELECT p.id, p.name, c.name AS category FROM products p JOIN categories c ON ...');
    expect(shortStatement(rows[2].sql)).toHaveLength(80);
    expect(cacheText(rows[1].cache)).toBe('yes, ttl 300s, soft 240s');
    expect(routeText(rows[7].route)).toBe('primary (hint)');
    expect(formatDryRun(dryRun(config(`backends:\n  - { name: db1, host: 127.0.0.1 }\nusers:\n  - { name: app, password: x }\n`), statements.slice(0, 2)))).toContain(
      '\nnote: no monitor section: every statement goes to the primary\n',
    );
  });
});

describe('regex rules in the dry run', () => {
  const REGEX_YAML = `${BACKENDS}cache:
  mode: hinted
  rules:
    - name: read-only-check
      match: { regex: "@@GLOBAL\\\\.read_only" }
      route: replica1
    - name: orders
      match: { regex: "FROM\\\\s+orders\\\\b" }
      cache: true
      ttl: 10
`;
  const regexStatements = [
    { line: 1, sql: 'SELECT @@GLOBAL.read_only AS Value' },
    { line: 2, sql: '/* list */ SELECT id\n  FROM   orders WHERE id = 1; ' },
    { line: 3, sql: 'SELECT id FROM orders_archive' },
  ];

  it('matches a regex written as the query reads, and prints the text it matched against', () => {
    const rows = dryRun(config(REGEX_YAML), regexStatements, { user: 'app' });
    expect(rows.map((r) => r.rule?.name ?? null)).toEqual(['read-only-check', 'orders', null]);
    expect(rows.map((r) => r.statement.regexText)).toEqual([
      'SELECT @@GLOBAL.read_only AS Value',
      'SELECT id\n  FROM   orders WHERE id = 1',
      'SELECT id FROM orders_archive',
    ]);
    // The rule names a replica, but a read of read_only answers as the primary.
    expect(rows[0].route).toMatchObject({ target: 'primary', reason: 'server_state', detail: '@@GLOBAL.read_only' });
    expect(rows[1].cache).toMatchObject({ cached: true, label: 'orders' });
    const lines = formatDryRun(rows, { regexText: true }).split('\n');
    expect(lines[1]).toMatch(/^ +1 +read-only-check +no: not_chosen; if chosen: non_deterministic \(@@GLOBAL\.read_only\) +primary \(server_state: @@GLOBAL\.read_only\) +SELECT @@GLOBAL\.read_only AS Value$/);
    expect(lines[2]).toMatch(/^ +regex text: SELECT @@GLOBAL\.read_only AS Value$/);
    expect(lines[4]).toMatch(/^ +regex text: SELECT id FROM orders WHERE id = 1$/);
    // The regex text line starts under the STATEMENT column.
    expect(lines[2].indexOf('regex text')).toBe(lines[0].indexOf('STATEMENT'));
    expect(formatDryRun(rows)).not.toContain('regex text');
  });
});

describe('the fixtures are real', () => {
  const topo = getTopology();
  let root: mysql.Connection;
  beforeAll(async () => {
    root = await mysql.createConnection({ host: '127.0.0.1', port: topo.primary.port, user: topo.rootUser, password: topo.rootPassword, multipleStatements: true });
    await root.query(`
      DROP DATABASE IF EXISTS wc_dryrun;
      CREATE DATABASE wc_dryrun;
      USE wc_dryrun;
      CREATE TABLE categories (id INT PRIMARY KEY, slug VARCHAR(40), name VARCHAR(40));
      CREATE TABLE products (id INT PRIMARY KEY, category_id INT, name VARCHAR(40), price DECIMAL(10,2));
      CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(80));
      CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT, status VARCHAR(20), note VARCHAR(200), created_at DATETIME DEFAULT NOW());
      CREATE TABLE payments (id INT PRIMARY KEY, order_id INT, amount DECIMAL(10,2));
      CREATE TABLE daily_sales (day DATE PRIMARY KEY, total DECIMAL(12,2));
      INSERT INTO categories VALUES (3, 'tools;hardware', 'Tools');
      INSERT INTO products VALUES (42, 3, 'Hammer', 9.90);
      INSERT INTO orders (id, customer_id, status) VALUES (1001, 7, 'paid');
      INSERT INTO payments VALUES (99, 1001, 9.90);
    `);
  });
  afterAll(async () => {
    await root.query('DROP DATABASE IF EXISTS wc_dryrun');
    await root.end();
  });

  it('every statement read from statements.sql runs on MariaDB, and the quoted ";" reach it intact', async () => {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: topo.primary.port, user: topo.rootUser, password: topo.rootPassword, multipleStatements: true });
    try {
      const { statements } = readStatements(await readFixture('statements.sql'));
      for (const s of statements) await conn.query(s.sql);
      const [shipped] = await conn.query('SELECT id FROM wc_dryrun.orders WHERE customer_id = 7 AND status = ?', ['shipped']);
      // The UPDATE in the transaction shipped order 1001 (customer 7); the INSERT's note kept its ";" and quotes.
      const [inserted] = await conn.query("SELECT note FROM wc_dryrun.orders WHERE status = 'new'");
      expect(shipped).toEqual([{ id: 1001 }]);
      expect(inserted).toEqual([{ note: `call before; deliver "after" 5pm; it's fine` }]);
      const [[quoted]] = (await conn.query(statements.find((s) => s.sql.startsWith('SELECT "double'))!.sql)) as unknown as [Record<string, string>[]];
      expect(quoted).toEqual({ s: 'double "quoted"; text', t: 'back\\slash;' });
    } finally {
      await conn.end();
    }
  });

  it('reads back the general and slow logs the live primary writes', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-dryrun-'));
    const generalFile = path.join(dir, 'general.log');
    const slowFile = path.join(dir, 'slow.log');
    const [[saved]] = (await root.query(
      'SELECT @@global.general_log AS g, @@global.general_log_file AS gf, @@global.slow_query_log AS s, @@global.slow_query_log_file AS sf, @@global.long_query_time AS lqt, @@global.log_output AS lo',
    )) as unknown as [{ g: number; gf: string; s: number; sf: string; lqt: number; lo: string }[]];
    let threadId = 0;
    try {
      await root.query("SET GLOBAL log_output = 'FILE', general_log_file = ?, slow_query_log_file = ?, long_query_time = 0", [generalFile, slowFile]);
      await root.query('SET GLOBAL general_log = ON, slow_query_log = ON');
      const app = await mysql.createConnection({ host: '127.0.0.1', port: topo.primary.port, user: 'app', password: 'app_pw', database: 'wc_dryrun' });
      threadId = app.threadId!;
      await app.query('SELECT id, name\n  FROM products\n WHERE id = 42');
      await app.execute('SELECT status FROM orders WHERE id = ?', [1001]);
      await app.query('USE wc_test');
      await app.query("SELECT 'a;b' AS x");
      await app.end();
    } finally {
      await root.query('SET GLOBAL general_log = ?, slow_query_log = ?', [saved.g, saved.s]);
      await root.query('SET GLOBAL general_log_file = ?, slow_query_log_file = ?, long_query_time = ?, log_output = ?', [saved.gf, saved.sf, saved.lqt, saved.lo]);
    }
    const general = readStatements(await fs.readFile(generalFile, 'utf8'));
    expect(general.format).toBe('general_log');
    const mine = (s: { connection?: number }) => s.connection === threadId;
    const expected = [
      { sql: 'SELECT id, name\n  FROM products\n WHERE id = 42', user: 'app', schema: 'wc_dryrun', host: '127.0.0.1', connection: threadId },
      { sql: 'SELECT status FROM orders WHERE id = 1001', user: 'app', schema: 'wc_dryrun', host: '127.0.0.1', connection: threadId, prepared: true },
      { sql: 'USE wc_test', user: 'app', schema: 'wc_dryrun', host: '127.0.0.1', connection: threadId },
      { sql: "SELECT 'a;b' AS x", user: 'app', schema: 'wc_test', host: '127.0.0.1', connection: threadId },
    ];
    expect(general.statements.filter(mine).map(({ line: _line, ...rest }) => rest)).toEqual(expected);
    const slow = readStatements(await fs.readFile(slowFile, 'utf8'));
    expect(slow.format).toBe('slow_log');
    expect(slow.statements.filter(mine).map((s) => [s.sql, s.user, s.connection])).toEqual(expected.map((e) => [e.sql, 'app', threadId]));
    await fs.rm(dir, { recursive: true, force: true });
  });
});

describe('wirecache rules test', () => {
  it('prints a row per statement, or JSON, and exits 0', { timeout: 120_000 }, async () => {
    const cfg = await writeTemp('wirecache.yaml', CONFIG_YAML);
    const [text, json] = await Promise.all([
      runCli(['rules', 'test', '--config', cfg, path.join(FIXTURES, 'statements.sql')]),
      runCli(['rules', 'test', '-c', cfg, '--user', 'report', '--json', path.join(FIXTURES, 'general.log')]),
    ]);
    expect(text.code).toBe(0);
    expect(text.output).toContain('statements.sql (SQL file): 24 statement(s), rules of ');
    expect(text.output).toMatch(/\n +12 +order-status +yes, ttl 30s +replica2 \(rule: order-status; consistency: eventual; miss: primary\) +SELECT id, status FROM orders WHERE id = 1001\n/);
    expect(text.output).toMatch(/\n +13 +orders +no: locking_read +primary \(locking_read\) +SELECT id, status FROM orders WHERE id = 1001 FOR UPDATE\n/);
    expect(text.output).toMatch(/\n +28 +catalog +no: in_transaction +primary \(transaction\) /);
    expect(text.output).toContain('24 statement(s): 7 cached, 14 to the primary, 10 to a replica or named server');

    expect(json.code).toBe(0);
    const doc = JSON.parse(json.output) as { format: string; rows: DryRunRow[] };
    expect(doc.format).toBe('general_log');
    expect(doc.rows).toHaveLength(17);
    // The log's own users win over --user: only the statement without one (root's thread) is judged as report.
    expect(doc.rows.map((r) => r.user)).toEqual([...Array(10).fill('app'), 'other', 'other', 'app', 'app', 'app', 'app', 'report']);
    const forUpdate = doc.rows.find((r) => r.sql.endsWith('FOR UPDATE'))!;
    expect(forUpdate).toMatchObject({ line: 14, connection: 7, rule: { name: 'orders' }, cache: { reason: 'locking_read' }, route: { target: 'primary', reason: 'transaction' } });
    expect(doc.rows.find((r) => r.line === 30)).toMatchObject({ schema: 'shop', rule: { name: 'catalog' }, cache: { cached: true, ttlSeconds: 300 } });
  });

  it('exits 2 with file:line:column on a rules file error, and on a missing queries file or --config', { timeout: 120_000 }, async () => {
    const rulesFile = await writeTemp('rules.yaml', '- name: a\n  match: { tables: t }\n  tll: 5\n');
    const badCfg = path.join(path.dirname(rulesFile), 'wirecache.yaml');
    await fs.writeFile(badCfg, `${BACKENDS}cache:\n  rules_file: rules.yaml\n`);
    const goodCfg = await writeTemp('wirecache.yaml', CONFIG_YAML);
    const [badRules, missing, noConfig] = await Promise.all([
      runCli(['rules', 'test', '--config', badCfg, path.join(FIXTURES, 'statements.sql')]),
      runCli(['rules', 'test', '--config', goodCfg, '/nonexistent/queries.sql']),
      runCli(['rules', 'test', path.join(FIXTURES, 'statements.sql')]),
    ]);
    expect(badRules.code).toBe(2);
    expect(badRules.output).toContain(`${rulesFile}:3:3: field [0].tll: unknown key "tll" (did you mean "ttl"?)`);
    expect(badRules.output).not.toMatch(/LINE +RULE/);
    expect(missing.code).toBe(2);
    expect(missing.output).toMatch(/^cannot read queries file \/nonexistent\/queries\.sql: ENOENT/m);
    expect(noConfig.code).toBe(2);
    expect(noConfig.output).toContain('missing the config file: wirecache rules test CONFIG QUERIES (or --config CONFIG QUERIES)');
  });
});
