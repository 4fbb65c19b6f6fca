import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nativePasswordToken, sha1, verifyNativePassword } from '../src/auth/native_password.js';
import { decodeBinaryRow } from './decoders/binary_row.js';
import { parseColumnDefinition } from './decoders/column_definition.js';
import { Capability, commandName, MAX_FRAME_PAYLOAD, ServerStatus } from '../src/protocol/constants.js';
import { encodePacket, encodePackets, PacketFramer, PacketTooLargeError } from '../src/protocol/framing.js';
import { buildEof, buildErr, buildOk, parseEof, parseErr, parseOk, statusOfTerminator } from '../src/protocol/generic_packets.js';
import { buildHandshakeResponse, buildHandshakeV10, parseHandshakeResponse, parseHandshakeV10 } from '../src/protocol/handshake.js';
import { PayloadReader, ProtocolError } from '../src/protocol/payload_reader.js';
import { PayloadWriter } from '../src/protocol/payload_writer.js';
import { ResponseKind, ResponseScanner, ScanResult } from '../src/protocol/response_scanner.js';

/** Bytes captured from MariaDB 10.11 by scripts/capture-fixtures.ts. */
const { fixtures } = JSON.parse(readFileSync(new URL('./fixtures/mariadb.json', import.meta.url), 'utf8')) as {
  fixtures: Record<string, { deprecateEof: boolean; hex: string }>;
};
const fx = (name: string) => Buffer.from(fixtures[name].hex, 'hex');

function packets(bytes: Buffer): Buffer[] {
  const f = new PacketFramer();
  f.push(bytes);
  const out: Buffer[] = [];
  for (let p = f.next(); p; p = f.next()) out.push(p.payload);
  return out;
}

/** Feeds `bytes` to a scanner cut at the given offsets; returns the result, the bytes forwarded and where it ended. */
function scan(bytes: Buffer, kind: ResponseKind, deprecateEof: boolean, cuts: number[]) {
  const s = new ResponseScanner();
  s.begin(kind, deprecateEof);
  const out: Buffer[] = [];
  let result = ScanResult.NeedMore;
  let prev = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut <= prev) continue;
    result = s.feed(bytes.subarray(prev, cut), out);
    prev = cut;
    if (result !== ScanResult.NeedMore) break;
  }
  return { result, forwarded: Buffer.concat(out), scanner: s };
}

describe('length-encoded integers and strings', () => {
  it.each([0, 1, 250, 251, 0xffff, 0x10000, 0xffffff, 0x1000000, 2 ** 40])('round-trips %i', (n) => {
    const buf = new PayloadWriter().lenenc(n).finish();
    expect(buf.length).toBe(n < 251 ? 1 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 9);
    expect(new PayloadReader(buf).lenenc()).toBe(n);
  });

  it('reads 0xFB as NULL and refuses 0xFF', () => {
    expect(new PayloadReader(Buffer.from([0xfb])).lenencOrNull()).toBeNull();
    expect(() => new PayloadReader(Buffer.from([0xff])).lenenc()).toThrow(ProtocolError);
  });

  it('throws ProtocolError rather than reading past the end', () => {
    expect(() => new PayloadReader(Buffer.from([0xfc, 0x01])).lenenc()).toThrow(ProtocolError);
    expect(() => new PayloadReader(Buffer.from([0x05, 0x61])).lenencString()).toThrow(ProtocolError);
    expect(() => new PayloadReader(Buffer.from('abc')).nulString()).toThrow(ProtocolError);
  });
});

