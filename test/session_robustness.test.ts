import { createHash } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BackendConnection } from '../src/backend/backend_connection.js';
import { nativePasswordToken } from '../src/auth/native_password.js';
import { NATIVE_PASSWORD_PLUGIN } from '../src/protocol/constants.js';
import { encodePacket } from '../src/protocol/framing.js';
import { buildHandshakeResponse, parseHandshakeV10 } from '../src/protocol/handshake.js';
import { PayloadWriter } from '../src/protocol/payload_writer.js';
import { ResponseKind } from '../src/protocol/response_scanner.js';
import { NO_LOGIN_LIMITS, connect, passwordOf, startProxy, type RunningProxy } from './proxy-harness.js';
import { BASE_CLIENT_CAPS, RawClient } from './raw-client.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
let px: RunningProxy;

beforeAll(async () => {
  px = await startProxy(topo);
});

afterAll(async () => {
  await px?.stop();
});

const sha1 = (s: string) => createHash('sha1').update(s).digest();

/** COM_CHANGE_USER as a client with SECURE_CONNECTION | PLUGIN_AUTH sends it. */
function changeUserPayload(user: string, token: Buffer, plugin: string, database = 'wc_test'): Buffer {
  return new PayloadWriter(128)
    .u8(0x11)
    .nulString(user)
    .u8(token.length)
    .bytes(token)
    .nulString(database)
    .u16(45)
    .nulString(plugin)
    .finish();
}

function errCode(payload: Buffer): number {
  expect(payload[0]).toBe(0xff);
  return payload.readUInt16LE(1);
}

describe('COM_CHANGE_USER', () => {
  it('answers ERR 1153 (not an uncaught exception and a hung session) for an oversized auth-switch reply', async () => {
    const small = await startProxy(topo, { limits: { ...NO_LOGIN_LIMITS, maxClientConnections: 10, maxPacketBytes: 4096 } });
    try {
      const c = await RawClient.login(small.port, 'app', passwordOf(topo, 'app'), { database: 'wc_test' });
      // A client plugin other than mysql_native_password: the proxy answers with an AuthSwitchRequest.
      c.socket.write(encodePacket(changeUserPayload('app', Buffer.alloc(0), 'caching_sha2_password'), 0));
      const sw = await c.readPacket();
      expect(sw.payload[0]).toBe(0xfe);
      // The reply's header announces 8 KiB, over max_packet_bytes.
      c.socket.write(Buffer.concat([Buffer.from([0x00, 0x20, 0x00, sw.seq + 1]), Buffer.alloc(100)]));
      const reply = await c.readPacket(3000);
      expect(errCode(reply.payload)).toBe(1153);
      expect(reply.seq).toBe((sw.seq + 2) & 0xff);
      await c.waitClosed(3000);
    } finally {
      await small.stop();
    }
  });

  it('keeps serving the client after a CHANGE_USER that follows a command the backend could not take at once', async () => {
    const c = await RawClient.login(px.port, 'app', passwordOf(topo, 'app'), { database: 'wc_test' });
    const prep = await c.command(Buffer.concat([Buffer.from([0x16]), Buffer.from('SELECT ?')]), ResponseKind.Prepare);
    expect(prep[4]).toBe(0x00);
    const stmtId = prep.readUInt32LE(5);
    // COM_STMT_SEND_LONG_DATA (no response) large enough that the backend socket write returns false:
    // the proxy pauses the client socket until the backend socket drains ...
    const longData = Buffer.concat([Buffer.from([0x18, 0, 0, 0, 0, 0, 0]), Buffer.alloc(12 * 1024 * 1024, 0x61)]);
    longData.writeUInt32LE(stmtId, 1);
    // ... and COM_CHANGE_USER, in the same write, replaces that backend connection before it drained.
    const token = nativePasswordToken(sha1(passwordOf(topo, 'app')), c.greeting.scramble);
    const change = changeUserPayload('app', token, NATIVE_PASSWORD_PLUGIN);
    c.socket.write(Buffer.concat([encodePacket(longData, 0), encodePacket(change, 0)]));
    const ok = await c.readPacket();
    expect(ok.payload[0]).toBe(0x00);
    // The client socket must not stay paused: the next command gets its answer.
    const res = await c.query('SELECT 1', 5000);
    expect(res[4]).toBe(0x01);
    c.close();
  });
});

