/**
 * The memcached API and its servers: reads from replicas that still see the
 * connection's own writes, the InnoDB plugin's containers table, a dead or
 * silent primary (a quick SERVER_ERROR, never a hang), and a broken container.
 */
import net from 'node:net';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/app.js';
import { createLogger } from '../src/logger.js';
import { routingConfig, testConfig } from './proxy-harness.js';
import { getTopology } from './topology-context.js';
import { container, containerTableSql, memcachedApiConfig, TextClient, withBinlog } from './memcached-api-harness.js';

const topo = getTopology();
const DB = 'wc_mc_servers';
let root: mysql.Connection;

async function direct(server: { host: string; port: number }): Promise<mysql.Connection> {
  return mysql.createConnection({ host: server.host, port: server.port, user: 'root', password: topo.rootPassword, multipleStatements: true });
}

async function replicated(): Promise<void> {
  const [[{ pos }]] = (await root.query('SELECT @@gtid_binlog_pos AS pos')) as unknown as [[{ pos: string }]];
  for (const r of topo.replicas) {
    const conn = await direct(r);
    try {
      await conn.query('SELECT MASTER_GTID_WAIT(?, 10)', [pos]);
    } finally {
      await conn.end();
    }
  }
}

beforeAll(async () => {
  root = await direct(topo.primary);
  await root.query(`DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}; ${containerTableSql(`${DB}.kv`)};
    DROP DATABASE IF EXISTS innodb_memcache; CREATE DATABASE innodb_memcache;
    CREATE TABLE innodb_memcache.containers (name VARCHAR(50) PRIMARY KEY, db_schema VARCHAR(250), db_table VARCHAR(250), key_columns VARCHAR(250),
      value_columns VARCHAR(250), flags VARCHAR(250), cas_column VARCHAR(250), expire_time_column VARCHAR(250), unique_idx_name_on_key VARCHAR(250));
    INSERT INTO innodb_memcache.containers VALUES ('aaa', '${DB}', 'kv', 'id', 'value', 'flags', 'cas', 'expiry', 'PRIMARY')`);
  await replicated();
});

afterAll(async () => {
  await root?.query(`DROP DATABASE IF EXISTS ${DB}; DROP DATABASE IF EXISTS innodb_memcache`).catch(() => {});
  await root?.end();
});

describe('read_from: replicas', () => {
  it('reads from a replica, and a connection always sees its own writes (300 rounds)', async () => {
    const app = await startApp(
      testConfig(topo, {
        ...routingConfig({ primary: topo.primary, replicas: topo.replicas, rootPassword: topo.rootPassword }),
        memcachedApi: memcachedApiConfig(topo, [container('default', DB, 'kv')], { readFrom: 'replicas' }),
      }),
      createLogger('error'),
    );
    try {
      const port = (app.memcachedAddress as { port: number }).port;
      await new Promise((r) => setTimeout(r, 1000)); // the monitor's first checks put the replicas in rotation
      // A row that exists only on the replicas (written there without the binlog): only a replica can answer it.
      for (const r of topo.replicas) {
        const conn = await direct(r);
        await conn.query(`SET SESSION sql_log_bin = 0; INSERT INTO ${DB}.kv (id, value) VALUES ('replica-only', 'from a replica')`);
        await conn.end();
      }
      const reader = await TextClient.connect(port);
      expect(await reader.get('get replica-only\r\n')).toBe('VALUE replica-only 0 14\r\nfrom a replica\r\nEND\r\n');
      reader.close();
      const writer = await TextClient.connect(port);
      for (let i = 0; i < 300; i++) {
        expect(await writer.call(`set ryw 0 0 ${String(i).length}\r\n${i}\r\n`)).toBe('STORED\r\n');
        expect(await writer.get('get ryw\r\n')).toBe(`VALUE ryw 0 ${String(i).length}\r\n${i}\r\nEND\r\n`);
      }
      writer.close();
    } finally {
      await app.stop();
      for (const r of topo.replicas) {
        const conn = await direct(r);
        await conn.query(`SET SESSION sql_log_bin = 0; DELETE FROM ${DB}.kv WHERE id = 'replica-only'`);
        await conn.end();
      }
    }
  });
});

