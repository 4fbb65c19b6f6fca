/**
 * Starts and stops the real MariaDB + memcached topology used by the test
 * suite (vitest global setup) and by the demo command.
 *
 * Layout of a topology base dir (a fresh `os.tmpdir()/wirecache-topo-XXXXXX`):
 *
 *   template/            datadir made once by mariadb-install-db, copied per server
 *   <name>/data/         the server's datadir
 *   <name>/mariadbd.err  --log-error
 *   <name>/mariadbd.pid  --pid-file (always holds the live pid, also after a restart)
 *   <name>/mysqld.sock   --socket (or a short path in os.tmpdir() if this one is too long)
 *   <name>/server.json   the argv used, so restartMariaDB works from any process
 *   memcached/           memcached.log, memcached.pid
 *
 * Nothing here reads /etc/mysql, /var/lib/mysql or uses a system service:
 * every mariadbd / mariadb-install-db gets `--no-defaults` as first argument.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';

export interface ServerInfo {
  name: string;
  host: string;
  port: number;
  serverId: number;
  dataDir: string;
  socket: string;
  pid: number;
}

export interface TopologyInfo {
  baseDir: string;
  /** Pristine mariadb-install-db datadir; pass it as `templateDir` to startMariaDB for a fast extra server. */
  templateDir: string;
  primary: ServerInfo;
  replicas: ServerInfo[];
  memcached: { host: string; port: number; pid: number };
  rootUser: string;
  rootPassword: string;
  users: { name: string; password: string }[];
}

const HOST = '127.0.0.1';
const ROOT_USER = 'root';
const ROOT_PASSWORD = 'rootpw';
const REPL_USER = 'repl';
const REPL_PASSWORD = 'replpw';
const TEST_DB = 'wc_test';
/** Accounts created on every server (host part '%', mysql_native_password). */
const TEST_USERS: { name: string; password: string; grants: string[] }[] = [
  { name: 'app', password: 'app_pw', grants: ['GRANT ALL PRIVILEGES ON *.* TO ?@?'] },
  { name: 'other', password: 'other_pw', grants: ['GRANT ALL PRIVILEGES ON *.* TO ?@?'] },
  { name: 'limited', password: 'limited_pw', grants: [`GRANT SELECT ON \`${TEST_DB}\`.* TO ?@?`] },
  { name: 'nopw', password: '', grants: [`GRANT SELECT ON \`${TEST_DB}\`.* TO ?@?`] },
];

const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
/** Unix socket paths are limited to 108 bytes including the NUL. */
const MAX_SOCKET_PATH = 100;

const defaultLog = (m: string): void => {
  process.stderr.write(`[topology] ${m}\n`);
};

// ---------------------------------------------------------------------------
// child process bookkeeping

/** Processes started (and therefore owned) by this Node process. */
const owned = new Map<number, ChildProcess>();
/** Datadirs of servers started by this process: a restart of one of them is owned too. */
const ownedDataDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of owned.keys()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

function track(child: ChildProcess): void {
  installExitHook();
  const pid = child.pid;
  if (pid === undefined) return;
  owned.set(pid, child);
  child.once('exit', () => owned.delete(pid));
  // Never keep the event loop (vitest, the demo CLI) alive because of a child.
  child.unref();
}

// ---------------------------------------------------------------------------
// small helpers

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function findBinary(name: string): string {
  const dirs = [
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean),
    '/usr/sbin',
    '/usr/local/sbin',
    '/usr/bin',
    '/usr/local/bin',
    '/sbin',
  ];
  for (const d of dirs) {
    const p = path.join(d, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`${name} not found in PATH or /usr/sbin; run scripts/install-deps.sh`);
}

/** Free TCP ports on 127.0.0.1: bind :0 (all at once so they are distinct), then close. */
export async function getFreePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, HOST, () => resolve());
      });
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

async function readTail(file: string, fromOffset = 0, maxBytes = 4000): Promise<string> {
  try {
    const buf = await fs.readFile(file);
    const start = Math.max(fromOffset, buf.length - maxBytes);
    return buf.subarray(start).toString('utf8').trim();
  } catch {
    return '(no log)';
  }
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return 0;
  }
}

