import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MemcachedError, StoreMode, type MemcachedCommand } from '../src/memcached_api/commands.js';
import {
  BINARY_HEADER_BYTES,
  BinaryOpcode,
  BinaryStatus,
  binaryArith,
  binaryError,
  binaryItem,
  binaryMiss,
  binaryResponse,
  binaryStats,
  binaryStatusMessage,
  binarySuccess,
  binaryTouched,
  binaryVersion,
  decodeBinaryRequest,
  readBinaryFrame,
  suppressesResponse,
  type BinaryFrame,
  type BinaryRequest,
} from '../src/memcached_api/binary_protocol.js';
import { prng } from './prng.js';

/** Captured from memcached 1.6.18 and memjs by scripts/capture-memcached-fixtures.ts. */
const fixture = JSON.parse(readFileSync(new URL('./fixtures/memcached_binary.json', import.meta.url), 'utf8')) as {
  exchanges: { label: string; description: string; request: string; response: string }[];
};
const exchange = new Map(
  fixture.exchanges.map((e) => [e.label, { request: Buffer.from(e.request, 'hex'), response: Buffer.from(e.response, 'hex') }]),
);

function bytes(label: string): { request: Buffer; response: Buffer } {
  const found = exchange.get(label);
  if (!found) throw new Error(`no captured exchange ${label}`);
  return found;
}

const LIMIT = 1024 * 1024;

/** Every request frame of a captured exchange, decoded in order. */
function requests(label: string): BinaryRequest[] {
  const buf = bytes(label).request;
  const out: BinaryRequest[] = [];
  for (let at = 0; at < buf.length; ) {
    const frame = readBinaryFrame(buf, at, LIMIT);
    if (!frame) throw new Error(`incomplete frame in ${label}`);
    out.push(decodeBinaryRequest(frame));
    at += frame.length;
  }
  return out;
}

function request(label: string): BinaryRequest {
  const all = requests(label);
  expect(all).toHaveLength(1);
  return all[0];
}

/** memcached's responses, read with the test's own minimal parser (not the codec under test). */
function responseFrames(buf: Buffer): { opcode: number; status: number; key: Buffer; value: Buffer; extras: Buffer; cas: bigint }[] {
  const out = [];
  for (let at = 0; at < buf.length; ) {
    const keyLength = buf.readUInt16BE(at + 2);
    const extrasLength = buf[at + 4];
    const body = buf.readUInt32BE(at + 8);
    const start = at + 24;
    out.push({
      opcode: buf[at + 1],
      status: buf.readUInt16BE(at + 6),
      cas: buf.readBigUInt64BE(at + 16),
      extras: buf.subarray(start, start + extrasLength),
      key: buf.subarray(start + extrasLength, start + extrasLength + keyLength),
      value: buf.subarray(start + extrasLength + keyLength, start + body),
    });
    at = start + body;
  }
  return out;
}

const casOf = (label: string) => responseFrames(bytes(label).response)[0].cas;
const key = (s: string) => Buffer.from(s);

