/**
 * The query cache across client libraries, against the real topology: an
 * entry recorded for one client (mysql2, the `mariadb` CLI, PHP PDO and
 * mysqli over mysqlnd, a raw client forcing either CLIENT_DEPRECATE_EOF
 * mode) is served to the others with the same rows, and the reader's query
 * never reaches the database (the server's general log is the judge);
 * prepared-statement hits with PDO native prepares, mysql2 `execute` and
 * mysqli_stmt.
 *
 * Entries are shared only between sessions with equal cache keys: same user,
 * schema, session state (which starts with the login collation) and
 * statement text minus comments. So every client here logs in as `app` on
 * wc_test with collation 45 (utf8mb4_general_ci) in the handshake: mysql2
 * with charset UTF8MB4_GENERAL_CI (its default would be 224), the CLI with
 * --default-character-set=utf8mb4, mysqlnd with charset utf8mb4. A spy relay
 * in front of the proxy reads every client's handshake response, so the
 * CLIENT_DEPRECATE_EOF mode each library negotiated is asserted, not assumed.
 *
 * External programs run with async spawn (runCommand): the proxy lives in
 * this worker's event loop, so a synchronous exec would deadlock.
 *
 * The tests that mix mysqlnd with mysql2 or the CLI on one cache key (text:
 * "an entry filled by ...", binary: "... binding the same string value")
 * fail while the cache replays column definitions recorded with MariaDB's
 * extended metadata to clients without it, and the reverse: they accept both
 * fixes (separate entries per metadata format, or converted definitions).
 */
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capability, MariaDbCapability } from '../src/protocol/constants.js';
import { parseHandshakeResponse, parseHandshakeV10 } from '../src/protocol/handshake.js';
import { PayloadReader } from '../src/protocol/payload_reader.js';
import { RawClient } from './raw-client.js';
import { runCommand } from './run-command.js';
import { getTopology } from './topology-context.js';
import { connect, startProxy, testCacheConfig, type RunningProxy } from './proxy-harness.js';
import { disableGeneralLog, enableGeneralLog, markers, serverRan as countRan } from './general-log.js';

const topo = getTopology();
const CLIENTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'clients');
const RUN_TIMEOUT_MS = 30_000;
/** utf8mb4_general_ci: what the CLI and mysqlnd send for "utf8mb4", and what mysql2 is told to send. */
const UTF8MB4_GENERAL_CI = 45;

type Value = string | null;
type Rows = Value[][];

/** One result as every client reports it: column names and rows of strings/NULLs. */
interface Result {
  columns: string[];
  rows: Rows;
}

const COLUMNS = ['id', 'name', 'note', 'price', 'at'];
/** Column types (MYSQL_TYPE_*) of the cc_items columns: LONG, VAR_STRING x2, NEWDECIMAL, DATETIME. */
const TYPES = [3, 253, 253, 246, 12];
/** cc_items in id order: NULLs, empty strings, a non-ASCII utf8mb4 value, DECIMALs (negative, large, zero), DATETIMEs. */
const ALL_ROWS: Rows = [
  ['1', 'plain', '', '12.50', '2024-02-29 13:14:15'],
  ['2', null, 'n', '-0.05', null],
  ['3', '😀 héllo ✓', null, '99999999.99', '1999-12-31 23:59:59'],
  ['4', '', null, '0.00', '2000-01-01 00:00:00'],
];

let root: mysql.Connection;

const serverRan = (marker: string) => countRan(root, marker);
/** A unique comment to find a statement in the general log (comments do not change the cache key). */
const mark = markers('cc');

// ---------------------------------------------------------------- spy relay

/** What a client asked for in its handshake response. */
interface Login {
  capabilities: number;
  mariaDbCapabilities: number;
  characterSet: number;
  user: string;
}

