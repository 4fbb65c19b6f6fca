/**
 * Captures real MariaDB responses as hex for the protocol unit tests
 * (test/fixtures/mariadb.json). Run: npx tsx scripts/capture-fixtures.ts
 * It starts its own server (scripts/topology.ts) and stops it afterwards.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Command } from '../src/protocol/constants.js';
import { PayloadWriter } from '../src/protocol/payload_writer.js';
import { ResponseKind } from '../src/protocol/response_scanner.js';
import { RawClient } from '../test/raw-client.js';
import { startTopology, stopTopology } from './topology.js';

interface Fixture {
  description: string;
  deprecateEof: boolean;
  /** Raw bytes as received, packet headers included. */
  hex: string;
}

const BINARY_SQL =
  "SELECT CAST(-5 AS SIGNED) AS a, 3.5e0 AS b, DATE('2024-02-29') AS c, TIMESTAMP('2024-01-02 03:04:05.123456') AS d, " +
  "CAST('-25:02:03' AS TIME) AS e, 'txt' AS f, NULL AS g, CAST(18446744073709551615 AS UNSIGNED) AS h, 12.50 AS i";

async function main(): Promise<void> {
  const topo = await startTopology({ replicas: 0 });
  const fixtures: Record<string, Fixture> = {};
  try {
    for (const deprecateEof of [false, true]) {
      const suffix = deprecateEof ? '_deprecate_eof' : '';
      const c = await RawClient.login(topo.primary.port, 'app', 'app_pw', { database: 'wc_test', deprecateEof });
      const put = (name: string, description: string, bytes: Buffer) => {
        fixtures[name + suffix] = { description, deprecateEof, hex: bytes.toString('hex') };
      };
      await c.query('CREATE TEMPORARY TABLE fx (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(10))');
      put('ok_insert', 'OK for an INSERT of 2 rows into an AUTO_INCREMENT table', await c.query("INSERT INTO fx (v) VALUES ('a'), ('b')"));
      put('err_no_table', 'ERR 1146 for a missing table', await c.query('SELECT * FROM no_such_table'));
      put(
        'text_resultset',
        'text result set: 2 rows, 4 columns, NULLs and empty strings (a row starting with 0x00)',
        await c.query("SELECT '' AS e, 1 AS a, NULL AS b, 'x' AS d UNION ALL SELECT '', 2, 'y', NULL"),
      );
      put('text_zero_rows', 'text result set with no rows', await c.query('SELECT 1 AS a FROM DUAL WHERE 1 = 0'));
      put('multi_results', 'two result sets and an OK from a multi-statement', await c.query('SELECT 1 AS one; SELECT 2 AS two; DO 0'));
      const prepare = await c.command(Buffer.concat([Buffer.from([Command.STMT_PREPARE]), Buffer.from(BINARY_SQL)]), ResponseKind.Prepare);
      put('prepare_9_columns', 'COM_STMT_PREPARE response: 0 params, 9 columns', prepare);
      const stmtId = prepare.readUInt32LE(5);
      const execute = new PayloadWriter().u8(Command.STMT_EXECUTE).u32(stmtId).u8(0).u32(1).finish();
      put('execute_binary_row', `binary result set of: ${BINARY_SQL}`, await c.command(execute, ResponseKind.Query));
      const prepare2 = await c.command(
        Buffer.concat([Buffer.from([Command.STMT_PREPARE]), Buffer.from('SELECT v FROM fx WHERE id > ? AND v <> ?')]),
        ResponseKind.Prepare,
      );
      put('prepare_2_params', 'COM_STMT_PREPARE response: 2 params, 1 column', prepare2);
      put(
        'text_warnings',
        "text result set whose rows raise 2 warnings during execution (CAST of 'a' and 'b'), full scan: NO_INDEX_USED",
        await c.query('SELECT CAST(v AS SIGNED) AS n FROM fx ORDER BY id'),
      );
      await c.query('BEGIN');
      put('text_in_trans', 'text result set inside an open transaction: IN_TRANS set', await c.query('SELECT v FROM fx WHERE id = 1'));
      await c.query('ROLLBACK');
      if (!deprecateEof) {
        const greeting = await RawClient.open(topo.primary.port);
        const p = await greeting.readPacket();
        const h = Buffer.alloc(4);
        h.writeUIntLE(p.payload.length, 0, 3);
        h[3] = p.seq;
        fixtures.greeting = { description: 'MariaDB HandshakeV10', deprecateEof: false, hex: Buffer.concat([h, p.payload]).toString('hex') };
        greeting.close();
      }
      c.close();
    }
    const out = path.resolve(import.meta.dirname, '../test/fixtures/mariadb.json');
    await fs.writeFile(out, `${JSON.stringify({ server: 'MariaDB 10.11 (Debian 12)', fixtures }, null, 1)}\n`);
    console.log(`wrote ${Object.keys(fixtures).length} fixtures to ${out}`);
  } finally {
    await stopTopology(topo);
  }
}

await main();
