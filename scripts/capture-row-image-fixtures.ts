/**
 * Captures real MariaDB rows events (as the binlog reader receives them,
 * CRC32 checksums included) for the row image decoder's unit tests:
 * test/fixtures/row_images.json. Run: npx tsx scripts/capture-row-image-fixtures.ts
 * It starts its own server (scripts/topology.ts) and stops it afterwards.
 *
 * Separate from capture-binlog-fixtures.ts on purpose: test/fixtures/binlog.json
 * is asserted event by event elsewhere and must not change when these
 * statements do. Events are grouped by the statement that produced them, so a
 * test can name the statement it checks instead of counting events.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { BinlogReader } from '../src/replication/binlog_reader.js';
import { startTopology, stopTopology } from './topology.js';

/**
 * `mixed` puts many column types before its key column `k` (index 25), so
 * locating `k` exercises every length rule; `sessions` is the memcached front
 * end's table; `numbers` has integer keys; `squeezed` has a column type the
 * decoder does not size (a MariaDB COMPRESSED column) before its key.
 */
const STATEMENTS = [
  'CREATE DATABASE IF NOT EXISTS fx_rows',
  `CREATE TABLE fx_rows.mixed (
     a TINYINT, b DATETIME(3), c DECIMAL(10,2), d VARCHAR(300) CHARACTER SET utf8mb4, e BLOB,
     f ENUM('x','y'), g BIT(5), h TIME(2), i SMALLINT, j MEDIUMINT, l BIGINT, m FLOAT, n DOUBLE,
     o YEAR, p DATE, q TIMESTAMP(6) NULL, r CHAR(10), s CHAR(100) CHARACTER SET utf8mb4,
     t SET('a','b','c'), u JSON, w TINYTEXT, x LONGBLOB, y POINT, z BIT(17), zz DECIMAL(30,10), k VARCHAR(250) NOT NULL UNIQUE,
     v MEDIUMBLOB
   ) ENGINE=InnoDB`,
  'CREATE TABLE fx_rows.sessions (id VARCHAR(250) PRIMARY KEY, value MEDIUMBLOB, flags INT UNSIGNED, cas BIGINT UNSIGNED, expiry INT UNSIGNED) ENGINE=InnoDB',
  'CREATE TABLE fx_rows.numbers (a TINYINT, id BIGINT UNSIGNED PRIMARY KEY, s SMALLINT, m MEDIUMINT, i INT) ENGINE=InnoDB',
  'CREATE TABLE fx_rows.squeezed (d VARCHAR(100) COMPRESSED, k INT PRIMARY KEY) ENGINE=InnoDB',
  // sessions: the memcached front end's writes, and the same writes made by plain SQL.
  "INSERT INTO fx_rows.sessions VALUES ('s1', 'v1', 0, 1, 0), ('s2', 'v2', 1, 2, 0), ('s3', 'v3', 2, 3, 100)",
  "UPDATE fx_rows.sessions SET id = 's1b' WHERE id = 's1'",
  "DELETE FROM fx_rows.sessions WHERE id IN ('s2', 's3')",
  "INSERT INTO fx_rows.sessions VALUES ('s1b', 'dup', 0, 4, 0) ON DUPLICATE KEY UPDATE value = 'dup', cas = 4",
  "INSERT INTO fx_rows.sessions VALUES ('s4', 'new', 0, 5, 0) ON DUPLICATE KEY UPDATE value = 'new'",
  "REPLACE INTO fx_rows.sessions VALUES ('s4', 'replaced', 0, 6, 0)",
  "REPLACE INTO fx_rows.sessions VALUES ('s5', 'fresh', 0, 7, 0)",
  // MINIMAL row image: the after image of an update holds only the changed columns.
  'SET SESSION binlog_row_image = MINIMAL',
  "UPDATE fx_rows.sessions SET value = 'minimal' WHERE id = 's4'",
  'SET SESSION binlog_row_image = FULL',
  // mixed: every preceding column set, then NULLs in the preceding columns.
  `INSERT INTO fx_rows.mixed VALUES (
     -1, '2024-01-02 03:04:05.678', 12345.67, 'dé', 'blob', 'y', b'10101', '-12:34:56.78', -300, 70000, -5000000000, 1.5, 2.25,
     2024, '2024-02-29', '2024-03-01 01:02:03.456789', 'char', 'wide ä', 'a,c', '{"j":1}', 'tiny', REPEAT('L', 300), POINT(1, 2),
     b'10000000000000001', 12345678901234567890.0123456789, 'key-one', 'value-one'
   ), (
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, 'key-two', NULL
   )`,
  "UPDATE fx_rows.mixed SET k = 'key-one-renamed', d = REPEAT('é', 300) WHERE k = 'key-one'",
  "DELETE FROM fx_rows.mixed WHERE k = 'key-two'",
  // numbers: integer keys; the last one has its high bit set.
  'INSERT INTO fx_rows.numbers VALUES (-7, 42, -2, 8388607, 0), (127, 43, 32767, -8388608, -1)',
  'INSERT INTO fx_rows.numbers VALUES (1, 18446744073709551615, 0, 0, 0)',
  // A preceding column whose stored length the decoder does not compute.
  "INSERT INTO fx_rows.squeezed VALUES ('squeezed', 7)",
  // TABLE_MAP with optional metadata (column names, signedness, ...) after the null bitmap.
  'SET GLOBAL binlog_row_metadata = FULL',
  "INSERT INTO fx_rows.sessions VALUES ('s6', 'with metadata', 0, 8, 0)",
  'SET GLOBAL binlog_row_metadata = NO_LOG',
  // Compressed rows events (MariaDB log_bin_compress): rows above log_bin_compress_min_len.
  'SET GLOBAL log_bin_compress = ON',
  "INSERT INTO fx_rows.sessions VALUES ('s7', REPEAT('z', 2000), 0, 9, 0), ('s8', 'small', 0, 10, 0)",
  "DELETE FROM fx_rows.sessions WHERE id IN ('s7', 's8')",
  'SET GLOBAL log_bin_compress = OFF',
];

