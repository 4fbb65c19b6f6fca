import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capability, Command, MariaDbCapability } from '../src/protocol/constants.js';
import { ResponseKind } from '../src/protocol/response_scanner.js';
import { PayloadWriter } from '../src/protocol/payload_writer.js';
import { connect, startProxy, type RunningProxy } from './proxy-harness.js';
import { RawClient } from './raw-client.js';
import { getTopology } from './topology-context.js';

/**
 * The bytes a client receives through wirecache must equal the bytes it
 * receives from MariaDB directly. Each statement runs on a direct connection
 * and on a proxied one, and the raw responses are compared byte for byte.
 */
const topo = getTopology();
let px: RunningProxy;

const SETUP = `
  DROP TABLE IF EXISTS wc_test.all_types;
  CREATE TABLE wc_test.all_types (
    id INT PRIMARY KEY,
    t TINYINT, tu TINYINT UNSIGNED, s SMALLINT, m MEDIUMINT, i INT, iu INT UNSIGNED, b BIGINT, bu BIGINT UNSIGNED,
    d DECIMAL(20,6), f FLOAT, db DOUBLE, bt BIT(12),
    dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP NULL, y YEAR,
    c CHAR(5), vc VARCHAR(100), bn BINARY(4), vb VARBINARY(50),
    tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, tx TEXT, lt LONGTEXT,
    e ENUM('red','green'), st SET('a','b','c'), j JSON, g GEOMETRY NULL
  ) DEFAULT CHARSET=utf8mb4;
  INSERT INTO wc_test.all_types VALUES
   (1, -128, 255, -32768, 8388607, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
    12345678901234.123456, 1.5, -2.25e100, b'101010101010',
    '2024-02-29', '-838:59:59.000', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05', 2155,
    'abc', 'héllo wörld 🐬', x'00ff00ff', x'000102fe',
    x'00', x'fe0001', REPEAT(x'fb', 70000), '', REPEAT('long ', 20000),
    'green', 'a,c', '{"k": [1, null, "é"]}', ST_GeomFromText('POINT(1 2)')),
   (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, '', '', NULL, x'', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
   (3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'0', '1000-01-01', '00:00:00', '1000-01-01 00:00:00', NULL, 1901,
    '', '', x'00000000', x'fe', x'fe', x'ff', '', '', '', 'red', '', '[]', NULL);
  DROP PROCEDURE IF EXISTS wc_test.diff_two_sets;
  CREATE PROCEDURE wc_test.diff_two_sets(IN n INT)
    BEGIN SELECT id, vc FROM wc_test.all_types WHERE id <= n ORDER BY id; SELECT n * 2 AS doubled; END;
`;

/** Statements whose responses must match byte for byte. Temporary tables keep write results per connection. */
const CORPUS: string[] = [
  'SELECT * FROM all_types ORDER BY id',
  'SELECT * FROM all_types WHERE id = 2',
  'SELECT * FROM all_types WHERE 1 = 0',
  "SELECT '' AS empty, NULL AS nothing, 0x00 AS zero_byte, 0xfe AS fe_byte, _binary'\\0\\0' AS two_nuls",
  "SELECT 'ünïcødé 🐬🎉' AS u, CONVERT('x' USING latin1) AS l",
  'SELECT 1; SELECT 2, 3; SELECT * FROM all_types WHERE id = 3',
  'CALL diff_two_sets(2)',
  'SELECT * FROM no_such_table',
  'SELEKT 1',
  "SELECT CAST('12abc' AS INTEGER) AS w",
  'SHOW WARNINGS',
  'CREATE TEMPORARY TABLE tmp_w (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(10))',
  "INSERT INTO tmp_w (v) VALUES ('a'), ('b'), ('c')",
  "INSERT INTO tmp_w (id, v) VALUES (1, 'dup')",
  "INSERT IGNORE INTO tmp_w (id, v) VALUES (1, 'dup'), (10, 'ten')",
  "UPDATE tmp_w SET v = 'z' WHERE id > 1",
  'DELETE FROM tmp_w WHERE id = 10',
  'SELECT LAST_INSERT_ID(), ROW_COUNT()',
  'BEGIN',
  "INSERT INTO tmp_w (v) VALUES ('in-tx')",
  'ROLLBACK',
  'SET @x = 5',
  'SELECT @x, @@autocommit, @@sql_mode',
  'DO SLEEP(0)',
  'SELECT REPEAT(_utf8mb4"ab", 40000) AS big',
];

