import net from 'node:net';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import {
  restartMariaDB,
  startMariaDB,
  stopMariaDB,
  waitForReplication,
  type ServerInfo,
  type TopologyInfo,
} from '../scripts/topology.js';
import { getTopology } from './topology-context.js';

const topo: TopologyInfo = getTopology();
const servers = (): ServerInfo[] => [topo.primary, ...topo.replicas];

async function rootConn(s: { host: string; port: number }): Promise<mysql.Connection> {
  return mysql.createConnection({ host: s.host, port: s.port, user: topo.rootUser, password: topo.rootPassword });
}

async function queryOne(s: { host: string; port: number }, sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket> {
  const c = await rootConn(s);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>(sql, params);
    return rows[0];
  } finally {
    await c.end();
  }
}

describe('topology', () => {
  it('has a primary and two replicas on distinct ports', () => {
    expect(topo.replicas).toHaveLength(2);
    const ports = new Set([...servers().map((s) => s.port), topo.memcached.port]);
    expect(ports.size).toBe(4);
  });

  it('primary is writable, replicas are read-only', async () => {
    expect(Number((await queryOne(topo.primary, 'SELECT @@GLOBAL.read_only AS ro')).ro)).toBe(0);
    for (const r of topo.replicas) {
      expect(Number((await queryOne(r, 'SELECT @@GLOBAL.read_only AS ro')).ro)).toBe(1);
    }
  });

  it('every server has its own server_id', async () => {
    const ids: number[] = [];
    for (const s of servers()) {
      const id = Number((await queryOne(s, 'SELECT @@server_id AS id')).id);
      expect(id).toBe(s.serverId);
      ids.push(id);
    }
    expect(new Set(ids).size).toBe(3);
  });

  it('replicas run GTID replication with both threads up', async () => {
    for (const r of topo.replicas) {
      const st = await queryOne(r, 'SHOW SLAVE STATUS');
      expect(st, `SHOW SLAVE STATUS on ${r.name}`).toBeDefined();
      expect(st.Slave_IO_Running).toBe('Yes');
      expect(st.Slave_SQL_Running).toBe('Yes');
      expect(st.Using_Gtid).toBe('Slave_Pos');
      expect(Number(st.Master_Port)).toBe(topo.primary.port);
    }
  });

  it('a row inserted on the primary reaches both replicas', async () => {
    const marker = `row-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const p = await rootConn(topo.primary);
    try {
      await p.query('CREATE TABLE IF NOT EXISTS wc_test.topology_probe (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) NOT NULL)');
      await p.query('INSERT INTO wc_test.topology_probe (v) VALUES (?)', [marker]);
    } finally {
      await p.end();
    }
    await waitForReplication(topo, 20_000);
    for (const r of topo.replicas) {
      const row = await queryOne(r, 'SELECT COUNT(*) AS n FROM wc_test.topology_probe WHERE v = ?', [marker]);
      expect(Number(row.n), r.name).toBe(1);
    }
  });

  it('test accounts log in over TCP on every server; a wrong password gets 1045', async () => {
    expect(topo.users.map((u) => u.name).sort()).toEqual(['app', 'limited', 'nopw', 'other']);
    for (const s of servers()) {
      for (const u of topo.users) {
        const c = await mysql.createConnection({ host: s.host, port: s.port, user: u.name, password: u.password });
        const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS cu');
        expect(rows[0].cu).toBe(`${u.name}@%`);
        await c.end();

        const err = await mysql
          .createConnection({ host: s.host, port: s.port, user: u.name, password: `${u.password}-wrong` })
          .then(async (bad) => {
            await bad.end();
            return undefined;
          })
          .catch((e: unknown) => e as { errno?: number });
        expect(err, `${u.name} with a wrong password on ${s.name}`).toBeDefined();
        expect(err?.errno).toBe(1045);
      }
    }
  });

  it('limited can read wc_test but not write it', async () => {
    const u = topo.users.find((x) => x.name === 'limited');
    expect(u).toBeDefined();
    const c = await mysql.createConnection({
      host: topo.primary.host,
      port: topo.primary.port,
      user: u!.name,
      password: u!.password,
      database: 'wc_test',
    });
    try {
      await expect(c.query('CREATE TABLE limited_nope (id INT)')).rejects.toMatchObject({ errno: 1142 });
    } finally {
      await c.end();
    }
  });

  it('memcached answers "version"', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const sock = net.connect({ host: topo.memcached.host, port: topo.memcached.port });
      let buf = '';
      sock.setTimeout(5000, () => {
        sock.destroy();
        reject(new Error('memcached timeout'));
      });
      sock.on('error', reject);
      sock.on('connect', () => sock.write('version\r\n'));
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        if (buf.includes('\r\n')) {
          sock.end();
          resolve(buf);
        }
      });
    });
    expect(reply).toMatch(/^VERSION \d+\.\d+/);
  });
});

describe('standalone server: SIGKILL and restart', () => {
  let extra: ServerInfo | undefined;

  afterAll(async () => {
    if (extra) await stopMariaDB(extra);
  });

  it('recovers after SIGKILL on the same port and datadir', async () => {
    const started = await startMariaDB({
      name: 'extra-restart',
      baseDir: path.join(topo.baseDir, 'extra'),
      serverId: 100,
      templateDir: topo.templateDir,
    });
    extra = started;
    expect(started.port).toBeGreaterThan(0);
    expect(Number((await queryOne(started, 'SELECT @@server_id AS id')).id)).toBe(100);

    const c = await rootConn(started);
    await c.query('CREATE TABLE wc_test.survivor (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB');
    await c.query("INSERT INTO wc_test.survivor VALUES (1, 'before-kill')");
    await c.end();

    await stopMariaDB(started, { signal: 'SIGKILL' });
    await expect(rootConn(started)).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    const restarted = await restartMariaDB(started);
    extra = restarted;
    expect(restarted.port).toBe(started.port);
    expect(restarted.dataDir).toBe(started.dataDir);
    expect(restarted.pid).not.toBe(started.pid);

    const row = await queryOne(restarted, 'SELECT v FROM wc_test.survivor WHERE id = 1');
    expect(row.v).toBe('before-kill');
    // accounts survive too
    const app = topo.users.find((u) => u.name === 'app')!;
    const ac = await mysql.createConnection({ host: restarted.host, port: restarted.port, user: app.name, password: app.password });
    await ac.end();
  });
});