/** Is `pid` alive (not a zombie) and, where /proc can tell, running a command containing `marker`? */
function pidAlive(pid: number, marker?: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    // A zombie leader of a dying multi-threaded process may still have live threads
    // (holding its sockets): only count it as gone when no other thread is left.
    if ((state === 'Z' || state === 'X') && readdirSync(`/proc/${pid}/task`).length <= 1) return false;
    if (marker !== undefined) {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmdline.includes(marker)) return false; // pid was reused by something else
    }
  } catch {
    /* no /proc (or it vanished): trust kill(0) */
  }
  return true;
}

/**
 * Waits until `pid` is gone or a zombie. No cmdline check here: a dying process
 * loses its cmdline (mm released) before its sockets are closed, so only the
 * zombie state means "ports and files released".
 */
async function waitForPidExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await sleep(25);
  }
  return !pidAlive(pid);
}

/** SIGTERM (or the given signal), then SIGKILL after `graceMs`; resolves once the process is gone. */
async function killAndWait(
  pid: number,
  marker: string | undefined,
  signal: NodeJS.Signals,
  graceMs: number,
): Promise<void> {
  if (!pidAlive(pid, marker)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  if (await waitForPidExit(pid, graceMs)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  if (!(await waitForPidExit(pid, 10_000))) {
    throw new Error(`process ${pid} did not exit after SIGKILL`);
  }
}

function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return code !== undefined ? `${String(code)}: ${e.message}` : e.message;
  }
  return String(e);
}

// ---------------------------------------------------------------------------
// template datadir

const templates = new Map<string, Promise<string>>();

/**
 * Runs `mariadb-install-db` once into `dir` (a pristine datadir: root@localhost,
 * root@127.0.0.1, root@::1 without password, no binlog events). Reuses `dir` if
 * it already holds a finished template.
 */
export function createTemplate(dir: string): Promise<string> {
  const abs = path.resolve(dir);
  let p = templates.get(abs);
  if (p === undefined) {
    // Only in-flight creations are shared; a finished template is found on disk
    // again (and re-created if its base dir was removed meanwhile).
    p = doCreateTemplate(abs).finally(() => templates.delete(abs));
    templates.set(abs, p);
  }
  return p;
}