async function main(): Promise<void> {
  const topo = await startTopology({ replicas: 0 });
  const groups: { sql: string; events: string[] }[] = [{ sql: '(stream start)', events: [] }];
  try {
    const reader = new BinlogReader({
      user: 'root',
      password: topo.rootPassword,
      serverId: 4243,
      maxDelayMs: 5000,
      connectTimeoutMs: 3000,
      primary: () => ({ name: 'primary', host: topo.primary.host, port: topo.primary.port }),
      invalidate: () => {},
      onRawEvent: (e) => groups[groups.length - 1].events.push(Buffer.from(e).toString('hex')),
      auto: false,
    });
    await reader.start();
    const conn = await mysql.createConnection({ host: topo.primary.host, port: topo.primary.port, user: 'root', password: topo.rootPassword });
    // Wait for the stream's opening events so they do not land in the first statement's group.
    const [start] = await conn.query<mysql.RowDataPacket[]>('SELECT @@gtid_binlog_pos AS pos');
    if (!(await reader.waitFor(String(start[0].pos), 5000))) throw new Error('reader did not start');
    await new Promise((r) => setTimeout(r, 300));
    for (const sql of STATEMENTS) {
      groups.push({ sql: sql.replace(/\s+/g, ' '), events: [] });
      await conn.query(sql);
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@gtid_binlog_pos AS pos');
      if (!(await reader.waitFor(String(rows[0].pos), 5000))) throw new Error(`reader did not reach: ${sql}`);
    }
    await conn.end();
    reader.stop();
  } finally {
    await stopTopology(topo);
  }
  const out = path.join(import.meta.dirname, '..', 'test', 'fixtures', 'row_images.json');
  const doc = {
    description:
      'MariaDB binlog events (CRC32) as received after COM_BINLOG_DUMP (without the OK byte), grouped by the statement that produced them; ' +
      'written by scripts/capture-row-image-fixtures.ts',
    groups,
  };
  await fs.writeFile(out, JSON.stringify(doc, null, 1) + '\n');
  console.log(`wrote ${groups.reduce((n, g) => n + g.events.length, 0)} events in ${groups.length} groups to ${out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