describe('login', () => {
  /** Sends a HandshakeResponse41 that asks for caching_sha2_password (what MySQL 8 clients do) and returns the first reply. */
  async function firstReply(user: string): Promise<Buffer> {
    const c = await RawClient.open(px.port);
    const greeting = parseHandshakeV10((await c.readPacket()).payload);
    const response = buildHandshakeResponse({
      capabilities: BASE_CLIENT_CAPS & greeting.capabilities,
      mariaDbCapabilities: 0,
      maxPacketSize: 1 << 30,
      characterSet: 45,
      user,
      authResponse: Buffer.alloc(32, 1),
      database: null,
      authPluginName: 'caching_sha2_password',
      connectAttributes: null,
    });
    c.socket.write(encodePacket(response, 1));
    const reply = await c.readPacket();
    c.close();
    return reply.payload;
  }

  it('does not tell an existing account from an unknown one by the first reply', async () => {
    const known = await firstReply('app');
    const unknown = await firstReply('no_such_user');
    // The server itself switches both to its default plugin and only then denies the unknown one.
    expect(unknown[0]).toBe(known[0]);
  });
});

describe('KILL', () => {
  it('is not forwarded for a thread the proxy does not own when wrapped in an executable comment', async () => {
    // A session of the same account opened directly on the server, not through the proxy.
    const direct = await connect(topo.primary.port, topo);
    const tid = direct.threadId!;
    const c = await RawClient.login(px.port, 'app', passwordOf(topo, 'app'), { database: 'wc_test' });
    const res = await c.query(`/*!KILL ${tid}*/`);
    c.close();
    const alive = await direct.query('SELECT 1').then(
      () => true,
      () => false,
    );
    direct.destroy();
    expect(res[4]).toBe(0xff);
    expect(alive).toBe(true);
  });

  it('refuses KILL USER however it is padded', async () => {
    const c = await RawClient.login(px.port, 'app', passwordOf(topo, 'app'), { database: 'wc_test' });
    const plain = await c.query('KILL USER no_such_user');
    const padded = await c.query(`KILL USER no_such_user${' '.repeat(600)}`);
    c.close();
    expect(plain.readUInt16LE(5)).toBe(1235);
    expect(padded[4]).toBe(0xff);
    expect(padded.readUInt16LE(5)).toBe(1235);
  });
});

describe('pipelining', () => {
  it('handles thousands of pipelined commands that have no response (COM_STMT_CLOSE) without aborting the session', async () => {
    const c = await RawClient.login(px.port, 'app', passwordOf(topo, 'app'), { database: 'wc_test' });
    const close = (id: number) => {
      const p = Buffer.from([0x19, 0, 0, 0, 0]);
      p.writeUInt32LE(id, 1);
      return encodePacket(p, 0);
    };
    // A client closing its statement cache in one go: no response is expected for any of these.
    const closes = Array.from({ length: 5000 }, (_, i) => close(1_000_000 + i));
    c.socket.write(Buffer.concat(closes));
    const res = await c.query('SELECT 1');
    c.close();
    expect(res[4]).toBe(0x01);
  });
});