describe('decoding real requests (memjs and raw frames sent to memcached 1.6.18)', () => {
  const expected: [string, MemcachedCommand][] = [
    ['set', { kind: 'store', mode: StoreMode.Set, key: key('fx:a'), flags: 0, exptime: 0, value: key('hello'), cas: 0n }],
    ['get_hit', { kind: 'get', keys: [key('fx:a')], withCas: true, touch: null }],
    ['get_miss', { kind: 'get', keys: [key('fx:missing')], withCas: true, touch: null }],
    ['add_exists', { kind: 'store', mode: StoreMode.Add, key: key('fx:a'), flags: 0, exptime: 0, value: key('x'), cas: 0n }],
    ['replace', { kind: 'store', mode: StoreMode.Replace, key: key('fx:b'), flags: 0, exptime: 0, value: key('bee2'), cas: 0n }],
    ['append', { kind: 'store', mode: StoreMode.Append, key: key('fx:a'), flags: 0, exptime: 0, value: key(' world'), cas: 0n }],
    ['prepend', { kind: 'store', mode: StoreMode.Prepend, key: key('fx:a'), flags: 0, exptime: 0, value: key('>> '), cas: 0n }],
    ['delete', { kind: 'delete', key: key('fx:b'), cas: 0n }],
    ['incr_create', { kind: 'arith', key: key('fx:n'), incr: true, delta: 5n, initial: 10n, exptime: 0 }],
    ['decr', { kind: 'arith', key: key('fx:n'), incr: false, delta: 3n, initial: 0n, exptime: 0 }],
    ['decr_no_create', { kind: 'arith', key: key('fx:absent'), incr: false, delta: 1n, initial: null, exptime: 0xffffffff }],
    ['touch', { kind: 'touch', key: key('fx:a'), exptime: 100 }],
    ['stats', { kind: 'stats', group: '' }],
    ['stats_settings', { kind: 'stats', group: 'settings' }],
    ['version', { kind: 'version' }],
    ['getk_hit', { kind: 'get', keys: [key('fx:a')], withCas: true, touch: null }],
    ['gat_hit', { kind: 'get', keys: [key('fx:a')], withCas: true, touch: 300 }],
    ['gatk_miss', { kind: 'get', keys: [key('fx:missing')], withCas: true, touch: 300 }],
    ['sasl_list_mechs', { kind: 'sasl_list' }],
    ['verbosity', { kind: 'verbosity' }],
    ['flush', { kind: 'flush', delay: 0 }],
    ['quit', { kind: 'quit' }],
  ];
  it.each(expected)('%s', (label, command) => {
    expect(request(label).command).toEqual(command);
  });

  it('echoes opcode and opaque, and marks quiet and key-returning opcodes', () => {
    const getk = request('getk_hit');
    expect([getk.opcode, getk.opaque, getk.quiet, getk.returnsKey]).toEqual([BinaryOpcode.GetK, 8, false, true]);
    const [missQ, hitQ, noop] = requests('getq_pipeline');
    expect(missQ).toMatchObject({ opcode: BinaryOpcode.GetQ, quiet: true, returnsKey: false, command: { kind: 'get', keys: [key('fx:missing')] } });
    expect(hitQ).toMatchObject({ opcode: BinaryOpcode.GetQ, opaque: 11, quiet: true });
    expect(noop).toMatchObject({ opcode: BinaryOpcode.Noop, quiet: false, command: { kind: 'noop' } });
    const [setq] = requests('setq_noop');
    expect(setq).toMatchObject({ quiet: true, command: { kind: 'store', mode: StoreMode.Set, flags: 0xdeadbeef, value: key('quiet') } });
    const [flushq] = requests('flushq_noop');
    expect(flushq).toMatchObject({ opcode: BinaryOpcode.FlushQ, quiet: true, command: { kind: 'flush', delay: 0 } });
  });

  it('turns a SET carrying a cas into a compare-and-swap', () => {
    const { command } = request('set_cas');
    expect(command).toMatchObject({ kind: 'store', mode: StoreMode.Cas, flags: 1, value: key('swapped') });
    const cas = (command as { cas: bigint }).cas;
    expect(cas).not.toBe(0n);
    // The stale attempt reused the same cas after the first one changed the item's.
    expect(request('set_cas_stale').command).toMatchObject({ mode: StoreMode.Cas, cas });
  });

  it('rejects the unknown opcode memcached rejected', () => {
    const frame = readBinaryFrame(bytes('unknown_opcode').request, 0, LIMIT)!;
    expect(() => decodeBinaryRequest(frame)).toThrow(expect.objectContaining({ binaryStatus: BinaryStatus.UnknownCommand }));
  });
});

