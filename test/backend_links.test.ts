/**
 * What a session keeps to use several backend connections as one
 * (src/session/backend_links.ts): the state log replayed on each connection,
 * what pins the session to its primary, the COM_STMT_EXECUTE rewrite for a
 * connection that has not seen the parameter types, and new links. Statements
 * are classified by the real classifier; no database, no sockets.
 */
import { describe, expect, it } from 'vitest';
import type { BackendConnection } from '../src/backend/backend_connection.js';
import { executeWithTypes, newLink, StateLog, useStatementFor } from '../src/session/backend_links.js';
import { PrimaryPins } from '../src/routing/primary_pins.js';
import { classify } from '../src/sql/classifier.js';

const sqls = (bufs: Buffer[]): string[] => bufs.map((b) => b.toString());

describe('StateLog', () => {
  it('hands a connection the statements it has not applied, oldest first', () => {
    const log = new StateLog();
    expect(log.latest).toBe(0);
    expect(log.pending(0)).toEqual([]);
    log.add(Buffer.from("SET NAMES 'utf8mb4'"));
    log.add(Buffer.from('USE `shop`'));
    log.add(Buffer.from('SET @@session.sql_mode = ANSI'));
    expect(log.latest).toBe(3);
    expect(sqls(log.pending(0))).toEqual(["SET NAMES 'utf8mb4'", 'USE `shop`', 'SET @@session.sql_mode = ANSI']);
    expect(sqls(log.pending(1))).toEqual(['USE `shop`', 'SET @@session.sql_mode = ANSI']);
    expect(log.pending(3)).toEqual([]);
  });

  it('moves a statement run again to the end, so a connection replays it after what came between', () => {
    const log = new StateLog();
    log.add(Buffer.from('SET NAMES latin1'));
    log.add(Buffer.from('SET NAMES utf8mb4'));
    const applied = log.latest; // a connection that ran both: its character set is utf8mb4
    log.add(Buffer.from('SET NAMES latin1'));
    expect(log.latest).toBe(3);
    expect(sqls(log.pending(0))).toEqual(['SET NAMES utf8mb4', 'SET NAMES latin1']);
    expect(sqls(log.pending(applied))).toEqual(['SET NAMES latin1']);
  });

  it('keeps its own copy of each statement (the packet buffer is reused)', () => {
    const log = new StateLog();
    const packet = Buffer.from('USE `a`');
    log.add(packet);
    packet.write('USE `b`');
    expect(sqls(log.pending(0))).toEqual(['USE `a`']);
  });

  it('overflows past 256 distinct statements, not on repeats, and clear() keeps the sequence counting', () => {
    const log = new StateLog();
    for (let i = 0; i < 1000; i++) log.add(Buffer.from('SET @x = 1'));
    expect(log.overflow).toBe(false);
    expect(log.pending(0)).toHaveLength(1);
    for (let i = 1; i < 256; i++) log.add(Buffer.from(`SET @v${i} = ${i}`));
    expect(log.pending(0)).toHaveLength(256);
    expect(log.overflow).toBe(false);
    log.add(Buffer.from('SET @v256 = 256'));
    expect(log.overflow).toBe(true);

    const before = log.latest;
    log.clear();
    expect(log.overflow).toBe(false);
    expect(log.latest).toBe(before);
    expect(log.pending(0)).toEqual([]);
    log.add(Buffer.from('USE `x`'));
    expect(log.latest).toBe(before + 1);
    // A connection up to date before the clear still gets what came after it.
    expect(sqls(log.pending(before))).toEqual(['USE `x`']);
  });
});

describe('useStatementFor', () => {
  it('quotes the COM_INIT_DB schema so that any name replays exactly', () => {
    expect(useStatementFor(Buffer.from('shop')).toString()).toBe('USE `shop`');
    expect(useStatementFor(Buffer.from('we`ird')).toString()).toBe('USE `we``ird`');
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in latin1: not valid UTF-8, kept byte for byte
    expect(useStatementFor(latin1)).toEqual(Buffer.concat([Buffer.from('USE `'), latin1, Buffer.from('`')]));
  });

  it('gives a statement the classifier reads back as USE of the same schema', () => {
    for (const schema of ['shop', 'we`ird', 'My Schema']) {
      const s = classify(useStatementFor(Buffer.from(schema)).toString());
      expect(s.type).toBe('use');
      expect(s.useSchema).toBe(schema);
    }
  });
});