describe('packet framing', () => {
  it('frames a small payload with its sequence id', () => {
    expect(encodePacket(Buffer.from([1, 2, 3]), 7).toString('hex')).toBe('03000007010203');
  });

  it('splits at 0xFFFFFF and adds an empty frame for an exact multiple', () => {
    const exact = encodePacket(Buffer.alloc(MAX_FRAME_PAYLOAD, 1), 0);
    expect(exact.length).toBe(MAX_FRAME_PAYLOAD + 8);
    expect(exact.subarray(0, 4).toString('hex')).toBe('ffffff00');
    expect(exact.subarray(exact.length - 4).toString('hex')).toBe('00000001');
    const bigger = encodePacket(Buffer.alloc(MAX_FRAME_PAYLOAD + 10, 2), 255);
    expect(bigger.subarray(0, 4).toString('hex')).toBe('ffffffff');
    expect(bigger.subarray(MAX_FRAME_PAYLOAD + 4, MAX_FRAME_PAYLOAD + 8).toString('hex')).toBe('0a000000');
  });

  it('joins split payloads back, byte by byte delivery included', () => {
    const payload = Buffer.alloc(MAX_FRAME_PAYLOAD * 2, 0);
    payload.writeUInt32LE(0xdeadbeef, MAX_FRAME_PAYLOAD - 2);
    const wire = Buffer.concat([encodePacket(payload, 3), encodePacket(Buffer.from('next'), 6)]);
    const f = new PacketFramer();
    for (let i = 0; i < wire.length; i += 1 << 20) f.push(wire.subarray(i, i + (1 << 20)));
    const first = f.next()!;
    expect(first.seq).toBe(3);
    expect(first.lastSeq).toBe(5);
    expect(first.payload.equals(payload)).toBe(true);
    expect(f.next()!.payload.toString()).toBe('next');
    expect(f.next()).toBeNull();

    const tiny = new PacketFramer();
    for (const b of encodePacket(Buffer.from('hello'), 1)) tiny.push(Buffer.from([b]));
    expect(tiny.next()!.payload.toString()).toBe('hello');
  });

  it('refuses a payload over the limit as soon as its frames announce it', () => {
    const f = new PacketFramer(100);
    f.push(Buffer.from([101, 0, 0, 0]));
    expect(() => f.next()).toThrow(PacketTooLargeError);
  });

  it('frames consecutive packets with consecutive sequence ids', () => {
    const { bytes, nextSeq } = encodePackets([Buffer.from('a'), Buffer.from('bc')], 4);
    expect(bytes.toString('hex')).toBe('010000046102000005' + '6263');
    expect(nextSeq).toBe(6);
  });
});

describe('handshake', () => {
  it('parses a real MariaDB greeting: version prefix, extended capabilities, scramble', () => {
    const [payload] = packets(fx('greeting'));
    const h = parseHandshakeV10(payload);
    expect(h.protocolVersion).toBe(10);
    expect(h.serverVersion).toMatch(/^5\.5\.5-10\.11\.\d+-MariaDB/);
    expect(h.scramble.length).toBe(20);
    expect(h.capabilities & Capability.CLIENT_MYSQL).toBe(0); // MariaDB announces extended capabilities
    expect(h.mariaDbCapabilities).not.toBe(0);
    expect(h.capabilities & Capability.DEPRECATE_EOF).toBeTruthy();
    expect(h.authPluginName).toBe('mysql_native_password');
    expect(h.status & ServerStatus.AUTOCOMMIT).toBeTruthy();
  });

  it('rebuilds the real greeting byte for byte', () => {
    const [payload] = packets(fx('greeting'));
    const h = parseHandshakeV10(payload);
    expect(buildHandshakeV10(h).toString('hex')).toBe(payload.toString('hex'));
  });

  it('round-trips a handshake response with attributes, database and plugin', () => {
    const response = {
      capabilities: Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.CONNECT_WITH_DB | Capability.CONNECT_ATTRS | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CLIENT_MYSQL,
      mariaDbCapabilities: 0,
      maxPacketSize: 1 << 24,
      characterSet: 45,
      user: 'app',
      authResponse: Buffer.alloc(20, 7),
      database: 'wc_test',
      authPluginName: 'mysql_native_password',
      connectAttributes: [['_client_name', 'test'] as [string, string]],
    };
    expect(parseHandshakeResponse(buildHandshakeResponse(response))).toEqual(response);
  });

  it('refuses pre-4.1 and truncated handshake responses', () => {
    expect(() => parseHandshakeResponse(Buffer.alloc(40))).toThrow(/protocol 4\.1/);
    expect(() => parseHandshakeResponse(Buffer.from([0x00, 0x02, 0x00, 0x00, 1, 2]))).toThrow(ProtocolError);
  });
});

