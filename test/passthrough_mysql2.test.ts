import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { getTopology } from './topology-context.js';
import { Command } from '../src/protocol/constants.js';
import { encodePacket } from '../src/protocol/framing.js';
import { PayloadWriter } from '../src/protocol/payload_writer.js';
import { ResponseKind } from '../src/protocol/response_scanner.js';
import { RawClient } from './raw-client.js';
import { connect, startProxy, type RunningProxy } from './proxy-harness.js';

const topo = getTopology();
let px: RunningProxy;

beforeAll(async () => {
  px = await startProxy(topo);
  const c = await connect(topo.primary.port, topo, { user: 'root', multipleStatements: true });
  await c.query(`
    CREATE TABLE IF NOT EXISTS wc_test.pt_items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(64), price DECIMAL(10,2), note TEXT NULL);
    TRUNCATE wc_test.pt_items;
    INSERT INTO wc_test.pt_items (name, price, note) VALUES ('a', 1.50, NULL), ('b', 2.25, 'x'), ('c', 3.00, '');
    DROP PROCEDURE IF EXISTS wc_test.two_sets;
    CREATE PROCEDURE wc_test.two_sets() BEGIN SELECT 1 AS one; SELECT 'two' AS two, 2 AS n; END;
  `);
  await c.end();
});

afterAll(async () => {
  await px?.stop();
});

describe('mysql2 through wirecache', () => {
  let c: mysql.Connection;
  beforeAll(async () => {
    c = await connect(px.port, topo, { multipleStatements: true });
  });
  afterAll(async () => {
    await c?.end();
  });

  it('runs text queries and returns the rows', async () => {
    const [rows] = await c.query('SELECT id, name, price, note FROM pt_items ORDER BY id');
    expect(rows).toEqual([
      { id: 1, name: 'a', price: '1.50', note: null },
      { id: 2, name: 'b', price: '2.25', note: 'x' },
      { id: 3, name: 'c', price: '3.00', note: '' },
    ]);
  });

  it('runs server-side prepared statements many times with stable ids', async () => {
    for (let i = 1; i <= 3; i++) {
      const [rows] = await c.execute('SELECT name FROM pt_items WHERE id = ?', [i]);
      expect(rows).toEqual([{ name: ['a', 'b', 'c'][i - 1] }]);
    }
    const [rows] = await c.execute('SELECT ? + 1 AS v, ? AS s', [41, 'hé']);
    expect(rows).toEqual([{ v: 42, s: 'hé' }]);
  });

  it('returns affected rows and insert ids', async () => {
    const [res] = await c.query("INSERT INTO pt_items (name, price) VALUES ('d', 4)");
    expect((res as mysql.ResultSetHeader).affectedRows).toBe(1);
    expect((res as mysql.ResultSetHeader).insertId).toBeGreaterThan(3);
    await c.query('DELETE FROM pt_items WHERE name = ?', ['d']);
  });

  it('handles multi-statements and CALL with two result sets', async () => {
    const [multi] = await c.query('SELECT 1 AS a; SELECT 2 AS b; DO 0');
    expect((multi as unknown[]).length).toBe(3);
    expect((multi as unknown[][])[0]).toEqual([{ a: 1 }]);
    expect((multi as unknown[][])[1]).toEqual([{ b: 2 }]);
    const [call] = await c.query('CALL two_sets()');
    expect((call as unknown[][])[0]).toEqual([{ one: 1 }]);
    expect((call as unknown[][])[1]).toEqual([{ two: 'two', n: 2 }]);
  });

  it('relays errors with code and SQLSTATE and keeps the session usable', async () => {
    await expect(c.query('SELECT * FROM no_such_table')).rejects.toMatchObject({ errno: 1146, sqlState: '42S02' });
    await expect(c.query('SELEC 1')).rejects.toMatchObject({ errno: 1064, sqlState: '42000' });
    const [rows] = await c.query('SELECT 7 AS x');
    expect(rows).toEqual([{ x: 7 }]);
  });

  it('pings, changes database and changes user', async () => {
    await c.ping();
    await c.query('USE mysql');
    const [db] = await c.query('SELECT DATABASE() AS db');
    expect(db).toEqual([{ db: 'mysql' }]);
    await c.changeUser({ user: 'other', password: 'other_pw', database: 'wc_test' });
    const [who] = await c.query('SELECT CURRENT_USER() AS u, DATABASE() AS db');
    expect(who).toEqual([{ u: 'other@%', db: 'wc_test' }]);
    await expect(c.changeUser({ user: 'app', password: 'wrong' })).rejects.toMatchObject({ errno: 1045 });
  });
});