describe('PrimaryPins', () => {
  const after = (pins: PrimaryPins, sql: string, schema: string | null = 'shop') => {
    pins.afterStatement(classify(sql), schema);
    return pins.reason();
  };

  it('holds nothing at first and for plain reads, writes and DDL', () => {
    const pins = new PrimaryPins();
    expect(pins.reason()).toBeNull();
    expect(after(pins, 'SELECT * FROM t')).toBeNull();
    expect(after(pins, 'UPDATE t SET a = 1')).toBeNull();
    expect(after(pins, 'CREATE TABLE t2 (a INT)')).toBeNull();
    expect(after(pins, 'SET @a = 1')).toBeNull();
  });

  it('temporary tables pin until every one is dropped, names qualified with the session schema', () => {
    const pins = new PrimaryPins();
    expect(after(pins, 'CREATE TEMPORARY TABLE tmp1 (a INT)', 'Shop')).toBe('temporary_table');
    expect(after(pins, 'CREATE TEMPORARY TABLE other.tmp2 (a INT)')).toBe('temporary_table');
    // Another schema's tmp1 is another table.
    expect(after(pins, 'DROP TABLE tmp1', 'archive')).toBe('temporary_table');
    expect(after(pins, 'DROP TEMPORARY TABLE shop.tmp1')).toBe('temporary_table');
    // DROP TABLE without TEMPORARY drops the temporary table first.
    expect(after(pins, 'DROP TABLE tmp2', 'other')).toBeNull();
  });

  it('LOCK TABLES pins until UNLOCK TABLES', () => {
    const pins = new PrimaryPins();
    expect(after(pins, 'LOCK TABLES t READ')).toBe('lock_tables');
    expect(after(pins, 'SELECT * FROM t')).toBe('lock_tables');
    expect(after(pins, 'UNLOCK TABLES')).toBeNull();
  });

  it('named locks pin until released as often as taken, or all at once; extra releases do not go below zero', () => {
    const pins = new PrimaryPins();
    expect(after(pins, "SELECT GET_LOCK('a', 1)")).toBe('get_lock');
    expect(after(pins, "SELECT GET_LOCK('b', 1)")).toBe('get_lock');
    expect(after(pins, "SELECT RELEASE_LOCK('a')")).toBe('get_lock');
    expect(after(pins, "SELECT RELEASE_LOCK('b')")).toBeNull();
    expect(after(pins, "SELECT RELEASE_LOCK('c')")).toBeNull();
    expect(after(pins, "SELECT GET_LOCK('a', 1)")).toBe('get_lock');
    expect(after(pins, "SELECT GET_LOCK('b', 1)")).toBe('get_lock');
    expect(after(pins, 'SELECT RELEASE_ALL_LOCKS()')).toBeNull();
  });

  it('reports untracked state first, then temporary tables, then LOCK TABLES, then named locks', () => {
    const pins = new PrimaryPins();
    after(pins, "SELECT GET_LOCK('a', 1)");
    expect(after(pins, 'LOCK TABLES t WRITE')).toBe('lock_tables');
    expect(after(pins, 'CREATE TEMPORARY TABLE tmp (a INT)')).toBe('temporary_table');
    expect(after(pins, 'CALL p()')).toBe('call');
    expect(after(pins, 'DROP TEMPORARY TABLE tmp')).toBe('call');
  });

  it('a CALL, or a multi-statement that changes session state, pins until reset()', () => {
    const call = new PrimaryPins();
    expect(after(call, 'CALL refresh_totals()')).toBe('call');
    expect(after(call, 'UNLOCK TABLES')).toBe('call');
    call.reset();
    expect(call.reason()).toBeNull();

    for (const sql of [
      'SET @a = 1; SELECT @a',
      'SELECT 1; SET @a = 1',
      'SELECT 1; USE other',
      "SELECT 1; SELECT GET_LOCK('x', 1)",
      'CREATE TEMPORARY TABLE t (a INT); SELECT 1',
      'LOCK TABLES t READ; SELECT 1',
    ]) {
      const pins = new PrimaryPins();
      expect(after(pins, sql), sql).toBe('multi_statement_state');
    }
    // A multi-statement of plain reads and writes leaves nothing behind.
    expect(after(new PrimaryPins(), 'SELECT 1; UPDATE t SET a = 1')).toBeNull();
  });

  it('a multi-statement whose later statement creates a temporary table pins', () => {
    expect(after(new PrimaryPins(), 'SELECT 1; CREATE TEMPORARY TABLE t (a INT)')).toBe('multi_statement_state');
  });

  it('a multi-statement whose later statement is LOCK TABLES pins', () => {
    expect(after(new PrimaryPins(), 'SELECT 1; LOCK TABLES t READ')).toBe('multi_statement_state');
  });

  it('a multi-statement of reads only pins nothing', () => {
    expect(after(new PrimaryPins(), 'SELECT 1; SELECT 2 FROM t')).toBeNull();
  });

  it('untrack() keeps the first reason; reset() drops every pin', () => {
    const pins = new PrimaryPins();
    pins.untrack('prepared_set');
    pins.untrack('other');
    expect(pins.reason()).toBe('prepared_set');
    after(pins, 'CREATE TEMPORARY TABLE tmp (a INT)');
    after(pins, 'LOCK TABLES t READ');
    after(pins, "SELECT GET_LOCK('a', 1)");
    pins.reset();
    expect(pins.reason()).toBeNull();
    // Nothing held before the reset comes back: one release does not go negative-then-positive.
    expect(after(pins, "SELECT RELEASE_LOCK('a')")).toBeNull();
    expect(after(pins, 'DROP TEMPORARY TABLE tmp')).toBeNull();
  });
});

