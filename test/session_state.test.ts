import { describe, expect, it } from 'vitest';
import { ServerStatus } from '../src/protocol/constants.js';
import { SessionState } from '../src/session/session_state.js';
import { classify } from '../src/sql/classifier.js';

/** The state key after running `statements` (all successful) on a fresh session. */
function keyAfter(...statements: string[]): string | null {
  const s = new SessionState('db', 45);
  for (const sql of statements) s.statementDone(classify(sql), false);
  return s.stateKey;
}

const AUTOCOMMIT = ServerStatus.AUTOCOMMIT;
const IN_TRANS = ServerStatus.AUTOCOMMIT | ServerStatus.IN_TRANS;

describe('SessionState keys', () => {
  it('starts from the login collation and changes with variables that shape results', () => {
    expect(keyAfter()).toBe(keyAfter());
    expect(new SessionState('db', 8).stateKey).not.toBe(new SessionState('db', 45).stateKey);
    expect(keyAfter("SET time_zone = '+00:00'")).not.toBe(keyAfter());
    expect(keyAfter("SET time_zone = '+00:00'")).toBe(keyAfter("SET  time_zone='+00:00'"));
    expect(keyAfter("SET time_zone = '+00:00'")).not.toBe(keyAfter("SET time_zone = '+01:00'"));
    expect(keyAfter("SET sql_mode = ''")).not.toBe(keyAfter());
  });

  it('ignores variables that cannot change a result', () => {
    expect(keyAfter('SET autocommit = 1', 'SET wait_timeout = 10', 'SET @x = 5')).toBe(keyAfter());
  });

  it('a later assignment replaces an earlier one; SET NAMES replaces the whole character set group', () => {
    expect(keyAfter("SET time_zone = '+01:00'", "SET time_zone = '+00:00'")).toBe(keyAfter("SET time_zone = '+00:00'"));
    expect(keyAfter('SET character_set_results = latin1', 'SET NAMES utf8mb4')).toBe(keyAfter('SET NAMES utf8mb4'));
    // Order matters when the last one does not cover the earlier: different states, different keys.
    expect(keyAfter('SET NAMES latin1', 'SET character_set_results = utf8mb4')).not.toBe(
      keyAfter('SET character_set_results = utf8mb4', 'SET NAMES latin1'),
    );
  });

  it('values that refer to other variables are appended, never replacing what they build on', () => {
    const relative = keyAfter("SET sql_mode = 'A'", "SET sql_mode = CONCAT(@@sql_mode, ',B')");
    expect(relative).not.toBe(keyAfter("SET sql_mode = CONCAT(@@sql_mode, ',B')"));
  });

  it('USE changes the schema; CALL, multi-statements and resets make the state unknown until a snapshot', () => {
    const s = new SessionState('db', 45);
    s.statementDone(classify('USE other'), false);
    expect(s.schema).toBe('other');
    s.statementDone(classify('USE missing'), true);
    expect(s.schema).toBe('other');
    s.statementDone(classify('CALL p()'), false);
    expect(s.stateKey).toBeNull();
    s.setSnapshot(['db2', 'utf8mb4', 'utf8mb4', 'utf8mb4', 'utf8mb4_general_ci', '', 'SYSTEM', '4', 'en_US', '1', '1024', '1024', '1']);
    expect(s.schema).toBe('db2');
    expect(s.stateKey).not.toBeNull();
    s.statementDone(classify('SELECT 1; SET NAMES latin1'), false);
    expect(s.known).toBe(false);
  });

  it('a session with a temporary table has keys of its own, kept across unknown states until a reset', () => {
    const a = new SessionState('db', 45);
    const b = new SessionState('db', 45);
    a.statementDone(classify('CREATE TEMPORARY TABLE t (id INT)'), false);
    expect(a.stateKey).not.toBe(b.stateKey);
    const before = a.stateKey;
    a.statementDone(classify('CALL p()'), false);
    a.setSnapshot(['db', 'x']);
    b.statementDone(classify('CALL p()'), false);
    b.setSnapshot(['db', 'x']);
    expect(a.stateKey).not.toBe(b.stateKey);
    expect(before).not.toBe(a.stateKey);
    a.connectionReset();
    a.setSnapshot(['db', 'x']);
    b.connectionReset();
    b.setSnapshot(['db', 'x']);
    expect(a.stateKey).toBe(b.stateKey);
  });
});

