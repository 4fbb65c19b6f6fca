import { describe, expect, it } from 'vitest';
import { encodePacket } from '../src/protocol/framing.js';
import { ResponseKind, ResponseScanner, ScanResult } from '../src/protocol/response_scanner.js';
import {
  eofWithoutStateFlag,
  okForClient,
  parseTrackingView,
  readSessionTrack,
  SessionTrackType,
  type ClientTrackingView,
} from '../src/protocol/session_track.js';

/**
 * OK payloads captured from MariaDB 10.11 on a connection with
 * session_track_system_variables='*', session_track_state_change=ON, and what
 * the same server sent to clients with other settings for the same statement.
 */
const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const ascii = (s: string) => Buffer.from(s, 'latin1').toString('hex');

/** `SET @x = 1`: only "something changed". */
const SET_USER_VAR = hex('00 00 00 0240 0000 00 03 020131');
/** `USE wc_test`: the schema, and "something changed". */
const USE_SCHEMA = hex(`00 00 00 0240 0000 00 0d 01 08 07 ${ascii('wc_test')} 02 01 31`);
/** `SET session_track_system_variables='*', session_track_state_change=1`: two variables and the flag. */
const SET_TRACKING = hex(
  `00 00 00 0240 0000 00 46 00 21 1e ${ascii('session_track_system_variables')} 01 2a 00 1e 1a ${ascii('session_track_state_change')} 02 4f4e 02 01 31`,
);
/** `SET NAMES utf8mb4` with the default settings (character sets tracked, no state-change flag). */
const SET_NAMES_DEFAULT = hex(
  `00 00 00 0240 0000 00 62 00 21 18 ${ascii('character_set_connection')} 07 ${ascii('utf8mb4')} 00 1d 14 ${ascii('character_set_client')} 07 ${ascii('utf8mb4')} 00 1e 15 ${ascii('character_set_results')} 07 ${ascii('utf8mb4')}`,
);
/** A multi-row INSERT: info text, no state. */
const INSERT_INFO = hex(`00 02 00 0200 0000 26 ${ascii('Records: 2  Duplicates: 0  Warnings: 0')}`);
/** What a client without CLIENT_SESSION_TRACK got for each of the SETs and USE. */
const PLAIN_OK = hex('00 00 00 0200 0000');
/** The OK ending a result set under DEPRECATE_EOF, reporting the schema, and the plain EOF of the same response without DEPRECATE_EOF. */
const EOF_OK_WITH_STATE = hex(`fe 00 00 02c0 0000 00 0d 01 08 07 ${ascii('wc_test')} 02 01 31`);
const PLAIN_EOF_WITH_FLAG = hex('fe 0000 02c0');

const DEFAULT_VIEW: ClientTrackingView = parseTrackingView([
  'autocommit,character_set_client,character_set_connection,character_set_results,time_zone',
  'ON',
  'OFF',
  'OFF',
]);

describe('reading session-state reports', () => {
  it('reads variables, the schema and the state-change flag', () => {
    expect(readSessionTrack(SET_USER_VAR).map((e) => [e.type, e.value])).toEqual([[SessionTrackType.StateChange, '1']]);
    expect(readSessionTrack(USE_SCHEMA).map((e) => [e.type, e.value])).toEqual([
      [SessionTrackType.Schema, 'wc_test'],
      [SessionTrackType.StateChange, '1'],
    ]);
    expect(readSessionTrack(SET_TRACKING).map((e) => [e.type, e.name, e.value])).toEqual([
      [SessionTrackType.SystemVariable, 'session_track_system_variables', '*'],
      [SessionTrackType.SystemVariable, 'session_track_state_change', 'ON'],
      [SessionTrackType.StateChange, '', '1'],
    ]);
    expect(readSessionTrack(EOF_OK_WITH_STATE).map((e) => e.value)).toEqual(['wc_test', '1']);
  });

  it('reads nothing from an OK without the flag, and refuses a truncated block', () => {
    expect(readSessionTrack(INSERT_INFO)).toEqual([]);
    expect(() => readSessionTrack(USE_SCHEMA.subarray(0, USE_SCHEMA.length - 4))).toThrow(/truncated/);
  });

  it('reads a tracking view, "*" and ON/OFF in any case', () => {
    expect(parseTrackingView(['*', 'on', '1', 'STATE'])).toEqual({ variables: 'all', schema: true, stateChange: true, transactionInfo: 'STATE' });
    const v = parseTrackingView([' Sql_Mode , time_zone', 'OFF', '0', null]);
    expect(v.variables).toEqual(new Set(['sql_mode', 'time_zone']));
    expect(v).toMatchObject({ schema: false, stateChange: false, transactionInfo: 'OFF' });
  });
});

