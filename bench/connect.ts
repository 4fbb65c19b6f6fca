/**
 * Connect, one point select, disconnect: what PHP does on every request.
 * Connections per second directly on MariaDB, through wirecache with its
 * login pool and multiplexing (the default), with the pool but without
 * multiplexing, and without the pool (pool.max_idle: 0), in one run, rounds alternating so machine noise hits
 * every endpoint alike. Reported as ratios to direct, with p50/p95 of one
 * connect+select+disconnect, and the CPU each connection cost the proxy,
 * MariaDB and the clients (this process: on a 2-core machine what the
 * clients need bounds every endpoint's rate). Every wirecache has a monitor section (the root account), as a
 * production setup would.
 *
 *   npm run build && npx tsx bench/connect.ts
 *
 * Environment:
 *   BENCH_SECONDS      length of every measured run (default 8)
 *   BENCH_ROUNDS       rounds; figures are medians over them (default 3)
 *   BENCH_CONCURRENCY  clients connecting at once (default 8)
 *   BENCH_WORKERS      also an endpoint wirecache_workers: the default pool with `workers:` this (a count or auto)
 *   BENCH_BASE_CLI     also an endpoint base: another build's dist/cli.js (e.g. an older commit's), default configuration
 *   BENCH_OUT          if set, the results are also written there as JSON
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { RawClient } from '../test/raw-client.js';
import { getFreePorts, startTopology, stopTopology } from '../scripts/topology.js';
import { baseCliFromEnv, cpuSeconds, DB, envInt, fmtRatio, gitInfo, HOST, log, machineInfo, median, PASSWORD, ROOT, runMain, startWirecache, stopChild, table, USER, wirecacheConfigYaml, workersLines, writeResults } from './common.js';

interface Run {
  endpoint: string;
  round: number;
  perSecond: number;
  p50Ms: number;
  p95Ms: number;
  errors: number;
  /** CPU per connection (user + system, µs) of the proxy (null for direct), of mariadbd, and of the clients (this process). */
  proxyUs: number | null;
  serverUs: number | null;
  clientUs: number;
}