describe('containers', () => {
  it("reads the InnoDB memcached plugin's innodb_memcache.containers table", async () => {
    const app = await startApp(
      testConfig(topo, { ...withBinlog(topo, 4321), memcachedApi: memcachedApiConfig(topo, [], { containersTable: 'innodb_memcache.containers' }) }),
      createLogger('error'),
    );
    try {
      const c = await TextClient.connect((app.memcachedAddress as { port: number }).port);
      expect(await c.call('set @@aaa.plugin 9 0 2\r\nok\r\n')).toBe('STORED\r\n');
      expect(await c.get('get plugin\r\n')).toBe('VALUE plugin 9 2\r\nok\r\nEND\r\n');
      const [rows] = await root.query(`SELECT value FROM ${DB}.kv WHERE id = 'plugin'`);
      expect(String((rows as { value: Buffer }[])[0].value)).toBe('ok');
      c.close();
    } finally {
      await app.stop();
    }
  });

  it('refuses to start with a container whose table or column does not exist, naming it', async () => {
    await expect(
      startApp(testConfig(topo, { memcachedApi: memcachedApiConfig(topo, [container('bad', DB, 'kv', { valueColumns: ['nosuch'] })]) }), createLogger('silent')),
    ).rejects.toThrow(/container "bad": table wc_mc_servers.kv has no column nosuch/);
    await expect(
      startApp(testConfig(topo, { memcachedApi: memcachedApiConfig(topo, [container('gone', DB, 'missing')]) }), createLogger('silent')),
    ).rejects.toThrow(/container "gone": table wc_mc_servers.missing does not exist/);
  });
});

describe('a dead or silent primary', () => {
  it('answers SERVER_ERROR within the operation deadline, never hangs, and keeps answering what needs no database', async () => {
    // A port where nothing listens: connections are refused at once.
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const deadPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    // A port that accepts and never answers: only the operation deadline ends the wait.
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const silentPort = (silent.address() as net.AddressInfo).port;
    try {
      for (const port of [deadPort, silentPort]) {
        const app = await startApp(
          testConfig(topo, {
            backends: [{ name: 'primary', host: '127.0.0.1', port, role: 'primary', weight: 1 }],
            memcachedApi: memcachedApiConfig(topo, [container('default', DB, 'kv')], { operationTimeoutMs: 500 }),
          }),
          createLogger('silent'),
        );
        try {
          const c = await TextClient.connect((app.memcachedAddress as { port: number }).port);
          expect(await c.call('set k 0 0 1\r\nx\r\n')).toMatch(/^SERVER_ERROR .+\r\n$/);
          expect(await c.get('get k\r\n')).toMatch(/^SERVER_ERROR .+\r\n$/);
          expect(await c.call('version\r\n')).toMatch(/^VERSION /);
          c.close();
        } finally {
          await app.stop();
        }
      }
    } finally {
      silent.close();
    }
  });
});