async function doCreateTemplate(dir: string): Promise<string> {
  if (existsSync(path.join(dir, 'mysql_upgrade_info')) && existsSync(path.join(dir, 'mysql'))) return dir;
  await fs.mkdir(path.dirname(dir), { recursive: true });
  // A private tmpdir: concurrent bootstraps in the shared /tmp collide on their temporary table files.
  const tmpDir = `${dir}.tmp`;
  await fs.mkdir(tmpDir, { recursive: true });
  const installDb = findBinary('mariadb-install-db');
  const args = [
    '--no-defaults',
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    `--datadir=${dir}`,
    ...(IS_ROOT ? ['--user=root'] : []),
    // passed through to the bootstrap mariadbd: create the redo log at its final size
    '--innodb-log-file-size=48M',
    '--innodb-buffer-pool-size=64M',
    `--tmpdir=${tmpDir}`,
  ];
  const out: Buffer[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(installDb, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => out.push(d));
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  if (code !== 0) {
    const text = Buffer.concat(out).toString('utf8').slice(-4000);
    throw new Error(`mariadb-install-db failed (exit ${String(code)}):\n${text}`);
  }
  return dir;
}

// ---------------------------------------------------------------------------
// mariadbd

interface ServerFiles {
  serverDir: string;
  dataDir: string;
  pidFile: string;
  logFile: string;
  metaFile: string;
}

function serverFiles(dataDir: string): ServerFiles {
  const serverDir = path.dirname(dataDir);
  return {
    serverDir,
    dataDir,
    pidFile: path.join(serverDir, 'mariadbd.pid'),
    logFile: path.join(serverDir, 'mariadbd.err'),
    metaFile: path.join(serverDir, 'server.json'),
  };
}

interface ServerMeta {
  name: string;
  serverId: number;
  port: number;
  socket: string;
  dataDir: string;
  readOnly: boolean;
  /** More mariadbd options (e.g. --ssl-cert/--ssl-key), kept for restarts. */
  extraArgs?: string[];
}

function mariadbdArgs(m: ServerMeta): string[] {
  const f = serverFiles(m.dataDir);
  return [
    '--no-defaults',
    `--datadir=${m.dataDir}`,
    `--port=${m.port}`,
    `--socket=${m.socket}`,
    `--pid-file=${f.pidFile}`,
    `--log-error=${f.logFile}`,
    `--tmpdir=${f.serverDir}`,
    ...(IS_ROOT ? ['--user=root'] : []),
    `--bind-address=${HOST}`,
    '--skip-name-resolve',
    `--server-id=${m.serverId}`,
    '--log-bin=mysql-bin',
    '--log-slave-updates',
    '--binlog-format=ROW',
    '--gtid-strict-mode=ON',
    '--innodb-buffer-pool-size=64M',
    '--innodb-log-file-size=48M',
    '--innodb-flush-log-at-trx-commit=2',
    '--sync-binlog=0',
    '--max-allowed-packet=1G',
    '--max-connections=500',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_general_ci',
    ...(m.readOnly ? ['--read-only=ON'] : []),
    ...(m.extraArgs ?? []),
  ];
}

function socketPathFor(serverDir: string, port: number): string {
  const preferred = path.join(serverDir, 'mysqld.sock');
  if (Buffer.byteLength(preferred) <= MAX_SOCKET_PATH) return preferred;
  return path.join(os.tmpdir(), `wc-${port}-${process.pid}.sock`);
}

/** Polls a TCP login until the server answers the handshake (success or "access denied" both mean up). */
async function waitForMariaDB(
  child: ChildProcess,
  port: number,
  logFile: string,
  logOffset: number,
  timeoutMs: number,
): Promise<void> {
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  while (Date.now() < deadline) {
    if (exited) {
      const tail = await readTail(logFile, logOffset);
      const err = new Error(
        `mariadbd on port ${port} exited during startup (code ${String(exited.code)}, signal ${String(exited.signal)}).\n` +
          `--- tail of ${logFile} ---\n${tail}`,
      );
      (err as Error & { logTail?: string }).logTail = tail;
      throw err;
    }
    try {
      const conn = await mysql.createConnection({
        host: HOST,
        port,
        user: ROOT_USER,
        password: '',
        connectTimeout: 2000,
      });
      await conn.end();
      return;
    } catch (e) {
      if ((e as { errno?: number }).errno === 1045) return; // up, root already has a password
      lastErr = describeError(e);
    }
    await sleep(100);
  }
  const tail = await readTail(logFile, logOffset);
  throw new Error(
    `mariadbd on port ${port} not ready after ${timeoutMs} ms (last error: ${lastErr}).\n--- tail of ${logFile} ---\n${tail}`,
  );
}

/** Spawns mariadbd for `meta` and waits until it accepts connections. */
async function launch(meta: ServerMeta, opts: { fixedPort: boolean; own: boolean }): Promise<ServerInfo> {
  const f = serverFiles(meta.dataDir);
  const args = mariadbdArgs(meta);
  // On a restart the port may still be held for a moment: let mariadbd retry the bind.
  if (opts.fixedPort) args.push('--port-open-timeout=15');
  await fs.writeFile(f.metaFile, JSON.stringify({ ...meta, args }, null, 2));
  const logOffset = await fileSize(f.logFile);
  const child = spawn(findBinary('mariadbd'), args, { stdio: 'ignore', detached: false });
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  if (opts.own) track(child);
  else child.unref();
  const pid = child.pid;
  if (pid === undefined) await spawnError; // throws ENOENT etc.
  try {
    await Promise.race([waitForMariaDB(child, meta.port, f.logFile, logOffset, 60_000), spawnError]);
  } catch (e) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* gone */
    }
    throw e;
  }
  return {
    name: meta.name,
    host: HOST,
    port: meta.port,
    serverId: meta.serverId,
    dataDir: meta.dataDir,
    socket: meta.socket,
    pid: pid as number,
  };
}

/**
 * Copies the template into `<baseDir>/<name>/data` and starts mariadbd. If no
 * port was given, a free one is picked (and re-picked if the bind races).
 * Does not create any account: root has no password.
 */
