import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { NO_LOGIN_LIMITS, connect, routingConfig, startProxy, testCacheConfig, type RunningProxy } from './proxy-harness.js';
import { prng } from './prng.js';
import { RawClient } from './raw-client.js';
import { getTopology } from './topology-context.js';

/**
 * Hostile input: random, truncated and oversized packets during the handshake
 * and in the command phase. The proxy must answer with an ERR or close that
 * one connection, never crash or hang, and other sessions must keep working.
 * The seed is printed so a failure can be replayed with FUZZ_SEED.
 */
const topo = getTopology();
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
let px: RunningProxy;
let canary: mysql.Connection;

/** Random ints, bytes and picks from the seeded PRNG. */
function randomSource(seed: number) {
  const next = prng(seed);
  return {
    int: (n: number) => Math.floor(next() * n),
    bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))),
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)],
  };
}

function frame(payload: Buffer, seq: number, declared = payload.length): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(Math.min(declared, 0xffffff), 0, 3);
  h[3] = seq;
  return Buffer.concat([h, payload]);
}

/** Sends bytes on a fresh connection and reports how the proxy ended it. */
async function handshakeCase(port: number, bytes: Buffer, closeEarly: boolean): Promise<'err' | 'closed'> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const received: Buffer[] = [];
  socket.on('data', (d) => received.push(d));
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(bytes);
  if (closeEarly) socket.end();
  const closed = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), 15_000);
    socket.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
  socket.destroy();
  if (!closed) throw new Error(`proxy kept a hostile handshake open: ${bytes.subarray(0, 40).toString('hex')}`);
  const all = Buffer.concat(received);
  // After the greeting (first packet), anything sent must be an ERR packet.
  const greetingLength = all.length >= 4 ? 4 + all.readUIntLE(0, 3) : 0;
  return all.length > greetingLength && all[greetingLength + 4] === 0xff ? 'err' : 'closed';
}

beforeAll(async () => {
  px = await startProxy(topo, {
    timeouts: { backendConnectMs: 3000, clientHandshakeMs: 1500, clientReadMs: 800, clientIdleSeconds: 0, shutdownGraceMs: 500 },
    limits: { ...NO_LOGIN_LIMITS, maxClientConnections: 500, maxPacketBytes: 1024 * 1024 },
    // Cache everything: every fuzzed query and execute also goes through classification, keys and replay;
    // and split reads over the replicas, so routing, state replay and re-prepares see the same garbage.
    cache: testCacheConfig({ mode: 'all' }),
    ...routingConfig(topo),
  });
  canary = await connect(px.port, topo);
  console.log(`fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED})`);
});

afterAll(async () => {
  await canary?.end();
  await px?.stop();
});

async function canaryWorks(): Promise<void> {
  const [rows] = await canary.query('SELECT 42 AS alive');
  expect(rows).toEqual([{ alive: 42 }]);
}

describe('fuzzing the handshake', () => {
  it('answers 1000 hostile handshake responses with an ERR or a close', async () => {
    const r = randomSource(SEED);
    const outcomes = { err: 0, closed: 0 };
    const cases: (() => Promise<void>)[] = [];
    for (let i = 0; i < 1000; i++) {
      cases.push(async () => {
        const kind = r.int(6);
        let bytes: Buffer;
        let closeEarly = false;
        switch (kind) {
          case 0: // random payload, plausible length
            bytes = frame(r.bytes(r.int(200)), 1);
            break;
          case 1: // valid-looking capabilities, garbage after
            bytes = frame(Buffer.concat([Buffer.from([0x8d, 0xa6, 0x0f, 0x00]), r.bytes(r.int(80))]), 1);
            break;
          case 2: // truncated: header promises more than is sent, then silence
            bytes = frame(r.bytes(r.int(20)), 1, 100 + r.int(1000));
            closeEarly = r.int(2) === 0;
            break;
          case 3: // oversized frames
            bytes = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 1]), r.bytes(r.int(500))]);
            closeEarly = true;
            break;
          case 4: // raw garbage, not even a header
            bytes = r.bytes(1 + r.int(3));
            break;
          default: // an SSL request (TLS is not offered)
            bytes = frame(Buffer.concat([Buffer.from([0x00, 0x0a, 0x00, 0x00]), Buffer.alloc(28)]), 1);
        }
        outcomes[await handshakeCase(px.port, bytes, closeEarly)]++;
      });
    }
    for (let i = 0; i < cases.length; i += 50) await Promise.all(cases.slice(i, i + 50).map((f) => f()));
    expect(outcomes.err + outcomes.closed).toBe(1000);
    expect(outcomes.err).toBeGreaterThan(100);
    await canaryWorks();
  }, 120_000);
});