describe('SessionState invalidation around transactions', () => {
  const write = classify('UPDATE t SET v = 1');
  it('a write outside a transaction invalidates at once', () => {
    const s = new SessionState('db', 45);
    expect(s.writeDone(['db.t'], write, AUTOCOMMIT, AUTOCOMMIT, 0)).toEqual({ tables: ['db.t'] });
    expect(s.writeDone(null, classify('CALL p()'), AUTOCOMMIT, AUTOCOMMIT, 0)).toEqual({ everything: true });
    expect(s.writeDone(undefined, classify('SELECT 1'), AUTOCOMMIT, AUTOCOMMIT, 0)).toBeNull();
  });

  it('writes inside a transaction invalidate now (a MyISAM table changes at once) and again at COMMIT; a clean ROLLBACK drops what waited', () => {
    const s = new SessionState('db', 45);
    expect(s.writeDone(undefined, classify('BEGIN'), AUTOCOMMIT, IN_TRANS, 0)).toBeNull();
    expect(s.writeDone(['db.t'], write, IN_TRANS, IN_TRANS, 0)).toEqual({ tables: ['db.t'] });
    expect(s.writeDone(['db.u'], write, IN_TRANS, IN_TRANS, 0)).toEqual({ tables: ['db.u'] });
    expect(s.writeDone(undefined, classify('COMMIT'), IN_TRANS, AUTOCOMMIT, 0)).toEqual({ tables: ['db.t', 'db.u'] });

    expect(s.writeDone(['db.t'], write, IN_TRANS, IN_TRANS, 0)).toEqual({ tables: ['db.t'] });
    // Unknown tables wait for the end of the transaction.
    expect(s.writeDone(null, write, IN_TRANS, IN_TRANS, 0)).toBeNull();
    expect(s.writeDone(undefined, classify('ROLLBACK'), IN_TRANS, AUTOCOMMIT, 0)).toBeNull();
    // Nothing left over for the next transaction.
    expect(s.writeDone(undefined, classify('COMMIT'), IN_TRANS, AUTOCOMMIT, 0)).toBeNull();
  });

  it('a ROLLBACK with warnings (non-transactional tables changed) and an implicit commit both invalidate', () => {
    const s = new SessionState('db', 45);
    s.writeDone(['db.myisam'], write, IN_TRANS, IN_TRANS, 0);
    expect(s.writeDone(undefined, classify('ROLLBACK'), IN_TRANS, AUTOCOMMIT, 1)).toEqual({ tables: ['db.myisam'] });
    s.writeDone(['db.t'], write, IN_TRANS, IN_TRANS, 0);
    expect(s.writeDone(['db.x'], classify('ALTER TABLE x ADD c INT'), IN_TRANS, AUTOCOMMIT, 0)).toEqual({ tables: ['db.x', 'db.t'] });
  });

  it('autocommit=0 writes are held like any transaction', () => {
    const s = new SessionState('db', 45);
    expect(s.writeDone(['db.t'], write, 0, ServerStatus.IN_TRANS, 0)).toEqual({ tables: ['db.t'] });
    expect(s.writeDone(undefined, classify('COMMIT'), ServerStatus.IN_TRANS, 0, 0)).toEqual({ tables: ['db.t'] });
  });

  it('a session that ends with a command in flight flushes its pending writes; otherwise they were rolled back', () => {
    const s = new SessionState('db', 45);
    s.writeDone(['db.t'], write, IN_TRANS, IN_TRANS, 0);
    expect(s.abandonTransaction(false)).toBeNull();
    s.writeDone(null, write, IN_TRANS, IN_TRANS, 0);
    expect(s.abandonTransaction(true)).toEqual({ everything: true });
  });
});

describe('SessionState snapshots', () => {
  it('variables set before the state became unknown stay in the key under the snapshot', () => {
    const a = new SessionState('db', 45);
    const b = new SessionState('db', 45);
    a.statementDone(classify('SET default_storage_engine = MyISAM, optimizer_search_depth = 3'), false);
    for (const s of [a, b]) {
      s.statementDone(classify('CALL p()'), false);
      s.setSnapshot(['db', 'x']);
    }
    expect(a.stateKey).not.toBe(b.stateKey);
  });
});

describe('SessionState and transaction isolation', () => {
  it('SET SESSION TRANSACTION ISOLATION LEVEL is part of the key', () => {
    expect(keyAfter('SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED')).not.toBe(keyAfter());
  });

  it('reads the state back after a SET whose value is a subquery: its text does not tell the value', () => {
    expect(keyAfter("SET @@session.sql_mode = (SELECT 'ANSI')")).toBeNull();
    expect(keyAfter("SET @@session.sql_mode = 'ANSI'")).not.toBeNull();
  });

  it('knows when the session reads uncommitted rows, from the last isolation level it set', () => {
    const after = (...statements: string[]) => {
      const s = new SessionState('db', 45);
      for (const sql of statements) s.statementDone(classify(sql), false);
      return s.readUncommitted;
    };
    expect(after()).toBe(false);
    expect(after('SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED')).toBe(true);
    expect(after('SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED')).toBe(true);
    expect(after("SET tx_isolation = 'READ-UNCOMMITTED'")).toBe(true);
    expect(after("SET SESSION transaction_isolation = 'read-uncommitted'")).toBe(true);
    expect(after("SET tx_isolation = 'READ-UNCOMMITTED'", "SET tx_isolation = 'REPEATABLE-READ'")).toBe(false);
    expect(after('SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED', 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED')).toBe(false);
    expect(after('SET SESSION TRANSACTION READ ONLY')).toBe(false);
  });
});
