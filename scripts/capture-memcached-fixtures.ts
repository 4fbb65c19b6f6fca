/**
 * Captures real memcached binary-protocol exchanges for the codec's unit tests
 * (test/fixtures/memcached_binary.json). Run: npx tsx scripts/capture-memcached-fixtures.ts
 *
 * It starts /usr/bin/memcached on a free port and stops it afterwards. memjs
 * (a real binary client) talks to it through a recording man-in-the-middle;
 * the opcodes memjs cannot send (GETK, GETQ, GAT, PREPEND — memjs sends APPEND
 * for it —, VERSION, SASL, SETQ, NOOP, a SET with cas, ...) go over a raw
 * socket with hand-built request frames.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import memjs from 'memjs';
import { startMemcached, stopMemcached } from './topology.js';

interface Exchange {
  label: string;
  description: string;
  /** Request bytes as the client sent them (possibly several frames). */
  request: string;
  /** Response bytes as memcached sent them (possibly several frames, or none). */
  response: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Forwards one client at a time to memcached, keeping what each side sent since the last take(). */
class Recorder {
  private toServer: Buffer[] = [];
  private toClient: Buffer[] = [];
  private lastActivity = Date.now();
  readonly server: net.Server;

  constructor(upstreamPort: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(upstreamPort, '127.0.0.1');
      client.on('data', (d) => {
        this.toServer.push(d);
        this.lastActivity = Date.now();
        upstream.write(d);
      });
      upstream.on('data', (d) => {
        this.toClient.push(d);
        this.lastActivity = Date.now();
        client.write(d);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
  }

  /** Waits until neither side has sent anything for a while, then returns and forgets the bytes. */
  async take(): Promise<{ request: Buffer; response: Buffer }> {
    while (Date.now() - this.lastActivity < 50) await sleep(10);
    const out = { request: Buffer.concat(this.toServer), response: Buffer.concat(this.toClient) };
    this.toServer = [];
    this.toClient = [];
    return out;
  }
}

function frame(opcode: number, opts: { key?: string; extras?: Buffer; value?: string; cas?: bigint; opaque?: number } = {}): Buffer {
  const key = Buffer.from(opts.key ?? '');
  const extras = opts.extras ?? Buffer.alloc(0);
  const value = Buffer.from(opts.value ?? '');
  const header = Buffer.alloc(24);
  header[0] = 0x80;
  header[1] = opcode;
  header.writeUInt16BE(key.length, 2);
  header[4] = extras.length;
  header.writeUInt32BE(extras.length + key.length + value.length, 8);
  header.writeUInt32BE(opts.opaque ?? 0, 12);
  header.writeBigUInt64BE(opts.cas ?? 0n, 16);
  return Buffer.concat([header, extras, key, value]);
}

const u32 = (...values: number[]) => {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32BE(v, 4 * i));
  return b;
};

/**
 * Sends `request` on a fresh socket and reads until the response's last frame
 * has `lastOpcode` (for STAT: the empty frame that ends the list), or the server closes.
 */
async function rawExchange(port: number, request: Buffer, lastOpcode: number): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = Buffer.alloc(0);
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (d) => {
      received = Buffer.concat([received, d]);
      let at = 0;
      let last = -1;
      let lastBody = 0;
      while (received.length - at >= 24 && received.length - at >= 24 + received.readUInt32BE(at + 8)) {
        last = received[at + 1];
        lastBody = received.readUInt32BE(at + 8);
        at += 24 + lastBody;
      }
      if (at === received.length && last === lastOpcode && (lastOpcode !== 0x10 || lastBody === 0)) resolve();
    });
    socket.on('close', () => resolve());
    socket.on('error', reject);
    // A command memcached never answers must not stall the capture: record the silence.
    setTimeout(resolve, 1000);
  });
  socket.write(request);
  await done;
  socket.destroy();
  return received;
}