describe('fuzzing the command phase', () => {
  const COMMANDS = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x11, 0x12,
    0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1e, 0x1f, 0x20, 0x7f, 0xfa, 0xfe, 0xff] as const;

  it('survives 2000+ random command packets on 50 sessions, ending each cleanly', async () => {
    const r = randomSource(SEED + 1);
    let sent = 0;
    let errs = 0;
    let reconnects = 0;
    const login = async (n: number) => {
      const c = await RawClient.login(px.port, 'limited', 'limited_pw', { database: 'wc_test', deprecateEof: n % 2 === 0 });
      // One real statement so that fuzzed executes also hit a valid id.
      c.socket.write(frame(Buffer.from('\x16SELECT ?, 1', 'latin1'), 0));
      await c.readAny(2000);
      return c;
    };
    const session = async (n: number) => {
      let c = await login(n);
      for (let i = 0; i < 42; i++) {
        if (c.socket.destroyed || c.socket.readableEnded) {
          // The proxy closed this one (COM_QUIT, a malformed packet): the next packets go on a new session.
          c.close();
          c = await login(n);
          reconnects++;
        }
        const code = r.pick(COMMANDS);
        let payload: Buffer;
        if (code === 0x17 && r.int(2) === 0) payload = Buffer.concat([Buffer.from([0x17, 1, 0, 0, 0]), r.bytes(r.int(40))]);
        else if (code === 0x03) payload = Buffer.concat([Buffer.from([0x03]), Buffer.from(r.pick(['SELECT ', 'SELECT * FROM ', "SELECT '", 'KILL ', 'SHOW ', '/*', '', '/*qc=on*/ SELECT ', 'SET ', 'UPDATE ', 'WITH ']), 'latin1'), r.bytes(r.int(60))]);
        else payload = Buffer.concat([Buffer.from([code]), r.bytes(r.int(64))]);
        c.socket.write(frame(payload, 0));
        sent++;
        const reply = await c.readAny(code === 0x18 || code === 0x19 ? 30 : 1500);
        if (reply.length > 4 && reply[4] === 0xff) errs++;
      }
      // End with a truncated packet: the proxy must give up on it (ERR 1159) rather than wait forever.
      if (!c.socket.destroyed) {
        c.socket.write(frame(Buffer.from([0x03, 0x53]), 0, 5000));
        await c.waitClosed(5000);
      }
      c.close();
    };
    const sessions = Array.from({ length: 50 }, (_, i) => i);
    for (let i = 0; i < sessions.length; i += 10) await Promise.all(sessions.slice(i, i + 10).map(session));
    expect(sent).toBe(50 * 42);
    expect(reconnects).toBeGreaterThan(0);
    expect(errs).toBeGreaterThan(100);
    await canaryWorks();
    // Every hostile session is gone: only the canary remains.
    await new Promise((res) => setTimeout(res, 200));
    expect(px.proxy.sessions.size).toBe(1);
  }, 180_000);

  it('a truncated command packet gets ERR 1159 after client_read_ms', async () => {
    const c = await RawClient.login(px.port, 'app', 'app_pw', { database: 'wc_test' });
    c.socket.write(frame(Buffer.from('\x03SELECT 1'), 0, 50));
    const reply = await c.readAny(3000);
    expect(reply[4]).toBe(0xff);
    expect(reply.readUInt16LE(5)).toBe(1159);
    await c.waitClosed();
    await canaryWorks();
  });
});
