import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../src/protocol/payload_reader.js';
import { initialFormat, parseEvent, type BinlogFormat } from '../src/replication/binlog_events.js';
import { readTableColumns, rowsColumnValues, type TableColumns } from '../src/replication/row_images.js';

/** Captured from MariaDB 10.11 with CRC32 checksums by scripts/capture-row-image-fixtures.ts. */
const fixture = JSON.parse(readFileSync(new URL('./fixtures/row_images.json', import.meta.url), 'utf8')) as {
  groups: { sql: string; events: string[] }[];
};

/** The format the stream's FORMAT_DESCRIPTION sets up, read the way the reader reads it. */
const format: BinlogFormat = initialFormat(true);
const groups = fixture.groups.map((g) => ({ sql: g.sql, events: g.events.map((h) => Buffer.from(h, 'hex')) }));
for (const g of groups) for (const e of g.events) parseEvent(e, format);

const TABLE_MAP = 19;
const ROWS_TYPES = new Set([23, 24, 25, 30, 31, 32, 166, 167, 168, 169, 170, 171]);

/** The TABLE_MAP and the rows events of the one statement whose text starts with `sqlStart`. */
function statement(sqlStart: string): { map: Buffer; rows: Buffer[] } {
  const found = groups.filter((g) => g.sql.startsWith(sqlStart));
  expect(found.length, sqlStart).toBe(1);
  const events = found[0].events;
  const maps = events.filter((e) => e[4] === TABLE_MAP);
  expect(maps.length).toBe(1);
  return { map: maps[0], rows: events.filter((e) => ROWS_TYPES.has(e[4])) };
}

/** The key values `rowsColumnValues` extracts from each rows event of a statement, as utf8 text. */
function keys(sqlStart: string, columnIndex: number): (string[] | null)[] {
  const { map, rows } = statement(sqlStart);
  const columns = readTableColumns(map, format);
  return rows.map((e) => rowsColumnValues(e, format, columns, columnIndex)?.map((b) => b.toString('utf8')) ?? null);
}

const SESSION_ID = 0;
const SESSION_CAS = 3;
const MIXED_K = 25;
const MIXED_V = 26;

/** A copy of `event` with `length` bytes of body kept and the size field and checksum space adjusted. */
function cutBody(event: Buffer, length: number): Buffer {
  const cut = Buffer.concat([event.subarray(0, length), Buffer.alloc(format.checksumBytes)]);
  cut.writeUInt32LE(cut.length, 9);
  return cut;
}

/** Rewrites a v1 rows event as v2 (type + 7) with `extra` as its extra data, the way MySQL writes it. */
function asV2(event: Buffer, extra: Buffer): Buffer {
  const afterPostHeader = 19 + 8;
  const extraLength = Buffer.alloc(2);
  extraLength.writeUInt16LE(2 + extra.length);
  const v2 = Buffer.concat([event.subarray(0, afterPostHeader), extraLength, extra, event.subarray(afterPostHeader)]);
  v2[4] = event[4] + 7;
  v2.writeUInt32LE(v2.length, 9);
  return v2;
}