/** A TCP relay in front of the proxy that records every client's handshake response (the client's second packet). */
class Spy {
  readonly logins: Login[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: number) {
    this.server = net.createServer((client) => this.relay(client));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  private relay(client: net.Socket): void {
    const upstream = net.connect({ host: '127.0.0.1', port: this.target });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    }
    let head: Buffer | null = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      if (head === null) return;
      head = Buffer.concat([head, chunk]);
      if (head.length < 4) return;
      const len = head.readUIntLE(0, 3);
      if (head.length < 4 + len) return;
      const r = parseHandshakeResponse(head.subarray(4, 4 + len));
      this.logins.push({ capabilities: r.capabilities, mariaDbCapabilities: r.mariaDbCapabilities, characterSet: r.characterSet, user: r.user });
      head = null;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.end());
  }

  /** Runs `fn` and returns the logins made meanwhile (clients here run one at a time). */
  async during<T>(fn: () => Promise<T>): Promise<{ value: T; logins: Login[] }> {
    const from = this.logins.length;
    const value = await fn();
    return { value, logins: this.logins.slice(from) };
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const deprecateEof = (l: Login) => (l.capabilities & Capability.DEPRECATE_EOF) !== 0;

// ---------------------------------------------------------------- clients

/** A mysql2 connection (text and binary results as strings, dates as text) with collation 45. */
function mysql2(port: number): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: '127.0.0.1',
    port,
    user: 'app',
    password: 'app_pw',
    database: 'wc_test',
    charset: 'UTF8MB4_GENERAL_CI',
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
}

function toResult(rows: unknown, fields: unknown): Result & { types: number[] } {
  const f = fields as { name: string; columnType: number }[];
  return {
    columns: f.map((x) => x.name),
    types: f.map((x) => x.columnType),
    rows: (rows as unknown[][]).map((r) => r.map((v) => (v === null ? null : String(v)))),
  };
}

async function mysql2Query(c: mysql.Connection, sql: string): Promise<Result & { types: number[] }> {
  const [rows, fields] = await c.query({ sql, rowsAsArray: true });
  return toResult(rows, fields);
}

async function mysql2Execute(c: mysql.Connection, sql: string, params: (string | number)[]): Promise<Result & { types: number[] }> {
  const [rows, fields] = await c.execute({ sql, rowsAsArray: true }, params);
  return toResult(rows, fields);
}

/**
 * One statement through `mariadb --batch --raw` (tab-separated, NULL as "NULL";
 * the test data holds no tabs, newlines or the string "NULL"). --comments
 * keeps the /*qc=on*\/ hint and the marker: the CLI strips comments by default.
 * An empty result prints nothing at all, not even the header: columns [].
 */
async function cli(port: number, sql: string): Promise<Result> {
  const args = ['--no-defaults', '-h127.0.0.1', `-P${port}`, '-uapp', '-papp_pw', '--batch', '--raw', '--comments', '--default-character-set=utf8mb4', '--connect-timeout=10', '-e', sql, 'wc_test'];
  const r = await runCommand('mariadb', args, { timeoutMs: RUN_TIMEOUT_MS });
  expect(r.timedOut, `mariadb timed out; stderr: ${r.stderr}`).toBe(false);
  expect(r.code, `mariadb exited ${r.code}; stderr: ${r.stderr}`).toBe(0);
  expect(r.stderr).toBe('');
  if (r.stdout === '') return { columns: [], rows: [] };
  expect(r.stdout.endsWith('\n')).toBe(true);
  const [header, ...lines] = r.stdout.slice(0, -1).split('\n');
  return { columns: header.split('\t'), rows: lines.map((l) => l.split('\t').map((v) => (v === 'NULL' ? null : v))) };
}

interface PhpOp {
  sql: string;
  params?: (string | number)[];
  types?: string;
}

interface PhpResult extends Result {
  types?: number[];
}

/** Runs `ops` on one PHP connection (test/clients/php_cache_client.php). */
async function php(port: number, driver: 'pdo' | 'mysqli', ops: PhpOp[], emulate = true): Promise<{ results: PhpResult[]; meta: Record<string, unknown> }> {
  const script = path.join(CLIENTS, 'php_cache_client.php');
  const r = await runCommand('php', [script, '127.0.0.1', String(port), 'app', 'app_pw', 'wc_test'], {
    timeoutMs: RUN_TIMEOUT_MS,
    input: JSON.stringify({ driver, emulate, ops }),
  });
  expect(r.timedOut, `php timed out; stderr: ${r.stderr}`).toBe(false);
  expect(r.code, `php exited ${r.code}; stderr: ${r.stderr}`).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines.length, `php printed more than one line: ${r.stdout.slice(0, 500)}`).toBe(1);
  const out = JSON.parse(lines[0]) as { results: PhpResult[]; meta: Record<string, unknown> };
  expect(out.results).toHaveLength(ops.length);
  return out;
}

