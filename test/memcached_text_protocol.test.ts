/**
 * The text protocol's parser and replies against a transcript of a real
 * memcached 1.6.18 (test/fixtures/memcached_text.json, captured by
 * scripts/capture-memcached-text-fixtures.ts): every request parses into the
 * command memcached understood, every parse error is answered with memcached's
 * own bytes, and the replies wirecache writes for the outcomes memcached
 * reported are byte for byte memcached's.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { StoreMode } from '../src/memcached_api/commands.js';
import { readTextCommand, textItems, textLine, type TextParse } from '../src/memcached_api/text_protocol.js';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/memcached_text.json', import.meta.url), 'utf8')) as {
  exchanges: { label: string; request: string; response: string }[];
};
const LIMITS = { maxValueBytes: 1_048_576, maxLineBytes: 64 * 1024 };

function exchange(label: string): { request: Buffer; response: string } {
  const e = fixture.exchanges.find((x) => x.label === label);
  if (!e) throw new Error(`no exchange ${label}`);
  return { request: Buffer.from(e.request, 'hex'), response: Buffer.from(e.response, 'hex').toString('latin1') };
}

/** Every parse step over a whole request buffer. */
function parseAll(buf: Buffer): TextParse[] {
  const out: TextParse[] = [];
  let at = 0;
  while (at < buf.length) {
    const p = readTextCommand(buf, at, LIMITS);
    if (p === null) throw new Error(`incomplete at ${at}`);
    out.push(p);
    at += p.length;
  }
  return out;
}

function commandOf(label: string) {
  const [p] = parseAll(exchange(label).request);
  if (!('command' in p)) throw new Error(`${label}: ${p.error}`);
  return p;
}

describe('requests parse into the commands memcached understood', () => {
  it('storage commands, with their flags, expiry, data and noreply', () => {
    expect(commandOf('set').command).toEqual({ kind: 'store', mode: StoreMode.Set, key: Buffer.from('a'), flags: 5, exptime: 0, value: Buffer.from('abc'), cas: 0n });
    expect(commandOf('set noreply').noreply).toBe(true);
    expect(commandOf('append').command).toMatchObject({ mode: StoreMode.Append, value: Buffer.from('-t') });
    expect(commandOf('cas stale').command).toMatchObject({ mode: StoreMode.Cas, cas: 1n });
    expect(commandOf('incr wraps').command).toEqual({ kind: 'arith', key: Buffer.from('n'), incr: true, delta: 18446744073709551615n, initial: null, exptime: 0 });
  });

  it('reads: several keys, cas, and touch', () => {
    expect(commandOf('get hit and miss').command).toEqual({ kind: 'get', keys: ['a', 'b', 'nope'].map((k) => Buffer.from(k)), withCas: false, touch: null });
    expect(commandOf('gets').command).toMatchObject({ withCas: true, touch: null });
    expect(commandOf('gat').command).toMatchObject({ withCas: false, touch: 0 });
    expect(commandOf('gats').command).toMatchObject({ withCas: true, touch: 0 });
    expect(commandOf('touch').command).toEqual({ kind: 'touch', key: Buffer.from('a'), exptime: 100 });
  });

  it('a command split anywhere waits for the rest', () => {
    const whole = exchange('set').request;
    for (let cut = 0; cut < whole.length; cut++) expect(readTextCommand(whole.subarray(0, cut), 0, LIMITS)).toBeNull();
    expect(readTextCommand(whole, 0, LIMITS)).not.toBeNull();
  });
});

describe('malformed requests get memcached’s own answer, and the stream stays in step', () => {
  for (const label of ['unknown command', 'empty line', 'bad data chunk', 'bad flags', 'key too long', 'get without key', 'delete with time', 'incr bad delta', 'too large']) {
    it(label, () => {
      const { request, response } = exchange(label);
      const replies = parseAll(request).map((p) => ('error' in p ? `${p.error}\r\n` : 'command' in p && p.command.kind === 'version' ? 'VERSION 1.6.18\r\n' : '?'));
      expect(replies.join('')).toBe(response);
    });
  }

  it('a line longer than the limit closes the connection', () => {
    const p = readTextCommand(Buffer.alloc(LIMITS.maxLineBytes + 1, 0x61), 0, LIMITS);
    expect(p).toEqual({ error: 'CLIENT_ERROR line too long', length: LIMITS.maxLineBytes + 1, close: true });
  });
});

describe('replies are memcached’s bytes', () => {
  it('items, with and without cas, in the order asked', () => {
    expect(textItems([{ key: Buffer.from('a'), flags: 5, cas: 0n, value: Buffer.from('abc') }, { key: Buffer.from('b'), flags: 0, cas: 0n, value: Buffer.from('xy') }, null], false).toString('latin1')).toBe(
      exchange('get hit and miss').response,
    );
    expect(textItems([{ key: Buffer.from('a'), flags: 5, cas: 1n, value: Buffer.from('abc') }], true).toString('latin1')).toBe(exchange('gets').response);
    expect(textItems([{ key: Buffer.from('a'), flags: 5, cas: 3n, value: Buffer.from('abc-t') }], true).toString('latin1')).toBe(exchange('gats').response);
  });

  const lines: [string, string][] = [
    ['set', 'STORED'],
    ['add exists', 'NOT_STORED'],
    ['cas missing', 'NOT_FOUND'],
    ['cas stale', 'EXISTS'],
    ['delete', 'DELETED'],
    ['incr', '15'],
    ['incr non-numeric', 'CLIENT_ERROR cannot increment or decrement non-numeric value'],
    ['touch', 'TOUCHED'],
    ['verbosity', 'OK'],
  ];
  for (const [label, text] of lines) {
    it(label, () => expect(textLine(text).toString('latin1')).toBe(exchange(label).response));
  }
});
