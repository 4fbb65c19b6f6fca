/**
 * The read/write split decision (src/routing/router.ts) on real classified
 * statements: every reason decideRoute gives, the order in which they win,
 * and isRead. No database.
 */
import { describe, expect, it } from 'vitest';
import { compileRule, type CacheRule, type RawRule } from '../src/config/rules.js';
import { decideRoute, isRead, type RouteDecision, type RouteReason, type SessionPins } from '../src/routing/router.js';
import { classify } from '../src/sql/classifier.js';

const FREE: SessionPins = { inTransaction: false, pinned: null };
const rule = (raw: RawRule): CacheRule => compileRule(raw, 'router.test');
const route = (sql: string, r: CacheRule | null = null, pins: Partial<SessionPins> = {}): RouteDecision =>
  decideRoute(classify(sql), r, { ...FREE, ...pins });

describe('isRead', () => {
  it.each([
    ['SELECT * FROM t', true],
    ['SELECT 1', true],
    ['SHOW TABLES', true],
    ['EXPLAIN SELECT * FROM t', true],
    ['SELECT * FROM t FOR UPDATE', true], // a read, if a locking one (decideRoute sends it to the primary)
    ['UPDATE t SET a = 1', false],
    ['INSERT INTO t SELECT * FROM u', false],
    ['DELETE FROM t', false],
    ['CALL p()', false],
    ['SET @a = 1', false],
    ['BEGIN', false],
    ['USE shop', false],
    ['DO 1', false],
    ['LOCK TABLES t READ', false],
    ['CREATE TEMPORARY TABLE tt (a INT)', false],
  ])('%s -> %s', (sql, expected) => {
    expect(isRead(classify(sql))).toBe(expected);
  });

  it('is false for a SELECT whose written tables are unknown or not empty', () => {
    const select = classify('SELECT * FROM t');
    expect(isRead({ ...select, tablesWritten: null })).toBe(false);
    expect(isRead({ ...select, tablesWritten: [{ schema: null, table: 't' }] })).toBe(false);
    expect(isRead({ ...select, type: 'do' })).toBe(false);
  });
});