describe('an OK as the client would get it', () => {
  it('a client without tracking gets the plain OK the server sends it', () => {
    for (const ok of [SET_USER_VAR, USE_SCHEMA, SET_TRACKING]) expect(okForClient(ok, readSessionTrack(ok), null)).toEqual(PLAIN_OK);
    // The info text stays, length-encoded as the server writes it either way.
    expect(okForClient(INSERT_INFO, [], null)).toEqual(INSERT_INFO);
    expect(okForClient(EOF_OK_WITH_STATE, readSessionTrack(EOF_OK_WITH_STATE), null)).toEqual(hex('fe 00 00 0280 0000'));
  });

  it('a client with the default settings keeps what it tracks and loses the rest', () => {
    // USE: the schema stays, the state-change flag (off by default) goes.
    expect(okForClient(USE_SCHEMA, readSessionTrack(USE_SCHEMA), DEFAULT_VIEW)).toEqual(hex(`00 00 00 0240 0000 00 0a 01 08 07 ${ascii('wc_test')}`));
    // SET @x: nothing it tracks: as if nothing changed.
    expect(okForClient(SET_USER_VAR, readSessionTrack(SET_USER_VAR), DEFAULT_VIEW)).toEqual(PLAIN_OK);
    // Character sets are tracked by default: the OK is the one the server sent with the default settings.
    expect(okForClient(SET_NAMES_DEFAULT, readSessionTrack(SET_NAMES_DEFAULT), DEFAULT_VIEW)).toBe(SET_NAMES_DEFAULT);
  });

  it('a client tracking everything gets the OK unchanged', () => {
    const all = parseTrackingView(['*', 'ON', 'ON', 'OFF']);
    expect(okForClient(SET_TRACKING, readSessionTrack(SET_TRACKING), all)).toBe(SET_TRACKING);
  });

  it('a plain EOF loses only the flag', () => {
    expect(eofWithoutStateFlag(PLAIN_EOF_WITH_FLAG)).toEqual(hex('fe 0000 0280'));
  });
});

describe('the response scanner hands state-changed terminators over', () => {
  const frames = Buffer.concat([encodePacket(USE_SCHEMA, 1)]);

  it('rewrites the packet in place, keeping its sequence id, in one chunk and split anywhere', () => {
    for (let split = 0; split <= frames.length; split++) {
      const scanner = new ResponseScanner();
      const seen: Buffer[] = [];
      scanner.onSessionState = (payload) => {
        seen.push(Buffer.from(payload));
        return PLAIN_OK;
      };
      scanner.begin(ResponseKind.Query, true);
      const out: Buffer[] = [];
      const parts = [frames.subarray(0, split), frames.subarray(split)].filter((p) => p.length > 0);
      let result = ScanResult.NeedMore;
      for (const p of parts) result = scanner.feed(p, out);
      expect(result).toBe(ScanResult.Done);
      expect(Buffer.concat(out)).toEqual(encodePacket(PLAIN_OK, 1));
      expect(seen).toEqual([USE_SCHEMA]);
    }
  });

  it('a terminator without the flag is never handed over', () => {
    const scanner = new ResponseScanner();
    let calls = 0;
    scanner.onSessionState = () => {
      calls++;
      return null;
    };
    scanner.begin(ResponseKind.Query, true);
    const out: Buffer[] = [];
    const bytes = encodePacket(INSERT_INFO, 1);
    expect(scanner.feed(bytes, out)).toBe(ScanResult.Done);
    expect(calls).toBe(0);
    expect(out).toEqual([bytes]);
  });

  it('a result set whose EOFs carry the flag: each EOF goes through the hook, rows pass untouched', () => {
    const column = hex(`03 ${ascii('def')} 00 00 00 01 ${ascii('a')} 00 0c 3f00 01000000 03 0000 00 0000`);
    const response = Buffer.concat([
      encodePacket(hex('01'), 1),
      encodePacket(column, 2),
      encodePacket(PLAIN_EOF_WITH_FLAG, 3),
      encodePacket(hex('01 31'), 4),
      encodePacket(PLAIN_EOF_WITH_FLAG, 5),
    ]);
    const scanner = new ResponseScanner();
    scanner.onSessionState = (payload, plainEof) => (plainEof ? eofWithoutStateFlag(payload) : null);
    scanner.begin(ResponseKind.Query, false);
    const out: Buffer[] = [];
    expect(scanner.feed(response, out)).toBe(ScanResult.Done);
    expect(Buffer.concat(out)).toEqual(
      Buffer.concat([
        encodePacket(hex('01'), 1),
        encodePacket(column, 2),
        encodePacket(hex('fe 0000 0280'), 3),
        encodePacket(hex('01 31'), 4),
        encodePacket(hex('fe 0000 0280'), 5),
      ]),
    );
    expect(scanner.rows).toBe(1);
  });
});