describe('building the responses memcached sent, byte for byte', () => {
  const same = (label: string, ours: Buffer) => expect(ours.toString('hex')).toBe(bytes(label).response.toString('hex'));
  const item = (value: string, flags: number, cas: bigint) => ({ key: key('fx:a'), flags, cas, value: key(value) });

  it('store successes carry the new cas', () => {
    for (const label of ['set', 'add', 'replace', 'append', 'prepend', 'set_cas']) same(label, binarySuccess(request(label), casOf(label)));
  });
  it('get and gat hits, with the key only for GETK', () => {
    same('get_hit', binaryItem(request('get_hit'), item('hello', 0, casOf('get_hit'))));
    same('getk_hit', binaryItem(request('getk_hit'), item('hello world', 0, casOf('getk_hit'))));
    same('gat_hit', binaryItem(request('gat_hit'), item('hello world', 0, casOf('gat_hit'))));
  });
  it('misses: "Not found", or the bare key for GETK/GATK', () => {
    for (const label of ['get_miss', 'replace_miss', 'delete_miss', 'touch_miss', 'decr_no_create']) {
      same(label, binaryError(request(label), BinaryStatus.KeyNotFound, binaryStatusMessage(BinaryStatus.KeyNotFound)));
    }
    same('get_miss', binaryMiss(request('get_miss'), key('fx:missing')));
    same('getk_miss', binaryMiss(request('getk_miss'), key('fx:missing')));
    same('gatk_miss', binaryMiss(request('gatk_miss'), key('fx:missing')));
  });
  it('errors carry memcached\'s message', () => {
    same('add_exists', binaryError(request('add_exists'), BinaryStatus.KeyExists, 'Data exists for key.'));
    same('set_cas_stale', binaryError(request('set_cas_stale'), BinaryStatus.KeyExists, binaryStatusMessage(BinaryStatus.KeyExists)));
    same('incr_non_numeric', binaryError(request('incr_non_numeric'), BinaryStatus.NonNumeric, binaryStatusMessage(BinaryStatus.NonNumeric)));
    same('sasl_list_mechs', binaryError(request('sasl_list_mechs'), BinaryStatus.UnknownCommand, 'Unknown command'));
    const frame = readBinaryFrame(bytes('unknown_opcode').request, 0, LIMIT)!;
    same('unknown_opcode', binaryError(frame, BinaryStatus.UnknownCommand, binaryStatusMessage(BinaryStatus.UnknownCommand)));
  });
  it('incr/decr values as 8 big-endian bytes', () => {
    same('incr_create', binaryArith(request('incr_create'), 10n, casOf('incr_create')));
    same('incr', binaryArith(request('incr'), 15n, casOf('incr')));
    same('decr', binaryArith(request('decr'), 12n, casOf('decr')));
  });
  it('delete, flush, quit and noop successes', () => {
    same('delete', binarySuccess(request('delete')));
    same('flush', binarySuccess(request('flush')));
    same('quit', binarySuccess(request('quit')));
  });
  it('touch answers with the flags and cas, no value', () => {
    same('touch', binaryTouched(request('touch'), { flags: 0, cas: casOf('touch') }));
  });
  it('version', () => {
    same('version', binaryVersion(request('version'), '1.6.18'));
  });
  it('stats: one frame per statistic, then the empty terminator', () => {
    for (const label of ['stats', 'stats_settings']) {
      const frames = responseFrames(bytes(label).response);
      expect(frames.length).toBeGreaterThan(10);
      const pairs = frames.slice(0, -1).map((f) => [f.key.toString(), f.value.toString()] as const);
      same(label, binaryStats(request(label), pairs));
    }
  });
  it('quiet pipelines: what memcached held back is what suppressesResponse() holds back', () => {
    const [missQ, hitQ, noop] = requests('getq_pipeline');
    const ours = [
      binaryMiss(missQ, key('fx:missing')),
      binaryItem(hitQ, item('hello world', 0, responseFrames(bytes('getq_pipeline').response)[0].cas)),
      binarySuccess(noop),
    ];
    const sent = [missQ, hitQ, noop].map((r, i) => (suppressesResponse(r, i === 0 ? BinaryStatus.KeyNotFound : BinaryStatus.NoError) ? null : ours[i]));
    expect(Buffer.concat(sent.filter((b): b is Buffer => b !== null)).toString('hex')).toBe(bytes('getq_pipeline').response.toString('hex'));
    for (const label of ['setq_noop', 'flushq_noop']) {
      const [quiet, last] = requests(label);
      expect(suppressesResponse(quiet, BinaryStatus.NoError)).toBe(true);
      expect(suppressesResponse(last, BinaryStatus.NoError)).toBe(false);
      same(label, binarySuccess(last));
    }
  });
});

/** A request frame built by hand, for the cases memcached was not asked about. */
function frameBytes(opcode: number, parts: { key?: Buffer; extras?: Buffer; value?: Buffer; cas?: bigint; opaque?: number } = {}): Buffer {
  const extras = parts.extras ?? Buffer.alloc(0);
  const k = parts.key ?? Buffer.alloc(0);
  const value = parts.value ?? Buffer.alloc(0);
  const out = binaryResponse(opcode, parts.opaque ?? 0, 0, { cas: parts.cas, extras, key: k, value });
  out[0] = 0x80;
  return out;
}
const decode = (buf: Buffer) => decodeBinaryRequest(readBinaryFrame(buf, 0, LIMIT)!);

function statusOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MemcachedError);
    return (e as MemcachedError).binaryStatus;
  }
  throw new Error('did not throw');
}

describe('framing', () => {
  it('returns null for every prefix of a frame, then the frame', () => {
    const whole = bytes('set').request;
    for (let n = 0; n < whole.length; n++) expect(readBinaryFrame(whole.subarray(0, n), 0, LIMIT)).toBeNull();
    const frame = readBinaryFrame(whole, 0, LIMIT) as BinaryFrame;
    expect(frame.length).toBe(whole.length);
    expect(frame.key.buffer).toBe(whole.buffer); // a view, not a copy
  });
  it('reads two frames from one buffer one after the other', () => {
    const buf = bytes('getq_pipeline').request;
    const opcodes: number[] = [];
    let at = 0;
    for (let frame = readBinaryFrame(buf, at, LIMIT); frame; frame = readBinaryFrame(buf, at, LIMIT)) {
      opcodes.push(frame.opcode);
      at += frame.length;
    }
    expect(opcodes).toEqual([BinaryOpcode.GetQ, BinaryOpcode.GetQ, BinaryOpcode.Noop]);
    expect(at).toBe(buf.length);
  });
  it('rejects a bad magic at once, inconsistent lengths and an oversized body', () => {
    expect(statusOf(() => readBinaryFrame(Buffer.from('get fx:a\r\n'), 0, LIMIT))).toBe(BinaryStatus.InvalidArguments);
    const bad = Buffer.from(bytes('get_hit').request);
    bad[4] = 10; // extras 10 + key 4 > body 4
    expect(statusOf(() => readBinaryFrame(bad, 0, LIMIT))).toBe(BinaryStatus.InvalidArguments);
    const header = Buffer.from(bytes('set').request.subarray(0, BINARY_HEADER_BYTES));
    header.writeUInt32BE(0xffffffff, 8);
    // Refused from the header alone: nothing of the 4 GB body is awaited.
    expect(statusOf(() => readBinaryFrame(header, 0, LIMIT))).toBe(BinaryStatus.ValueTooLarge);
  });
});

describe('invalid requests', () => {
  const flagsExptime = Buffer.alloc(8);
  it.each<[string, Buffer, number]>([
    ['GET with extras', frameBytes(BinaryOpcode.Get, { key: key('k'), extras: Buffer.alloc(4) }), BinaryStatus.InvalidArguments],
    ['GET without a key', frameBytes(BinaryOpcode.Get), BinaryStatus.InvalidArguments],
    ['GET with a value', frameBytes(BinaryOpcode.Get, { key: key('k'), value: key('v') }), BinaryStatus.InvalidArguments],
    ['SET with 4 bytes of extras', frameBytes(BinaryOpcode.Set, { key: key('k'), extras: Buffer.alloc(4) }), BinaryStatus.InvalidArguments],
    ['ADD with a cas', frameBytes(BinaryOpcode.Add, { key: key('k'), extras: flagsExptime, cas: 5n }), BinaryStatus.InvalidArguments],
    ['INCR with 8 bytes of extras', frameBytes(BinaryOpcode.Increment, { key: key('k'), extras: Buffer.alloc(8) }), BinaryStatus.InvalidArguments],
    ['NOOP with a key', frameBytes(BinaryOpcode.Noop, { key: key('k') }), BinaryStatus.InvalidArguments],
    ['VERSION with a value', frameBytes(BinaryOpcode.Version, { value: key('v') }), BinaryStatus.InvalidArguments],
    ['FLUSH with 8 bytes of extras', frameBytes(BinaryOpcode.Flush, { extras: Buffer.alloc(8) }), BinaryStatus.InvalidArguments],
    ['a 251-byte key', frameBytes(BinaryOpcode.Get, { key: Buffer.alloc(251, 0x61) }), BinaryStatus.InvalidArguments],
    ['opcode 0x1f', frameBytes(0x1f), BinaryStatus.UnknownCommand],
    ['opcode 0xff', frameBytes(0xff), BinaryStatus.UnknownCommand],
  ])('%s', (_name, buf, status) => {
    expect(statusOf(() => decode(buf))).toBe(status);
  });

  it('accepts the boundaries', () => {
    expect(decode(frameBytes(BinaryOpcode.Get, { key: Buffer.alloc(250, 0x61) })).command.kind).toBe('get');
    const replaceCas = decode(frameBytes(BinaryOpcode.ReplaceQ, { key: key('k'), extras: flagsExptime, cas: 9n, value: key('v') }));
    expect(replaceCas).toMatchObject({ quiet: true, command: { mode: StoreMode.Cas, cas: 9n } });
    const arith = Buffer.alloc(20);
    arith.writeBigUInt64BE(0xffffffffffffffffn, 0);
    arith.writeBigUInt64BE(0x8000000000000000n, 8);
    expect(decode(frameBytes(BinaryOpcode.DecrementQ, { key: key('k'), extras: arith })).command).toMatchObject({
      delta: 0xffffffffffffffffn,
      initial: 0x8000000000000000n,
      incr: false,
    });
    expect(decode(frameBytes(BinaryOpcode.Flush, { extras: Buffer.from([0, 0, 0, 30]) })).command).toEqual({ kind: 'flush', delay: 30 });
    expect(decode(frameBytes(BinaryOpcode.SaslAuth, { key: key('PLAIN'), value: key('\0u\0p') }))).toMatchObject({
      command: { kind: 'sasl_auth', mechanism: 'PLAIN', data: key('\0u\0p') },
    });
    expect(decode(frameBytes(BinaryOpcode.GATKQ, { key: key('k'), extras: Buffer.from([0, 0, 1, 0]) }))).toMatchObject({
      quiet: true,
      returnsKey: true,
      command: { touch: 256 },
    });
  });
});