describe('decideRoute: each reason', () => {
  it('read: a plain SELECT goes to a replica', () => {
    expect(route('SELECT * FROM t WHERE id = 1')).toEqual({ target: { kind: 'replica' }, reason: 'read', detail: null });
  });

  it('write: statements that change tables, or whose written tables are unknown, go to the primary with the type', () => {
    expect(route('UPDATE t SET a = 1')).toEqual({ target: { kind: 'primary' }, reason: 'write', detail: 'update' });
    expect(route('INSERT INTO t SELECT * FROM u')).toEqual({ target: { kind: 'primary' }, reason: 'write', detail: 'insert' });
    expect(route('DELETE FROM t')).toMatchObject({ reason: 'write', detail: 'delete' });
    expect(route('CREATE TEMPORARY TABLE tt (a INT)')).toMatchObject({ reason: 'write', detail: 'create' });
    // CALL may write anything: its written tables are unknown (null).
    expect(route('CALL p()')).toEqual({ target: { kind: 'primary' }, reason: 'write', detail: 'call' });
  });

  it('not_a_read: statements that write no table but are not reads, and reads that are not SELECTs', () => {
    for (const [sql, type] of [
      ['SET @a = 1', 'set'],
      ['BEGIN', 'begin'],
      ['USE shop', 'use'],
      ['DO 1', 'do'],
      ['LOCK TABLES t READ', 'lock'],
    ] as const) {
      expect(route(sql), sql).toEqual({ target: { kind: 'primary' }, reason: 'not_a_read', detail: type });
    }
    // SHOW / EXPLAIN read, but go to the primary unless a hint or rule says otherwise.
    expect(route('SHOW TABLES')).toEqual({ target: { kind: 'primary' }, reason: 'not_a_read', detail: 'show' });
    expect(route('EXPLAIN SELECT * FROM t')).toEqual({ target: { kind: 'primary' }, reason: 'not_a_read', detail: 'show' });
  });

  it('multi_statement: a multi-statement text always goes to the primary', () => {
    expect(route('SELECT 1; SELECT 2')).toEqual({ target: { kind: 'primary' }, reason: 'multi_statement', detail: null });
    expect(route('/*route=replica*/ SELECT 1; SELECT 2')).toMatchObject({ reason: 'multi_statement' });
  });

  it('transaction: a read inside a transaction stays on the primary', () => {
    expect(route('SELECT * FROM t', null, { inTransaction: true })).toEqual({ target: { kind: 'primary' }, reason: 'transaction', detail: null });
  });

  it('locking_read: FOR UPDATE, LOCK IN SHARE MODE', () => {
    expect(route('SELECT * FROM t FOR UPDATE')).toEqual({ target: { kind: 'primary' }, reason: 'locking_read', detail: null });
    expect(route('SELECT * FROM t LOCK IN SHARE MODE')).toMatchObject({ reason: 'locking_read' });
  });

  it('primary_function: functions and variables whose answer lives on the primary connection, and SQL_CALC_FOUND_ROWS', () => {
    expect(route('SELECT LAST_INSERT_ID()')).toEqual({ target: { kind: 'primary' }, reason: 'primary_function', detail: 'LAST_INSERT_ID' });
    expect(route("SELECT GET_LOCK('a', 1)")).toMatchObject({ reason: 'primary_function', detail: 'GET_LOCK' });
    expect(route('SELECT FOUND_ROWS()')).toMatchObject({ reason: 'primary_function', detail: 'FOUND_ROWS' });
    expect(route('SELECT @a')).toMatchObject({ reason: 'primary_function', detail: '@a' });
    expect(route('SELECT a INTO @x FROM t')).toMatchObject({ reason: 'primary_function', detail: 'INTO' });
    expect(route('SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1')).toEqual({
      target: { kind: 'primary' },
      reason: 'primary_function',
      detail: 'SQL_CALC_FOUND_ROWS',
    });
    expect(route('select sql_calc_found_rows * from t limit 1')).toMatchObject({ reason: 'primary_function', detail: 'SQL_CALC_FOUND_ROWS' });
    // A column whose name merely contains the word is a plain read.
    expect(route('SELECT my_sql_calc_found_rows_x FROM t')).toMatchObject({ reason: 'read' });
  });

  it('session_pinned: a session holding state on the primary (temporary table, locks) stays there, with the pin as detail', () => {
    expect(route('SELECT * FROM t', null, { pinned: 'temporary_table' })).toEqual({
      target: { kind: 'primary' },
      reason: 'session_pinned',
      detail: 'temporary_table',
    });
    expect(route('SELECT * FROM t', null, { pinned: 'get_lock' })).toMatchObject({ reason: 'session_pinned', detail: 'get_lock' });
  });

  it('hint: /*route=...*/ names the primary, the replicas or one server', () => {
    expect(route('/*route=primary*/ SELECT 1')).toEqual({ target: { kind: 'primary' }, reason: 'hint', detail: 'primary' });
    expect(route('/*route=replica*/ SELECT 1')).toEqual({ target: { kind: 'replica' }, reason: 'hint', detail: 'replica' });
    expect(route('/*route=replica-2*/ SELECT 1')).toEqual({ target: { kind: 'server', name: 'replica-2' }, reason: 'hint', detail: 'replica-2' });
    // A hint may send a SHOW to a replica.
    expect(route('/*route=replica*/ SHOW TABLES')).toEqual({ target: { kind: 'replica' }, reason: 'hint', detail: 'replica' });
  });

  it('rule: a matching rule with a route decides, with the rule name as detail', () => {
    const toPrimary = rule({ name: 'orders-primary', match: { tables: 'orders' }, route: 'primary' });
    const toServer = rule({ name: 'reports', match: {}, route: 'replica-3' });
    const toReplica = rule({ name: 'shows', match: {}, route: 'replica' });
    expect(route('SELECT * FROM orders', toPrimary)).toEqual({ target: { kind: 'primary' }, reason: 'rule', detail: 'orders-primary' });
    expect(route('SELECT * FROM t', toServer)).toEqual({ target: { kind: 'server', name: 'replica-3' }, reason: 'rule', detail: 'reports' });
    expect(route('SHOW TABLES', toReplica)).toEqual({ target: { kind: 'replica' }, reason: 'rule', detail: 'shows' });
    // A rule without a route does not decide: a SELECT is a read, a SHOW is not.
    const cacheOnly = rule({ name: 'cache-only', match: {}, cache: true });
    expect(cacheOnly.route).toBeNull();
    expect(route('SELECT * FROM t', cacheOnly)).toMatchObject({ target: { kind: 'replica' }, reason: 'read', detail: null });
    expect(route('SHOW TABLES', cacheOnly)).toMatchObject({ target: { kind: 'primary' }, reason: 'not_a_read' });
  });

  it('gives exactly the statement-level reasons; the session-level ones come from elsewhere', () => {
    const seen = new Set<RouteReason>();
    const corpus: [string, Partial<SessionPins>, CacheRule | null][] = [
      ['SELECT 1', {}, null],
      ['UPDATE t SET a = 1', {}, null],
      ['SET @a = 1', {}, null],
      ['SELECT 1; SELECT 2', {}, null],
      ['SELECT 1', { inTransaction: true }, null],
      ['SELECT 1 FOR UPDATE', {}, null],
      ['SELECT LAST_INSERT_ID()', {}, null],
      ['SELECT 1', { pinned: 'lock_tables' }, null],
      ['/*route=replica*/ SELECT 1', {}, null],
      ['SELECT 1', {}, rule({ name: 'r', match: {}, route: 'primary' })],
      ['SELECT @@read_only', {}, null],
    ];
    for (const [sql, pins, r] of corpus) seen.add(route(sql, r, pins).reason);
    expect([...seen].sort()).toEqual(
      ['hint', 'locking_read', 'multi_statement', 'not_a_read', 'primary_function', 'read', 'rule', 'server_state', 'session_pinned', 'transaction', 'write'].sort(),
    );
  });
});