async function startRawMariaDB(opts: {
  name: string;
  baseDir: string;
  serverId: number;
  port?: number;
  /** `port` is only a preference: pick another free port if binding it fails. */
  portIsHint?: boolean;
  templateDir: string;
  readOnly: boolean;
  extraArgs?: string[];
}): Promise<ServerInfo> {
  if (!/^[A-Za-z0-9_.-]+$/.test(opts.name)) throw new Error(`invalid server name: ${opts.name}`);
  const serverDir = path.resolve(opts.baseDir, opts.name);
  const dataDir = path.join(serverDir, 'data');
  if (existsSync(dataDir)) throw new Error(`${dataDir} already exists; use restartMariaDB or another name`);
  await fs.mkdir(serverDir, { recursive: true });
  await fs.cp(opts.templateDir, dataDir, { recursive: true });
  ownedDataDirs.add(dataDir);

  const attempts = opts.port === undefined || opts.portIsHint === true ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    const port = attempt === 1 && opts.port !== undefined ? opts.port : (await getFreePorts(1))[0];
    const meta: ServerMeta = {
      name: opts.name,
      serverId: opts.serverId,
      port,
      socket: socketPathFor(serverDir, port),
      dataDir,
      readOnly: opts.readOnly,
      extraArgs: opts.extraArgs,
    };
    try {
      return await launch(meta, { fixedPort: false, own: true });
    } catch (e) {
      const tail = (e as { logTail?: string }).logTail ?? '';
      if (attempt < attempts && /Address already in use|Do you already have another (mysqld|mariadbd) server running/i.test(tail)) {
        continue; // somebody grabbed the port between probe and bind
      }
      throw e;
    }
  }
}

type Conn = mysql.Connection;

async function connectRoot(s: { port: number }, password: string): Promise<Conn> {
  return mysql.createConnection({ host: HOST, port: s.port, user: ROOT_USER, password, connectTimeout: 10_000 });
}

/**
 * Creates the accounts and the test database on a freshly installed server
 * (connection is root with empty password). Everything is binlogged, so it
 * replicates to replicas that start from an empty gtid_slave_pos.
 */