async function main(): Promise<void> {
  const memcached = await startMemcached();
  const port = memcached.port;
  const exchanges: Exchange[] = [];
  const put = (label: string, description: string, bytes: { request: Buffer; response: Buffer }) => {
    exchanges.push({ label, description, request: bytes.request.toString('hex'), response: bytes.response.toString('hex') });
  };
  try {
    const recorder = new Recorder(port);
    await new Promise<void>((resolve) => recorder.server.listen(0, '127.0.0.1', resolve));
    const proxyPort = (recorder.server.address() as net.AddressInfo).port;
    const client = memjs.Client.create(`127.0.0.1:${proxyPort}`, { retries: 0, logger: { log: () => undefined } });
    // memjs rejects on error statuses; only the bytes matter here.
    const run = async (label: string, description: string, op: () => Promise<unknown>) => {
      await op().catch(() => undefined);
      put(label, description, await recorder.take());
    };

    await run('set', 'SET fx:a = "hello", flags 0, exptime 0', () => client.set('fx:a', 'hello', { expires: 0 }));
    await run('get_hit', 'GET fx:a: hit, flags extras, cas, no key', () => client.get('fx:a'));
    await run('get_miss', 'GET fx:missing: Key not found, "Not found"', () => client.get('fx:missing'));
    await run('add_exists', 'ADD fx:a (exists): Key exists', () => client.add('fx:a', 'x', { expires: 0 }));
    await run('add', 'ADD fx:b = "bee" (absent): stored', () => client.add('fx:b', 'bee', { expires: 0 }));
    await run('replace_miss', 'REPLACE fx:missing: Key not found', () => client.replace('fx:missing', 'x', { expires: 0 }));
    await run('replace', 'REPLACE fx:b = "bee2": stored', () => client.replace('fx:b', 'bee2', { expires: 0 }));
    await run('append', 'APPEND fx:a " world"', () => client.append('fx:a', ' world'));
    await run('delete', 'DELETE fx:b: deleted', () => client.delete('fx:b'));
    await run('delete_miss', 'DELETE fx:b again: Key not found', () => client.delete('fx:b'));
    await run('incr_create', 'INCREMENT fx:n by 5, initial 10 (absent: created with 10)', () =>
      client.increment('fx:n', 5, { initial: 10, expires: 0 }),
    );
    await run('incr', 'INCREMENT fx:n by 5 (10 -> 15)', () => client.increment('fx:n', 5, { initial: 0, expires: 0 }));
    await run('decr', 'DECREMENT fx:n by 3 (15 -> 12)', () => client.decrement('fx:n', 3, { initial: 0, expires: 0 }));
    await run('incr_non_numeric', 'INCREMENT fx:a ("hello world"): Non-numeric', () => client.increment('fx:a', 1, { initial: 0, expires: 0 }));
    await run('touch', 'TOUCH fx:a exptime 100: flags extras and cas, no value', () => client.touch('fx:a', 100));
    await run('touch_miss', 'TOUCH fx:missing: Key not found', () => client.touch('fx:missing', 100));
    await run('stats', 'STAT (general): one frame per statistic, then an empty one', async () => {
      await new Promise<void>((resolve) => client.stats(() => resolve()));
    });

    const raw = async (label: string, description: string, request: Buffer, lastOpcode: number) => {
      put(label, description, { request, response: await rawExchange(port, request, lastOpcode) });
    };
    await raw('version', 'VERSION', frame(0x0b, { opaque: 7 }), 0x0b);
    await raw('getk_hit', 'GETK fx:a: hit with the key', frame(0x0c, { key: 'fx:a', opaque: 8 }), 0x0c);
    await raw('getk_miss', 'GETK fx:missing: Key not found with the key, no message', frame(0x0c, { key: 'fx:missing', opaque: 9 }), 0x0c);
    await raw(
      'getq_pipeline',
      'GETQ fx:missing (miss: no answer), GETQ fx:a (hit), NOOP',
      Buffer.concat([frame(0x09, { key: 'fx:missing', opaque: 10 }), frame(0x09, { key: 'fx:a', opaque: 11 }), frame(0x0a, { opaque: 12 })]),
      0x0a,
    );
    await raw('gat_hit', 'GAT fx:a exptime 300: hit, no key', frame(0x1d, { key: 'fx:a', extras: u32(300), opaque: 13 }), 0x1d);
    await raw('gatk_miss', 'GATK fx:missing exptime 300: Key not found with the key', frame(0x23, { key: 'fx:missing', extras: u32(300), opaque: 14 }), 0x23);
    await raw('prepend', 'PREPEND fx:a ">> "', frame(0x0f, { key: 'fx:a', value: '>> ', opaque: 15 }), 0x0f);
    await raw('sasl_list_mechs', 'SASL LIST MECHS on a memcached without -S: an error', frame(0x20, { opaque: 16 }), 0x20);
    await raw(
      'setq_noop',
      'SETQ fx:q = "quiet", flags 0xdeadbeef, exptime 0 (success: no answer), NOOP',
      Buffer.concat([frame(0x11, { key: 'fx:q', extras: u32(0xdeadbeef, 0), value: 'quiet', opaque: 17 }), frame(0x0a, { opaque: 18 })]),
      0x0a,
    );
    // The cas of fx:q, read back with a GET, for the compare-and-swap pair below.
    const got = await rawExchange(port, frame(0x00, { key: 'fx:q', opaque: 19 }), 0x00);
    const cas = got.readBigUInt64BE(16);
    await raw('set_cas', 'SET fx:q with its current cas: stored', frame(0x01, { key: 'fx:q', extras: u32(1, 0), value: 'swapped', cas, opaque: 20 }), 0x01);
    await raw('set_cas_stale', 'SET fx:q with the old cas: Key exists', frame(0x01, { key: 'fx:q', extras: u32(1, 0), value: 'late', cas, opaque: 21 }), 0x01);
    const arith = Buffer.alloc(20);
    arith.writeBigUInt64BE(1n, 0);
    arith.writeBigUInt64BE(99n, 8);
    arith.writeUInt32BE(0xffffffff, 16);
    await raw('decr_no_create', 'DECREMENT fx:absent, exptime 0xffffffff (do not create): Key not found', frame(0x06, { key: 'fx:absent', extras: arith, opaque: 22 }), 0x06);
    await raw('verbosity', 'VERBOSITY 1: memcached 1.6.18 sends no answer at all (the response is empty)', frame(0x1b, { extras: u32(1), opaque: 23 }), 0x1b);
    await raw('stats_settings', 'STAT settings', frame(0x10, { key: 'settings', opaque: 24 }), 0x10);
    await raw('flushq_noop', 'FLUSHQ with a 0 s delay (no answer), NOOP', Buffer.concat([frame(0x18, { extras: u32(0), opaque: 25 }), frame(0x0a, { opaque: 26 })]), 0x0a);
    await raw('unknown_opcode', 'opcode 0x50: Unknown command', frame(0x50, { opaque: 27 }), 0x50);

    await run('flush', 'FLUSH (no extras)', () => client.flush());
    await run('quit', 'QUIT: answered, then memcached closes', async () => {
      client.quit();
      await sleep(100);
    });
    client.close();
    recorder.server.close();
  } finally {
    await stopMemcached(memcached);
  }
  const version = exchanges.find((e) => e.label === 'version');
  const out = path.resolve(import.meta.dirname, '../test/fixtures/memcached_binary.json');
  const server = version ? `memcached ${Buffer.from(version.response, 'hex').subarray(24).toString()}` : 'memcached';
  await fs.writeFile(out, `${JSON.stringify({ server, exchanges }, null, 1)}\n`);
  console.log(`wrote ${exchanges.length} exchanges to ${out}`);
}

await main();
