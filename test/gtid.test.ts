import { describe, expect, it } from 'vitest';
import { gtidCovers, parseGtidList } from '../src/routing/gtid.js';

describe('parseGtidList', () => {
  it('parses an empty position as an empty map', () => {
    expect(parseGtidList('').size).toBe(0);
    expect(parseGtidList('  ').size).toBe(0);
  });

  it('parses one GTID', () => {
    const m = parseGtidList('0-1-42');
    expect([...m.entries()]).toEqual([[0, { server: 1, seq: 42n }]]);
  });

  it('parses a list of domains, with whitespace and newlines between entries', () => {
    const m = parseGtidList('0-1-42, 1-3-7,\n7-4294967295-18446744073709551615');
    expect(m.size).toBe(3);
    expect(m.get(0)).toEqual({ server: 1, seq: 42n });
    expect(m.get(1)).toEqual({ server: 3, seq: 7n });
    expect(m.get(7)).toEqual({ server: 4294967295, seq: 18446744073709551615n });
  });

  it('keeps seqs beyond Number.MAX_SAFE_INTEGER exact', () => {
    expect(parseGtidList('0-1-9007199254740993').get(0)?.seq).toBe(9007199254740993n);
  });

  it('keeps the higher seq when a domain is listed twice', () => {
    expect(parseGtidList('0-1-5,0-2-9,0-3-7').get(0)).toEqual({ server: 2, seq: 9n });
  });

  it.each([
    ['0-1'],
    ['0-1-2-3'],
    ['a-1-2'],
    ['0-1-2,'],
    ['0-1--2'],
    ['3E11D2F8-0A2B-11EF-9F34-0242AC120002:1-5'],
    ['4294967296-1-1'],
    ['0-1-18446744073709551616'],
  ])('rejects %j', (s) => {
    expect(() => parseGtidList(s)).toThrow(/MariaDB GTID/);
  });
});

describe('gtidCovers', () => {
  it('is true for an empty gtid, whatever the position', () => {
    expect(gtidCovers('', '')).toBe(true);
    expect(gtidCovers('0-1-1', '')).toBe(true);
  });

  it('compares seqs per domain', () => {
    expect(gtidCovers('0-1-42', '0-1-42')).toBe(true);
    expect(gtidCovers('0-1-42', '0-1-41')).toBe(true);
    expect(gtidCovers('0-1-42', '0-1-43')).toBe(false);
  });

  it('ignores the server id', () => {
    expect(gtidCovers('0-2-42', '0-1-40')).toBe(true);
    expect(gtidCovers('0-1-40', '0-2-42')).toBe(false);
  });

  it('needs every domain of the gtid to be covered', () => {
    expect(gtidCovers('0-1-42,1-3-7', '0-1-10,1-3-7')).toBe(true);
    expect(gtidCovers('0-1-42,1-3-7', '0-1-10,1-3-8')).toBe(false);
    expect(gtidCovers('0-1-42', '0-1-10,1-3-1')).toBe(false);
    // extra domains in the position do not matter
    expect(gtidCovers('0-1-42,1-3-7,2-5-1', '1-3-7')).toBe(true);
  });

  it('is false when the position is empty and the gtid is not', () => {
    expect(gtidCovers('', '0-1-1')).toBe(false);
  });

  it('compares as integers, not as strings, beyond 2^53', () => {
    expect(gtidCovers('0-1-9007199254740993', '0-1-9007199254740992')).toBe(true);
    expect(gtidCovers('0-1-9007199254740992', '0-1-9007199254740993')).toBe(false);
    expect(gtidCovers('0-1-100', '0-1-99')).toBe(true);
    expect(gtidCovers('0-1-99', '0-1-100')).toBe(false);
  });

  it('is false (never throws) on malformed input', () => {
    expect(gtidCovers('garbage', '0-1-1')).toBe(false);
    expect(gtidCovers('0-1-5', 'garbage')).toBe(false);
    expect(gtidCovers('3E11D2F8-0A2B-11EF-9F34-0242AC120002:1-5', '0-1-1')).toBe(false);
  });
});
