import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { prng } from './prng.js';
import { MAX_FRAME_PAYLOAD, ServerStatus } from '../src/protocol/constants.js';
import { encodePackets, PacketFramer } from '../src/protocol/framing.js';
import { buildEof, buildOk } from '../src/protocol/generic_packets.js';
import { ProtocolError } from '../src/protocol/payload_reader.js';
import {
  inspectResult,
  replayInfo,
  replayResult,
  replayResultWith,
  type ReplayTarget,
} from '../src/protocol/result_replay.js';

/** Bytes captured from MariaDB 10.11 by scripts/capture-fixtures.ts. */
const { fixtures } = JSON.parse(readFileSync(new URL('./fixtures/mariadb.json', import.meta.url), 'utf8')) as {
  fixtures: Record<string, { deprecateEof: boolean; hex: string }>;
};
const fx = (name: string) => Buffer.from(fixtures[name].hex, 'hex');
const MODES = [
  { suffix: '', deprecateEof: false },
  { suffix: '_deprecate_eof', deprecateEof: true },
] as const;

const IN_TRANS = ServerStatus.IN_TRANS as number;
const AUTOCOMMIT = ServerStatus.AUTOCOMMIT as number;
const NO_INDEX_USED = ServerStatus.NO_INDEX_USED as number;

interface Frame {
  offset: number;
  seq: number;
  payload: Buffer;
}

/** Every frame of `wire` as it is (continuation frames not joined); fails the test on a bad length. */
function frames(wire: Buffer): Frame[] {
  const out: Frame[] = [];
  let pos = 0;
  while (pos < wire.length) {
    expect(pos + 4).toBeLessThanOrEqual(wire.length);
    const len = wire.readUIntLE(pos, 3);
    expect(pos + 4 + len).toBeLessThanOrEqual(wire.length);
    out.push({ offset: pos, seq: wire[pos + 3], payload: wire.subarray(pos + 4, pos + 4 + len) });
    pos += 4 + len;
  }
  return out;
}

/** Logical packets (continuations joined) through the project's framer, with their first and last seq. */
function packets(wire: Buffer): { seq: number; lastSeq: number; payload: Buffer }[] {
  const f = new PacketFramer();
  f.push(wire);
  const out: { seq: number; lastSeq: number; payload: Buffer }[] = [];
  for (let p = f.next(); p; p = f.next()) out.push({ seq: p.seq, lastSeq: p.lastSeq, payload: p.payload });
  expect(f.bufferedBytes).toBe(0);
  return out;
}

/** A column definition as MariaDB sends it (from the text_zero_rows fixture). */
const COLUMN_DEF = packets(fx('text_zero_rows'))[1].payload;

/** Builds a result set the way the server frames it. */
function resultSet(opts: {
  rows: Buffer[];
  deprecateEof: boolean;
  columns?: number;
  status?: number;
  warnings?: number;
  columnsEofWarnings?: number;
  firstSeq?: number;
  /** Bytes after status and warnings in the DEPRECATE_EOF terminator (info, session state). */
  okTail?: Buffer;
}): Buffer {
  const columns = opts.columns ?? 1;
  const status = opts.status ?? AUTOCOMMIT;
  const warnings = opts.warnings ?? 0;
  const payloads: Buffer[] = [Buffer.from([columns])];
  for (let i = 0; i < columns; i++) payloads.push(COLUMN_DEF);
  if (!opts.deprecateEof) payloads.push(buildEof(status, opts.columnsEofWarnings ?? 0));
  payloads.push(...opts.rows);
  if (opts.deprecateEof) {
    const ok = buildOk({ status, warnings, asEof: true });
    payloads.push(opts.okTail ? Buffer.concat([ok, opts.okTail]) : ok);
  } else {
    payloads.push(buildEof(status, warnings));
  }
  return encodePackets(payloads, opts.firstSeq ?? 1).bytes;
}

/** A target that asks for nothing to change relative to what inspectResult reports. */
function sameAs(wire: Buffer, deprecateEof: boolean, change: Partial<ReplayTarget> = {}): ReplayTarget {
  const i = inspectResult(wire, deprecateEof);
  if (!i.cacheable) throw new Error(`fixture not cacheable: ${i.reason}`);
  return { deprecateEof, firstSeq: i.firstSeq, status: i.status, statusMask: 0xffff, warnings: i.warnings, ...change };
}