describe('TABLE_MAP columns (real MariaDB bytes)', () => {
  it('decodes the session table', () => {
    const columns = readTableColumns(statement('INSERT INTO fx_rows.sessions VALUES (\'s1\'').map, format);
    expect(columns.schema).toBe('fx_rows');
    expect(columns.table).toBe('sessions');
    expect(Array.from(columns.types)).toEqual([15, 252, 3, 8, 3]);
    // VARCHAR(250) utf8mb4: 1000 bytes max; MEDIUMBLOB: 3 length bytes.
    expect(Array.from(columns.metadata)).toEqual([1000, 3, 0, 0, 0]);
    expect(Array.from(columns.nullable)).toEqual([0, 1, 1, 1, 1]);
    expect(columns.decodableColumns).toBe(5);
  });

  it('decodes the metadata of every column type before the key of the mixed table', () => {
    const columns = readTableColumns(statement('INSERT INTO fx_rows.mixed').map, format);
    expect(Array.from(columns.types)).toEqual([
      1, 18, 246, 15, 252, 254, 16, 19, 2, 9, 8, 4, 5, 13, 10, 17, 254, 254, 254, 252, 252, 252, 255, 16, 246, 15, 252,
    ]);
    const meta = Array.from(columns.metadata);
    expect(meta[1]).toBe(3); // DATETIME(3)
    expect(meta[2]).toBe((10 << 8) | 2); // DECIMAL(10,2)
    expect(meta[3]).toBe(1200); // VARCHAR(300) utf8mb4
    expect(meta[5]).toBe((0xf7 << 8) | 1); // ENUM: real type ENUM, 1 byte
    expect(meta[6]).toBe((5 << 8) | 0); // BIT(5): 5 bits, no whole byte
    expect(meta[7]).toBe(2); // TIME(2)
    expect(meta[15]).toBe(6); // TIMESTAMP(6)
    expect(meta[16]).toBe((0xfe << 8) | 40); // CHAR(10) utf8mb4
    // CHAR(100) utf8mb4 is 400 bytes: the two high length bits are folded into the real type byte.
    expect(meta[17]).toBe((0xee << 8) | (400 & 0xff));
    expect(meta[23]).toBe((1 << 8) | 2); // BIT(17)
    expect(meta[24]).toBe((30 << 8) | 10); // DECIMAL(30,10)
    expect(columns.nullable[MIXED_K]).toBe(0);
    expect(columns.decodableColumns).toBe(27);
  });

  it('ignores the optional metadata of binlog_row_metadata=FULL', () => {
    const plain = readTableColumns(statement("INSERT INTO fx_rows.sessions VALUES ('s1'").map, format);
    const { map } = statement("INSERT INTO fx_rows.sessions VALUES ('s6'");
    const full = readTableColumns(map, format);
    expect(map.length).toBeGreaterThan(statement("INSERT INTO fx_rows.sessions VALUES ('s1'").map.length);
    expect({ ...full, tableId: 0 }).toEqual({ ...plain, tableId: 0 });
  });
});

describe('key values of rows events (real MariaDB bytes)', () => {
  it('reads the session key of every plain SQL write', () => {
    expect(keys("INSERT INTO fx_rows.sessions VALUES ('s1'", SESSION_ID)).toEqual([['s1', 's2', 's3']]);
    expect(keys("UPDATE fx_rows.sessions SET id = 's1b'", SESSION_ID)).toEqual([['s1', 's1b']]);
    expect(keys('DELETE FROM fx_rows.sessions WHERE id IN (\'s2\'', SESSION_ID)).toEqual([['s2', 's3']]);
    // ON DUPLICATE KEY UPDATE on an existing key is an UPDATE (before and after image), on a new key a WRITE.
    expect(keys("INSERT INTO fx_rows.sessions VALUES ('s1b'", SESSION_ID)).toEqual([['s1b', 's1b']]);
    expect(keys("INSERT INTO fx_rows.sessions VALUES ('s4'", SESSION_ID)).toEqual([['s4']]);
    expect(keys("REPLACE INTO fx_rows.sessions VALUES ('s4'", SESSION_ID)).toEqual([['s4', 's4']]);
    expect(keys("REPLACE INTO fx_rows.sessions VALUES ('s5'", SESSION_ID)).toEqual([['s5']]);
  });

  it('renders integer columns as decimal text', () => {
    expect(keys("INSERT INTO fx_rows.sessions VALUES ('s1'", SESSION_CAS)).toEqual([['1', '2', '3']]);
    expect(keys("REPLACE INTO fx_rows.sessions VALUES ('s4'", SESSION_CAS)).toEqual([['5', '6']]);
    expect(keys('INSERT INTO fx_rows.numbers VALUES (-7', 1)).toEqual([['42', '43']]);
    expect(keys('INSERT INTO fx_rows.numbers VALUES (1,', 0)).toEqual([['1']]);
  });

  it('walks every column type before the key, NULLs included', () => {
    // Row 1 sets every column, row 2 leaves all but the key NULL.
    expect(keys('INSERT INTO fx_rows.mixed', MIXED_K)).toEqual([['key-one', 'key-two']]);
    expect(keys("UPDATE fx_rows.mixed SET k = 'key-one-renamed'", MIXED_K)).toEqual([['key-one', 'key-one-renamed']]);
    expect(keys("DELETE FROM fx_rows.mixed WHERE k = 'key-two'", MIXED_K)).toEqual([['key-two']]);
    // A NULL key column contributes no value.
    expect(keys('INSERT INTO fx_rows.mixed', MIXED_V)).toEqual([['value-one']]);
    expect(keys("DELETE FROM fx_rows.mixed WHERE k = 'key-two'", 3)).toEqual([[]]);
  });

  it('returns string content without its length prefix (1- and 2-byte prefixes, CHAR, BLOB)', () => {
    // d VARCHAR(300) utf8mb4 may hold 1200 bytes: a 2-byte length prefix, here up to 600 bytes of content.
    expect(keys("UPDATE fx_rows.mixed SET k = 'key-one-renamed'", 3)).toEqual([['dé', 'é'.repeat(300)]]);
    expect(keys('INSERT INTO fx_rows.mixed', 16)).toEqual([['char']]); // CHAR(10)
    expect(keys('INSERT INTO fx_rows.mixed', 17)).toEqual([['wide ä']]); // CHAR(100) utf8mb4
    expect(keys('INSERT INTO fx_rows.mixed', 21)).toEqual([['L'.repeat(300)]]); // LONGBLOB
  });

  it('decodes MariaDB compressed rows events (log_bin_compress)', () => {
    const insert = statement("INSERT INTO fx_rows.sessions VALUES ('s7'");
    const del = statement("DELETE FROM fx_rows.sessions WHERE id IN ('s7'");
    expect(insert.rows.map((e) => e[4])).toEqual([166]);
    expect(del.rows.map((e) => e[4])).toEqual([168]);
    expect(keys("INSERT INTO fx_rows.sessions VALUES ('s7'", SESSION_ID)).toEqual([['s7', 's8']]);
    expect(keys("DELETE FROM fx_rows.sessions WHERE id IN ('s7'", SESSION_ID)).toEqual([['s7', 's8']]);
    expect(keys("INSERT INTO fx_rows.sessions VALUES ('s7'", 1)).toEqual([['z'.repeat(2000), 'small']]);
  });

  it('reads v2 rows events (extra data after the flags)', () => {
    for (const [sqlStart, expected] of [
      ["INSERT INTO fx_rows.sessions VALUES ('s1'", ['s1', 's2', 's3']],
      ["UPDATE fx_rows.sessions SET id = 's1b'", ['s1', 's1b']],
      ["DELETE FROM fx_rows.sessions WHERE id IN ('s2'", ['s2', 's3']],
    ] as const) {
      const { map, rows } = statement(sqlStart);
      const columns = readTableColumns(map, format);
      for (const extra of [Buffer.alloc(0), Buffer.from([0x00, 0x01, 0x02, 0x03, 0x04])]) {
        const v2 = asV2(rows[0], extra);
        expect(rowsColumnValues(v2, format, columns, SESSION_ID)?.map((b) => b.toString())).toEqual(expected);
      }
    }
  });

  it('reads events without checksums', () => {
    const { map, rows } = statement('INSERT INTO fx_rows.mixed');
    const noCrc = initialFormat(false);
    noCrc.postHeaderLengths = format.postHeaderLengths;
    const strip = (e: Buffer) => {
      const s = Buffer.from(e.subarray(0, e.length - 4));
      s.writeUInt32LE(s.length, 9);
      return s;
    };
    const columns = readTableColumns(strip(map), noCrc);
    expect(rowsColumnValues(strip(rows[0]), noCrc, columns, MIXED_K)?.map((b) => b.toString())).toEqual(['key-one', 'key-two']);
  });
});

