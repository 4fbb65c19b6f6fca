/**
 * The demo: a throw-away MariaDB primary with two GTID replicas and a
 * memcached (scripts/topology.ts), and wirecache in front of them: writes to
 * the primary, reads spread over the replicas.
 * Ctrl-C stops wirecache and removes the topology.
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

function demoConfig(topo: TopologyInfo, port: number, adminPort: number, pair: { cert: string; key: string }): string {
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
log: { level: info }
`;
}

let topo: TopologyInfo | undefined;
let app: RunningApp | undefined;
let stopping = false;

async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`[demo] ${signal}: stopping wirecache and the topology\n`);
  try {
    await app?.stop();
    if (topo) await stopTopology(topo);
    process.exit(0);
  } catch (err) {
    process.stderr.write(`[demo] stop failed: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));

topo = await startTopology();
const port = await portOrZero(Number(process.env.WIRECACHE_DEMO_PORT ?? 6033));
const adminPort = await portOrZero(Number(process.env.WIRECACHE_DEMO_ADMIN_PORT ?? 9104));
const configFile = path.join(topo.baseDir, 'wirecache.yaml');
await fs.writeFile(configFile, demoConfig(topo, port, adminPort, selfSignedPair(topo.baseDir)));
app = await startApp(loadConfig(configFile));
const { port: mysqlPort } = app.mysqlAddress;
const admin = app.adminAddress;
process.stderr.write(`
[demo] wirecache is running in front of the demo primary and its two replicas (config: ${configFile})
[demo]   mariadb -h127.0.0.1 -P${mysqlPort} -uapp -papp_pw wc_test
[demo]   TLS is on (a self-signed pair made for the demo): add --ssl --ssl-verify-server-cert=0
[demo]   curl http://${admin.host}:${admin.port}/metrics        curl http://${admin.host}:${admin.port}/cache
[demo]   reads go to the replicas: mariadb ... -e "SELECT @@server_id" (1 is the primary); see curl http://${admin.host}:${admin.port}/servers
[demo]   curl 'http://${admin.host}:${admin.port}/explain?sql=SELECT+1' tells where a statement would go and whether it is cached
[demo]   the cache (memory in front of the demo memcached) serves hinted queries: mariadb -c ... -e "/*qc=on*/ SELECT 1" (-c keeps comments)
[demo]   primary :${topo.primary.port}, replicas ${topo.replicas.map((r) => `:${r.port}`).join(' ')}, memcached :${topo.memcached.port}
[demo] Ctrl-C stops everything and removes ${topo.baseDir}
`);