async function respond(c: RawClient, sql: string): Promise<Buffer> {
  return c.query(sql);
}

beforeAll(async () => {
  const root = await connect(topo.primary.port, topo, { user: 'root', multipleStatements: true });
  await root.query(SETUP);
  await root.end();
  px = await startProxy(topo);
});

afterAll(async () => {
  await px?.stop();
});

for (const deprecateEof of [false, true]) {
  describe(`byte-identical responses, CLIENT_DEPRECATE_EOF ${deprecateEof ? 'on' : 'off'}`, () => {
    let direct: RawClient;
    let proxied: RawClient;
    beforeAll(async () => {
      direct = await RawClient.login(topo.primary.port, 'app', 'app_pw', { database: 'wc_test', deprecateEof });
      proxied = await RawClient.login(px.port, 'app', 'app_pw', { database: 'wc_test', deprecateEof });
    });
    afterAll(() => {
      direct?.close();
      proxied?.close();
    });

    it('negotiates the same capabilities as a direct connection', () => {
      expect(proxied.capabilities).toBe(direct.capabilities);
      expect(proxied.greeting.serverVersion).toBe(direct.greeting.serverVersion);
      expect(proxied.greeting.serverVersion).toMatch(/^5\.5\.5-10\.11/);
    });

    it.each(CORPUS)('%s', async (sql) => {
      const a = await respond(direct, sql);
      const b = await respond(proxied, sql);
      expect(b.length).toBe(a.length);
      expect(b.equals(a)).toBe(true);
    });

    it('text-protocol commands other than COM_QUERY', async () => {
      const fieldList = Buffer.concat([Buffer.from([Command.FIELD_LIST]), Buffer.from('all_types\0')]);
      for (const [payload, kind] of [
        [fieldList, ResponseKind.FieldList],
        [Buffer.from([Command.PING]), ResponseKind.Single],
        [Buffer.concat([Buffer.from([Command.INIT_DB]), Buffer.from('wc_test')]), ResponseKind.Single],
        [Buffer.concat([Buffer.from([Command.INIT_DB]), Buffer.from('no_such_db')]), ResponseKind.Single],
        [Buffer.from([Command.SET_OPTION, 0, 0]), ResponseKind.Single],
        [Buffer.from([Command.SET_OPTION, 1, 0]), ResponseKind.Single],
      ] as const) {
        const a = await direct.command(payload, kind);
        const b = await proxied.command(payload, kind);
        expect(b.toString('hex')).toBe(a.toString('hex'));
      }
      // COM_STATISTICS text holds uptime and counters that differ between any two calls: check its shape.
      const stats = await proxied.command(Buffer.from([Command.STATISTICS]), ResponseKind.Single);
      expect(stats.subarray(4).toString()).toMatch(/^Uptime: \d+/);
    });

    it('binary protocol: prepare, execute with parameters, cursor fetch, reset, close', async () => {
      const sql = 'SELECT * FROM all_types WHERE id >= ? AND vc <> ? ORDER BY id';
      const prepare = Buffer.concat([Buffer.from([Command.STMT_PREPARE]), Buffer.from(sql)]);
      const pa = await direct.command(prepare, ResponseKind.Prepare);
      const pb = await proxied.command(prepare, ResponseKind.Prepare);
      // The statement id is connection-specific (payload bytes 1..4 of the first packet).
      const idA = pa.readUInt32LE(5);
      const idB = pb.readUInt32LE(5);
      expect(maskStatementId(pb).equals(maskStatementId(pa))).toBe(true);

      const execute = (id: number, cursor: number) =>
        new PayloadWriter()
          .u8(Command.STMT_EXECUTE)
          .u32(id)
          .u8(cursor)
          .u32(1)
          .u8(0) // null bitmap for 2 params
          .u8(1) // new params bound
          .u16(0x08) // LONGLONG
          .u16(0xfd) // VAR_STRING
          .u64(1)
          .lenencString('nope')
          .finish();
      const ea = await direct.command(execute(idA, 0), ResponseKind.Query);
      const eb = await proxied.command(execute(idB, 0), ResponseKind.Query);
      expect(eb.equals(ea)).toBe(true);

      // A read-only cursor: the execute response ends after the metadata; rows come from COM_STMT_FETCH.
      const ca = await direct.command(execute(idA, 1), ResponseKind.Query);
      const cb = await proxied.command(execute(idB, 1), ResponseKind.Query);
      expect(cb.equals(ca)).toBe(true);
      const fetch = (id: number) => new PayloadWriter().u8(Command.STMT_FETCH).u32(id).u32(2).finish();
      for (let i = 0; i < 2; i++) {
        const fa = await direct.command(fetch(idA), ResponseKind.Fetch);
        const fb = await proxied.command(fetch(idB), ResponseKind.Fetch);
        expect(fb.equals(fa)).toBe(true);
      }
      const reset = (id: number) => new PayloadWriter().u8(Command.STMT_RESET).u32(id).finish();
      expect((await proxied.command(reset(idB), ResponseKind.Single)).equals(await direct.command(reset(idA), ResponseKind.Single))).toBe(true);

      // Execute of a closed statement: both answer the same error.
      const close = (id: number) => new PayloadWriter().u8(Command.STMT_CLOSE).u32(id).finish();
      direct.socket.write(frame(close(idA)));
      proxied.socket.write(frame(close(idB)));
      const ga = await direct.command(execute(idA, 0), ResponseKind.Query);
      const gb = await proxied.command(execute(idB, 0), ResponseKind.Query);
      expect(gb.subarray(4, 7).equals(ga.subarray(4, 7))).toBe(true); // ERR 1243
      expect(gb.readUInt16LE(5)).toBe(1243);
    });
  });
}