describe('mysql_native_password', () => {
  it('recovers SHA1(password) from a token and rejects a wrong one', () => {
    const scramble = Buffer.from('abcdefghijklmnopqrst');
    const stage1 = sha1(Buffer.from('s3cret'));
    const stored = { passwordDoubleSha1: sha1(stage1), emptyPassword: false };
    const ok = verifyNativePassword(nativePasswordToken(stage1, scramble), scramble, stored);
    expect(ok).toEqual({ ok: true, passwordSha1: stage1 });
    const bad = verifyNativePassword(nativePasswordToken(sha1(Buffer.from('other')), scramble), scramble, stored);
    expect(bad.ok).toBe(false);
    expect(verifyNativePassword(Buffer.alloc(3), scramble, stored).ok).toBe(false);
  });

  it('accepts only an empty token for an account without password', () => {
    const stored = { passwordDoubleSha1: Buffer.alloc(0), emptyPassword: true };
    expect(verifyNativePassword(Buffer.alloc(0), Buffer.alloc(20), stored)).toEqual({ ok: true, passwordSha1: null });
    expect(verifyNativePassword(Buffer.alloc(20), Buffer.alloc(20), stored).ok).toBe(false);
  });
});

describe('OK, ERR and EOF packets', () => {
  it('parses a real OK with affected rows, insert id, status and info', () => {
    const [ok] = packets(fx('ok_insert'));
    const parsed = parseOk(ok, Capability.SESSION_TRACK);
    expect(parsed.affectedRows).toBe(2n);
    expect(parsed.lastInsertId).toBe(1n);
    expect(parsed.status & ServerStatus.AUTOCOMMIT).toBeTruthy();
    expect(parsed.info).toBe('Records: 2  Duplicates: 0  Warnings: 0');
  });

  it('parses a real ERR with code, SQLSTATE and message', () => {
    const [err] = packets(fx('err_no_table'));
    expect(parseErr(err)).toEqual({ kind: 'err', code: 1146, sqlState: '42S02', message: "Table 'wc_test.no_such_table' doesn't exist" });
  });

  it('builds packets that parse back', () => {
    expect(parseErr(buildErr({ code: 1045, sqlState: '28000' }, 'Access denied'))).toMatchObject({ code: 1045, sqlState: '28000', message: 'Access denied' });
    const ok = buildOk({ affectedRows: 3, lastInsertId: 70000, status: ServerStatus.IN_TRANS, warnings: 2 });
    expect(parseOk(ok, 0)).toMatchObject({ affectedRows: 3n, lastInsertId: 70000n, status: ServerStatus.IN_TRANS, warnings: 2 });
    expect(parseEof(buildEof(ServerStatus.MORE_RESULTS_EXISTS, 1))).toEqual({ kind: 'eof', warnings: 1, status: ServerStatus.MORE_RESULTS_EXISTS });
    expect(statusOfTerminator(buildOk({ status: 0x22, asEof: true }))).toBe(0x22);
    expect(statusOfTerminator(buildEof(0x0a))).toBe(0x0a);
  });
});