/** `concurrency` loops of connect, select, disconnect for `seconds`. */
async function measure(port: number, seconds: number, concurrency: number): Promise<Omit<Run, 'endpoint' | 'round' | 'proxyUs' | 'serverUs' | 'clientUs'>> {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async (w: number): Promise<void> => {
    let i = 0;
    while (performance.now() < end) {
      const started = performance.now();
      try {
        // A light client of our own (test/raw-client.ts): the load generator must not be what is measured.
        const c = await RawClient.login(port, USER, PASSWORD, { database: DB });
        await c.query(`SELECT id, k FROM bench_items WHERE id = ${((w * 7919 + i++) % 1000) + 1}`);
        await c.quit();
        latencies.push(performance.now() - started);
      } catch {
        errors++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { perSecond: latencies.length / elapsed, p50Ms: at(0.5), p95Ms: at(0.95), errors };
}

async function main(): Promise<number> {
  const seconds = envInt('BENCH_SECONDS', 8, 1);
  const rounds = envInt('BENCH_ROUNDS', 3, 1);
  const concurrency = envInt('BENCH_CONCURRENCY', 8, 1);
  const cli = path.join(ROOT, 'dist', 'cli.js');
  const topo = await startTopology({ replicas: 0 });
  const children: Awaited<ReturnType<typeof startWirecache>>['child'][] = [];
  try {
    const root = await mysql.createConnection({ host: HOST, port: topo.primary.port, user: topo.rootUser, password: topo.rootPassword, multipleStatements: true });
    await root.query(`CREATE TABLE IF NOT EXISTS ${DB}.bench_items (id INT PRIMARY KEY, k INT NOT NULL);
      INSERT IGNORE INTO ${DB}.bench_items SELECT seq, seq * 7 FROM ${DB}.seq_1_to_1000`);
    await root.end();
    const endpoints: { name: string; port: number; pid: number | undefined }[] = [{ name: 'direct', port: topo.primary.port, pid: undefined }];
    // As in production: a monitor account, which also reads the primary's views and stored functions (a
    // connection whose client read only tables then goes to the next client without the pool's reset).
    const monitor = ['monitor:', `  user: ${topo.rootUser}`, `  password: "${topo.rootPassword}"`];
    const baseCli = baseCliFromEnv();
    for (const [name, extra, build] of [
      ['wirecache', monitor],
      ['wirecache_no_mux', [...monitor, 'pool:', '  multiplexing: false']],
      ['wirecache_no_pool', [...monitor, 'pool:', '  max_idle: 0']],
      // BENCH_WORKERS: also the default pool with that many worker threads.
      ...(workersLines().length > 0 ? [['wirecache_workers', [...monitor, ...workersLines()]] as const] : []),
      // BENCH_BASE_CLI: another build with the default configuration, measured in the same rounds.
      ...(baseCli ? [['base', monitor, baseCli] as const] : []),
    ] as const) {
      const [port] = await getFreePorts(1);
      const dir = path.join(topo.baseDir, name);
      await fs.mkdir(dir, { recursive: true });
      const configFile = path.join(dir, 'wirecache.yaml');
      await fs.writeFile(configFile, wirecacheConfigYaml({ port, adminPort: 0, primary: topo.primary, extra: [...extra] }));
      const started = startWirecache({ cli: build ?? cli, configFile, logFile: path.join(dir, 'wirecache.log'), port, label: name });
      children.push(started.child);
      await started.ready;
      endpoints.push({ name, port, pid: started.child.pid });
    }
    for (const e of endpoints) await measure(e.port, 1, concurrency); // warm-up (the pool fills)
    const runs: Run[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = endpoints.map((_, i) => endpoints[(i + round) % endpoints.length]);
      for (const e of order) {
        const cpuBefore = [cpuSeconds(e.pid), cpuSeconds(topo.primary.pid)];
        const clientBefore = process.cpuUsage();
        const m = await measure(e.port, seconds, concurrency);
        const clientCpu = process.cpuUsage(clientBefore);
        const cpuAfter = [cpuSeconds(e.pid), cpuSeconds(topo.primary.pid)];
        const perConnUs = (i: number): number | null => {
          const a = cpuBefore[i];
          const b = cpuAfter[i];
          return a === null || b === null ? null : ((b - a) * 1e6) / (m.perSecond * seconds);
        };
        const proxyUs = perConnUs(0);
        const serverUs = perConnUs(1);
        // The clients run in this process: what one connection costs the load generator itself.
        const clientUs = (clientCpu.user + clientCpu.system) / (m.perSecond * seconds);
        runs.push({ endpoint: e.name, round, ...m, proxyUs, serverUs, clientUs });
        const cpu = `CPU per connection: ${proxyUs === null ? '' : `proxy ${proxyUs.toFixed(0)} µs, `}mariadbd ${serverUs?.toFixed(0) ?? '?'} µs, clients ${clientUs.toFixed(0)} µs`;
        log(`round ${round + 1}/${rounds} ${e.name}: ${m.perSecond.toFixed(0)} connections/s, p50 ${m.p50Ms.toFixed(2)} ms, p95 ${m.p95Ms.toFixed(2)} ms, ${m.errors} errors; ${cpu}`);
      }
    }
    const of = (name: string) => runs.filter((r) => r.endpoint === name);
    const direct = median(of('direct').map((r) => r.perSecond));
    const rows = endpoints.map((e) => {
      const rs = of(e.name);
      const perSecond = median(rs.map((r) => r.perSecond));
      const us = (pick: (r: Run) => number | null): string => {
        const values = rs.map(pick).filter((v): v is number => v !== null);
        return values.length > 0 ? median(values).toFixed(0) : '-';
      };
      return [e.name, perSecond.toFixed(0), median(rs.map((r) => r.p50Ms)).toFixed(2), median(rs.map((r) => r.p95Ms)).toFixed(2), String(rs.reduce((n, r) => n + r.errors, 0)), fmtRatio(perSecond / direct), us((r) => r.proxyUs), us((r) => r.serverUs), us((r) => r.clientUs)];
    });
    console.log(`\nconnect + point select + disconnect (a raw protocol client), ${concurrency} clients at once, ${seconds} s x ${rounds} rounds (medians)\n`);
    console.log(table(['endpoint', 'connections/s', 'p50 ms', 'p95 ms', 'errors', 'vs direct', 'proxy µs/conn', 'mariadbd µs/conn', 'clients µs/conn'], rows, [false, true, true, true, true, true, true, true, true]));
    if (process.env.BENCH_OUT) await writeResults(process.env.BENCH_OUT, { git: gitInfo(), machine: machineInfo(), seconds, rounds, concurrency, runs });
    return runs.some((r) => r.errors > 0) ? 1 : 0;
  } finally {
    for (const c of children) await stopChild(c);
    await stopTopology(topo);
  }
}

runMain(main);