describe('capabilities the proxy does not implement', () => {
  it('are not passed to the backend even when a client asks for them anyway', async () => {
    // Progress reports, COM_MULTI, bulk execution and metadata caching: all masked in the greeting.
    const all = MariaDbCapability.PROGRESS | MariaDbCapability.COM_MULTI | MariaDbCapability.STMT_BULK_OPERATIONS |
      MariaDbCapability.EXTENDED_TYPE_INFO | MariaDbCapability.CACHE_METADATA;
    const c = await RawClient.login(px.port, 'app', 'app_pw', { database: 'wc_test', mariaDbCapabilities: all, extraCaps: Capability.COMPRESS });
    expect(c.greeting.mariaDbCapabilities & (all & ~MariaDbCapability.EXTENDED_TYPE_INFO)).toBe(0);
    expect(c.greeting.capabilities & Capability.COMPRESS).toBe(0);
    const prepare = Buffer.concat([Buffer.from([Command.STMT_PREPARE]), Buffer.from('SELECT id, vc FROM all_types WHERE id = 1')]);
    const id = (await c.command(prepare, ResponseKind.Prepare)).readUInt32LE(5);
    const execute = new PayloadWriter().u8(Command.STMT_EXECUTE).u32(id).u8(0).u32(1).finish();
    // With metadata caching negotiated, the second response would come without column definitions.
    const first = await c.command(execute, ResponseKind.Query);
    const second = await c.command(execute, ResponseKind.Query);
    expect(second.equals(first)).toBe(true);
    expect(second.toString('latin1')).toContain('all_types');
    c.close();
  });
});

function frame(payload: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(payload.length, 0, 3);
  return Buffer.concat([h, payload]);
}

function maskStatementId(response: Buffer): Buffer {
  const copy = Buffer.from(response);
  copy.fill(0, 5, 9);
  return copy;
}