describe('decideRoute: which reason wins', () => {
  const anyRule = rule({ name: 'all-to-replica-2', match: {}, route: 'replica-2' });

  it('a multi-statement beats a write; a write beats a transaction, hints and rules', () => {
    expect(route('UPDATE t SET a = 1; SELECT 1')).toMatchObject({ reason: 'multi_statement' });
    expect(route('/*route=replica*/ UPDATE t SET a = 1', anyRule, { inTransaction: true, pinned: 'call' })).toMatchObject({
      target: { kind: 'primary' },
      reason: 'write',
    });
  });

  it('a transaction beats a locking read, a pin, a hint and a rule', () => {
    expect(route('/*route=replica*/ SELECT * FROM t FOR UPDATE', anyRule, { inTransaction: true, pinned: 'get_lock' })).toMatchObject({
      reason: 'transaction',
    });
  });

  it('a locking read and a primary function beat a pin, a hint and a rule', () => {
    expect(route('/*route=replica*/ SELECT * FROM t FOR UPDATE', anyRule, { pinned: 'get_lock' })).toMatchObject({ reason: 'locking_read' });
    expect(route('/*route=replica*/ SELECT LAST_INSERT_ID()', anyRule, { pinned: 'get_lock' })).toMatchObject({ reason: 'primary_function' });
    expect(route('/*route=replica*/ SELECT SQL_CALC_FOUND_ROWS * FROM t', anyRule, { pinned: 'get_lock' })).toMatchObject({
      reason: 'primary_function',
    });
  });

  it('a pin beats a hint and a rule; a hint beats a rule', () => {
    expect(route('/*route=replica*/ SELECT 1', anyRule, { pinned: 'temporary_table' })).toMatchObject({
      target: { kind: 'primary' },
      reason: 'session_pinned',
    });
    expect(route('/*route=primary*/ SELECT 1', anyRule)).toEqual({ target: { kind: 'primary' }, reason: 'hint', detail: 'primary' });
    expect(route('SELECT 1', anyRule)).toEqual({ target: { kind: 'server', name: 'replica-2' }, reason: 'rule', detail: 'all-to-replica-2' });
  });
});

