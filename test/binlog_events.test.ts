import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../src/protocol/payload_reader.js';
import { initialFormat, parseEvent, type BinlogEvent } from '../src/replication/binlog_events.js';
import { BinlogReader } from '../src/replication/binlog_reader.js';

/** Captured from MariaDB 10.11 with CRC32 checksums by scripts/capture-binlog-fixtures.ts. */
const fixture = JSON.parse(readFileSync(new URL('./fixtures/binlog.json', import.meta.url), 'utf8')) as { events: string[] };
const raw = fixture.events.map((h) => Buffer.from(h, 'hex'));

function parseAll(): BinlogEvent[] {
  const format = initialFormat(true);
  return raw.map((e) => parseEvent(e, format));
}

describe('binlog event parser (real MariaDB bytes)', () => {
  it('reads every event of the captured stream', () => {
    const events = parseAll();
    const kinds = events.map((e) => e.kind);
    expect(kinds.slice(0, 4)).toEqual(['rotate', 'format', 'gtid_list', 'other']);
    const rotate = events[0] as Extract<BinlogEvent, { kind: 'rotate' }>;
    expect(rotate.file).toBe('mysql-bin.000001');
    expect(rotate.position).toBe(4n);
    const format = events[1] as Extract<BinlogEvent, { kind: 'format' }>;
    expect(format.checksumAlg).toBe(1);
    expect(format.serverVersion).toMatch(/MariaDB/);
    const gtids = events.filter((e) => e.kind === 'gtid');
    expect(gtids.length).toBe(9);
    expect(gtids.every((g) => g.domain === 0 && g.serverId === 1)).toBe(true);
    const seqs = gtids.map((g) => g.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1n);
    // DDL is standalone (no BEGIN/COMMIT); row transactions end with an XID.
    expect(gtids.map((g) => g.standalone)).toEqual([true, true, true, false, false, false, false, true, true]);
    expect(kinds.filter((k) => k === 'xid').length).toBe(4);
    const maps = events.filter((e) => e.kind === 'table_map').map((e) => `${e.schema}.${e.table}`);
    expect(new Set(maps)).toEqual(new Set(['fx_binlog.parent', 'fx_binlog.child']));
    const queries = events.filter((e) => e.kind === 'query').map((e) => e.sql);
    expect(queries).toContain('TRUNCATE TABLE fx_binlog.child');
    expect(queries).toContain('ALTER TABLE fx_binlog.parent ADD COLUMN w INT');
    const rows = events.filter((e) => e.kind === 'rows');
    expect(rows.length).toBe(4);
  });

  it('refuses every truncated event with a ProtocolError', () => {
    const format = initialFormat(true);
    for (const event of raw) {
      for (let cut = 0; cut < event.length; cut++) {
        const f = { ...format };
        expect(() => parseEvent(event.subarray(0, cut), f)).toThrow(ProtocolError);
      }
      parseEvent(event, format);
    }
  });

  it('reads events without checksums when FORMAT_DESCRIPTION says binlog_checksum=NONE', () => {
    const fde = Buffer.from(raw[1]);
    fde[fde.length - 5] = 0; // checksum_alg OFF
    const format = initialFormat(false);
    expect((parseEvent(fde, format) as Extract<BinlogEvent, { kind: 'format' }>).checksumAlg).toBe(0);
    expect(format.checksumBytes).toBe(0);
    const withCrc = raw.find((e) => e[4] === 2)!;
    const query = Buffer.from(withCrc.subarray(0, withCrc.length - 4));
    query.writeUInt32LE(query.length, 9);
    const parsed = parseEvent(query, format) as Extract<BinlogEvent, { kind: 'query' }>;
    const original = parseEvent(withCrc, initialFormat(true)) as Extract<BinlogEvent, { kind: 'query' }>;
    expect(parsed.sql).toBe(original.sql);
  });
});

describe('binlog reader: what a stream invalidates', () => {
  it('bumps the tables of each transaction at its end, mapped tables included (FK cascade), and DDL', () => {
    const bumps: (string[] | null)[] = [];
    const reader = new BinlogReader({
      user: 'x',
      password: '',
      serverId: 4242,
      maxDelayMs: 1_000_000_000,
      connectTimeoutMs: 1000,
      primary: () => null,
      invalidate: (tables) => {
        bumps.push(tables === null ? null : [...tables].sort());
      },
      auto: false,
    });
    for (const e of parseAll()) reader.apply(e);
    expect(bumps).toEqual([
      null, // CREATE DATABASE: the classifier cannot name tables
      ['fx_binlog.parent'],
      ['fx_binlog.child'],
      ['fx_binlog.parent'],
      ['fx_binlog.child'],
      ['fx_binlog.parent'],
      // DELETE FROM parent: only parent's rows are logged; the cascade shows as child's TABLE_MAP.
      ['fx_binlog.child', 'fx_binlog.parent'],
      ['fx_binlog.child'],
      ['fx_binlog.parent'],
    ]);
    const last = parseAll().filter((e) => e.kind === 'gtid').pop()!;
    expect(reader.position()).toBe(`0-1-${last.seq}`);
  });

  it('is behind when a transaction arrives later than max_delay_ms after its commit, and not after a heartbeat', () => {
    const delays: number[] = [];
    const reader = new BinlogReader({
      user: 'x',
      password: '',
      serverId: 4242,
      maxDelayMs: 500,
      connectTimeoutMs: 1000,
      primary: () => null,
      invalidate: () => {},
      observer: { eventRead() {}, invalidated() {}, stateChanged() {}, delay: (s) => delays.push(s), reconnected() {} },
      auto: false,
    });
    const header = (timestamp: number) => ({ timestamp, type: 0, serverId: 1, eventSize: 0, logPos: 0, flags: 0 });
    const now = Math.floor(Date.now() / 1000);
    const transaction = (timestamp: number, seq: bigint) => {
      reader.apply({ kind: 'gtid', header: header(timestamp), domain: 0, serverId: 1, seq, standalone: false });
      reader.apply({ kind: 'xid', header: header(timestamp) });
    };
    transaction(now - 10, 1n);
    expect(reader.status().behind).toBe(true);
    expect(delays.at(-1)).toBeGreaterThanOrEqual(9);
    transaction(now, 2n);
    expect(reader.status().behind).toBe(false);
    transaction(now - 10, 3n);
    reader.apply({ kind: 'heartbeat', header: header(0) });
    expect(reader.status().behind).toBe(false);
    expect(delays.at(-1)).toBe(0);
    expect(reader.position()).toBe('0-1-3');
  });
});