describe('response scanner over real responses', () => {
  const cases: [string, ResponseKind][] = [
    ['ok_insert', ResponseKind.Query],
    ['err_no_table', ResponseKind.Query],
    ['text_resultset', ResponseKind.Query],
    ['text_zero_rows', ResponseKind.Query],
    ['multi_results', ResponseKind.Query],
    ['prepare_9_columns', ResponseKind.Prepare],
    ['prepare_2_params', ResponseKind.Prepare],
    ['execute_binary_row', ResponseKind.Query],
  ];
  for (const suffix of ['', '_deprecate_eof']) {
    for (const [name, kind] of cases) {
      it(`${name}${suffix}: ends exactly at the last byte, cut at every offset`, () => {
        const bytes = fx(name + suffix);
        const deprecateEof = fixtures[name + suffix].deprecateEof;
        const whole = scan(bytes, kind, deprecateEof, []);
        expect(whole.result).toBe(ScanResult.Done);
        expect(whole.forwarded.equals(bytes)).toBe(true);
        for (let cut = 1; cut < bytes.length; cut++) {
          const r = scan(bytes, kind, deprecateEof, [cut]);
          expect(r.result, `cut at ${cut}`).toBe(ScanResult.Done);
          expect(r.forwarded.equals(bytes), `cut at ${cut}`).toBe(true);
        }
        // Byte by byte.
        const single = scan(bytes, kind, deprecateEof, Array.from({ length: bytes.length }, (_, i) => i + 1));
        expect(single.forwarded.equals(bytes)).toBe(true);
      });
    }
  }

  it('counts rows and result sets, and leaves bytes after the response alone', () => {
    const bytes = Buffer.concat([fx('multi_results'), Buffer.from('trailing')]);
    const r = scan(bytes, ResponseKind.Query, false, []);
    expect(r.result).toBe(ScanResult.Done);
    expect(r.scanner.resultSets).toBe(2);
    expect(r.scanner.rows).toBe(2);
    expect(r.scanner.consumed).toBe(bytes.length - 'trailing'.length);
  });

  it('does not mistake a text row starting with 0x00 (empty string) for an OK', () => {
    const r = scan(fx('text_resultset'), ResponseKind.Query, false, []);
    expect(r.scanner.rows).toBe(2);
  });

  it('lets a COM_STMT_PREPARE response have its statement id rewritten before it is forwarded', () => {
    const bytes = fx('prepare_2_params');
    for (const cut of [3, 6, 9, bytes.length - 1]) {
      const s = new ResponseScanner();
      s.begin(ResponseKind.Prepare, false);
      s.onPrepareOk = (payload, info) => {
        expect(info).toMatchObject({ columns: 1, params: 2 });
        payload.writeUInt32LE(0xabcdef, 1);
      };
      const out: Buffer[] = [];
      s.feed(bytes.subarray(0, cut), out);
      s.feed(bytes.subarray(cut), out);
      expect(Buffer.concat(out).readUInt32LE(5)).toBe(0xabcdef);
    }
  });

  it('treats a 0xFE-led frame of 0xFFFFFF bytes as a row, not a terminator', () => {
    // Column count 1, one column definition, then (DEPRECATE_EOF) a row whose first byte is 0xFE.
    const colDef = Buffer.from('03646566000000016100000c2d00ffffff00fd000000', 'hex');
    const row = Buffer.alloc(MAX_FRAME_PAYLOAD + 20, 0x61);
    row[0] = 0xfe;
    row.writeBigUInt64LE(BigInt(MAX_FRAME_PAYLOAD + 11), 1);
    const wire = encodePackets([Buffer.from([1]), colDef, row, buildOk({ status: 2, asEof: true })], 1).bytes;
    const r = scan(wire, ResponseKind.Query, true, [4096, 1 << 20, MAX_FRAME_PAYLOAD + 2]);
    expect(r.result).toBe(ScanResult.Done);
    expect(r.scanner.rows).toBe(1);
    expect(r.forwarded.length).toBe(wire.length);
  });
});

describe('column definitions and binary rows', () => {
  it('decodes the real binary row of every common type', () => {
    const prepare = packets(fx('execute_binary_row'));
    // column count, 9 definitions, EOF, 1 row, EOF
    const columns = prepare.slice(1, 10).map(parseColumnDefinition);
    expect(columns.map((c) => c.name)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);
    const values = decodeBinaryRow(prepare[11], columns);
    expect(Number(values[0])).toBe(-5);
    expect(values[1]).toBe(3.5);
    expect(values[2]).toBe('2024-02-29');
    expect(values[3]).toBe('2024-01-02 03:04:05.123456');
    expect(values[4]).toBe('-25:02:03');
    expect((values[5] as Buffer).toString()).toBe('txt');
    expect(values[6]).toBeNull();
    expect(values[7]).toBe(18446744073709551615n);
    expect(values[8]).toBe('12.50');
  });
});

describe('command names', () => {
  it('names every command byte for metrics, unknown ones as COM_UNKNOWN', () => {
    expect(commandName(0x03)).toBe('COM_QUERY');
    expect(commandName(0x17)).toBe('COM_STMT_EXECUTE');
    expect(commandName(0xfa)).toBe('COM_STMT_BULK_EXECUTE');
    expect(commandName(0x20)).toBe('COM_UNKNOWN');
    expect(commandName(0x103)).toBe('COM_QUERY'); // only the low byte counts
    expect(commandName(0xff)).toBe('COM_UNKNOWN');
  });
});