describe('LOCAL INFILE', () => {
  it('gives the ERR for a backend lost mid-upload the sequence id that follows the client\'s last packet', async () => {
    const root = await connect(topo.primary.port, topo, { user: 'root' });
    await root.query('CREATE TABLE IF NOT EXISTS wc_test.rf_load (v VARCHAR(64))');
    await root.end();
    const c = await RawClient.login(px.port, 'app', passwordOf(topo, 'app'), { database: 'wc_test' });
    const session = [...px.proxy.sessions.values()].at(-1)!;
    c.socket.write(encodePacket(Buffer.concat([Buffer.from([0x03]), Buffer.from("LOAD DATA LOCAL INFILE 'f.csv' INTO TABLE rf_load")]), 0));
    const request = await c.readPacket();
    expect(request.payload[0]).toBe(0xfb);
    expect(request.seq).toBe(1);
    // The client sends the first part of the file (seq 2, 3) ...
    c.socket.write(encodePacket(Buffer.from('a\nb\n'), 2));
    c.socket.write(encodePacket(Buffer.from('c\nd\n'), 3));
    await new Promise((r) => setTimeout(r, 200));
    // ... and the backend connection is lost (network failure, server crash).
    (session as unknown as { backend: { socket: { destroy(): void } } }).backend.socket.destroy();
    const err = await c.readPacket(3000);
    expect(errCode(err.payload)).toBe(1927);
    expect(err.seq).toBe(4);
    c.close();
  });
});


describe('backend lost while the proxy runs KILL on it', () => {
  it('answers the KILL with ERR 1927 carrying the sequence id after the command', async () => {
    const victim = await RawClient.login(px.port, 'app', passwordOf(topo, 'app'), { database: 'wc_test' });
    const killer = await RawClient.login(px.port, 'app', passwordOf(topo, 'app'), { database: 'wc_test' });
    const victimId = victim.greeting.connectionId;
    // An open transaction keeps the victim's backend thread (multiplexing would give it back): the KILL QUERY has one to reach.
    await victim.query('BEGIN');
    // The killer's backend connection fails while the proxy's internal KILL QUERY is in flight.
    const original = BackendConnection.prototype.query;
    const spy = vi.spyOn(BackendConnection.prototype, 'query').mockImplementation(function (this: BackendConnection, sql: string | Buffer) {
      const result = original.call(this, sql);
      this.socket.destroy();
      return result;
    });
    try {
      killer.socket.write(encodePacket(Buffer.concat([Buffer.from([0x03]), Buffer.from(`KILL QUERY ${victimId}`)]), 0));
      const err = await killer.readPacket(3000);
      expect(errCode(err.payload)).toBe(1927);
      expect(err.seq).toBe(1);
      // The KILL is the killer's first command: it ran on the killer's own (login) connection, whose loss ends the session.
      await killer.waitClosed(3000);
    } finally {
      spy.mockRestore();
      victim.close();
      killer.close();
    }
  });
});

describe('before login', () => {
  it('accepts no packet over 64 KiB from a client that has not logged in', async () => {
    const c = await RawClient.open(px.port);
    await c.readPacket();
    const huge = Buffer.alloc(100 * 1024, 0x61);
    c.socket.write(Buffer.concat([Buffer.from([huge.length & 0xff, (huge.length >> 8) & 0xff, huge.length >> 16, 1]), huge]));
    const reply = await c.readPacket();
    expect(reply.payload[0]).toBe(0xff);
    expect(reply.payload.readUInt16LE(1)).toBe(1153);
    // The handshake response came as packet 1: the client expects the answer as packet 2.
    expect(reply.seq).toBe(2);
    await c.waitClosed();
  });

  it('still accepts large packets once logged in', async () => {
    const c = await connect(px.port, topo);
    const [rows] = await c.query('SELECT LENGTH(?) AS n', ['x'.repeat(200 * 1024)]);
    expect(rows).toEqual([{ n: 200 * 1024 }]);
    await c.end();
  });
});

