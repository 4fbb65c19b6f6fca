import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { NO_LOGIN_LIMITS, connect, startProxy, type RunningProxy } from './proxy-harness.js';
import { RawClient } from './raw-client.js';
import { getTopology } from './topology-context.js';

/**
 * Payloads of 16 MiB and more are split into 0xFFFFFF-byte frames; one that
 * is an exact multiple of 0xFFFFFF ends with an empty frame. These go through
 * the proxy in both directions, intact.
 */
const topo = getTopology();
let px: RunningProxy;
let c: mysql.Connection;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  px = await startProxy(topo);
  const root = await connect(topo.primary.port, topo, { user: 'root' });
  await root.query('CREATE TABLE IF NOT EXISTS wc_test.big_rows (id INT PRIMARY KEY, v LONGBLOB)');
  await root.query('TRUNCATE wc_test.big_rows');
  await root.end();
  c = await connect(px.port, topo);
});

afterAll(async () => {
  await c?.end();
  await px?.stop();
});

describe('large packets', () => {
  it('a 20 MB row goes up (prepared) and comes back (text and binary) intact', async () => {
    const value = randomBytes(20 * 1024 * 1024);
    await c.execute('INSERT INTO big_rows (id, v) VALUES (?, ?)', [1, value]);
    const [text] = await c.query('SELECT v FROM big_rows WHERE id = 1');
    expect(sha((text as { v: Buffer }[])[0].v)).toBe(sha(value));
    const [bin] = await c.execute('SELECT v FROM big_rows WHERE id = ?', [1]);
    expect(sha((bin as { v: Buffer }[])[0].v)).toBe(sha(value));
  });

  it('a value of exactly 16,777,215 bytes goes up in a text query and comes back intact', async () => {
    const value = Buffer.alloc(16_777_215, 0x61);
    value[0] = 0x62;
    value[value.length - 1] = 0x63;
    await c.query('INSERT INTO big_rows (id, v) VALUES (2, ?)', [value]);
    const [rows] = await c.query('SELECT v, LENGTH(v) AS n FROM big_rows WHERE id = 2');
    const row = (rows as { v: Buffer; n: number }[])[0];
    expect(row.n).toBe(16_777_215);
    expect(sha(row.v)).toBe(sha(value));
  });

  it('a result row whose payload is exactly 0xFFFFFF bytes (empty trailing frame) is relayed', async () => {
    // lenenc prefix 0xFD + 3 bytes, so 16,777,211 bytes of data make a 16,777,215-byte row payload.
    const [rows] = await c.query("SELECT REPEAT('z', 16777211) AS v");
    const v = (rows as { v: string }[])[0].v;
    expect(v.length).toBe(16_777_211);
    const [after] = await c.query('SELECT 1 AS still_in_sync');
    expect(after).toEqual([{ still_in_sync: 1 }]);
  });

  it('a command payload of exactly 0xFFFFFF bytes (empty trailing frame) reaches the server', async () => {
    const raw = await RawClient.login(px.port, 'app', 'app_pw', { database: 'wc_test' });
    const prefix = "SELECT LENGTH('";
    const suffix = "') AS n";
    const fill = 0xffffff - 1 - prefix.length - suffix.length;
    const response = await raw.query(prefix + 'q'.repeat(fill) + suffix);
    // Column count, column def, EOF, row "16777xxx", EOF: find the text of the row.
    expect(response.toString('latin1')).toContain(String(fill));
    raw.close();
  });

  it('refuses a client packet over max_packet_bytes with ERR 1153 and keeps serving others', async () => {
    const small = await startProxy(topo, { limits: { ...NO_LOGIN_LIMITS, maxClientConnections: 10, maxPacketBytes: 1024 * 1024 } });
    try {
      const raw = await RawClient.login(small.port, 'app', 'app_pw', { database: 'wc_test' });
      const header = Buffer.from([0xff, 0xff, 0xff, 0x00]);
      raw.socket.write(Buffer.concat([header, Buffer.from([0x03]), Buffer.alloc(1000, 0x20)]));
      const reply = await raw.readAny();
      expect(reply[4]).toBe(0xff);
      expect(reply.readUInt16LE(5)).toBe(1153);
      // The sequence id after the frame that crossed the limit (0), as the server answers.
      expect(reply[3]).toBe(1);
      await raw.waitClosed();
      const ok = await connect(small.port, topo);
      const [rows] = await ok.query('SELECT 1 AS fine');
      expect(rows).toEqual([{ fine: 1 }]);
      await ok.end();
    } finally {
      await small.stop();
    }
  });
});
