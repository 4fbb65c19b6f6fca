/**
 * Issue 17's demand, with the real application: MediaWiki 1.39's own installer
 * (Debian package `mediawiki`, maintenance/install.php) runs through the
 * read/write split with the default routing configuration and no rule, and
 * succeeds. Its "is the database writable" check
 * (DatabaseMysqlBase::serverIsReadOnly, `SELECT @@GLOBAL.read_only AS Value`,
 * with MediaWiki's trace comment after the SELECT) is answered by the primary,
 * as `server_state`: a replica would answer 1, and MediaWiki would then refuse
 * every write ("The primary database server is running in read-only mode.").
 *
 * The wiki's account is a hosting-style one: all privileges on its own fresh
 * database only, created on the primary and replicated. Needs Debian's
 * `mediawiki` package (scripts/install-deps.sh installs it).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerInfo } from '../scripts/topology.js';
import { waitForReplication } from '../scripts/topology.js';
import { plainUser } from '../src/config/accounts.js';
import { routingConfig, startProxy, type RunningProxy } from './proxy-harness.js';
import { runCommand, type RunResult } from './run-command.js';
import { getTopology } from './topology-context.js';

const topo = getTopology();
type Row = mysql.RowDataPacket;

const INSTALL_PHP = '/usr/share/mediawiki/maintenance/install.php';
const DB = 'wc_mediawiki';
const WIKI_USER = 'wc_wiki';
const WIKI_PASSWORD = 'wc_wiki_pw';
/** MediaWiki 1.39's writable check, as DatabaseMysqlBase::serverIsReadOnly sends it (trace comment after the verb). */
const READ_ONLY_CHECK = 'SELECT /* Wikimedia\\Rdbms\\DatabaseMysqlBase::serverIsReadOnly  */ @@GLOBAL.read_only AS Value';
/** Tables the installer creates that every later page view needs. */
const CORE_TABLES = ['page', 'revision', 'slots', 'content', 'text', 'user', 'actor', 'comment', 'site_stats', 'updatelog'];

const asRoot = (s: ServerInfo, database?: string) =>
  mysql.createConnection({ host: '127.0.0.1', port: s.port, user: 'root', password: topo.rootPassword, database });