const RESULT_SETS: { name: string; columns: number; rows: number; status: number; warnings: number }[] = [
  { name: 'text_resultset', columns: 4, rows: 2, status: AUTOCOMMIT, warnings: 0 },
  { name: 'text_zero_rows', columns: 1, rows: 0, status: AUTOCOMMIT, warnings: 0 },
  { name: 'execute_binary_row', columns: 9, rows: 1, status: AUTOCOMMIT, warnings: 0 },
  { name: 'text_warnings', columns: 1, rows: 2, status: AUTOCOMMIT | NO_INDEX_USED, warnings: 2 },
  { name: 'text_in_trans', columns: 1, rows: 1, status: AUTOCOMMIT | IN_TRANS, warnings: 0 },
];

describe('inspectResult on the MariaDB captures', () => {
  for (const { suffix, deprecateEof } of MODES) {
    for (const rs of RESULT_SETS) {
      it(`${rs.name}${suffix}: cacheable, ${rs.columns} columns, ${rs.rows} rows, status 0x${rs.status.toString(16)}`, () => {
        expect(fixtures[rs.name + suffix].deprecateEof).toBe(deprecateEof);
        expect(inspectResult(fx(rs.name + suffix), deprecateEof)).toEqual({
          cacheable: true,
          columns: rs.columns,
          rows: rs.rows,
          status: rs.status,
          warnings: rs.warnings,
          firstSeq: 1,
        });
      });

      it(`${rs.name}${suffix}: read in the other EOF mode it is malformed, not misread`, () => {
        expect(inspectResult(fx(rs.name + suffix), !deprecateEof)).toEqual({ cacheable: false, reason: 'malformed' });
        expect(() => replayInfo(fx(rs.name + suffix), !deprecateEof)).toThrow(ProtocolError);
      });
    }

    it.each([
      ['err_no_table', 'error'],
      ['ok_insert', 'not_result_set'],
      ['prepare_9_columns', 'not_result_set'],
      ['multi_results', 'multiple_results'],
    ] as const)(`%s${suffix} is not cacheable: %s`, (name, reason) => {
      expect(inspectResult(fx(name + suffix), deprecateEof)).toEqual({ cacheable: false, reason });
      expect(() => replayInfo(fx(name + suffix), deprecateEof)).toThrow(ProtocolError);
    });
  }

  it('replayInfo locates the column EOF and the terminator in the captures', () => {
    const classic = replayInfo(fx('text_resultset'), false);
    const fr = frames(fx('text_resultset'));
    expect(fr.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(classic).toMatchObject({
      firstSeq: 1,
      columnsEofOffset: fr[5].offset,
      rowsOffset: fr[6].offset,
      terminatorOffset: fr[8].offset,
      packets: 9,
      headFrames: 5,
      status: AUTOCOMMIT,
      warnings: 0,
    });
    const dep = replayInfo(fx('text_resultset_deprecate_eof'), true);
    const fd = frames(fx('text_resultset_deprecate_eof'));
    expect(dep).toMatchObject({ columnsEofOffset: -1, rowsOffset: fd[5].offset, terminatorOffset: fd[7].offset, packets: 8, headFrames: 5 });
  });

  it('recognises an open cursor, an ERR among the rows, LOCAL INFILE, trailing bytes and a CACHE_METADATA column count', () => {
    const def = COLUMN_DEF;
    // COM_STMT_EXECUTE with a cursor: definitions, then an EOF with CURSOR_EXISTS and nothing more.
    const cursor = encodePackets([Buffer.from([1]), def, buildEof(AUTOCOMMIT | ServerStatus.CURSOR_EXISTS)], 1).bytes;
    expect(inspectResult(cursor, false)).toEqual({ cacheable: false, reason: 'cursor' });
    const cursorOk = encodePackets([Buffer.from([1]), def, buildOk({ status: AUTOCOMMIT | ServerStatus.CURSOR_EXISTS, asEof: true })], 1).bytes;
    expect(inspectResult(cursorOk, true)).toEqual({ cacheable: false, reason: 'cursor' });
    // ERR in place of a row (e.g. a query killed while sending).
    const err = Buffer.from('ff2b0523373030303071756572792074696d656f7574', 'hex');
    const midErr = encodePackets([Buffer.from([1]), def, buildEof(AUTOCOMMIT), Buffer.from('0131', 'hex'), err], 1).bytes;
    expect(inspectResult(midErr, false)).toEqual({ cacheable: false, reason: 'error' });
    expect(inspectResult(encodePackets([Buffer.from([0xfb, 0x61])], 1).bytes, false)).toEqual({ cacheable: false, reason: 'not_result_set' });
    const good = resultSet({ rows: [Buffer.from('0131', 'hex')], deprecateEof: false });
    expect(inspectResult(good, false).cacheable).toBe(true);
    expect(inspectResult(Buffer.concat([good, Buffer.from([0])]), false)).toEqual({ cacheable: false, reason: 'malformed' });
    // MariaDB's CACHE_METADATA: the column count packet carries a metadata-follows byte.
    const withFlagPackets = packets(good).map((p) => p.payload);
    withFlagPackets[0] = Buffer.from([1, 1]);
    expect(inspectResult(encodePackets(withFlagPackets, 1).bytes, false)).toEqual({ cacheable: false, reason: 'malformed' });
    // A sequence gap.
    const gap = Buffer.from(good);
    gap[frames(gap)[2].offset + 3] = 9;
    expect(inspectResult(gap, false)).toEqual({ cacheable: false, reason: 'malformed' });
  });
});

describe('conversion between EOF modes reproduces what MariaDB sends', () => {
  for (const rs of RESULT_SETS) {
    it(`${rs.name}: classic -> DEPRECATE_EOF gives exactly the _deprecate_eof capture`, () => {
      const classic = fx(rs.name);
      const expected = fx(`${rs.name}_deprecate_eof`);
      const out = replayResult(classic, false, sameAs(classic, false, { deprecateEof: true }));
      expect(out.toString('hex')).toBe(expected.toString('hex'));
      // statusMask 0 keeps the recorded status whatever target.status says.
      const keep = replayResult(classic, false, { deprecateEof: true, firstSeq: 1, status: 0xffff, statusMask: 0, warnings: rs.warnings });
      expect(keep.equals(expected)).toBe(true);
    });

    it(`${rs.name}: DEPRECATE_EOF -> classic gives exactly the classic capture (column EOF: terminator status, 0 warnings)`, () => {
      const dep = fx(`${rs.name}_deprecate_eof`);
      const expected = fx(rs.name);
      const out = replayResult(dep, true, sameAs(dep, true, { deprecateEof: false }));
      expect(out.toString('hex')).toBe(expected.toString('hex'));
      // What MariaDB put in the column EOF: the final status and no warnings, even when the terminator has some.
      const eof = frames(expected)[1 + rs.columns].payload;
      expect(eof.toString('hex')).toBe(`fe0000${rs.status.toString(16).padStart(2, '0')}00`);
    });
  }

  it('converts with a different first seq: every frame renumbered, payloads untouched', () => {
    const classic = fx('execute_binary_row');
    const out = replayResult(classic, false, sameAs(classic, false, { deprecateEof: true, firstSeq: 250 }));
    const got = frames(out);
    const expected = frames(fx('execute_binary_row_deprecate_eof'));
    expect(got.map((f) => f.seq)).toEqual(expected.map((_, i) => (250 + i) & 0xff));
    expect(got.map((f) => f.payload.toString('hex'))).toEqual(expected.map((f) => f.payload.toString('hex')));
    const back = replayResult(out, true, sameAs(out, true, { deprecateEof: false, firstSeq: 1 }));
    expect(back.equals(classic)).toBe(true);
  });
});

describe('same-mode replay', () => {
  for (const { suffix, deprecateEof } of MODES) {
    it.each(RESULT_SETS.map((r) => r.name))(`%s${suffix}: nothing differs -> the very same Buffer`, (name) => {
      const wire = fx(name + suffix);
      expect(replayResult(wire, deprecateEof, sameAs(wire, deprecateEof))).toBe(wire);
      const info = replayInfo(wire, deprecateEof);
      // Only the masked bits are compared: other target bits are ignored.
      const t = { ...sameAs(wire, deprecateEof), status: info.status ^ 0x0100, statusMask: 0xffff & ~0x0100 };
      expect(replayResultWith(wire, deprecateEof, info, t)).toBe(wire);
    });
  }

  it('the unchanged path reads no row: it succeeds on a buffer whose row headers were broken after replayInfo', () => {
    const wire = Buffer.from(fx('text_resultset'));
    const info = replayInfo(wire, false);
    wire[info.rowsOffset] = 0xc8; // first row now claims 200 payload bytes: walking the rows would fail
    const same = sameAs(fx('text_resultset'), false);
    expect(replayResultWith(wire, false, info, same)).toBe(wire);
    // Status-only changes are patched without a walk too.
    const patched = replayResultWith(wire, false, info, { ...same, status: IN_TRANS, statusMask: IN_TRANS });
    expect(patched).not.toBe(wire);
    expect(patched.readUInt16LE(info.statusOffset)).toBe(AUTOCOMMIT | IN_TRANS);
    // A seq change has to walk, and the broken header is caught as a ProtocolError.
    expect(() => replayResultWith(wire, false, info, { ...same, firstSeq: 2 })).toThrow(ProtocolError);
  });

  it('renumbers from firstSeq 3: seqs 3.., payloads and length unchanged, recorded buffer untouched', () => {
    for (const { suffix, deprecateEof } of MODES) {
      const wire = fx(`text_resultset${suffix}`);
      const before = Buffer.from(wire);
      const out = replayResult(wire, deprecateEof, sameAs(wire, deprecateEof, { firstSeq: 3 }));
      expect(out).not.toBe(wire);
      expect(out.length).toBe(wire.length);
      const got = frames(out);
      expect(got.map((f) => f.seq)).toEqual(got.map((_, i) => 3 + i));
      expect(got.map((f) => f.payload.toString('hex'))).toEqual(frames(wire).map((f) => f.payload.toString('hex')));
      expect(wire.equals(before)).toBe(true);
    }
  });

  it('wraps sequence ids past 255 on a 300-row result, both modes and across modes', () => {
    const rows = Array.from({ length: 300 }, (_, i) => Buffer.concat([Buffer.from([String(i).length]), Buffer.from(String(i))]));
    for (const deprecateEof of [false, true]) {
      const wire = resultSet({ rows, deprecateEof });
      const frameCount = frames(wire).length;
      expect(frameCount).toBe(deprecateEof ? 303 : 304);
      expect(inspectResult(wire, deprecateEof)).toMatchObject({ cacheable: true, rows: 300, firstSeq: 1 });
      for (const targetMode of [false, true]) {
        for (const firstSeq of [0, 1, 200, 255]) {
          const out = replayResult(wire, deprecateEof, { deprecateEof: targetMode, firstSeq, status: AUTOCOMMIT, statusMask: 0xffff, warnings: 0 });
          const expected = resultSet({ rows, deprecateEof: targetMode, firstSeq });
          expect(out.equals(expected), `${deprecateEof} -> ${targetMode} from seq ${firstSeq}`).toBe(true);
          const seqs = frames(out).map((f) => f.seq);
          expect(seqs[0]).toBe(firstSeq);
          expect(seqs.at(-1)).toBe((firstSeq + seqs.length - 1) % 256);
        }
      }
    }
  });

  it('sets IN_TRANS and clears AUTOCOMMIT in the column EOF and the terminator (classic)', () => {
    const wire = fx('text_warnings');
    const out = replayResult(wire, false, {
      deprecateEof: false,
      firstSeq: 1,
      status: IN_TRANS,
      statusMask: IN_TRANS | AUTOCOMMIT,
      warnings: 2,
    });
    expect(out).not.toBe(wire);
    expect(out.length).toBe(wire.length);
    const f = frames(out);
    // NO_INDEX_USED, outside the mask, stays as recorded.
    expect(f[2].payload.toString('hex')).toBe('fe00002100');
    expect(f.at(-1)!.payload.toString('hex')).toBe('fe02002100');
    expect(f.map((x) => x.seq)).toEqual(frames(wire).map((x) => x.seq));
    // Only those 4 bytes changed.
    const diff = [...out].flatMap((b, i) => (b === wire[i] ? [] : [i]));
    expect(diff).toEqual([f[2].offset + 7, f.at(-1)!.offset + 7]);
  });

  it('patches the DEPRECATE_EOF terminator OK the same way', () => {
    const wire = fx('text_warnings_deprecate_eof');
    const out = replayResult(wire, true, { deprecateEof: true, firstSeq: 1, status: IN_TRANS, statusMask: IN_TRANS | AUTOCOMMIT, warnings: 2 });
    expect(frames(out).at(-1)!.payload.toString('hex')).toBe('fe000021000200');
    expect(fx('text_warnings_deprecate_eof').equals(wire)).toBe(true);
  });

  it('a replay into a transaction matches the EOFs MariaDB itself sends there (text_in_trans)', () => {
    const inTransEofs = frames(fx('text_in_trans')).filter((f) => f.payload[0] === 0xfe);
    expect(inTransEofs.map((f) => f.payload.toString('hex'))).toEqual(['fe00000300', 'fe00000300']);
    for (const { suffix, deprecateEof } of MODES) {
      const out = replayResult(fx(`text_resultset${suffix}`), deprecateEof, {
        deprecateEof: false,
        firstSeq: 1,
        status: IN_TRANS,
        statusMask: IN_TRANS,
        warnings: 0,
      });
      const eofs = frames(out).filter((f) => f.payload[0] === 0xfe);
      expect(eofs.map((f) => f.payload.toString('hex'))).toEqual(inTransEofs.map((f) => f.payload.toString('hex')));
      // And the other way: out of the transaction again.
      const dep = replayResult(fx('text_in_trans'), false, { deprecateEof: true, firstSeq: 1, status: 0, statusMask: IN_TRANS, warnings: 0 });
      expect(frames(dep).at(-1)!.payload.toString('hex')).toBe('fe000002000000');
    }
  });

  it('patches the warning count: the terminator shows target.warnings, the column EOF never shows more', () => {
    const warned = fx('text_warnings');
    const hidden = replayResult(warned, false, sameAs(warned, false, { warnings: 0 }));
    expect(frames(hidden).at(-1)!.payload.toString('hex')).toBe('fe00002200');
    expect(frames(hidden)[2].payload.toString('hex')).toBe('fe00002200');
    const shown = replayResult(fx('text_resultset'), false, sameAs(fx('text_resultset'), false, { warnings: 5 }));
    expect(frames(shown).at(-1)!.payload.toString('hex')).toBe('fe05000200');
    expect(frames(shown)[5].payload.toString('hex')).toBe('fe00000200');
    const dep = replayResult(fx('text_resultset_deprecate_eof'), true, sameAs(fx('text_resultset_deprecate_eof'), true, { warnings: 0x1234 }));
    expect(frames(dep).at(-1)!.payload.toString('hex')).toBe('fe000002003412');
    // Warnings beyond 16 bits are clamped, as the server does.
    const many = replayResult(fx('text_resultset'), false, sameAs(fx('text_resultset'), false, { warnings: 70000 }));
    expect(frames(many).at(-1)!.payload.readUInt16LE(1)).toBe(0xffff);
    // A recorded column EOF with warnings (not seen from MariaDB) is capped at the target's count.
    const synthetic = resultSet({ rows: [Buffer.from('0131', 'hex')], deprecateEof: false, warnings: 3, columnsEofWarnings: 3 });
    const capped = replayResult(synthetic, false, sameAs(synthetic, false, { warnings: 1 }));
    expect(frames(capped)[2].payload.toString('hex')).toBe('fe01000200');
    expect(frames(capped).at(-1)!.payload.toString('hex')).toBe('fe01000200');
  });

  it('keeps the info bytes of a DEPRECATE_EOF terminator in the same mode and drops them for a classic client', () => {
    const tail = Buffer.from('03616263', 'hex'); // lenenc info "abc"
    const rows = [Buffer.from('0131', 'hex')];
    const wire = resultSet({ rows, deprecateEof: true, okTail: tail });
    const info = replayInfo(wire, true);
    const patched = replayResultWith(wire, true, info, { deprecateEof: true, firstSeq: 1, status: IN_TRANS | AUTOCOMMIT, statusMask: 0xffff, warnings: 0 });
    expect(frames(patched).at(-1)!.payload.toString('hex')).toBe('fe00000300000003616263');
    const classic = replayResultWith(wire, true, info, { deprecateEof: false, firstSeq: 1, status: 0, statusMask: 0, warnings: 0 });
    expect(classic.equals(resultSet({ rows, deprecateEof: false }))).toBe(true);
    // An OK whose affected rows / insert id are not single bytes still has its status found.
    const wide = encodePackets(
      [Buffer.from([1]), COLUMN_DEF, Buffer.from('0131', 'hex'), Buffer.from('fefc0001fd000001' + '0300' + '0700', 'hex')],
      1,
    ).bytes;
    expect(inspectResult(wide, true)).toMatchObject({ cacheable: true, status: 3, warnings: 7 });
  });

  it('rejects a ReplayInfo that belongs to another response or mode', () => {
    const a = fx('text_resultset');
    const b = fx('execute_binary_row');
    const t = sameAs(a, false, { firstSeq: 5 });
    expect(() => replayResultWith(b, false, replayInfo(a, false), t)).toThrow(ProtocolError);
    expect(() => replayResultWith(a, true, replayInfo(a, false), t)).toThrow(ProtocolError);
    const dep = fx('text_resultset_deprecate_eof');
    expect(() => replayResultWith(dep, false, replayInfo(dep, true), t)).toThrow(ProtocolError);
  });
});

describe('rows of 16 MiB and more', () => {
  it('keeps frames of 0xFFFFFF with their continuations intact through conversions both ways', () => {
    // A text row whose first value is longer than 16 MiB starts with 0xFE: it must not be taken for a terminator.
    const big = Buffer.alloc(2 * MAX_FRAME_PAYLOAD); // exactly two full frames: the framing adds an empty third one
    big.fill(Buffer.from('wirecache-'));
    big[0] = 0xfe;
    big.writeBigUInt64LE(BigInt(big.length - 9), 1);
    big.write('BOUNDARY', MAX_FRAME_PAYLOAD - 4, 'latin1');
    // A binary-style row (0x00 first) just over one frame.
    const over = Buffer.alloc(MAX_FRAME_PAYLOAD + 5, 0x5a);
    over[0] = 0x00;
    over.write('END', over.length - 3, 'latin1');
    const small = Buffer.from('0141', 'hex');
    const rows = [big, small, over, small];
    const classic = resultSet({ rows, deprecateEof: false, columns: 2 });
    const dep = resultSet({ rows, deprecateEof: true, columns: 2 });
    // 1 count + 2 definitions + 3 frames + 1 + 2 frames + 1 + terminator (+ column EOF when classic).
    expect(frames(classic).length).toBe(12);
    expect(frames(dep).length).toBe(11);
    expect(inspectResult(classic, false)).toMatchObject({ cacheable: true, rows: 4, columns: 2 });
    expect(inspectResult(dep, true)).toMatchObject({ cacheable: true, rows: 4, columns: 2 });

    const toDep = replayResult(classic, false, { deprecateEof: true, firstSeq: 1, status: AUTOCOMMIT, statusMask: 0xffff, warnings: 0 });
    expect(toDep.equals(dep)).toBe(true);
    const toClassic = replayResult(dep, true, { deprecateEof: false, firstSeq: 254, status: AUTOCOMMIT, statusMask: 0xffff, warnings: 0 });
    expect(toClassic.equals(resultSet({ rows, deprecateEof: false, columns: 2, firstSeq: 254 }))).toBe(true);

    for (const [out, deprecateEof] of [
      [toDep, true],
      [toClassic, false],
    ] as const) {
      const ps = packets(out);
      const rowPackets = ps.slice(deprecateEof ? 3 : 4, -1);
      expect(rowPackets.length).toBe(4);
      expect(rowPackets[0].payload.equals(big)).toBe(true);
      expect((rowPackets[0].lastSeq - rowPackets[0].seq + 256) % 256).toBe(2);
      expect(rowPackets[1].payload.equals(small)).toBe(true);
      expect(rowPackets[2].payload.equals(over)).toBe(true);
      expect((rowPackets[2].lastSeq - rowPackets[2].seq + 256) % 256).toBe(1);
      expect(rowPackets[3].payload.equals(small)).toBe(true);
      // Every frame's seq follows the previous one, continuation frames included.
      const seqs = frames(out).map((f) => f.seq);
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe((seqs[i - 1] + 1) & 0xff);
      expect(inspectResult(out, deprecateEof)).toMatchObject({ cacheable: true, rows: 4 });
    }
  });

  it('truncating a 16 MiB+ row anywhere in its frames is malformed, not a crash', () => {
    const big = Buffer.alloc(MAX_FRAME_PAYLOAD + 20, 0x41);
    big[0] = 0xfe;
    big.writeBigUInt64LE(BigInt(big.length - 9), 1);
    const wire = resultSet({ rows: [big], deprecateEof: true });
    const info = replayInfo(wire, true);
    for (const cut of [info.rowsOffset + 3, info.rowsOffset + 4 + MAX_FRAME_PAYLOAD, info.rowsOffset + 4 + MAX_FRAME_PAYLOAD + 10, wire.length - 1]) {
      expect(inspectResult(wire.subarray(0, cut), true)).toEqual({ cacheable: false, reason: 'malformed' });
    }
  });
});

describe('hostile input', () => {
  const replayable = RESULT_SETS.flatMap((r) => MODES.map((m) => ({ name: r.name + m.suffix, deprecateEof: m.deprecateEof })));

  it('every truncation of every capture throws ProtocolError from replayInfo and is malformed to inspectResult', () => {
    let checked = 0;
    for (const { name, deprecateEof } of replayable) {
      const wire = fx(name);
      for (let cut = 0; cut < wire.length; cut++) {
        const part = wire.subarray(0, cut);
        expect(() => replayInfo(part, deprecateEof), `${name} cut at ${cut}`).toThrow(ProtocolError);
        expect(inspectResult(part, deprecateEof)).toEqual({ cacheable: false, reason: 'malformed' });
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });

  it('random byte flips and garbage: only ProtocolError or a result that replays into a valid response', () => {
    const rnd = prng(0x5eed);
    const outcomes = { ok: 0, protocolError: 0 };
    const candidates: { wire: Buffer; deprecateEof: boolean }[] = [];
    for (let i = 0; i < 600; i++) {
      const src = replayable[Math.floor(rnd() * replayable.length)];
      const wire = Buffer.from(fx(src.name));
      const flips = 1 + Math.floor(rnd() * 3);
      for (let f = 0; f < flips; f++) wire[Math.floor(rnd() * wire.length)] = Math.floor(rnd() * 256);
      candidates.push({ wire, deprecateEof: src.deprecateEof });
    }
    for (let i = 0; i < 200; i++) {
      const wire = Buffer.alloc(Math.floor(rnd() * 64));
      for (let j = 0; j < wire.length; j++) wire[j] = Math.floor(rnd() * 256);
      // Half of them start with a plausible header so the walk gets further.
      if (wire.length >= 5 && i % 2 === 0) {
        wire.writeUIntLE(1, 0, 3);
        wire[3] = 1;
        wire[4] = 1 + (wire[4] % 3);
      }
      candidates.push({ wire, deprecateEof: i % 3 === 0 });
    }
    for (const { wire, deprecateEof } of candidates) {
      let info;
      try {
        info = replayInfo(wire, deprecateEof);
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
        expect(inspectResult(wire, deprecateEof).cacheable).toBe(false);
        outcomes.protocolError++;
        continue;
      }
      outcomes.ok++;
      const inspected = inspectResult(wire, deprecateEof);
      expect(inspected).toMatchObject({ cacheable: true, rows: info.rows, columns: info.columns });
      for (const targetMode of [false, true]) {
        const target = { deprecateEof: targetMode, firstSeq: 77, status: IN_TRANS, statusMask: IN_TRANS, warnings: 1 };
        const out = replayResultWith(wire, deprecateEof, info, target);
        const again = inspectResult(out, targetMode);
        expect(again).toMatchObject({ cacheable: true, rows: info.rows, columns: info.columns, firstSeq: 77, warnings: 1 });
        if (again.cacheable) expect(again.status & IN_TRANS).toBe(IN_TRANS);
      }
    }
    // Both outcomes occur, so the test exercises both branches.
    expect(outcomes.ok).toBeGreaterThan(10);
    expect(outcomes.protocolError).toBeGreaterThan(100);
  });
});