describe('COM_CHANGE_USER with a collation id above 255', () => {
  it('applies the collation the client asked for', async () => {
    const root = await connect(topo.primary.port, topo, { user: 'root' });
    const [found] = (await root.query(
      "SELECT ID AS id, COLLATION_NAME AS name FROM information_schema.COLLATIONS WHERE ID > 255 AND CHARACTER_SET_NAME = 'utf8mb4' ORDER BY ID LIMIT 1",
    )) as unknown as [{ id: number; name: string }[]];
    await root.end();
    expect(found.length).toBe(1);
    const { id, name } = found[0];
    const c = await RawClient.login(px.port, 'app', 'app_pw', { database: 'wc_test' });
    const payload = new PayloadWriter(128)
      .u8(0x11)
      .nulString('other')
      .u8(20)
      .bytes(nativePasswordToken(sha1('other_pw'), c.greeting.scramble))
      .nulString('wc_test')
      .u16(id)
      .nulString(NATIVE_PASSWORD_PLUGIN)
      .finish();
    c.socket.write(encodePacket(payload, 0));
    const ok = await c.readPacket();
    expect(ok.payload[0]).toBe(0x00);
    const rows = await c.query('SELECT @@collation_connection AS c, CURRENT_USER() AS u');
    expect(rows.toString('latin1')).toContain(name);
    expect(rows.toString('latin1')).toContain('other@%');
    c.close();
  });
});

describe('KILL in a multi-statement batch', () => {
  it('kills the target as the server would, by the proxy id or the thread id, and runs the rest of the batch (as mysql2 pool tests do)', async () => {
    const c = await connect(px.port, topo, { multipleStatements: true });
    const direct = await mysql.createConnection({ host: '127.0.0.1', port: topo.primary.port, user: 'app', password: passwordOf(topo, 'app'), database: 'wc_test', multipleStatements: true });
    try {
      // What the server answers to the same batch for a connection of its own.
      const directVictim = await mysql.createConnection({ host: '127.0.0.1', port: topo.primary.port, user: 'app', password: passwordOf(topo, 'app') });
      directVictim.on('error', () => undefined);
      const [directRows] = await direct.query(`KILL ${directVictim.threadId}; SELECT SLEEP(0.05) AS s`);
      await directVictim.end().catch(() => undefined);

      const victim = await connect(px.port, topo);
      const closed = new Promise<void>((resolve) => victim.on('error', () => resolve()));
      const [rows] = await c.query(`kill ${victim.threadId}; SELECT SLEEP(0.05) AS s`);
      expect(JSON.parse(JSON.stringify(rows))).toEqual(JSON.parse(JSON.stringify(directRows)));
      await closed;
      await expect(victim.query('SELECT 1')).rejects.toBeInstanceOf(Error);

      // By the thread id an application read from CONNECTION_ID(), KILL QUERY: the victim lives on.
      const second = await connect(px.port, topo);
      const [[{ tid }]] = (await second.query('SELECT CONNECTION_ID() AS tid')) as unknown as [[{ tid: number }]];
      const [results] = await c.query(`DO 1; KILL QUERY ${tid}; SELECT 2 AS n`);
      expect((results as unknown[])[2]).toEqual([{ n: 2 }]);
      expect((await second.query('SELECT 1 AS alive'))[0]).toEqual([{ alive: 1 }]);
      await second.end();
    } finally {
      await c.end();
      await direct.end();
    }
  });

  it('refuses the KILL forms it cannot map (KILL USER) with ERR 1235; quoted look-alikes pass', async () => {
    const c = await connect(px.port, topo, { multipleStatements: true });
    await expect(c.query('DO 1; KILL USER app')).rejects.toMatchObject({ errno: 1235 });
    await expect(c.query('KILL QUERY ID 5; DO 1')).rejects.toMatchObject({ errno: 1235 });
    const [rows] = await c.query("SELECT 'x; kill 5' AS s; SELECT 2 AS n");
    expect(rows).toEqual([[{ s: 'x; kill 5' }], [{ n: 2 }]]);
    await c.end();
  });
});