describe('executeWithTypes', () => {
  /** COM_STMT_EXECUTE: 0x17, statement id, flags, iteration count, NULL bitmap, new-params-bound, [types], values. */
  function execute(params: number, bound: boolean, types: Buffer, values: Buffer): Buffer {
    const head = Buffer.alloc(10);
    head[0] = 0x17;
    head.writeUInt32LE(7, 1);
    head[5] = 0;
    head.writeUInt32LE(1, 6);
    const bitmap = Buffer.alloc((params + 7) >> 3);
    return Buffer.concat([head, bitmap, Buffer.from([bound ? 1 : 0]), bound ? types : Buffer.alloc(0), values]);
  }

  it('spells out the types for a connection that has not seen them', () => {
    const types = Buffer.from([0x08, 0x00, 0xfd, 0x00]); // LONGLONG, VAR_STRING
    const values = Buffer.concat([Buffer.from([42, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([2]), Buffer.from('hi')]);
    const out = executeWithTypes(execute(2, false, types, values), 2, types);
    expect(out).toEqual(execute(2, true, types, values));
    expect(out[11]).toBe(1);
    expect(out.subarray(12, 16)).toEqual(types);
  });

  it('finds the new-params-bound byte after a NULL bitmap of more than one byte', () => {
    const types = Buffer.alloc(18, 0x03); // 9 x LONG (type 3, flags 3: the bytes only need to travel)
    const values = Buffer.alloc(36, 1);
    const out = executeWithTypes(execute(9, false, types, values), 9, types);
    expect(out).toEqual(execute(9, true, types, values));
    expect(out[12]).toBe(1);
  });

  it('returns the very same payload when the types are already there', () => {
    const types = Buffer.from([0x08, 0x00]);
    const payload = execute(1, true, types, Buffer.alloc(8));
    expect(executeWithTypes(payload, 1, types)).toBe(payload);
  });
});

describe('newLink', () => {
  it('starts a link on the connection at the given state, with no statements and no GTID', () => {
    const conn = { endpoint: { name: 'replica-1', host: '127.0.0.1', port: 3307 } } as unknown as BackendConnection;
    const a = newLink(conn, 5);
    const b = newLink(conn, 0);
    expect(a).toEqual({ conn, server: 'replica-1', appliedState: 5, statements: new Map(), coveredGtid: null, lent: false, lentText: null });
    expect(a.conn).toBe(conn);
    a.statements.set(1, { backendId: 9, types: null });
    expect(b.statements.size).toBe(0);
  });
});

describe('PrimaryPins: state the proxy cannot replay on another server', () => {
  const pinAfter = (...statements: string[]) => {
    const pins = new PrimaryPins();
    for (const sql of statements) pins.afterStatement(classify(sql), 'shop');
    return pins.reason();
  };

  it('pins after EXECUTE IMMEDIATE, EXECUTE, PREPARE, a compound statement and a SET whose value is a subquery', () => {
    expect(pinAfter("EXECUTE IMMEDIATE 'SET @@session.sql_mode = ''ANSI'''")).toBe('execute');
    expect(pinAfter("PREPARE s FROM 'SELECT 1'", 'EXECUTE s')).toBe('sql_prepared_statement');
    expect(pinAfter('BEGIN NOT ATOMIC SET @@session.time_zone = "+01:00"; END')).toBe('compound_statement');
    expect(pinAfter("SET @@session.sql_mode = (SELECT 'ANSI')")).toBe('set_subquery');
  });

  it('does not pin after a SET of plain values or a plain read', () => {
    expect(pinAfter("SET @@session.sql_mode = 'ANSI'", 'SELECT 1', "SET NAMES 'utf8mb4'")).toBeNull();
  });
});