describe('expiry and authentication', () => {
  it('deletes expired rows in the background', async () => {
    const app = await startApp(
      testConfig(topo, { memcachedApi: memcachedApiConfig(topo, [container('default', DB, 'kv')], { expirySweepSeconds: 1 }) }),
      createLogger('error'),
    );
    try {
      const c = await TextClient.connect((app.memcachedAddress as { port: number }).port);
      expect(await c.call('set short 0 1 1\r\nx\r\nset long 0 0 1\r\ny\r\n', (r) => r === 'STORED\r\nSTORED\r\n')).toBe('STORED\r\nSTORED\r\n');
      c.close();
      const rows = async () => ((await root.query(`SELECT id FROM ${DB}.kv WHERE id IN ('short', 'long') ORDER BY id`))[0] as { id: Buffer }[]).map((r) => String(r.id));
      expect(await rows()).toEqual(['long', 'short']);
      const end = Date.now() + 6000;
      while ((await rows()).length > 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
      expect(await rows()).toEqual(['long']);
    } finally {
      await app.stop();
    }
  });

  it('with sasl on, refuses the text protocol (it cannot authenticate)', async () => {
    const app = await startApp(
      testConfig(topo, { memcachedApi: memcachedApiConfig(topo, [container('default', DB, 'kv')], { sasl: true }) }),
      createLogger('error'),
    );
    try {
      const c = await TextClient.connect((app.memcachedAddress as { port: number }).port);
      expect(await c.call('get a\r\n', () => c.closed)).toBe('CLIENT_ERROR authentication required: use the binary protocol with SASL\r\n');
    } finally {
      await app.stop();
    }
  });
});

describe('a container whose key column has a collation (the InnoDB plugin demo table: VARCHAR, case-insensitive)', () => {
  it('finds the row the server matches, and never overwrites it as if it were missing', async () => {
    await root.query(`CREATE TABLE ${DB}.ci (c1 VARCHAR(32) COLLATE utf8mb4_general_ci PRIMARY KEY, c2 VARCHAR(1024), c3 INT, c4 BIGINT UNSIGNED, c5 INT)`);
    const app = await startApp(
      testConfig(topo, {
        ...withBinlog(topo, 4322),
        memcachedApi: memcachedApiConfig(topo, [container('demo', DB, 'ci', { keyColumn: 'c1', valueColumns: ['c2'], flagsColumn: 'c3', casColumn: 'c4', expiryColumn: 'c5' })]),
      }),
      createLogger('error'),
    );
    try {
      const c = await TextClient.connect((app.memcachedAddress as { port: number }).port);
      expect(await c.call('set Foo 0 0 3\r\nbar\r\n')).toBe('STORED\r\n');
      expect(await c.get('get foo FOO Foo\r\n')).toBe('VALUE foo 0 3\r\nbar\r\nVALUE FOO 0 3\r\nbar\r\nVALUE Foo 0 3\r\nbar\r\nEND\r\n');
      expect(await c.call('add foo 0 0 1\r\nx\r\n')).toBe('NOT_STORED\r\n');
      expect(await c.call('set Counter 0 0 2\r\n41\r\n')).toBe('STORED\r\n');
      expect(await c.call('incr counter 1\r\n')).toBe('42\r\n');
      // A write through one spelling is seen through another at once.
      expect(await c.get('get COUNTER\r\n')).toBe('VALUE COUNTER 0 2\r\n42\r\nEND\r\n');
      expect(await c.call('set counter 0 0 1\r\n7\r\n')).toBe('STORED\r\n');
      expect(await c.get('get Counter\r\n')).toBe('VALUE Counter 0 1\r\n7\r\nEND\r\n');
      const [rows] = await root.query(`SELECT c1, c2 FROM ${DB}.ci ORDER BY c1`);
      expect(rows).toEqual([{ c1: 'Counter', c2: '7' }, { c1: 'Foo', c2: 'bar' }]);
      c.close();
    } finally {
      await app.stop();
    }
  });

  it('answers a value larger than max_value_bytes at once and drops its data as it comes', async () => {
    const app = await startApp(testConfig(topo, { memcachedApi: memcachedApiConfig(topo, [container('default', DB, 'kv')], { maxValueBytes: 1024 }) }), createLogger('error'));
    try {
      const c = await TextClient.connect((app.memcachedAddress as { port: number }).port);
      // Announces 2 GB: the answer comes before any of it is sent.
      expect(await c.call('set huge 0 0 2000000000\r\n')).toBe('SERVER_ERROR object too large for cache\r\n');
      c.close();
      const d = await TextClient.connect((app.memcachedAddress as { port: number }).port);
      expect(await d.call(`set big 0 0 2048\r\n${'a'.repeat(2048)}\r\nversion\r\n`, (r) => r.includes('VERSION'))).toMatch(/^SERVER_ERROR object too large for cache\r\nVERSION /);
      d.close();
    } finally {
      await app.stop();
    }
  });
});

describe('flush_all with a delay', () => {
  it('reads a delay beyond 30 days as a unix time, as memcached does, and deletes nothing before it', async () => {
    const app = await startApp(testConfig(topo, { memcachedApi: memcachedApiConfig(topo, [container('default', DB, 'kv')], { allowFlush: true }) }), createLogger('error'));
    try {
      const c = await TextClient.connect((app.memcachedAddress as { port: number }).port);
      expect(await c.call('set keepme 0 0 1\r\nx\r\n')).toBe('STORED\r\n');
      expect(await c.call(`flush_all ${Math.floor(Date.now() / 1000) + 3600}\r\n`)).toBe('OK\r\n');
      expect(await c.call('flush_all 2500000\r\n')).toBe('OK\r\n'); // 29 days: beyond one Node timer
      await new Promise((r) => setTimeout(r, 300));
      expect(await c.get('get keepme\r\n')).toBe('VALUE keepme 0 1\r\nx\r\nEND\r\n');
      expect(await c.call('flush_all 1\r\n')).toBe('OK\r\n');
      const end = Date.now() + 5000;
      while ((await c.get('get keepme\r\n')) !== 'END\r\n' && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      expect(await c.get('get keepme\r\n')).toBe('END\r\n');
      c.close();
    } finally {
      await app.stop();
    }
  });
});