describe('reads about the server itself (server_state)', () => {
  const anyRule = rule({ name: 'all-to-replica-2', match: {}, route: 'replica-2' });

  it('sends reads of role, replication and identity variables to the primary, in every spelling, whatever a hint or rule says', () => {
    for (const [sql, detail] of [
      ['SELECT @@GLOBAL.read_only AS Value', '@@GLOBAL.read_only'],
      ['select @@read_only', '@@read_only'],
      ['SELECT @@global.super_read_only, @@innodb_read_only', '@@global.super_read_only'],
      ['SELECT 1 AS a, @@log_bin AS b FROM dual', '@@log_bin'],
      ['SELECT @@gtid_binlog_pos, @@gtid_current_pos', '@@gtid_binlog_pos'],
      ['SELECT @@hostname, @@port', '@@hostname'],
      ['SELECT @@server_id, @@server_uuid', '@@server_uuid'],
      ['SELECT @@`read_only`', '@@`read_only`'],
      ['/*route=replica*/ SELECT @@GLOBAL.read_only', '@@GLOBAL.read_only'],
    ] as const) {
      expect(route(sql, anyRule), sql).toEqual({ target: { kind: 'primary' }, reason: 'server_state', detail });
    }
  });

  it('sends SHOW VARIABLES / STATUS and the replication SHOW statements to the primary', () => {
    for (const [sql, detail] of [
      ["SHOW VARIABLES LIKE 'read_only'", 'SHOW VARIABLES'],
      ["show global variables like 'gtid%'", 'SHOW GLOBAL VARIABLES'],
      ['SHOW SESSION STATUS', 'SHOW SESSION STATUS'],
      ['SHOW MASTER STATUS', 'SHOW MASTER STATUS'],
      ['SHOW BINLOG STATUS', 'SHOW BINLOG STATUS'],
      ['SHOW BINARY LOGS', 'SHOW BINARY LOGS'],
      ['SHOW SLAVE STATUS', 'SHOW SLAVE STATUS'],
      ['SHOW REPLICA STATUS', 'SHOW REPLICA STATUS'],
      ['SHOW ALL SLAVES STATUS', 'SHOW ALL SLAVES STATUS'],
      ['/*route=replica1*/ SHOW SLAVE HOSTS', 'SHOW SLAVE HOSTS'],
    ] as const) {
      expect(route(sql, anyRule), sql).toEqual({ target: { kind: 'primary' }, reason: 'server_state', detail });
    }
  });

  it('sends reads of the global state tables to the primary', () => {
    expect(route("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'READ_ONLY'", anyRule)).toEqual({
      target: { kind: 'primary' },
      reason: 'server_state',
      detail: 'information_schema.global_variables',
    });
    expect(route('SELECT * FROM performance_schema.replication_connection_status', anyRule)).toMatchObject({ reason: 'server_state' });
    expect(route('SELECT * FROM INFORMATION_SCHEMA.GLOBAL_STATUS', anyRule)).toMatchObject({ reason: 'server_state' });
  });

  it('leaves other system variables and tables to the usual routing', () => {
    expect(route('SELECT @@sql_mode')).toMatchObject({ target: { kind: 'replica' }, reason: 'read' });
    // server_id alone shows which server answered a read.
    expect(route('SELECT @@server_id')).toMatchObject({ target: { kind: 'replica' }, reason: 'read' });
    expect(route('SELECT @@version, @@time_zone')).toMatchObject({ target: { kind: 'replica' }, reason: 'read' });
    expect(route('SELECT * FROM information_schema.TABLES')).toMatchObject({ target: { kind: 'replica' }, reason: 'read' });
    expect(route("SELECT 'read_only', '@@read_only'")).toMatchObject({ target: { kind: 'replica' }, reason: 'read' });
    expect(route('SHOW TABLES')).toMatchObject({ target: { kind: 'primary' }, reason: 'not_a_read' });
  });
});
