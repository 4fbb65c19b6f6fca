/**
 * The memcached API against the real topology: every text command's answer,
 * the table agreeing with it byte for byte, writes made in SQL seen by the
 * cache tier (through the binlog), expiry, containers, bad input, and
 * libmemcached's memccapable protocol checker.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunningApp } from '../src/app.js';
import { createLogger } from '../src/logger.js';
import { connect, testConfig } from './proxy-harness.js';
import { getTopology } from './topology-context.js';
import { container, containerTableSql, memcachedApiConfig, rowOf, TextClient, withBinlog } from './memcached-api-harness.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);
const topo = getTopology();
const DB = 'wc_memcached';
const T = `${DB}.kv`;

let root: mysql.Connection;
let app: RunningApp;
let port: number;
let c: TextClient;

beforeAll(async () => {
  root = await mysql.createConnection({ host: topo.primary.host, port: topo.primary.port, user: 'root', password: topo.rootPassword, multipleStatements: true });
  await root.query(`DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}; ${containerTableSql(T)}; ${containerTableSql(`${DB}.other`)};
    CREATE TABLE ${DB}.multi (k VARBINARY(100) PRIMARY KEY, a VARCHAR(50), b VARCHAR(50), f INT UNSIGNED, c BIGINT UNSIGNED, e INT UNSIGNED)`);
  const api = memcachedApiConfig(topo, [
    container('default', DB, 'kv'),
    container('other', DB, 'other'),
    container('multi', DB, 'multi', { keyColumn: 'k', valueColumns: ['a', 'b'], flagsColumn: 'f', casColumn: 'c', expiryColumn: 'e' }),
  ], { allowFlush: false });
  app = await startApp(testConfig(topo, { ...withBinlog(topo, 4301), memcachedApi: api }), createLogger('error'));
  port = (app.memcachedAddress as { port: number }).port;
  await waitFor('the binlog reader', async () => app.proxy.binlog?.current === true);
  c = await TextClient.connect(port);
});

afterAll(async () => {
  c?.close();
  await app?.stop();
  await root?.query(`DROP DATABASE IF EXISTS ${DB}`).catch(() => {});
  await root?.end();
});

describe('text protocol through wirecache into MariaDB', () => {
  it('stores and reads back any bytes, and the table holds exactly them', async () => {
    const value = Buffer.from([0, 1, 2, 0x0d, 0x0a, 0xff, 0x27, 0x5c, 0x22]);
    const req = Buffer.concat([Buffer.from(`set bin 42 0 ${value.length}\r\n`), value, Buffer.from('\r\n')]);
    expect(await c.call(req)).toBe('STORED\r\n');
    const reply = await c.get('get bin\r\n');
    expect(Buffer.from(reply, 'latin1')).toEqual(Buffer.concat([Buffer.from(`VALUE bin 42 ${value.length}\r\n`), value, Buffer.from('\r\nEND\r\n')]));
    const row = await rowOf(root, T, 'bin');
    expect(Buffer.from(row?.value as Buffer)).toEqual(value);
    expect(row?.flags).toBe(42);
  });

  it('answers every storage command as memcached does', async () => {
    expect(await c.call('set a 1 0 1\r\nx\r\n')).toBe('STORED\r\n');
    expect(await c.call('add a 0 0 1\r\ny\r\n')).toBe('NOT_STORED\r\n');
    expect(await c.call('add b 0 0 1\r\ny\r\n')).toBe('STORED\r\n');
    expect(await c.call('replace nope 0 0 1\r\nz\r\n')).toBe('NOT_STORED\r\n');
    expect(await c.call('replace a 5 0 2\r\nxx\r\n')).toBe('STORED\r\n');
    expect(await c.call('append a 0 0 2\r\n-t\r\n')).toBe('STORED\r\n');
    expect(await c.call('prepend a 0 0 2\r\nh-\r\n')).toBe('STORED\r\n');
    expect(await c.call('append nope 0 0 1\r\nq\r\n')).toBe('NOT_STORED\r\n');
    expect(await c.get('get a b nope\r\n')).toBe('VALUE a 5 6\r\nh-xx-t\r\nVALUE b 0 1\r\ny\r\nEND\r\n');
    const gets = await c.get('gets a\r\n');
    const cas = /^VALUE a 5 6 (\d+)\r\n/.exec(gets)?.[1] as string;
    expect(cas).toMatch(/^\d+$/);
    expect(await c.call(`cas a 0 0 1 ${BigInt(cas) + 1n}\r\nc\r\n`)).toBe('EXISTS\r\n');
    expect(await c.call(`cas a 0 0 1 ${cas}\r\nc\r\n`)).toBe('STORED\r\n');
    expect(await c.call(`cas a 0 0 1 ${cas}\r\nd\r\n`)).toBe('EXISTS\r\n');
    expect(await c.call('cas gone 0 0 1 1\r\nd\r\n')).toBe('NOT_FOUND\r\n');
    expect(await c.call('delete b\r\n')).toBe('DELETED\r\n');
    expect(await c.call('delete b\r\n')).toBe('NOT_FOUND\r\n');
    expect(await c.call('set n 0 0 2\r\n10\r\n')).toBe('STORED\r\n');
    expect(await c.call('incr n 5\r\n')).toBe('15\r\n');
    expect(await c.call('decr n 100\r\n')).toBe('0\r\n');
    expect(await c.call('incr n 18446744073709551615\r\n')).toBe('18446744073709551615\r\n');
    expect(await c.call('incr n 1\r\n')).toBe('0\r\n');
    expect(await c.call('incr a 1\r\n')).toBe('CLIENT_ERROR cannot increment or decrement non-numeric value\r\n');
    expect(await c.call('incr missing 1\r\n')).toBe('NOT_FOUND\r\n');
    expect(await c.call('touch a 100\r\n')).toBe('TOUCHED\r\n');
    expect(await c.call('touch a 100\r\n')).toBe('TOUCHED\r\n');
    expect(await c.call('touch missing 100\r\n')).toBe('NOT_FOUND\r\n');
    expect(await c.get('gat 0 a missing\r\n')).toBe('VALUE a 0 1\r\nc\r\nEND\r\n');
    expect((await rowOf(root, T, 'a'))?.expiry).toBe(0);
    expect(await c.call('flush_all\r\n')).toBe('CLIENT_ERROR flush_all not allowed\r\n');
    expect(await c.call('version\r\n')).toMatch(/^VERSION \S+\r\n$/);
    expect(await c.call('verbosity 1\r\n')).toBe('OK\r\n');
    expect(await c.call('stats\r\n', (r) => r.endsWith('END\r\n'))).toMatch(/^STAT pid \d+\r\n[\s\S]*STAT cmd_get \d+\r\n[\s\S]*END\r\n$/);
    expect(await c.call('set quiet 0 0 1 noreply\r\nq\r\nget quiet\r\n', (r) => r.endsWith('END\r\n'))).toBe('VALUE quiet 0 1\r\nq\r\nEND\r\n');
  });

  it('treats an expired row as a miss, for reads and for add', async () => {
    expect(await c.call('set exp 0 -1 1\r\nx\r\n')).toBe('STORED\r\n');
    expect(await c.get('get exp\r\n')).toBe('END\r\n');
    expect(await c.call('replace exp 0 0 1\r\ny\r\n')).toBe('NOT_STORED\r\n');
    expect(await c.call('add exp 0 0 1\r\nz\r\n')).toBe('STORED\r\n');
    expect(await c.get('get exp\r\n')).toBe('VALUE exp 0 1\r\nz\r\nEND\r\n');
    expect(await c.call('set soon 0 2 1\r\nx\r\n')).toBe('STORED\r\n');
    const expiry = Number((await rowOf(root, T, 'soon'))?.expiry);
    expect(Math.abs(expiry - (Math.floor(Date.now() / 1000) + 2))).toBeLessThanOrEqual(1);
  });

  it('sees writes made in SQL at once, hits or not (the binlog invalidates the cache tier per key)', async () => {
    expect(await c.call('set sql1 0 0 3\r\none\r\n')).toBe('STORED\r\n');
    expect(await c.call('set sql2 0 0 3\r\ntwo\r\n')).toBe('STORED\r\n');
    for (let i = 0; i < 3; i++) expect(await c.get('get sql1 sql2\r\n')).toBe('VALUE sql1 0 3\r\none\r\nVALUE sql2 0 3\r\ntwo\r\nEND\r\n');
    const before = app.memcached?.cache.entries ?? 0;
    expect(before).toBeGreaterThan(0);
    await root.query(`UPDATE ${T} SET value = 'uno' WHERE id = 'sql1'`);
    await waitFor('the SQL update to show', async () => (await c.get('get sql1\r\n')) === 'VALUE sql1 0 3\r\nuno\r\nEND\r\n');
    await root.query(`DELETE FROM ${T} WHERE id = 'sql2'`);
    await waitFor('the SQL delete to show', async () => (await c.get('get sql2\r\n')) === 'END\r\n');
    await root.query(`INSERT INTO ${T} (id, value, flags) VALUES ('sql3', 'tres', 7)`);
    await waitFor('the SQL insert to show', async () => (await c.get('get sql3\r\n')) === 'VALUE sql3 7 4\r\ntres\r\nEND\r\n');
  });

  it('never serves a value older than a write that finished before the read, made through the SQL port or the memcached API (1,000 rounds)', async () => {
    // The application's SQL goes through wirecache too: its writes reach the cache tier before their OK.
    const sql = await connect(app.mysqlAddress.port, topo, { user: 'root', database: DB });
    try {
      expect(await c.call('set race 0 0 1\r\n0\r\n')).toBe('STORED\r\n');
      for (let i = 1; i <= 500; i++) {
        await sql.query(`UPDATE kv SET value = ? WHERE id = 'race'`, [String(i)]);
        expect(await c.get('get race\r\n')).toBe(`VALUE race 0 ${String(i).length}\r\n${i}\r\nEND\r\n`);
      }
      for (let i = 1; i <= 500; i++) {
        expect(await c.call(`set race 0 0 ${String(i).length}\r\n${i}\r\n`)).toBe('STORED\r\n');
        const [rows] = await sql.query(`SELECT value FROM kv WHERE id = 'race'`);
        expect(String((rows as { value: Buffer }[])[0].value)).toBe(String(i));
        expect(await c.get('get race\r\n')).toBe(`VALUE race 0 ${String(i).length}\r\n${i}\r\nEND\r\n`);
      }
    } finally {
      await sql.end();
    }
  });

  it('selects containers with @@name.key and get @@name', async () => {
    expect(await c.call('set @@other.k1 0 0 5\r\nother\r\n')).toBe('STORED\r\n');
    expect((await rowOf(root, `${DB}.other`, 'k1'))?.value).toEqual(Buffer.from('other'));
    expect(await c.get('get k1\r\n')).toBe('END\r\n');
    expect(await c.get('get @@other.k1\r\n')).toBe('VALUE @@other.k1 0 5\r\nother\r\nEND\r\n');
    const other = await TextClient.connect(port);
    try {
      expect(await other.get('get @@other\r\n')).toBe(`VALUE @@other 0 ${`${DB}/other`.length}\r\n${DB}/other\r\nEND\r\n`);
      expect(await other.get('get k1\r\n')).toBe('VALUE k1 0 5\r\nother\r\nEND\r\n');
    } finally {
      other.close();
    }
    expect(await c.call('set @@nosuch.k 0 0 1\r\nx\r\n')).toBe('CLIENT_ERROR unknown container "nosuch"\r\n');
  });

  it('joins and splits several value columns with the separator', async () => {
    expect(await c.call('set @@multi.m 3 0 7\r\nleft|rt\r\n')).toBe('STORED\r\n');
    const [rows] = await root.query(`SELECT a, b, f FROM ${DB}.multi WHERE k = 'm'`);
    expect((rows as Record<string, unknown>[])[0]).toEqual({ a: 'left', b: 'rt', f: 3 });
    await root.query(`UPDATE ${DB}.multi SET b = 'right' WHERE k = 'm'`);
    await waitFor('the joined value', async () => (await c.get('get @@multi.m\r\n')) === 'VALUE @@multi.m 3 10\r\nleft|right\r\nEND\r\n');
  });
});

describe('bad input', () => {
  it('answers malformed commands with errors and keeps the connection and the others working', async () => {
    const bad = await TextClient.connect(port);
    try {
      expect(await bad.call('bogus\r\n')).toBe('ERROR\r\n');
      expect(await bad.call('set k notanumber 0 1\r\nx\r\n', (r) => r.split('\r\n').length === 3)).toBe('CLIENT_ERROR bad command line format\r\nERROR\r\n');
      // As memcached: the block is read as long as announced, and what follows it is the next command.
      expect(await bad.call('set k 0 0 1\r\nxyz\r\n', (r) => r.split('\r\n').length === 3)).toBe('CLIENT_ERROR bad data chunk\r\nERROR\r\n');
      expect(await bad.call('stats noreply\r\n')).toBe('ERROR\r\n');
      expect(await bad.call('quit now\r\n')).toBe('ERROR\r\n');
      expect(await bad.call(`get ${'k'.repeat(251)}\r\n`)).toBe('CLIENT_ERROR bad command line format\r\n');
      expect(await bad.call('incr k abc\r\n')).toBe('CLIENT_ERROR invalid numeric delta argument\r\n');
      const big = 1_048_577;
      expect(await bad.call(Buffer.concat([Buffer.from(`set big 0 0 ${big}\r\n`), Buffer.alloc(big, 0x61), Buffer.from('\r\n')]))).toBe(
        'SERVER_ERROR object too large for cache\r\n',
      );
      expect(await bad.call('version\r\n')).toMatch(/^VERSION /);
    } finally {
      bad.close();
    }
    const garbage = await TextClient.connect(port);
    garbage.socket.write(Buffer.alloc(70 * 1024, 0x41));
    await waitFor('the endless line to be refused', async () => garbage.closed);
    expect(await c.call('version\r\n')).toMatch(/^VERSION /);
  });

  it('answers binary garbage with an error and closes only that connection', async () => {
    const garbage = await TextClient.connect(port);
    const reply = await garbage.call(Buffer.from([0x80, 0x01, 0xff, 0xff, 0x08, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), () => garbage.closed);
    expect(reply.charCodeAt(0)).toBe(0x81);
    expect(await c.call('version\r\n')).toMatch(/^VERSION /);
  });
});

describe('memccapable (libmemcached-tools)', () => {
  it('passes every protocol test of the commands implemented', async () => {
    const flushing = await startApp(
      testConfig(topo, { ...withBinlog(topo, 4302), memcachedApi: memcachedApiConfig(topo, [container('default', DB, 'kv')], { allowFlush: true }) }),
      createLogger('error'),
    );
    try {
      const p = (flushing.memcachedAddress as { port: number }).port;
      const { stdout, stderr } = await run('memccapable', ['-v', '-h', '127.0.0.1', '-p', String(p), '-t', '10'], { timeout: 120_000 }).catch((e) => e as { stdout: string; stderr: string });
      const failed = stdout.split('\n').filter((l) => /\[(fail|FAIL)/.test(l));
      expect(failed, stderr).toEqual([]);
      expect(stdout, stderr).toContain('All tests passed');
    } finally {
      await flushing.stop();
    }
  });
});
