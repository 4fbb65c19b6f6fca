/**
 * Captures a real MariaDB binlog event stream (as the binlog reader receives
 * it, CRC32 checksums included) for the parser's unit tests:
 * test/fixtures/binlog.json. Run: npx tsx scripts/capture-binlog-fixtures.ts
 * It starts its own server (scripts/topology.ts) and stops it afterwards.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { BinlogReader } from '../src/replication/binlog_reader.js';
import { startTopology, stopTopology } from './topology.js';

/** Statements run on the primary while the reader records, one event group each (or more). */
const STATEMENTS = [
  'CREATE DATABASE IF NOT EXISTS fx_binlog',
  'CREATE TABLE fx_binlog.parent (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB',
  'CREATE TABLE fx_binlog.child (id INT PRIMARY KEY, parent_id INT, FOREIGN KEY (parent_id) REFERENCES fx_binlog.parent(id) ON DELETE CASCADE) ENGINE=InnoDB',
  "INSERT INTO fx_binlog.parent VALUES (1, 'a'), (2, 'b')",
  'INSERT INTO fx_binlog.child VALUES (10, 1)',
  "UPDATE fx_binlog.parent SET v = 'c' WHERE id = 2",
  'DELETE FROM fx_binlog.parent WHERE id = 1',
  'TRUNCATE TABLE fx_binlog.child',
  'ALTER TABLE fx_binlog.parent ADD COLUMN w INT',
];

async function main(): Promise<void> {
  const topo = await startTopology({ replicas: 0 });
  const events: string[] = [];
  try {
    const reader = new BinlogReader({
      user: 'root',
      password: topo.rootPassword,
      serverId: 4242,
      maxDelayMs: 5000,
      connectTimeoutMs: 3000,
      primary: () => ({ name: 'primary', host: topo.primary.host, port: topo.primary.port }),
      invalidate: () => {},
      onRawEvent: (e) => events.push(Buffer.from(e).toString('hex')),
      auto: false,
    });
    await reader.start();
    const conn = await mysql.createConnection({ host: topo.primary.host, port: topo.primary.port, user: 'root', password: topo.rootPassword });
    for (const sql of STATEMENTS) await conn.query(sql);
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@gtid_binlog_pos AS pos');
    await conn.end();
    if (!(await reader.waitFor(String(rows[0].pos), 5000))) throw new Error('reader did not reach the last write');
    reader.stop();
  } finally {
    await stopTopology(topo);
  }
  const out = path.join(import.meta.dirname, '..', 'test', 'fixtures', 'binlog.json');
  const doc = {
    description: 'MariaDB binlog events (CRC32) as received after COM_BINLOG_DUMP (without the OK byte), for: ' + STATEMENTS.join('; '),
    events,
  };
  await fs.writeFile(out, JSON.stringify(doc, null, 1) + '\n');
  console.log(`wrote ${events.length} events to ${out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