/** Rows of a raw text-protocol result set (single frames only), decoded from the wire. */
function decodeTextResult(wire: Buffer, deprecateEofMode: boolean): Result {
  const frames: Buffer[] = [];
  for (let pos = 0; pos < wire.length; ) {
    const len = wire.readUIntLE(pos, 3);
    frames.push(wire.subarray(pos + 4, pos + 4 + len));
    pos += 4 + len;
  }
  const count = frames[0][0];
  const columns = frames.slice(1, 1 + count).map((f) => {
    const r = new PayloadReader(f);
    for (let i = 0; i < 4; i++) r.lenencBytes(); // catalog, schema, table, org_table
    return r.lenencString();
  });
  let i = 1 + count;
  if (!deprecateEofMode) {
    expect(frames[i][0], 'EOF after the column definitions').toBe(0xfe);
    expect(frames[i].length).toBe(5);
    i++;
  }
  const rows: Rows = [];
  for (; frames[i][0] !== 0xfe; i++) {
    const r = new PayloadReader(frames[i]);
    const row: Value[] = [];
    while (r.remaining > 0) {
      if (frames[i][r.offset] === 0xfb) {
        r.skip(1);
        row.push(null);
      } else row.push(r.lenencString());
    }
    rows.push(row);
  }
  expect(i, 'the terminator is the last frame').toBe(frames.length - 1);
  expect(frames[i].length, deprecateEofMode ? 'OK terminator' : 'EOF terminator').toBe(deprecateEofMode ? 7 : 5);
  return { columns, rows };
}

// ---------------------------------------------------------------- raw clients and what the libraries negotiate

/** A raw client's protocol options: the CLIENT_DEPRECATE_EOF mode and MariaDB's extended type info (MARIADB_CLIENT_EXTENDED_METADATA). */
interface RawMode {
  deprecateEof: boolean;
  extendedMetadata: boolean;
}

const rawLogin = (port: number, mode: RawMode) =>
  RawClient.login(port, 'app', 'app_pw', {
    database: 'wc_test',
    deprecateEof: mode.deprecateEof,
    mariaDbCapabilities: mode.extendedMetadata ? MariaDbCapability.EXTENDED_TYPE_INFO : 0,
  });

/** Direct raw connections to the primary, one per mode: the bytes the server itself sends. */
const directRaw = new Map<string, RawClient>();