describe('suppressesResponse', () => {
  const req = (opcode: number) => decode(frameBytes(opcode, opcode === BinaryOpcode.QuitQ ? {} : { key: key('k'), extras: Buffer.alloc(8) }));
  it('quiet gets hold back misses, other quiet commands their success, errors always go out', () => {
    const getq = decode(frameBytes(BinaryOpcode.GetKQ, { key: key('k') }));
    expect(suppressesResponse(getq, BinaryStatus.KeyNotFound)).toBe(true);
    expect(suppressesResponse(getq, BinaryStatus.NoError)).toBe(false);
    const setq = req(BinaryOpcode.SetQ);
    expect(suppressesResponse(setq, BinaryStatus.NoError)).toBe(true);
    expect(suppressesResponse(setq, BinaryStatus.KeyExists)).toBe(false);
    expect(suppressesResponse(req(BinaryOpcode.QuitQ), BinaryStatus.NoError)).toBe(true);
    expect(suppressesResponse(req(BinaryOpcode.Set), BinaryStatus.NoError)).toBe(false);
    expect(suppressesResponse(decode(frameBytes(BinaryOpcode.Get, { key: key('k') })), BinaryStatus.KeyNotFound)).toBe(false);
  });
});

describe('garbage', () => {
  it('never hangs and throws nothing but MemcachedError (seeded)', () => {
    const random = prng(0x6d656d63);
    const captured = fixture.exchanges.map((e) => Buffer.from(e.request, 'hex')).filter((b) => b.length > 0);
    for (let round = 0; round < 3000; round++) {
      let buf: Buffer;
      if (round % 2 === 0) {
        // A real request with a few bytes flipped: mostly valid framing, odd lengths and opcodes.
        buf = Buffer.from(captured[Math.floor(random() * captured.length)]);
        for (let flips = 1 + Math.floor(random() * 4); flips > 0; flips--) buf[Math.floor(random() * buf.length)] = Math.floor(random() * 256);
      } else {
        buf = Buffer.alloc(Math.floor(random() * 80));
        for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(random() * 256);
        if (random() < 0.8) buf[0] = 0x80;
      }
      let at = 0;
      try {
        // Each step consumes a frame or stops: the loop ends.
        for (let frame = readBinaryFrame(buf, at, 4096); frame; frame = readBinaryFrame(buf, at, 4096)) {
          expect(frame.length).toBeGreaterThanOrEqual(BINARY_HEADER_BYTES);
          at += frame.length;
          try {
            decodeBinaryRequest(frame);
          } catch (e) {
            expect(e).toBeInstanceOf(MemcachedError);
          }
        }
      } catch (e) {
        expect(e).toBeInstanceOf(MemcachedError);
      }
    }
  });
});