async function provisionAccounts(conn: Conn): Promise<void> {
  await conn.query('CREATE USER ?@? IDENTIFIED BY ?', [REPL_USER, '%', REPL_PASSWORD]);
  await conn.query('GRANT REPLICATION SLAVE ON *.* TO ?@?', [REPL_USER, '%']);

  // install-db created root@{localhost,127.0.0.1,::1,<hostname>} without password.
  const [roots] = await conn.query<mysql.RowDataPacket[]>("SELECT Host AS host FROM mysql.user WHERE User = 'root'");
  for (const { host } of roots as { host: string }[]) {
    if (host === 'localhost' || host === '127.0.0.1' || host === '::1') {
      await conn.query('ALTER USER ?@? IDENTIFIED BY ?', [ROOT_USER, host, ROOT_PASSWORD]);
    } else {
      // root@<hostname> is ignored under --skip-name-resolve anyway; don't leave a passwordless root around.
      await conn.query('DROP USER ?@?', [ROOT_USER, host]);
    }
  }
  await conn.query('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [ROOT_USER, '127.0.0.1', ROOT_PASSWORD]);
  await conn.query('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [ROOT_USER, '%', ROOT_PASSWORD]);
  await conn.query('GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION', [ROOT_USER, '127.0.0.1']);
  await conn.query('GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION', [ROOT_USER, '%']);

  await conn.query(`CREATE DATABASE IF NOT EXISTS \`${TEST_DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  for (const u of TEST_USERS) {
    await conn.query('CREATE USER ?@? IDENTIFIED BY ?', [u.name, '%', u.password]);
    for (const g of u.grants) await conn.query(g, [u.name, '%']);
  }
}

async function readPidFile(s: ServerInfo): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await fs.readFile(serverFiles(s.dataDir).pidFile, 'utf8')).trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The pid currently serving `s` (pid file first: it is right after a restart from another process). */
async function currentPid(s: ServerInfo): Promise<number | undefined> {
  const marker = `--datadir=${s.dataDir}`;
  const fromFile = await readPidFile(s);
  if (fromFile !== undefined && pidAlive(fromFile, marker)) return fromFile;
  if (pidAlive(s.pid, marker)) return s.pid;
  return undefined;
}

/**
 * A standalone extra server (for tests that kill and restart a backend): a copy
 * of `templateDir` (created under `<baseDir>/template` when omitted) in
 * `<baseDir>/<name>/data`, with binlog enabled, and the same accounts as the
 * topology: root/rootpw, app, other, limited, nopw, database wc_test.
 */
export async function startMariaDB(opts: {
  name: string;
  baseDir: string;
  serverId: number;
  port?: number;
  templateDir?: string;
  /** More mariadbd options, e.g. ['--ssl-cert=…', '--ssl-key=…']. */
  extraArgs?: string[];
}): Promise<ServerInfo> {
  const templateDir = opts.templateDir ?? (await createTemplate(path.join(path.resolve(opts.baseDir), 'template')));
  const s = await startRawMariaDB({ ...opts, templateDir, readOnly: false });
  try {
    const conn = await connectRoot(s, '');
    try {
      await provisionAccounts(conn);
    } finally {
      await conn.end();
    }
  } catch (e) {
    await stopMariaDB(s, { signal: 'SIGKILL' }).catch(() => undefined);
    throw e;
  }
  return s;
}

/** Stops the server (SIGTERM: clean shutdown, SIGKILL after 30 s; or SIGKILL right away) and waits for the exit. */
export async function stopMariaDB(s: ServerInfo, opts?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void> {
  const pid = await currentPid(s);
  if (pid === undefined) return;
  await killAndWait(pid, `--datadir=${s.dataDir}`, opts?.signal ?? 'SIGTERM', 30_000);
}

/**
 * Starts the server again on the same port and datadir with the same options
 * (replicas stay read-only and resume replication). Stops it first if it is
 * still running. Works after a SIGKILL (InnoDB crash recovery).
 */
export async function restartMariaDB(s: ServerInfo): Promise<ServerInfo> {
  await stopMariaDB(s);
  const f = serverFiles(s.dataDir);
  let readOnly = false;
  let extraArgs: string[] | undefined;
  try {
    const saved = JSON.parse(await fs.readFile(f.metaFile, 'utf8')) as Partial<ServerMeta>;
    readOnly = saved.readOnly === true;
    extraArgs = saved.extraArgs;
  } catch {
    /* no metadata: plain writable server */
  }
  const meta: ServerMeta = {
    name: s.name,
    serverId: s.serverId,
    port: s.port,
    socket: s.socket,
    dataDir: s.dataDir,
    readOnly,
    extraArgs,
  };
  // Only own (kill on our exit) what this process started; a test worker that
  // restarts a topology server must not take it down when the worker exits.
  return launch(meta, { fixedPort: true, own: ownedDataDirs.has(s.dataDir) });
}

// ---------------------------------------------------------------------------
// replication

async function slaveStatusSummary(conn: Conn): Promise<string> {
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW SLAVE STATUS');
    const r = rows[0];
    if (r === undefined) return 'no SHOW SLAVE STATUS row';
    return (
      `IO=${String(r.Slave_IO_Running)} SQL=${String(r.Slave_SQL_Running)} ` +
      `Gtid_IO_Pos=${String(r.Gtid_IO_Pos)} Last_IO_Error=${String(r.Last_IO_Error)} ` +
      `Last_SQL_Error=${String(r.Last_SQL_Error)}`
    );
  } catch (e) {
    return `SHOW SLAVE STATUS failed: ${describeError(e)}`;
  }
}

async function waitGtid(primary: Conn, replicas: { name: string; conn: Conn }[], timeoutMs: number): Promise<void> {
  const [rows] = await primary.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
  const pos = String(rows[0]?.pos ?? '');
  if (pos === '') return;
  const seconds = Math.max(0.001, timeoutMs / 1000);
  await Promise.all(
    replicas.map(async ({ name, conn }) => {
      const [r] = await conn.query<mysql.RowDataPacket[]>('SELECT MASTER_GTID_WAIT(?, ?) AS res', [pos, seconds]);
      const res = Number(r[0]?.res);
      if (res !== 0) {
        throw new Error(
          `replica ${name} did not reach gtid ${pos} within ${timeoutMs} ms: ${await slaveStatusSummary(conn)}`,
        );
      }
    }),
  );
}

/** Resolves once every replica has applied the primary's current gtid_binlog_pos. */
export async function waitForReplication(t: TopologyInfo, timeoutMs = 30_000): Promise<void> {
  const conns: Conn[] = [];
  try {
    const primary = await connectRoot(t.primary, t.rootPassword);
    conns.push(primary);
    const replicas: { name: string; conn: Conn }[] = [];
    for (const r of t.replicas) {
      const conn = await connectRoot(r, t.rootPassword);
      conns.push(conn);
      replicas.push({ name: r.name, conn });
    }
    await waitGtid(primary, replicas, timeoutMs);
  } finally {
    await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
  }
}

// ---------------------------------------------------------------------------
// memcached

/** Waits until `port` accepts TCP connections; fails early, with the log's tail, if `child` exits first. */
export async function waitForPort(port: number, child: ChildProcess, what: string, logFile: string, timeoutMs = 15_000): Promise<void> {
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited during startup:\n${await readTail(logFile)}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect({ host: HOST, port });
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`${what} on port ${port} not accepting connections after ${timeoutMs} ms:\n${await readTail(logFile)}`);
}

export interface MemcachedInfo {
  host: string;
  port: number;
  pid: number;
}

/**
 * Starts a memcached on 127.0.0.1 (owned by this process: killed when it exits).
 * `dir` (default: a fresh temp dir) receives memcached.log and memcached.pid;
 * `port` (default: a free one) lets a test restart a stopped memcached on the same port.
 */
export async function startMemcached(dir?: string, port?: number): Promise<MemcachedInfo> {
  if (dir === undefined) dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-memcached-'));
  await fs.mkdir(dir, { recursive: true });
  const logFile = path.join(dir, 'memcached.log');
  const bin = findBinary('memcached');
  for (let attempt = 1; ; attempt++) {
    const p = port ?? (await getFreePorts(1))[0];
    const fd = openSync(logFile, 'a');
    const child = spawn(bin, ['-l', HOST, '-p', String(p), '-U', '0', '-m', '64', ...(IS_ROOT ? ['-u', 'root'] : [])], {
      stdio: ['ignore', fd, fd],
      detached: false,
    });
    closeSync(fd);
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    track(child);
    if (child.pid === undefined) await spawnError;
    try {
      await Promise.race([waitForPort(p, child, 'memcached', logFile, 15_000), spawnError]);
      await fs.writeFile(path.join(dir, 'memcached.pid'), String(child.pid));
      return { host: HOST, port: p, pid: child.pid as number };
    } catch (e) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
      if (port === undefined && attempt < 3 && /Address already in use/i.test(String((e as Error).message))) continue;
      throw e;
    }
  }
}

/**
 * Stops a memcached started by startMemcached: `signal` (default SIGTERM), SIGKILL
 * after a grace period; resolves once it is gone. A SIGSTOPped memcached is sent
 * SIGCONT first so that a SIGTERM can take effect.
 */
export async function stopMemcached(info: MemcachedInfo, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (signal !== 'SIGKILL' && pidAlive(info.pid, 'memcached')) {
    try {
      process.kill(info.pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  }
  await killAndWait(info.pid, 'memcached', signal, 3000);
}

// ---------------------------------------------------------------------------
// topology

/**
 * Creates the accounts on a fresh primary and starts GTID replication on its
 * fresh replicas, then waits until they caught up. `conns` collects the setup
 * connections so a failing caller can close them; they are closed on success.
 */
async function provisionReplication(primary: ServerInfo, replicas: ServerInfo[], conns: Conn[]): Promise<void> {
  // Fresh servers: root@127.0.0.1 has no password. Open every setup connection
  // now, before the root password change exists anywhere: the replicas will
  // receive it through replication and new password-less logins would fail.
  const pConn = await connectRoot(primary, '');
  conns.push(pConn);
  const rConns: { name: string; conn: Conn }[] = [];
  for (const r of replicas) {
    const conn = await connectRoot(r, '');
    conns.push(conn);
    rConns.push({ name: r.name, conn });
  }

  // All accounts are created on the primary only. The replicas were copied from
  // the same template before any binlog event existed, so they start from an
  // empty gtid_slave_pos and pull the whole binlog, accounts included.
  await provisionAccounts(pConn);
  for (const { conn } of rConns) {
    await conn.query(
      'CHANGE MASTER TO master_host = ?, master_port = ?, master_user = ?, master_password = ?, ' +
        'master_connect_retry = 1, master_use_gtid = slave_pos',
      [HOST, primary.port, REPL_USER, REPL_PASSWORD],
    );
    await conn.query('START SLAVE');
  }
  await waitGtid(pConn, rConns, 60_000);
  await Promise.all(conns.splice(0).map((c) => c.end()));
}

/**
 * Starts a primary, `replicas` (default 2) GTID replicas and a memcached, all
 * under a fresh temp dir, on free 127.0.0.1 ports, and creates the accounts.
 */
export async function startTopology(opts?: {
  replicas?: number;
  baseDir?: string;
  log?: (m: string) => void;
}): Promise<TopologyInfo> {
  const log = opts?.log ?? defaultLog;
  const t0 = Date.now();
  const nReplicas = opts?.replicas ?? 2;
  let baseDir: string;
  if (opts?.baseDir !== undefined) {
    baseDir = path.resolve(opts.baseDir);
    await fs.mkdir(baseDir, { recursive: true });
  } else {
    baseDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-topo-'));
  }
  log(`base dir ${baseDir}`);

  const started: ServerInfo[] = [];
  let memcached: { host: string; port: number; pid: number } | undefined;
  const conns: Conn[] = [];
  try {
    const templateDir = await createTemplate(path.join(baseDir, 'template'));
    log(`template datadir ready (${Date.now() - t0} ms)`);

    const ports = await getFreePorts(nReplicas + 1);
    const specs = [
      { name: 'primary', serverId: 1, port: ports[0], readOnly: false },
      ...Array.from({ length: nReplicas }, (_, i) => ({
        name: `replica${i + 1}`,
        serverId: i + 2,
        port: ports[i + 1],
        readOnly: true,
      })),
    ];
    const memcachedP = startMemcached(path.join(baseDir, 'memcached')).then((m) => {
      memcached = m;
      return m;
    });
    // allSettled: on failure every in-flight start has finished before the cleanup below.
    const settled = await Promise.allSettled([
      ...specs.map(async (spec) => {
        // Ports were allocated together so they are distinct; a fresh one is picked
        // if the bind races with another process.
        const s = await startRawMariaDB({ ...spec, portIsHint: true, baseDir, templateDir });
        started.push(s);
        return s;
      }),
      memcachedP,
    ]);
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    const servers = specs.map((spec) => started.find((s) => s.name === spec.name) as ServerInfo);
    const primary = servers[0];
    const replicas = servers.slice(1);
    log(`mariadbd x${servers.length} + memcached up (${Date.now() - t0} ms)`);

    await provisionReplication(primary, replicas, conns);

    const topo: TopologyInfo = {
      baseDir,
      templateDir,
      primary,
      replicas,
      memcached: memcached as { host: string; port: number; pid: number },
      rootUser: ROOT_USER,
      rootPassword: ROOT_PASSWORD,
      users: TEST_USERS.map((u) => ({ name: u.name, password: u.password })),
    };
    // Sanity: the replicated root password works over TCP everywhere.
    for (const s of servers) {
      const c = await connectRoot(s, ROOT_PASSWORD);
      await c.end();
    }
    log(
      `topology ready in ${Date.now() - t0} ms: primary :${primary.port}, replicas ${replicas
        .map((r) => `:${r.port}`)
        .join(' ')}, memcached :${topo.memcached.port}`,
    );
    return topo;
  } catch (e) {
    await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
    await Promise.all(started.map((s) => stopMariaDB(s, { signal: 'SIGKILL' }).catch(() => undefined)));
    if (memcached) await killAndWait(memcached.pid, 'memcached', 'SIGKILL', 5000).catch(() => undefined);
    await killStrays(baseDir).catch(() => undefined);
    await fs.rm(baseDir, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}

/** Finds `server.json` files (any depth ≤ 3) under baseDir: servers started there, incl. extras. */
async function findServerMetas(dir: string, depth = 0): Promise<ServerMeta[]> {
  if (depth > 3) return [];
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: ServerMeta[] = [];
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === 'server.json') {
      try {
        out.push(JSON.parse(await fs.readFile(p, 'utf8')) as ServerMeta);
      } catch {
        /* ignore */
      }
    } else if (e.isDirectory() && e.name !== 'data' && e.name !== 'template') {
      out.push(...(await findServerMetas(p, depth + 1)));
    }
  }
  return out;
}

/** Stops every mariadbd whose server.json lives under baseDir (covers restarts done by other processes). */
async function killStrays(baseDir: string): Promise<void> {
  const metas = await findServerMetas(baseDir);
  await Promise.all(
    metas.map(async (m) => {
      const s: ServerInfo = { ...m, host: HOST, pid: 0 };
      await stopMariaDB(s, { signal: 'SIGTERM' }).catch(() => undefined);
      if (path.dirname(m.socket) !== path.dirname(m.dataDir)) await fs.rm(m.socket, { force: true }).catch(() => undefined);
    }),
  );
}

/** Stops every process of the topology (SIGTERM, SIGKILL after a few seconds) and removes baseDir. */
export async function stopTopology(t: TopologyInfo): Promise<void> {
  const servers = [t.primary, ...t.replicas];
  const errors: unknown[] = [];
  // Replicas first so they don't spin on reconnecting to a vanished primary.
  const stopFast = async (s: ServerInfo): Promise<void> => {
    const pid = await currentPid(s);
    if (pid !== undefined) await killAndWait(pid, `--datadir=${s.dataDir}`, 'SIGTERM', 5000);
  };
  await Promise.all(servers.slice(1).map((s) => stopFast(s).catch((e: unknown) => errors.push(e))));
  await stopFast(t.primary).catch((e: unknown) => errors.push(e));
  await killAndWait(t.memcached.pid, 'memcached', 'SIGTERM', 3000).catch((e: unknown) => errors.push(e));
  await killStrays(t.baseDir).catch((e: unknown) => errors.push(e));
  await fs.rm(t.baseDir, { recursive: true, force: true });
  if (errors.length > 0) throw new Error(`stopTopology: ${errors.map(describeError).join('; ')}`);
}

// ---------------------------------------------------------------------------
// extra replication sets (tests that promote or kill servers)

/** A primary and its GTID replicas, like the topology but without memcached. */
export type ReplicationSetInfo = Omit<TopologyInfo, 'memcached'>;

/**
 * Starts a separate primary + `replicas` GTID replicas (same options and
 * accounts as the topology: root/rootpw, app, other, limited, nopw, wc_test)
 * in `<baseDir>/primary`, `<baseDir>/replica1`, ... on free ports. Pass the
 * shared topology's `templateDir` to skip mariadb-install-db. The servers are
 * owned by this process (killed when it exits). `baseDir` must not already
 * hold servers of those names.
 */
export async function startReplicationSet(opts: {
  baseDir: string;
  templateDir: string;
  replicas: number;
  log?: (m: string) => void;
}): Promise<ReplicationSetInfo> {
  const log = opts.log ?? defaultLog;
  const t0 = Date.now();
  const baseDir = path.resolve(opts.baseDir);
  await fs.mkdir(baseDir, { recursive: true });
  const started: ServerInfo[] = [];
  const conns: Conn[] = [];
  try {
    const ports = await getFreePorts(opts.replicas + 1);
    const specs = [
      { name: 'primary', serverId: 1, port: ports[0], readOnly: false },
      ...Array.from({ length: opts.replicas }, (_, i) => ({
        name: `replica${i + 1}`,
        serverId: i + 2,
        port: ports[i + 1],
        readOnly: true,
      })),
    ];
    const settled = await Promise.allSettled(
      specs.map(async (spec) => {
        const s = await startRawMariaDB({ ...spec, portIsHint: true, baseDir, templateDir: opts.templateDir });
        started.push(s);
        return s;
      }),
    );
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    const servers = specs.map((spec) => started.find((s) => s.name === spec.name) as ServerInfo);
    const primary = servers[0];
    const replicas = servers.slice(1);

    await provisionReplication(primary, replicas, conns);
    for (const s of servers) {
      const c = await connectRoot(s, ROOT_PASSWORD);
      await c.end();
    }
    log(
      `replication set ready in ${Date.now() - t0} ms: primary :${primary.port}, replicas ${replicas
        .map((r) => `:${r.port}`)
        .join(' ')}`,
    );
    return {
      baseDir,
      templateDir: opts.templateDir,
      primary,
      replicas,
      rootUser: ROOT_USER,
      rootPassword: ROOT_PASSWORD,
      users: TEST_USERS.map((u) => ({ name: u.name, password: u.password })),
    };
  } catch (e) {
    await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
    await Promise.all(started.map((s) => stopMariaDB(s, { signal: 'SIGKILL' }).catch(() => undefined)));
    throw e;
  }
}

/**
 * Stops the servers of a replication set (replicas first; a SIGSTOPped server
 * is continued first) and removes their directories. `baseDir` itself is left
 * to the caller.
 */
export async function stopReplicationSet(set: ReplicationSetInfo): Promise<void> {
  const errors: unknown[] = [];
  const stopOne = async (s: ServerInfo): Promise<void> => {
    const pid = await currentPid(s);
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        /* gone */
      }
      await killAndWait(pid, `--datadir=${s.dataDir}`, 'SIGTERM', 5000);
    }
    if (path.dirname(s.socket) !== path.dirname(s.dataDir)) await fs.rm(s.socket, { force: true }).catch(() => undefined);
    await fs.rm(path.dirname(s.dataDir), { recursive: true, force: true });
  };
  await Promise.all(set.replicas.map((s) => stopOne(s).catch((e: unknown) => errors.push(e))));
  await stopOne(set.primary).catch((e: unknown) => errors.push(e));
  if (errors.length > 0) throw new Error(`stopReplicationSet: ${errors.map(describeError).join('; ')}`);
}