describe('logins', () => {
  it('refuses a wrong password and an unknown user with 1045/28000 and MySQL wording', async () => {
    const err = await connectWith(px.port, 'app', 'nope');
    expect(err).toMatchObject({ errno: 1045, sqlState: '28000' });
    expect(err.message).toBe("Access denied for user 'app'@'127.0.0.1' (using password: YES)");
    const unknown = await connectWith(px.port, 'ghost', 'x');
    expect(unknown).toMatchObject({ errno: 1045, sqlState: '28000' });
    expect(unknown.message).toBe("Access denied for user 'ghost'@'127.0.0.1' (using password: YES)");
  });

  it('logs in an account without password', async () => {
    const c = await connect(px.port, topo, { user: 'nopw' });
    const [rows] = await c.query('SELECT CURRENT_USER() AS u');
    expect(rows).toEqual([{ u: 'nopw@%' }]);
    await c.end();
  });

  it('shows the proxy connection id to the client and maps KILL to the backend', async () => {
    const victim = await connect(px.port, topo);
    const killer = await connect(px.port, topo);
    const stranger = await connect(px.port, topo, { user: 'other' });
    const victimId = victim.threadId!;
    expect(px.proxy.sessions.has(victimId)).toBe(true);
    const running = victim.query('SELECT SLEEP(20) AS s').catch((e) => e);
    await new Promise((r) => setTimeout(r, 300));
    await expect(stranger.query(`KILL QUERY ${victimId}`)).rejects.toMatchObject({ errno: 1095 });
    await expect(killer.query('KILL 999999')).rejects.toMatchObject({ errno: 1094 });
    await killer.query(`KILL QUERY ${victimId}`);
    const result = await running;
    expect(result).toMatchObject({ errno: 1317, sqlState: '70100' });
    const [again] = await victim.query('SELECT 1 AS ok');
    expect(again).toEqual([{ ok: 1 }]);
    // The thread id an application reads from CONNECTION_ID() names the same session.
    expect(victimId).toBeGreaterThan(1_000_000_000);
    const [[{ tid }]] = (await victim.query('SELECT CONNECTION_ID() AS tid')) as unknown as [[{ tid: number }]];
    expect(tid).toBeLessThan(1_000_000_000);
    const again2 = victim.query('SELECT SLEEP(20) AS s').catch((e) => e);
    await new Promise((r) => setTimeout(r, 300));
    await expect(stranger.query(`KILL QUERY ${tid}`)).rejects.toMatchObject({ errno: 1095 });
    await killer.query(`KILL QUERY ${tid}`);
    expect(await again2).toMatchObject({ errno: 1317 });
    const victimClosed = new Promise<Error>((resolve) => victim.on('error', resolve));
    await killer.query(`KILL ${victimId}`);
    // The killed backend connection takes the victim's session down, with an error naming the lost backend.
    expect(await victimClosed).toMatchObject({
      fatal: true,
      code: 1927,
      message: expect.stringMatching(/^Lost connection to backend primary \(127\.0\.0\.1:\d+\): connection closed$/),
    });
    expect(px.proxy.sessions.has(victimId)).toBe(false);
    await expect(victim.query('SELECT 1')).rejects.toMatchObject({ fatal: true, message: "Can't add new command when connection is in closed state" });
    await killer.end();
    await stranger.end();
  });
});

async function connectWith(port: number, user: string, password: string): Promise<any> {
  const { default: mysql } = await import('mysql2/promise');
  try {
    const c = await mysql.createConnection({ host: '127.0.0.1', port, user, password });
    await c.end();
    return null;
  } catch (e) {
    return e;
  }
}

describe('statement ids and session resets', () => {
  it('COM_RESET_CONNECTION drops prepared statements: an old id then gets ERR 1243, new prepares work', async () => {
    const raw = await RawClient.login(px.port, 'app', 'app_pw', { database: 'wc_test' });
    const prepare = Buffer.concat([Buffer.from([Command.STMT_PREPARE]), Buffer.from('SELECT ? + 1')]);
    const first = await raw.command(prepare, ResponseKind.Prepare);
    const id = first.readUInt32LE(5);
    expect(id).toBe(1);
    const ok = await raw.command(Buffer.from([Command.RESET_CONNECTION]), ResponseKind.Single);
    expect(ok[4]).toBe(0x00);
    const execute = new PayloadWriter().u8(Command.STMT_EXECUTE).u32(id).u8(0).u32(1).u8(0).u8(1).u16(0x08).u64(1).finish();
    const err = await raw.command(execute, ResponseKind.Query);
    expect(err[4]).toBe(0xff);
    expect(err.readUInt16LE(5)).toBe(1243);
    const again = await raw.command(prepare, ResponseKind.Prepare);
    expect(again.readUInt32LE(5)).toBe(2);
    const result = await raw.command(new PayloadWriter().u8(Command.STMT_EXECUTE).u32(2).u8(0).u32(1).u8(0).u8(1).u16(0x08).u64(41).finish(), ResponseKind.Query);
    expect(result.includes(Buffer.from([42]))).toBe(true);
    raw.close();
  });

  it('answers pipelined commands in order', async () => {
    const raw = await RawClient.login(px.port, 'app', 'app_pw', { database: 'wc_test' });
    // Three queries in one write, before any response.
    raw.socket.write(Buffer.concat(['SELECT 1', 'SELECT SLEEP(0.2), 2', 'SELECT 3'].map((q) => encodePacket(Buffer.from(`\x03${q}`), 0))));
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) answers.push((await raw.readResponse(ResponseKind.Query)).toString('latin1'));
    expect(answers[0]).toMatch(/\x01\x31/);
    expect(answers[1]).toMatch(/\x01\x32/);
    expect(answers[2]).toMatch(/\x01\x33/);
    raw.close();
  });
});