describe('when the key cannot be told: null (the caller invalidates the table)', () => {
  it('a column type whose stored length is not computed precedes the key (MariaDB VARCHAR COMPRESSED)', () => {
    const { map } = statement('INSERT INTO fx_rows.squeezed');
    const columns = readTableColumns(map, format);
    expect(Array.from(columns.types)).toEqual([141, 3]);
    expect(columns.decodableColumns).toBe(2);
    expect(keys('INSERT INTO fx_rows.squeezed', 1)).toEqual([null]);
  });

  it('the key column is absent from the after image (binlog_row_image=MINIMAL)', () => {
    expect(keys("UPDATE fx_rows.sessions SET value = 'minimal'", SESSION_ID)).toEqual([null]);
  });

  it('an integer key has its top bit set (signedness is not in TABLE_MAP)', () => {
    expect(keys('INSERT INTO fx_rows.numbers VALUES (1, 18446744073709551615', 1)).toEqual([null]);
    expect(keys('INSERT INTO fx_rows.numbers VALUES (-7', 0)).toEqual([null]); // TINYINT -7
    expect(keys('INSERT INTO fx_rows.mixed', 8)).toEqual([null]); // SMALLINT -300
  });

  it('the key column is neither a string nor an integer, or is outside the table', () => {
    expect(keys('INSERT INTO fx_rows.mixed', 1)).toEqual([null]); // DATETIME(3)
    expect(keys('INSERT INTO fx_rows.mixed', 5)).toEqual([null]); // ENUM
    expect(keys('INSERT INTO fx_rows.mixed', 27)).toEqual([null]);
    expect(keys('INSERT INTO fx_rows.mixed', -1)).toEqual([null]);
  });

  it('metadata whose sizes do not add up is not trusted', () => {
    const { map, rows } = statement("INSERT INTO fx_rows.sessions VALUES ('s1'");
    // Type MEDIUMBLOB (1 metadata byte) becomes VARCHAR (2): the block no longer splits evenly.
    const bent = Buffer.from(map);
    const typesAt = bent.indexOf(Buffer.from([5, 15, 252, 3, 8, 3])) + 1;
    bent[typesAt + 1] = 15;
    const columns = readTableColumns(bent, format);
    expect(columns.decodableColumns).toBe(0);
    expect(rowsColumnValues(rows[0], format, columns, SESSION_ID)).toBeNull();
  });
});