async function serverBytes(sql: string, mode: RawMode): Promise<Buffer> {
  const key = `${mode.deprecateEof}/${mode.extendedMetadata}`;
  let c = directRaw.get(key);
  if (!c) {
    c = await rawLogin(topo.primary.port, mode);
    directRaw.set(key, c);
  }
  // Without the marker: the reference query is not counted.
  return c.query(sql.replace(/\/\*cc[^*]*\*\//, ''));
}

/**
 * A raw client in `mode` sends `sql` through the proxy. The response must be
 * byte for byte what the primary itself sends a connection in that mode (so
 * a replay converted between EOF modes is exactly the server's framing) and
 * decode to `expected`.
 */
async function rawQuery(port: number, sql: string, mode: RawMode, expected: Rows): Promise<void> {
  const c = await rawLogin(port, mode);
  try {
    expect((c.capabilities & Capability.DEPRECATE_EOF) !== 0).toBe(mode.deprecateEof);
    const got = await c.query(sql);
    expect(got.toString('hex'), `response in mode ${JSON.stringify(mode)} vs the server's own bytes`).toBe((await serverBytes(sql, mode)).toString('hex'));
    expect(decodeTextResult(got, mode.deprecateEof)).toEqual({ columns: COLUMNS, rows: expected });
  } finally {
    c.close();
  }
}

/**
 * Whether the proxy offers MariaDB's extended metadata (MARIADB_CLIENT_EXTENDED_METADATA) in its greeting
 * (read in beforeAll; it does today). mysql2 and the CLI ask for it exactly when offered.
 */
let offersExt = false;

/** Checks what the spied logins negotiated with the proxy (it grants CLIENT_DEPRECATE_EOF: MariaDB 10.11 offers it). */
function expectLogin(logins: Login[], want: { deprecateEof: boolean; extendedMetadata: boolean }): void {
  expect(logins.length).toBeGreaterThan(0);
  for (const l of logins) {
    expect(l).toMatchObject({ user: 'app', characterSet: UTF8MB4_GENERAL_CI });
    expect(deprecateEof(l), 'CLIENT_DEPRECATE_EOF').toBe(want.deprecateEof);
    // Extended capabilities travel only with the CLIENT_MYSQL bit clear, and count only when offered.
    const ext = offersExt && (l.capabilities & Capability.CLIENT_MYSQL) === 0 && (l.mariaDbCapabilities & MariaDbCapability.EXTENDED_TYPE_INFO) !== 0;
    expect(ext, 'MARIADB_CLIENT_EXTENDED_METADATA').toBe(want.extendedMetadata);
  }
}

/*
 * What the libraries negotiate through wirecache (asserted below through the spy relay):
 *
 *                      CLIENT_DEPRECATE_EOF      MariaDB extended metadata     collation
 *   mysql2 3.24        no (not among its flags)  yes (asked for when offered)  45 (as told)
 *   mariadb CLI 10.11  no                        yes                           45
 *   PHP 8.2 mysqlnd    no                        no (sets CLIENT_MYSQL)        45
 *
 * No library negotiates DEPRECATE_EOF, so raw clients that do (and that do
 * not) fill and read entries: both conversions are checked against the
 * server's own bytes and decoded by the real libraries. With MariaDB's
 * extended metadata every column definition carries one more field (an empty
 * length-encoded string before the fixed-length fields), so an entry recorded
 * for mysql2 or the CLI has other column definitions than one for mysqlnd.
 */
const mysql2Mode = () => ({ deprecateEof: false, extendedMetadata: offersExt });
const cliMode = () => ({ deprecateEof: false, extendedMetadata: offersExt });
const MYSQLND_MODE = { deprecateEof: false, extendedMetadata: false };

// ---------------------------------------------------------------- setup

beforeAll(async () => {
  root = await connect(topo.primary.port, topo, { user: 'root', multipleStatements: true });
  await root.query(`
    DROP TABLE IF EXISTS wc_test.cc_items;
    CREATE TABLE wc_test.cc_items (
      id INT PRIMARY KEY, name VARCHAR(64) NULL, note VARCHAR(64) NULL, price DECIMAL(10,2) NULL, at DATETIME NULL
    ) DEFAULT CHARSET=utf8mb4;
    INSERT INTO wc_test.cc_items VALUES
      (1, 'plain', '', 12.50, '2024-02-29 13:14:15'),
      (2, NULL, 'n', -0.05, NULL),
      (3, '😀 héllo ✓', NULL, 99999999.99, '1999-12-31 23:59:59'),
      (4, '', NULL, 0.00, '2000-01-01 00:00:00');
  `);
  await enableGeneralLog(root);
  const px = await startProxy(topo, { cache: testCacheConfig() });
  try {
    const c = await RawClient.open(px.port);
    offersExt = (parseHandshakeV10((await c.readPacket()).payload).mariaDbCapabilities & MariaDbCapability.EXTENDED_TYPE_INFO) !== 0;
    c.close();
  } finally {
    await px.stop();
  }
});

afterAll(async () => {
  for (const c of directRaw.values()) c.close();
  if (root) {
    await disableGeneralLog(root);
    await root.query('DROP TABLE IF EXISTS wc_test.cc_items');
  }
  await root?.end();
});

// ---------------------------------------------------------------- 1. text results across libraries

describe('one cached text result, many client libraries', () => {
  let px: RunningProxy;
  let spy: Spy;
  let variant = 0;

  beforeAll(async () => {
    px = await startProxy(topo, { cache: testCacheConfig() });
    spy = await new Spy(px.port).start();
  });

  afterAll(async () => {
    await spy?.stop();
    await px?.stop();
  });

  /** A multi-row and a zero-row statement under marker `m`, with literals no other test uses (so fresh cache keys). */
  function statements(m: string): { all: string; none: string } {
    const k = ++variant;
    return {
      all: `/*qc=on*/ SELECT id, name, note, price, at FROM cc_items WHERE id <> -${k} ORDER BY id ${m}`,
      none: `/*qc=on*/ SELECT id, name, note, price, at FROM cc_items WHERE id < -${k} ${m}`,
    };
  }

  async function viaMysql2(...sqls: string[]): Promise<(Result & { types: number[] })[]> {
    const { value, logins } = await spy.during(async () => {
      const c = await mysql2(spy.port);
      try {
        const out = [];
        for (const sql of sqls) out.push(await mysql2Query(c, sql));
        return out;
      } finally {
        await c.end();
      }
    });
    expectLogin(logins, mysql2Mode());
    return value;
  }

  async function viaCli(...sqls: string[]): Promise<Result[]> {
    const { value, logins } = await spy.during(async () => {
      const out = [];
      for (const sql of sqls) out.push(await cli(spy.port, sql));
      return out;
    });
    expectLogin(logins, cliMode());
    return value;
  }

  async function viaPhp(driver: 'pdo' | 'mysqli', ...sqls: string[]): Promise<PhpResult[]> {
    const { value, logins } = await spy.during(() => php(spy.port, driver, sqls.map((sql) => ({ sql }))));
    expectLogin(logins, MYSQLND_MODE);
    return value.results;
  }

  const full = { columns: COLUMNS, rows: ALL_ROWS };
  const empty = { columns: COLUMNS, rows: [] };
  /** The CLI prints nothing at all for an empty result in batch mode. */
  const cliEmpty = { columns: [], rows: [] };

  it('mysql2 fills; the mariadb CLI and raw clients in both EOF modes read without reaching the database', async () => {
    const m = mark();
    const { all, none } = statements(m);
    expect(await viaMysql2(all, none)).toEqual([
      { ...full, types: TYPES },
      { ...empty, types: TYPES },
    ]);
    expect(await serverRan(m)).toBe(2);

    expect(await viaCli(all, none)).toEqual([full, cliEmpty]);
    expect(await serverRan(m)).toBe(2);

    // Recorded classic: replayed as is, and converted to DEPRECATE_EOF.
    for (const deprecateEofMode of [true, false]) {
      await rawQuery(spy.port, all, { deprecateEof: deprecateEofMode, extendedMetadata: offersExt }, ALL_ROWS);
      await rawQuery(spy.port, none, { deprecateEof: deprecateEofMode, extendedMetadata: offersExt }, []);
    }
    expect(await serverRan(m)).toBe(2);
    expect(px.metrics.cache.value('hits', 'hint')).toBeGreaterThanOrEqual(6);
  });

  it('the mariadb CLI fills; mysql2 and a DEPRECATE_EOF raw client read without reaching the database', async () => {
    const m = mark();
    const { all, none } = statements(m);
    expect(await viaCli(all, none)).toEqual([full, cliEmpty]);
    expect(await serverRan(m)).toBe(2);

    expect(await viaMysql2(all, none)).toEqual([
      { ...full, types: TYPES },
      { ...empty, types: TYPES },
    ]);
    await rawQuery(spy.port, all, { deprecateEof: true, extendedMetadata: offersExt }, ALL_ROWS);
    await rawQuery(spy.port, none, { deprecateEof: true, extendedMetadata: offersExt }, []);
    expect(await serverRan(m)).toBe(2);
  });

  it('a DEPRECATE_EOF client fills; mysql2 and the mariadb CLI (classic) read the converted entry', async () => {
    const m = mark();
    const { all, none } = statements(m);
    await rawQuery(spy.port, all, { deprecateEof: true, extendedMetadata: offersExt }, ALL_ROWS);
    await rawQuery(spy.port, none, { deprecateEof: true, extendedMetadata: offersExt }, []);
    expect(await serverRan(m)).toBe(2);

    expect(await viaMysql2(all, none)).toEqual([
      { ...full, types: TYPES },
      { ...empty, types: TYPES },
    ]);
    expect(await viaCli(all, none)).toEqual([full, cliEmpty]);
    await rawQuery(spy.port, all, { deprecateEof: false, extendedMetadata: offersExt }, ALL_ROWS);
    expect(await serverRan(m)).toBe(2);
  });

  it('mysqlnd: PDO fills; PDO in another process, mysqli and raw clients in both EOF modes read without reaching the database', async () => {
    const m = mark();
    const { all, none } = statements(m);
    expect(await viaPhp('pdo', all, none)).toEqual([full, empty]);
    expect(await serverRan(m)).toBe(2);

    expect(await viaPhp('pdo', all, none)).toEqual([full, empty]);
    expect(await viaPhp('mysqli', all, none)).toEqual([
      { ...full, types: TYPES },
      { ...empty, types: TYPES },
    ]);
    for (const deprecateEofMode of [true, false]) {
      await rawQuery(spy.port, all, { deprecateEof: deprecateEofMode, extendedMetadata: false }, ALL_ROWS);
      await rawQuery(spy.port, none, { deprecateEof: deprecateEofMode, extendedMetadata: false }, []);
    }
    expect(await serverRan(m)).toBe(2);

    // And the other way round: recorded with DEPRECATE_EOF, read by mysqlnd (classic).
    const other = statements(m);
    await rawQuery(spy.port, other.all, { deprecateEof: true, extendedMetadata: false }, ALL_ROWS);
    await rawQuery(spy.port, other.none, { deprecateEof: true, extendedMetadata: false }, []);
    expect(await serverRan(m)).toBe(4);
    expect(await viaPhp('pdo', other.all, other.none)).toEqual([full, empty]);
    expect(await serverRan(m)).toBe(4);
  });

  // Entries recorded with MariaDB's extended metadata (mysql2, the CLI) and without it (mysqlnd) have other column
  // definitions: whether the proxy keeps them apart or converts them, each client must get rows it can decode.
  it('an entry filled by mysql2 (extended metadata) reads correctly in PDO (without)', async () => {
    const m = mark();
    const { all, none } = statements(m);
    expect(await viaMysql2(all, none)).toEqual([
      { ...full, types: TYPES },
      { ...empty, types: TYPES },
    ]);
    expect(await serverRan(m)).toBe(2);
    expect(await viaPhp('pdo', all, none)).toEqual([full, empty]);
    // Served from the entry, or (kept apart) read once for mysqlnd clients: a second PDO process reads from the cache.
    const afterFirst = await serverRan(m);
    expect(afterFirst).toBeLessThanOrEqual(4);
    expect(await viaPhp('pdo', all, none)).toEqual([full, empty]);
    expect(await serverRan(m)).toBe(afterFirst);
  });

  it('an entry filled by PDO (without extended metadata) reads correctly in mysql2 and the mariadb CLI (with)', async () => {
    const m = mark();
    const { all, none } = statements(m);
    expect(await viaPhp('pdo', all, none)).toEqual([full, empty]);
    expect(await serverRan(m)).toBe(2);
    expect(await viaMysql2(all, none)).toEqual([
      { ...full, types: TYPES },
      { ...empty, types: TYPES },
    ]);
    const afterFirst = await serverRan(m);
    expect(afterFirst).toBeLessThanOrEqual(4);
    expect(await viaCli(all, none)).toEqual([full, cliEmpty]);
    expect(await serverRan(m)).toBe(afterFirst);
  });
});

// ---------------------------------------------------------------- 2. prepared statements: PDO native prepares, mysql2 execute

describe('prepared statements through PDO native prepares and mysql2 execute', () => {
  let px: RunningProxy;

  beforeAll(async () => {
    px = await startProxy(topo, { cache: testCacheConfig() });
  });

  afterAll(async () => {
    await px?.stop();
  });

  let variant = 0;
  /** The statement under marker `m`, with a literal no other test uses (comments do not make cache keys differ). */
  const select = (m: string) => `/*qc=on*/ SELECT id, name, note, price, at FROM cc_items WHERE id >= ? AND id <> -${++variant} ORDER BY id ${m}`;
  const FROM_3 = ALL_ROWS.slice(2);

  it('mysql2 execute: repeats reach the database once per parameter value, from any connection', async () => {
    const m = mark();
    const sql = select(m);
    const c = await mysql2(px.port);
    const d = await mysql2(px.port);
    try {
      for (let i = 0; i < 3; i++) expect(await mysql2Execute(c, sql, [1])).toEqual({ columns: COLUMNS, types: TYPES, rows: ALL_ROWS });
      expect(await serverRan(m)).toBe(1);
      for (let i = 0; i < 2; i++) expect(await mysql2Execute(c, sql, [3])).toEqual({ columns: COLUMNS, types: TYPES, rows: FROM_3 });
      for (let i = 0; i < 2; i++) expect(await mysql2Execute(c, sql, [99])).toEqual({ columns: COLUMNS, types: TYPES, rows: [] });
      expect(await serverRan(m)).toBe(3);
      // Another connection (its own statement id) hits the same three entries.
      expect(await mysql2Execute(d, sql, [3])).toEqual({ columns: COLUMNS, types: TYPES, rows: FROM_3 });
      expect(await mysql2Execute(d, sql, [1])).toEqual({ columns: COLUMNS, types: TYPES, rows: ALL_ROWS });
      expect(await mysql2Execute(d, sql, [99])).toEqual({ columns: COLUMNS, types: TYPES, rows: [] });
      expect(await serverRan(m)).toBe(3);
    } finally {
      await Promise.all([c.end(), d.end()]);
    }
  });

  it('PDO native prepares: repeats reach the database once per parameter value, from any process', async () => {
    const m = mark();
    const sql = select(m);
    const ops: PhpOp[] = [
      { sql, params: ['1'] },
      { sql, params: ['1'] },
      { sql, params: ['3'] },
      { sql, params: ['1'] },
      { sql, params: ['99'] },
      { sql, params: ['3'] },
      { sql, params: ['99'] },
    ];
    const expected = [ALL_ROWS, ALL_ROWS, FROM_3, ALL_ROWS, [], FROM_3, []].map((rows) => ({ columns: COLUMNS, rows }));
    const first = await php(px.port, 'pdo', ops, false);
    expect(first.meta.emulate_prepares).toBe(false);
    expect(first.results).toEqual(expected);
    expect(await serverRan(m)).toBe(3);
    expect((await php(px.port, 'pdo', ops, false)).results).toEqual(expected);
    expect(await serverRan(m)).toBe(3);
  });

  it('PDO and mysql2 executing the same statement and values: right rows for each, hits within each driver', async () => {
    // The drivers encode parameters differently (PDO binds every value as VAR_STRING, mysql2 sends a JS number
    // as DOUBLE or an integer type): whether they share an entry is not guaranteed (today they do not), only
    // that each gets its rows and stops reaching the database.
    const m = mark();
    const sql = select(m);
    const c = await mysql2(px.port);
    try {
      expect(await mysql2Execute(c, sql, [2])).toEqual({ columns: COLUMNS, types: TYPES, rows: ALL_ROWS.slice(1) });
      expect(await serverRan(m)).toBe(1);
      const ops: PhpOp[] = [{ sql, params: ['2'] }, { sql, params: ['2'] }];
      const expected = { columns: COLUMNS, rows: ALL_ROWS.slice(1) };
      expect((await php(px.port, 'pdo', ops, false)).results).toEqual([expected, expected]);
      const both = await serverRan(m);
      expect(both).toBeGreaterThanOrEqual(1);
      expect(both).toBeLessThanOrEqual(2);
      expect((await php(px.port, 'pdo', ops, false)).results).toEqual([expected, expected]);
      expect(await mysql2Execute(c, sql, [2])).toEqual({ columns: COLUMNS, types: TYPES, rows: ALL_ROWS.slice(1) });
      expect(await serverRan(m)).toBe(both);
    } finally {
      await c.end();
    }
  });
  it('PDO and mysql2 binding the same string value: right rows for each, whichever fills the entry', async () => {
    // Both drivers send a JS/PHP string as VAR_STRING, so here the parameter bytes are identical and the two may
    // share an entry, although PDO's results carry no MariaDB extended metadata in their column definitions and
    // mysql2's do: each driver must still decode its own rows, and stop reaching the database after its first read.
    const m = mark();
    const sql = select(m);
    const c = await mysql2(px.port);
    try {
      const from2 = { columns: COLUMNS, rows: ALL_ROWS.slice(1) };
      expect((await php(px.port, 'pdo', [{ sql, params: ['2'] }], false)).results).toEqual([from2]);
      expect(await serverRan(m)).toBe(1);
      expect(await mysql2Execute(c, sql, ['2'])).toEqual({ ...from2, types: TYPES });
      const afterMysql2 = await serverRan(m);
      expect(afterMysql2).toBeLessThanOrEqual(2);
      expect(await mysql2Execute(c, sql, ['2'])).toEqual({ ...from2, types: TYPES });
      expect(await serverRan(m)).toBe(afterMysql2);

      // The other way round: mysql2 fills, PDO reads.
      const from3 = { columns: COLUMNS, rows: ALL_ROWS.slice(2) };
      expect(await mysql2Execute(c, sql, ['3'])).toEqual({ ...from3, types: TYPES });
      expect(await serverRan(m)).toBe(afterMysql2 + 1);
      expect((await php(px.port, 'pdo', [{ sql, params: ['3'] }, { sql, params: ['3'] }], false)).results).toEqual([from3, from3]);
      expect(await serverRan(m)).toBeLessThanOrEqual(afterMysql2 + 2);
    } finally {
      await c.end();
    }
  });
});

// ---------------------------------------------------------------- 3. mysqli: hinted queries and mysqli_stmt

describe('mysqli: a hinted query and mysqli_stmt prepared statements', () => {
  let px: RunningProxy;

  beforeAll(async () => {
    px = await startProxy(topo, { cache: testCacheConfig() });
  });

  afterAll(async () => {
    await px?.stop();
  });

  const full = { columns: COLUMNS, types: TYPES, rows: ALL_ROWS };

  it('/*qc=on*/ queries reach the database once across processes; the same query without the hint every time', async () => {
    const hinted = mark();
    const plain = mark();
    const sql = (m: string) => `SELECT id, name, note, price, at FROM cc_items ORDER BY id ${m}`;
    const none = (m: string) => `SELECT id, name, note, price, at FROM cc_items WHERE id > 4 ${m}`;
    const ops: PhpOp[] = [
      { sql: `/*qc=on*/ ${sql(hinted)}` },
      { sql: `/*qc=on*/ ${none(hinted)}` },
      { sql: `/*qc=on*/ ${sql(hinted)}` },
      { sql: sql(plain) },
      { sql: `/*qc=on*/ ${none(hinted)}` },
      { sql: sql(plain) },
    ];
    const empty = { columns: COLUMNS, types: TYPES, rows: [] };
    const expected = [full, empty, full, full, empty, full];
    const first = await php(px.port, 'mysqli', ops);
    expect(first.meta.charset).toBe('utf8mb4');
    expect(first.results).toEqual(expected);
    expect(await serverRan(hinted)).toBe(2);
    expect(await serverRan(plain)).toBe(2);
    expect((await php(px.port, 'mysqli', ops)).results).toEqual(expected);
    expect(await serverRan(hinted)).toBe(2);
    expect(await serverRan(plain)).toBe(4);
  });

  it('mysqli_stmt: one database execute per parameter value and type, across processes', async () => {
    const m = mark();
    const sql = `/*qc=on*/ SELECT id, name, note, price, at FROM cc_items WHERE id >= ? ORDER BY id ${m}`;
    const ops: PhpOp[] = [
      { sql, types: 'i', params: [1] },
      { sql, types: 'i', params: [1] },
      { sql, types: 'i', params: [4] },
      { sql, types: 'i', params: [4] },
      { sql, types: 'i', params: [1] },
      { sql, types: 'i', params: [7] },
      { sql, types: 'i', params: [7] },
    ];
    const rows = [ALL_ROWS, ALL_ROWS, ALL_ROWS.slice(3), ALL_ROWS.slice(3), ALL_ROWS, [], []];
    const expected = rows.map((r) => ({ columns: COLUMNS, types: TYPES, rows: r }));
    expect((await php(px.port, 'mysqli', ops)).results).toEqual(expected);
    expect(await serverRan(m)).toBe(3);
    expect((await php(px.port, 'mysqli', ops)).results).toEqual(expected);
    expect(await serverRan(m)).toBe(3);
    // The same value bound as a string is another parameter type: another entry, the same rows.
    const asString: PhpOp[] = [
      { sql, types: 's', params: ['1'] },
      { sql, types: 's', params: ['1'] },
    ];
    expect((await php(px.port, 'mysqli', asString)).results).toEqual([full, full]);
    expect(await serverRan(m)).toBe(4);
  });
});
