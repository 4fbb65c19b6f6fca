/**
 * Which statements tie a session to its backend connection under
 * multiplexing (sessionBound), and which reads may be run twice without
 * a list of stored functions (callsOnlyBuiltins). No server needed.
 */
import { describe, expect, it } from 'vitest';
import { leavesNoState, sessionBound, statementCallsOnlyBuiltins } from '../src/session/multiplexing_rules.js';
import { classify } from '../src/sql/classifier.js';
import { callsOnlyBuiltins } from '../src/sql/builtin_calls.js';

describe('sessionBound', () => {
  it.each([
    ['SET NAMES utf8mb4', null],
    ["SET SESSION sql_mode = 'ANSI,TRADITIONAL'", null],
    ['SET autocommit = 1', null],
    ["SET @s = 'a@b(c)'", 'user_variable'],
    ['SET @a = 1', 'user_variable'],
    ["SET sql_mode = CONCAT(@@sql_mode, ',ANSI')", 'set_function'],
    ['SET time_zone = CURRENT_TIMESTAMP', 'set_function'],
    ['SET GLOBAL max_connections = 10', 'set_global'],
    ['SELECT @a', 'user_variable'],
    ['SELECT @a := 1', 'user_variable'],
    ['SELECT LAST_INSERT_ID()', 'session_function'],
    ['SELECT CONNECTION_ID()', 'session_function'],
    ['SELECT NEXT VALUE FOR s', 'session_function'],
    ['SELECT FOUND_ROWS()', null],
    ['SELECT FOUND_ROWS(), @x', 'session_function'],
    ["SELECT GET_LOCK('a', 1)", 'get_lock'],
    ["SELECT RELEASE_LOCK('a')", null],
    ['HANDLER t OPEN', 'connection_lock'],
    ['FLUSH TABLES t WITH READ LOCK', 'connection_lock'],
    ['BACKUP STAGE START', 'connection_lock'],
    ['INSERT INTO t (v) VALUES (1) RETURNING id', 'last_insert_id'],
    ['SELECT * FROM t WHERE id = 1', null],
    ['UPDATE t SET v = 2 WHERE id = 1', null],
  ])('%s -> %s', (sql, reason) => {
    expect(sessionBound(classify(sql))).toBe(reason);
  });
});

describe('callsOnlyBuiltins', () => {
  it.each([
    ['SELECT COUNT(*) FROM t WHERE id IN (1, 2)', true],
    ['SELECT DATABASE(), NOW(), CONCAT(a, b) FROM t', true],
    ['SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u)', true],
    ['SELECT audit_fn(1)', false],
    ['SELECT db.fn(1)', false],
    ['SELECT `my_fn` (1)', false],
    ['SELECT 1', true],
  ])('%s -> %s', (sql, only) => {
    expect(callsOnlyBuiltins(sql)).toBe(only);
    // The same answer per statement object (kept for a repeated text), the first time and again.
    const statement = classify(sql);
    expect(statementCallsOnlyBuiltins(statement)).toBe(only);
    expect(statementCallsOnlyBuiltins(statement)).toBe(only);
  });
});

describe('callsOnlyBuiltins on a huge text', () => {
  it('answers at once for a 16 MiB literal (no scan), and scans a 60 KiB word in linear time', () => {
    expect(callsOnlyBuiltins(`SELECT '${'a'.repeat(16 << 20)}'`)).toBe(false);
    expect(callsOnlyBuiltins(`SELECT '${'a'.repeat(60_000)}'`)).toBe(true);
  });
});

describe('leavesNoState: reads after which a connection goes to the next client without a reset', () => {
  it.each([
    ['SELECT id, k FROM sbtest1 WHERE id = 5', true],
    ['SELECT 1', true],
    ['SELECT @@version, @@session.sql_mode', true],
    ['SELECT CONNECTION_ID()', true],
    ['SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1', true],
    ['SHOW WARNINGS', true],
    ["SELECT COUNT(*) FROM t WHERE name = 'x'", true],
    // The first reason a read needs its own connection hides none that follows.
    ['SELECT CONNECTION_ID(), @a := 1', false],
    ['SELECT FOUND_ROWS(), LAST_INSERT_ID(42)', false],
    ['SELECT ROW_COUNT(), NEXT VALUE FOR s', false],
    ['SELECT @a', false],
    ["SELECT GET_LOCK('x', 0)", false],
    ['SELECT NEXTVAL(s)', false],
    ['SELECT f_price(1) FROM t', false],
    ['SELECT id FROM t FOR UPDATE', false],
    ['SELECT id INTO @x FROM t', false],
    ['SELECT 1; SELECT 2', false],
    ['SET NAMES utf8mb4', false],
    ['INSERT INTO t VALUES (1)', false],
    ['CREATE TEMPORARY TABLE x (a INT)', false],
    ['BEGIN', false],
  ])('%s: %s', (sql, clean) => {
    expect(leavesNoState(classify(sql), true)).toBe(clean);
  });

  it('a read of a table not known as a base table (a view, a system table) is not clean; a read of no table still is', () => {
    expect(leavesNoState(classify('SELECT id FROM v'), false)).toBe(false);
    expect(leavesNoState(classify('SELECT 1'), false)).toBe(true);
  });
});
