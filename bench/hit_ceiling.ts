/**
 * Cache hits against the ceiling. sysbench oltp_point_select with the text
 * protocol, every row cached, against three endpoints in one run:
 *
 *   direct     MariaDB itself
 *   ceiling    bench/hit_ceiling.mjs: a Node process that answers a text it
 *              has seen with the reply bytes it remembered, and does nothing
 *              else (no invalidation, state, TTL or statistics): what one Node
 *              event loop can give on this machine
 *   wirecache  dist/cli.js with the default config and one rule per table
 *
 * Reported: qps, the CPU each endpoint's process spends per query (user and
 * kernel), and the ratios ceiling/direct, wirecache/direct and
 * wirecache/ceiling (medians over the rounds; endpoints rotate every round).
 *
 *   npm run build && npx tsx bench/hit_ceiling.ts
 *
 * Environment:
 *   BENCH_SECONDS   --time of every measured run (default 8)
 *   BENCH_ROUNDS    rounds (default 3)
 *   BENCH_THREADS   sysbench --threads (default 8)
 *   BENCH_WORKERS   workers: of wirecache (default: the config's default)
 *   BENCH_RETRIES   re-make a run disturbed by other processes up to N times (default 2)
 *   BENCH_OUT       if set, the results are also written there as JSON
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getFreePorts, startTopology, stopTopology, type TopologyInfo } from '../scripts/topology.js';
import {
  connArgs,
  describeMeasurement,
  envInt,
  fmtRatio,
  gitInfo,
  HOST,
  log,
  machineInfo,
  measureSysbench,
  measureUndisturbed,
  median,
  ROOT,
  runMain,
  spawnTracked,
  startWirecache,
  stopChild,
  sysbenchOrThrow,
  sysbenchRunArgs,
  table,
  waitUntilQuiet,
  wirecacheConfigYaml,
  workersLines,
  writeResults,
  type Measurement,
} from './common.js';
import type { ChildProcess } from 'node:child_process';

type Endpoint = 'direct' | 'ceiling' | 'wirecache';
type Run = Omit<Measurement, 'stdout' | 'stderr'> & { endpoint: Endpoint; round: number; attempts: number };

async function waitForListener(port: number, child: ChildProcess, label: string): Promise<void> {
  const net = await import('node:net');
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${label} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: HOST, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${label} did not listen on ${port}`);
}

async function main(): Promise<number> {
  const seconds = envInt('BENCH_SECONDS', 8, 1);
  const rounds = envInt('BENCH_ROUNDS', 3, 1);
  const threads = envInt('BENCH_THREADS', 8, 1);
  const retries = envInt('BENCH_RETRIES', 2, 0);
  const tables = 4;
  const tableSize = 10_000;
  const sizeArgs = [`--tables=${tables}`, `--table-size=${tableSize}`];
  const runArgs = [...sizeArgs, `--threads=${threads}`, '--percentile=95', '--rand-type=uniform'];
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-bench-ceiling-'));
  let topo: TopologyInfo | undefined;
  const children: ChildProcess[] = [];
  const runs: Run[] = [];
  try {
    topo = await startTopology({ replicas: 0, baseDir: path.join(tmp, 'topo'), log: (m) => log(`topology: ${m}`) });
    const primary = topo.primary;
    const [wcPort, ceilingPort] = await getFreePorts(2);
    const rules = ['  rules:', '    - name: sbtest', '      match:', `        tables: [${Array.from({ length: tables }, (_, i) => `sbtest${i + 1}`).join(', ')}]`, '      cache: true', '      ttl: 86400'];
    const configFile = path.join(tmp, 'wirecache.yaml');
    await fs.writeFile(configFile, wirecacheConfigYaml({ port: wcPort, adminPort: 0, primary, extra: [...workersLines(), 'cache:', '  mode: hinted', ...rules] }));
    const wc = startWirecache({ cli: path.join(ROOT, 'dist', 'cli.js'), configFile, logFile: path.join(tmp, 'wirecache.log'), port: wcPort });
    children.push(wc.child);
    const ceiling = spawnTracked(process.execPath, [path.join(ROOT, 'bench', 'hit_ceiling.mjs'), String(ceilingPort), `${primary.host}:${primary.port}`], path.join(tmp, 'ceiling.log'));
    children.push(ceiling);
    await wc.ready;
    await waitForListener(ceilingPort, ceiling, 'hit_ceiling');
    const ports: Record<Endpoint, number> = { direct: primary.port, ceiling: ceilingPort, wirecache: wcPort };
    const pids: Record<Endpoint, number | undefined> = { direct: undefined, ceiling: ceiling.pid, wirecache: wc.child.pid };

    log(`sysbench prepare (direct): ${tables} tables of ${tableSize} rows`);
    await sysbenchOrThrow(['oltp_point_select', ...connArgs(primary.port), ...sizeArgs, `--threads=${threads}`, 'prepare'], 'sysbench prepare');
    // Every row once through both caching endpoints, then a warm-up of every endpoint.
    for (const ep of ['ceiling', 'wirecache'] as const) {
      await sysbenchOrThrow(
        [path.join(ROOT, 'bench', 'cache_fill.lua'), ...connArgs(ports[ep]), ...sizeArgs, `--threads=${threads}`, `--events=${threads}`, '--time=0', '--db-ps-mode=disable', 'run'],
        `fill ${ep}`,
      );
    }
    for (const ep of ['direct', 'ceiling', 'wirecache'] as const) await sysbenchOrThrow(sysbenchRunArgs('oltp_point_select', ports[ep], runArgs, 3, 'disable'), `warm-up ${ep}`);

    let order: Endpoint[] = ['direct', 'ceiling', 'wirecache'];
    for (let round = 1; round <= rounds; round++) {
      for (const ep of order) {
        const r = await measureUndisturbed(retries, async () => {
          await waitUntilQuiet([primary.pid, ...Object.values(pids)]);
          const { stdout: _o, stderr: _e, ...m } = await measureSysbench(sysbenchRunArgs('oltp_point_select', ports[ep], runArgs, seconds, 'disable'), pids[ep], primary.pid, [pids.ceiling, pids.wirecache]);
          if (m.foreignProcCpuPct !== null && (m.foreignCpuPct === null || m.foreignProcCpuPct > m.foreignCpuPct)) m.foreignCpuPct = m.foreignProcCpuPct;
          return { ...m, endpoint: ep, round, attempts: 1 };
        });
        log(describeMeasurement(`round ${round} ${ep}`, r));
        runs.push(r);
      }
      order = [...order.slice(1), order[0]];
    }
  } finally {
    for (const c of children) await stopChild(c);
    if (topo) await stopTopology(topo).catch(() => undefined);
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }

  const of = (ep: Endpoint): Run[] => runs.filter((r) => r.endpoint === ep);
  const qps = (ep: Endpoint): number => median(of(ep).map((r) => r.qps));
  const usPerQuery = (ep: Endpoint, pick: (r: Run) => number | null): string => {
    const values = of(ep)
      .map((r) => (pick(r) === null ? null : ((pick(r) as number) * 1e4) / r.qps))
      .filter((v): v is number => v !== null);
    return values.length > 0 ? median(values).toFixed(1) : '-';
  };
  const rows = (['direct', 'ceiling', 'wirecache'] as const).map((ep) => [
    ep,
    qps(ep).toFixed(0),
    median(of(ep).map((r) => r.p95Ms)).toFixed(2),
    usPerQuery(ep, (r) => r.proxyCpuPct),
    usPerQuery(ep, (r) => r.proxyUserCpuPct),
    usPerQuery(ep, (r) => r.proxySysCpuPct),
    fmtRatio(qps(ep) / qps('direct')),
    String(of(ep).reduce((n, r) => n + r.errors, 0)),
  ]);
  console.log(`\ncache hits, text protocol: sysbench oltp_point_select ${runArgs.join(' ')} --time=${seconds}, ${rounds} round(s), medians; ${os.cpus().length} CPUs\n`);
  console.log(table(['endpoint', 'qps', 'p95 ms', 'process µs/q', 'user µs/q', 'kernel µs/q', 'vs direct', 'errors'], rows, [false, true, true, true, true, true, true, true]));
  console.log(`\nwirecache/ceiling: ${fmtRatio(qps('wirecache') / qps('ceiling'))}; ceiling/direct: ${fmtRatio(qps('ceiling') / qps('direct'))}`);
  if (process.env.BENCH_OUT) await writeResults(process.env.BENCH_OUT, { git: gitInfo(), machine: machineInfo(), seconds, rounds, threads, runs });
  return runs.some((r) => r.problem) ? 1 : 0;
}

runMain(main);
