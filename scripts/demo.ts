/**
 * The demo: a throw-away MariaDB primary with two GTID replicas and a
 * memcached (scripts/topology.ts), and wirecache in front of them: writes to
 * the primary, reads spread over the replicas.
 * Ctrl-C (SIGINT), SIGTERM and SIGQUIT stop wirecache and remove the topology
 * (servers, memcached, the temporary folder); SIGHUP reloads the config.
 *
 *   bash scripts/demo.sh          (installs what it needs, then runs this)
 *   npx tsx scripts/demo.ts       (when dependencies are already installed)
 *
 * Ports: WIRECACHE_DEMO_PORT (default 6033) and WIRECACHE_DEMO_ADMIN_PORT
 * (default 9104); a port in use is replaced by a free one.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { startApp, type RunningApp } from '../src/app.js';
import { loadConfig } from '../src/config/load.js';
import { startTopology, stopTopology, type TopologyInfo } from './topology.js';

async function portOrZero(port: number): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(0));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(port)));
  });
}

/** A self-signed certificate for the demo's TLS listener (clients connect with --ssl, without verifying it). */
function selfSignedPair(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'demo-cert.pem');
  const key = path.join(dir, 'demo-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', '/CN=wirecache-demo'], { stdio: 'ignore' });
  return { cert, key };
}

function demoConfig(topo: TopologyInfo, port: number, adminPort: number, memcachedPort: number, pair: { cert: string; key: string }): string {
  return `# Written by scripts/demo.ts for the demo topology in ${topo.baseDir}
listen: { host: 127.0.0.1, port: ${port} }
tls: { cert_file: ${pair.cert}, key_file: ${pair.key} }
admin: { host: 127.0.0.1, port: ${adminPort} }
backends:
  - { name: primary, host: 127.0.0.1, port: ${topo.primary.port}, role: primary }
${topo.replicas.map((r) => `  - { name: ${r.name}, host: 127.0.0.1, port: ${r.port}, role: replica }`).join('\n')}
users:
${topo.users.map((u) => `  - { name: ${u.name}, password: "${u.password}" }`).join('\n')}
monitor: { user: ${topo.rootUser}, password: "${topo.rootPassword}" }
routing: { max_replication_lag: 5, consistency: session }
cache:
  mode: hinted
  storage: tiered
  memcached: { servers: ["127.0.0.1:${topo.memcached.port}"] }
# The memcached protocol in front of wc_test.sessions (PHP session handlers point here).
memcached_api:
  listen: { host: 127.0.0.1, port: ${memcachedPort} }
  user: ${topo.rootUser}
  password: "${topo.rootPassword}"
  containers:
    - { name: sessions, table: wc_test.sessions, key_column: id, value_columns: [value], flags_column: flags, cas_column: cas, expiry_column: expiry }
log: { level: info }
`;
}

/** The demo's tables: demo_items with a few rows, so that a cached read and its invalidation by a write can be seen at once. */
async function seedDemoTable(t: TopologyInfo): Promise<void> {
  const conn = await mysql.createConnection({ host: '127.0.0.1', port: t.primary.port, user: t.rootUser, password: t.rootPassword, multipleStatements: true });
  try {
    await conn.query(`
      CREATE TABLE IF NOT EXISTS wc_test.demo_items (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL, price DECIMAL(8,2) NOT NULL);
      CREATE TABLE IF NOT EXISTS wc_test.sessions (id VARBINARY(250) PRIMARY KEY, value MEDIUMBLOB NOT NULL,
        flags INT UNSIGNED NOT NULL DEFAULT 0, cas BIGINT UNSIGNED NOT NULL DEFAULT 0, expiry INT UNSIGNED NOT NULL DEFAULT 0);
      REPLACE INTO wc_test.demo_items VALUES (1, 'apple', 0.50), (2, 'bread', 2.20), (3, 'cheese', 7.90);`);
  } finally {
    await conn.end();
  }
}

let topoStarting: Promise<TopologyInfo | undefined> | undefined;
let app: RunningApp | undefined;
let stopping = false;