describe('malformed events', () => {
  const samples = [
    { ...statement("INSERT INTO fx_rows.sessions VALUES ('s1'"), key: SESSION_ID },
    { ...statement("UPDATE fx_rows.sessions SET id = 's1b'"), key: SESSION_ID },
    { ...statement('INSERT INTO fx_rows.mixed'), key: MIXED_K },
    { ...statement("UPDATE fx_rows.mixed SET k = 'key-one-renamed'"), key: MIXED_K },
    { ...statement("INSERT INTO fx_rows.sessions VALUES ('s7'"), key: SESSION_ID },
  ];

  it('refuses every truncated TABLE_MAP and rows event with a ProtocolError', () => {
    for (const { map, rows } of samples) {
      const columns = readTableColumns(map, format);
      for (let cut = 0; cut < map.length; cut++) {
        expect(() => readTableColumns(map.subarray(0, cut), format)).toThrow(ProtocolError);
      }
      for (let cut = 0; cut < rows[0].length; cut++) {
        expect(() => rowsColumnValues(rows[0].subarray(0, cut), format, columns, 0)).toThrow(ProtocolError);
      }
    }
  });

  it('refuses a rows event whose body ends inside a row image', () => {
    for (const { map, rows, key } of samples) {
      const columns = readTableColumns(map, format);
      const event = rows[0];
      const bodyEnd = event.length - format.checksumBytes;
      let thrown = 0;
      for (let length = 19; length < bodyEnd; length++) {
        try {
          rowsColumnValues(cutBody(event, length), format, columns, key);
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
          thrown++;
        }
      }
      // Only a cut exactly between two rows reads as a shorter, valid event.
      expect(thrown).toBeGreaterThanOrEqual(bodyEnd - 19 - 3);
    }
  });

  it('survives garbage bodies: a value or a ProtocolError, never another error or a hang', () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (const { map, rows, key } of samples) {
      const columns = readTableColumns(map, format);
      for (const template of [map, rows[0]]) {
        for (let round = 0; round < 300; round++) {
          const garbage = Buffer.from(template);
          // Keep the common header and table id so the parser gets past them; scramble some bytes after.
          for (let i = 0; i < 4; i++) garbage[25 + (random() * 256 + random()) % (garbage.length - 25)] = random();
          try {
            if (template === map) readTableColumns(garbage, format);
            else rowsColumnValues(garbage, format, columns, key);
          } catch (err) {
            expect(err).toBeInstanceOf(ProtocolError);
          }
        }
      }
    }
  });

  it('refuses events of another type or another table, and a compressed body that does not inflate', () => {
    const { map, rows } = statement("INSERT INTO fx_rows.sessions VALUES ('s7'");
    const columns = readTableColumns(map, format);
    expect(() => readTableColumns(rows[0], format)).toThrow(/not TABLE_MAP/);
    expect(() => rowsColumnValues(map, format, columns, 0)).toThrow(/not a rows event/);
    const other = readTableColumns(statement('INSERT INTO fx_rows.mixed').map, format);
    expect(() => rowsColumnValues(rows[0], format, other, 0)).toThrow(ProtocolError);
    // The zlib stream starts after the header byte and the size: corrupt its first bytes.
    const compressedAt = 19 + 8 + 1 + 1;
    const sizeWidth = rows[0][compressedAt] & 7;
    const broken = Buffer.from(rows[0]);
    broken.fill(0xff, compressedAt + 1 + sizeWidth, compressedAt + 1 + sizeWidth + 4);
    expect(() => rowsColumnValues(broken, format, columns, 0)).toThrow(/do not inflate/);
    const badHeader = Buffer.from(rows[0]);
    badHeader[compressedAt] = 0x05;
    expect(() => rowsColumnValues(badHeader, format, columns, 0)).toThrow(/compressed rows header/);
  });
});
