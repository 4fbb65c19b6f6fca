import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capability, Command } from '../src/protocol/constants.js';
import { ResponseKind } from '../src/protocol/response_scanner.js';
import { readSessionTrack } from '../src/protocol/session_track.js';
import { connect, routingConfig, startProxy, testCacheConfig, type RunningProxy } from './proxy-harness.js';
import { RawClient } from './raw-client.js';
import { getTopology } from './topology-context.js';

/**
 * Session-state tracking is the proxy's own business: every backend
 * connection tracks everything, yet each client receives exactly the bytes
 * the server sends it directly, with its own tracking settings or without
 * tracking at all. Each statement runs on a direct connection and on a
 * proxied one, and the raw responses are compared byte for byte.
 *
 * One exception, which the server has too: the order of the variables in one
 * report follows a hash and differs between two direct connections (SET NAMES
 * reports its three variables in any order), so the entries of each report
 * are put in one order before comparing.
 */
const topo = getTopology();
let cacheOnly: RunningProxy;
let cached: RunningProxy;

/** Statements that change session state, including clients changing their own tracking. */
const CORPUS: string[] = [
  'SET NAMES latin1',
  'SET NAMES utf8mb4',
  "SET sql_mode = 'ANSI_QUOTES'",
  'SELECT "a" AS b',
  'SET sql_mode = DEFAULT',
  'SET @x = 1',
  "SET time_zone = '+03:00'",
  'USE mysql',
  'USE wc_test',
  'CREATE TEMPORARY TABLE trk_tmp (a INT)',
  'INSERT INTO trk_tmp VALUES (1), (2)',
  'SELECT * FROM trk_tmp',
  'DROP TEMPORARY TABLE trk_tmp',
  'BEGIN',
  'SELECT 1',
  'COMMIT',
  'SET autocommit = 0',
  'SET autocommit = 1',
  'CALL trk_proc()',
  "EXECUTE IMMEDIATE 'SET div_precision_increment = 7'",
  "PREPARE trk_s FROM 'SELECT 1'",
  'EXECUTE trk_s',
  'DEALLOCATE PREPARE trk_s',
  "SET time_zone = 'SYSTEM'; SELECT 2",
  'SET session_track_state_change = ON',
  'SET @y = 2',
  'USE mysql',
  'USE wc_test',
  'CREATE TEMPORARY TABLE trk_tmp2 (a INT)',
  "SET session_track_system_variables = '*'",
  "SET sql_mode = 'TRADITIONAL'",
  'SET session_track_schema = OFF',
  'USE mysql',
  'USE wc_test',
  'CALL trk_proc()',
  'SET session_track_system_variables = DEFAULT, session_track_state_change = DEFAULT, session_track_schema = DEFAULT',
  "SET time_zone = '+01:00'",
  "SET session_track_transaction_info = 'CHARACTERISTICS'",
  'START TRANSACTION READ ONLY',
  'SELECT 3',
  'COMMIT',
  'SET session_track_transaction_info = OFF',
  "SET sql_mode = 'NO_BACKSLASH_ESCAPES'",
  "SELECT 'a\\' AS b",
  'SET sql_mode = DEFAULT',
];

/** The response with the entries of each session-state report in one order; every other byte as received. */
function comparable(response: Buffer): string {
  const out: Buffer[] = [];
  for (let at = 0; at + 4 <= response.length; ) {
    const length = response.readUIntLE(at, 3);
    const packet = Buffer.from(response.subarray(at, at + 4 + length));
    const payload = packet.subarray(4);
    const okFormat = payload[0] === 0x00 || (payload[0] === 0xfe && payload.length >= 7);
    const entries = okFormat && payload.length > 1 ? safeEntries(payload) : [];
    if (entries.length > 1) {
      const block = Buffer.concat(entries.map((e) => e.raw));
      const sorted = Buffer.concat(entries.map((e) => e.raw.toString('hex')).sort().map((h) => Buffer.from(h, 'hex')));
      sorted.copy(packet, packet.length - block.length);
    }
    out.push(packet);
    at += 4 + length;
  }
  return Buffer.concat(out).toString('hex');
}