/** Stops wirecache, the servers and memcached, and removes the temporary folder; also when a signal comes while they start. */
async function stop(why: string, code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`[demo] ${why}: stopping wirecache and the topology\n`);
  let failed = false;
  try {
    await app?.stop();
  } catch (err) {
    failed = true;
    process.stderr.write(`[demo] stopping wirecache failed: ${(err as Error).message}\n`);
  }
  try {
    const topo = await topoStarting;
    if (topo) await stopTopology(topo);
  } catch (err) {
    failed = true;
    process.stderr.write(`[demo] stopping the topology failed: ${(err as Error).message}\n`);
  }
  process.exit(failed ? 1 : code);
}

// Every signal that would end the process stops everything first; SIGHUP reloads the config, as `wirecache` does.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const) process.on(signal, () => void stop(signal, 0));
process.on('SIGHUP', () => {
  if (!app || stopping) {
    process.stderr.write('[demo] SIGHUP before wirecache is running: ignored\n');
    return;
  }
  process.stderr.write('[demo] SIGHUP: reloading the config\n');
  void app.reload();
});
process.on('uncaughtException', (err) => {
  process.stderr.write(`[demo] ${err.stack ?? err.message}\n`);
  void stop('uncaught exception', 1);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`[demo] ${(err as Error)?.stack ?? String(err)}\n`);
  void stop('unhandled rejection', 1);
});

try {
  topoStarting = startTopology();
  const topo = (await topoStarting)!;
  if (stopping) await new Promise(() => {}); // a signal came while the servers started: stop() cleans up and exits
  await seedDemoTable(topo);
  const port = await portOrZero(Number(process.env.WIRECACHE_DEMO_PORT ?? 6033));
  const adminPort = await portOrZero(Number(process.env.WIRECACHE_DEMO_ADMIN_PORT ?? 9104));
  const memcachedPort = await portOrZero(Number(process.env.WIRECACHE_DEMO_MEMCACHED_PORT ?? 11211));
  const configFile = path.join(topo.baseDir, 'wirecache.yaml');
  await fs.writeFile(configFile, demoConfig(topo, port, adminPort, memcachedPort, selfSignedPair(topo.baseDir)));
  app = await startApp(loadConfig(configFile));
  const { port: mysqlPort } = app.mysqlAddress;
  const admin = app.adminAddress;
  const adminUrl = `http://${admin.host}:${admin.port}`;
  const client = `mariadb -c -h127.0.0.1 -P${mysqlPort} -uapp -papp_pw wc_test`;
  const mc = app.memcachedAddress as { host: string; port: number };
  const php = `php -r '$m = new Memcached; $m->addServer("127.0.0.1", ${mc.port}); $m->set("greeting", "hello"); echo $m->get("greeting"), "\\n";'`;
  process.stderr.write(`
[demo] wirecache is running in front of the demo primary and its two replicas (config: ${configFile})
[demo]   ${client}
[demo]   TLS is on (a self-signed pair made for the demo): add --ssl --ssl-verify-server-cert=0
[demo]   primary :${topo.primary.port}, replicas ${topo.replicas.map((r) => `:${r.port}`).join(' ')}, memcached :${topo.memcached.port}
[demo] Ready to paste (the table wc_test.demo_items has 3 rows; -c keeps the /*qc=on*/ hint):
  ${client} -e "/*qc=on*/ SELECT * FROM demo_items"            # run it twice: the second answer comes from the cache
  curl -s ${adminUrl}/cache                                      # hits and misses, per tier
  ${client} -e "UPDATE demo_items SET price = price + 1 WHERE id = 1"   # a write invalidates the cached result
  ${client} -e "/*qc=on*/ SELECT * FROM demo_items"            # a miss: the new price, then cached again
  ${client} -e "SELECT @@server_id"                             # reads go to the replicas (2 or 3; the primary is 1)
  curl -s ${adminUrl}/servers                                    # what the monitor sees
  curl -s '${adminUrl}/explain?sql=SELECT+*+FROM+demo_items'     # where a statement would go, and whether it is cached
  curl -s ${adminUrl}/metrics
  ${php}   # the memcached API on :${mc.port}
  ${client} -e "SELECT id, value FROM sessions"                 # ... stored in the table wc_test.sessions
  kill -HUP ${process.pid}                                       # reload the config (${configFile})
[demo] Ctrl-C stops everything and removes ${topo.baseDir}
`);
} catch (err) {
  process.stderr.write(`[demo] start failed: ${(err as Error).stack ?? (err as Error).message}\n`);
  await stop('start failed', 1);
}