function transcript(r: RunResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}${r.timedOut ? ' TIMED OUT' : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** The general log's entries of the wiki account on `conn`'s server whose text contains `needle`. */
async function wikiStatements(conn: mysql.Connection, needle: string): Promise<number> {
  const [rows] = await conn.query<Row[]>(
    "SELECT COUNT(*) AS n FROM mysql.general_log WHERE command_type = 'Query' AND user_host LIKE ? AND CONVERT(argument USING utf8mb4) LIKE ?",
    [`${WIKI_USER}[${WIKI_USER}]%`, `%${needle}%`],
  );
  return Number(rows[0].n);
}

describe('the real MediaWiki 1.39 installer through the read/write split', () => {
  const servers = [topo.primary, ...topo.replicas];
  let px: RunningProxy;
  let roots: mysql.Connection[] = [];
  let confDir: string;
  let install: RunResult;
  let installMs = 0;

  beforeAll(async () => {
    if (!existsSync(INSTALL_PHP)) throw new Error(`${INSTALL_PHP} not found: install Debian's mediawiki package (scripts/install-deps.sh does)`);
    roots = await Promise.all(servers.map((s) => asRoot(s)));
    const [primary] = roots;
    await primary.query(`DROP DATABASE IF EXISTS \`${DB}\``);
    await primary.query('DROP USER IF EXISTS ?@?', [WIKI_USER, '%']);
    await primary.query(`CREATE DATABASE \`${DB}\``);
    await primary.query('CREATE USER ?@? IDENTIFIED BY ?', [WIKI_USER, '%', WIKI_PASSWORD]);
    await primary.query(`GRANT ALL PRIVILEGES ON \`${DB}\`.* TO ?@?`, [WIKI_USER, '%']);
    await waitForReplication(topo);
    // The general log of every server tells which one ran the wiki's statements.
    // (TRUNCATE is binlogged: on a replica it would make a local GTID and break strict-mode replication.)
    for (const r of roots) {
      await r.query("SET GLOBAL log_output = 'TABLE'");
      await r.query('SET SESSION sql_log_bin = 0');
      await r.query('TRUNCATE TABLE mysql.general_log');
      await r.query('SET SESSION sql_log_bin = 1');
      await r.query('SET GLOBAL general_log = 1');
    }

    // The default routing configuration: no rule, no cache; the wiki's account is just one more proxy user.
    px = await startProxy(topo, {
      ...routingConfig(topo),
      users: [...topo.users.map((u) => plainUser(u.name, u.password)), plainUser('root', topo.rootPassword), plainUser(WIKI_USER, WIKI_PASSWORD)],
    });

    // LocalSettings.php goes to a temp dir (never /etc/mediawiki); the passwords go in files, not argv.
    confDir = await mkdtemp(path.join(os.tmpdir(), 'wc-mediawiki-'));
    await writeFile(path.join(confDir, 'dbpass'), WIKI_PASSWORD);
    await writeFile(path.join(confDir, 'adminpass'), 'Wirecache-Admin-2026!');
    const started = Date.now();
    install = await runCommand(
      'php',
      [
        INSTALL_PHP,
        '--dbtype=mysql',
        `--dbserver=127.0.0.1:${px.port}`,
        `--dbname=${DB}`,
        `--installdbuser=${WIKI_USER}`,
        `--installdbpass=${WIKI_PASSWORD}`,
        `--dbuser=${WIKI_USER}`,
        `--dbpassfile=${path.join(confDir, 'dbpass')}`,
        `--passfile=${path.join(confDir, 'adminpass')}`,
        '--scriptpath=/w',
        `--confpath=${confDir}`,
        '--server=http://localhost',
        '--lang=en',
        'Wirecache Wiki',
        'Admin',
      ],
      { timeoutMs: 240_000, cwd: confDir },
    );
    installMs = Date.now() - started;
    for (const r of roots) await r.query('SET GLOBAL general_log = 0');
  }, 300_000);

  afterAll(async () => {
    await px?.stop();
    const primary = roots[0];
    if (primary) {
      await primary.query(`DROP DATABASE IF EXISTS \`${DB}\``).catch(() => undefined);
      await primary.query('DROP USER IF EXISTS ?@?', [WIKI_USER, '%']).catch(() => undefined);
      await waitForReplication(topo).catch(() => undefined);
    }
    for (const r of roots) {
      await r.query('SET GLOBAL general_log = 0').catch(() => undefined);
      await r.query('SET SESSION sql_log_bin = 0').catch(() => undefined);
      await r.query('TRUNCATE TABLE mysql.general_log').catch(() => undefined);
      await r.query("SET GLOBAL log_output = 'FILE'").catch(() => undefined);
    }
    await Promise.all(roots.map((r) => r.end().catch(() => undefined)));
    if (confDir) await rm(confDir, { recursive: true, force: true });
  });

  it('installs with the default configuration and no rule', async () => {
    expect(install.timedOut, transcript(install)).toBe(false);
    expect(install.code, transcript(install)).toBe(0);
    expect(install.stdout, transcript(install)).toMatch(/Creating tables[\s\S]*done/i);
    expect(px.config.cache).toBeNull();
    const settings = await readFile(path.join(confDir, 'LocalSettings.php'), 'utf8');
    expect(settings).toContain(`$wgDBserver = "127.0.0.1:${px.port}";`);
    expect(settings).toContain(`$wgDBname = "${DB}";`);
    console.log(`mediawiki install.php through the split: ${installMs} ms`);
  });

  it("answered the installer's writable check from the primary, as server_state", async () => {
    const serverState = px.metrics.routing.routedCount('primary', 'primary', 'server_state');
    expect(serverState).toBeGreaterThan(0);
    const [primary, ...replicas] = roots;
    // Every one of MediaWiki's checks (one per primary handle its load balancer hands out) ran on the primary, none on a replica.
    const checksOnPrimary = await wikiStatements(primary, 'serverIsReadOnly');
    expect(checksOnPrimary).toBeGreaterThan(0);
    expect(serverState).toBeGreaterThanOrEqual(checksOnPrimary);
    for (const r of replicas) expect(await wikiStatements(r, '@@GLOBAL.read_only')).toBe(0);
    // ... while the split did send the wiki's ordinary reads (MediaWiki comments each after its verb) to the replicas.
    const replicaReads = await Promise.all(replicas.map((r) => wikiStatements(r, 'SELECT /* ')));
    expect(replicaReads.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it("created the wiki on the primary, and its tables, admin and main page reached the replicas", async () => {
    await waitForReplication(topo);
    const state = async (conn: mysql.Connection) => {
      const [tables] = await conn.query<Row[]>('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME', [DB]);
      const [users] = await conn.query<Row[]>(`SELECT CONVERT(user_name USING utf8mb4) AS name FROM \`${DB}\`.user`);
      const [pages] = await conn.query<Row[]>(`SELECT page_namespace AS ns, CONVERT(page_title USING utf8mb4) AS title FROM \`${DB}\`.page`);
      return { tables: tables.map((r) => String(r.t)), users: users.map((r) => r.name), pages: pages.map((r) => ({ ns: r.ns, title: r.title })) };
    };
    const [primary, ...replicas] = roots;
    const onPrimary = await state(primary);
    expect(onPrimary.tables).toEqual(expect.arrayContaining(CORE_TABLES));
    expect(onPrimary.tables.length).toBeGreaterThan(50);
    expect(onPrimary.users).toContain('Admin');
    expect(onPrimary.pages).toContainEqual({ ns: 0, title: 'Main_Page' });
    for (const r of replicas) expect(await state(r)).toEqual(onPrimary);
  });

  it("leaves MediaWiki's own verdict 'writable' through the split, where a replica's answer makes it refuse every write", async () => {
    // MediaWiki itself, configured by the LocalSettings.php its installer just wrote: the load balancer's
    // read-only reason (from serverIsReadOnly on its primary handle) and a write through that handle.
    const verdict = async (settings: string) => {
      const code =
        "$lb = MediaWiki\\MediaWikiServices::getInstance()->getDBLoadBalancer(); $out = ['reason' => $lb->getReadOnlyReason()]; " +
        "try { $lb->getConnection(DB_PRIMARY)->insert('updatelog', ['ul_key' => 'wirecache-probe-' . mt_rand()], 'wirecache'); $out['write'] = 'ok'; } " +
        "catch (Throwable $e) { $out['write'] = get_class($e); } echo 'VERDICT=' . json_encode($out) . PHP_EOL;";
      const r = await runCommand('php', ['/usr/share/mediawiki/maintenance/eval.php', `--conf=${settings}`], { input: `${code}\n`, timeoutMs: 60_000, cwd: confDir });
      const m = /VERDICT=(\{.*\})/.exec(r.stdout);
      expect(m, transcript(r)).not.toBeNull();
      return JSON.parse(m![1]) as { reason: string | false; write: string };
    };
    const settings = path.join(confDir, 'LocalSettings.php');
    expect(await verdict(settings)).toEqual({ reason: false, write: 'ok' });
    // The same wiki whose "primary" answers the check as a replica does (what a proxy that sent the check to a
    // replica would show it); here the replica itself stands in for such a proxy, wirecache has no switch for it.
    const onReplica = path.join(confDir, 'LocalSettings.replica.php');
    await writeFile(onReplica, (await readFile(settings, 'utf8')).replace(`"127.0.0.1:${px.port}"`, `"127.0.0.1:${topo.replicas[0].port}"`));
    expect(await verdict(onReplica)).toEqual({ reason: 'The primary database server is running in read-only mode.', write: 'Wikimedia\\Rdbms\\DBReadOnlyError' });
  });

  it('would have failed where that read goes to a replica: the check answers 0 through the split, 1 on a replica', async () => {
    const value = async (port: number) => {
      const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: WIKI_USER, password: WIKI_PASSWORD, database: DB });
      try {
        const [rows] = await conn.query<Row[]>(READ_ONLY_CHECK);
        return Number(rows[0].Value);
      } finally {
        await conn.end();
      }
    };
    const before = px.metrics.routing.routedCount('primary', 'primary', 'server_state');
    expect(await value(px.port)).toBe(0);
    expect(px.metrics.routing.routedCount('primary', 'primary', 'server_state')).toBe(before + 1);
    expect(await value(topo.primary.port)).toBe(0);
    for (const r of topo.replicas) expect(await value(r.port)).toBe(1);
  });
});