function safeEntries(payload: Buffer): ReturnType<typeof readSessionTrack> {
  try {
    return readSessionTrack(payload);
  } catch {
    // A row or column definition that starts with 0x00 or 0xFE: not an OK.
    return [];
  }
}

beforeAll(async () => {
  const root = await connect(topo.primary.port, topo, { user: 'root', multipleStatements: true });
  await root.query(`
    DROP PROCEDURE IF EXISTS wc_test.trk_proc;
    CREATE PROCEDURE wc_test.trk_proc() BEGIN SET sql_mode = 'ANSI'; SELECT 5 AS five; SET time_zone = '+02:00'; END;
  `);
  await root.end();
  // Tracking is on with a cache or a monitor (plain pass-through does not track).
  cacheOnly = await startProxy(topo, { cache: testCacheConfig() });
  cached = await startProxy(topo, { ...routingConfig(topo), cache: testCacheConfig({ mode: 'all' }) });
});

afterAll(async () => {
  await cacheOnly?.stop();
  await cached?.stop();
});

for (const [proxyName, proxy] of [['cache', () => cacheOnly], ['cache and split', () => cached]] as const) {
  for (const clientTracks of [true, false]) {
    for (const deprecateEof of [true, false]) {
      describe(`${proxyName}: client ${clientTracks ? 'with' : 'without'} CLIENT_SESSION_TRACK, DEPRECATE_EOF ${deprecateEof ? 'on' : 'off'}`, () => {
        let direct: RawClient;
        let proxied: RawClient;
        const opts = { database: 'wc_test', deprecateEof, dropCaps: clientTracks ? 0 : Capability.SESSION_TRACK };
        beforeAll(async () => {
          direct = await RawClient.login(topo.primary.port, 'app', 'app_pw', opts);
          proxied = await RawClient.login(proxy().port, 'app', 'app_pw', opts);
        });
        afterAll(() => {
          direct?.close();
          proxied?.close();
        });

        it('the login OK and the negotiated capabilities are the server\'s, while the proxy tracks', () => {
          // Every session's backend connection (multiplexing: each it holds now) tracks with the proxy's settings.
          const sessions = [...proxy().proxy.sessions.values()];
          expect(sessions.length).toBeGreaterThan(0);
          for (const session of sessions) for (const link of session.dispatcher.links.values()) expect(link.conn.tracksState).toBe(true);
          expect(proxied.capabilities & Capability.SESSION_TRACK).toBe(clientTracks ? Capability.SESSION_TRACK : 0);
          expect(proxied.loginOk.toString('hex')).toBe(direct.loginOk.toString('hex'));
        });

        it('every statement of the corpus, in order, answers the same bytes', async () => {
          for (const sql of CORPUS) {
            const a = comparable(await direct.query(sql));
            const b = comparable(await proxied.query(sql));
            expect({ sql, bytes: b }).toEqual({ sql, bytes: a });
          }
        });

        it('COM_INIT_DB and COM_RESET_CONNECTION, then the corpus again', async () => {
          for (const payload of [
            Buffer.concat([Buffer.from([Command.INIT_DB]), Buffer.from('mysql')]),
            Buffer.concat([Buffer.from([Command.INIT_DB]), Buffer.from('wc_test')]),
            Buffer.from([Command.RESET_CONNECTION]),
          ]) {
            const a = comparable(await direct.command(payload, ResponseKind.Single));
            const b = comparable(await proxied.command(payload, ResponseKind.Single));
            expect({ command: payload[0], bytes: b }).toEqual({ command: payload[0], bytes: a });
          }
          for (const sql of CORPUS) {
            const a = comparable(await direct.query(sql));
            const b = comparable(await proxied.query(sql));
            expect({ sql, bytes: b }).toEqual({ sql, bytes: a });
          }
        });
      });
    }
  }
}
