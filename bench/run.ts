/**
 * Pass-through benchmark: sysbench against MariaDB directly, through a plain
 * Node TCP byte pipe (bench/byte_pipe.mjs, the baseline) and through wirecache;
 * optionally also through another build of wirecache (BENCH_BASE_CLI).
 *
 *   npm run build && npx tsx bench/run.ts      (or bench/run.sh, which also installs deps)
 *
 * Environment:
 *   BENCH_SECONDS          --time of every measured sysbench run (default 10)
 *   BENCH_WARMUP_SECONDS   unrecorded oltp_point_select per endpoint before measuring (default 2; 0 = none)
 *   BENCH_ROUNDS           repeat the whole matrix N times, rotating the endpoint order (default 1);
 *                          qps and p95 are then averaged over the rounds
 *   BENCH_WORKLOADS        comma list, default "oltp_point_select,oltp_read_only"
 *   BENCH_PS_MODES         comma list, default "disable,auto"
 *   BENCH_WORKERS          `workers:` of the measured wirecache (a count or auto; default: the config default)
 *   BENCH_ENDPOINTS        comma list, default "direct,pipe,wirecache" (",base" added when BENCH_BASE_CLI is set)
 *   BENCH_BASE_CLI         another build's dist/cli.js (e.g. of the previous commit): run with the same config
 *                          as endpoint "base", measured in the same rounds; the report adds wc/base (qps ratio)
 *   BENCH_BASE_YAML        extra config lines for "base" only, separated by "|" (e.g. "pool:|  multiplexing: false"
 *                          with BENCH_BASE_CLI=dist/cli.js: the same build with and without multiplexing)
 *   BENCH_RETRIES          re-make a run up to N times (after a 15 s pause) when other processes used more
 *                          than 10% of a core during it (default 2); the last attempt is kept either way
 *   BENCH_OUT              if set, the results are also written there as JSON
 *   BENCH_WIRECACHE_NODE_ARGS  extra node flags for the wirecache child, e.g.
 *                          "--cpu-prof --cpu-prof-dir=/tmp/prof" (split on spaces)
 *
 * Exit status: 0 when every sysbench run finished without errors, 1 otherwise
 * (also when setup fails), 130 on SIGINT. The topology and the proxy children
 * are always stopped.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getFreePorts, startTopology, stopTopology, waitForPort, type TopologyInfo } from '../scripts/topology.js';
import {
  baseCliFromEnv,
  baseVerdictLine,
  buildCommit,
  checkInterrupted,
  connArgs,
  describeMeasurement,
  disturbedWarning,
  envInt,
  envList,
  fmtRatio,
  gitInfo,
  HOST,
  installInterruptHandler,
  log,
  machineInfo,
  mean,
  measureSysbench,
  measureUndisturbed,
  perRoundRatios,
  procStatusKb,
  ROOT,
  runMain,
  spawnTracked,
  startBase,
  startWirecache,
  stopChild,
  sysbenchOrThrow,
  sysbenchRunArgs,
  table,
  tail,
  wirecacheConfigYaml,
  workersLines,
  writeResults,
  type Measurement,
  type PsMode,
} from './common.js';

const SYSBENCH_COMMON = ['--tables=4', '--table-size=10000', '--threads=4', '--percentile=95'];

type Endpoint = 'direct' | 'pipe' | 'wirecache' | 'base';

interface RunResult extends Omit<Measurement, 'stdout' | 'stderr'> {
  workload: string;
  psMode: PsMode;
  endpoint: Endpoint;
  round: number;
  port: number;
  seconds: number;
  /** How many times the run was made (re-made while disturbed by other processes, see BENCH_RETRIES). */
  attempts: number;
}

// ---------------------------------------------------------------------------

async function main(): Promise<number> {
  const seconds = envInt('BENCH_SECONDS', 10, 1);
  const warmup = envInt('BENCH_WARMUP_SECONDS', 2, 0);
  const rounds = envInt('BENCH_ROUNDS', 1, 1);
  const workloads = envList('BENCH_WORKLOADS', ['oltp_point_select', 'oltp_read_only']);
  const psModes = envList<PsMode>('BENCH_PS_MODES', ['disable', 'auto'], ['disable', 'auto']);
  const baseCli = baseCliFromEnv();
  const endpoints = envList<Endpoint>('BENCH_ENDPOINTS', ['direct', 'pipe', 'wirecache', ...(baseCli ? (['base'] as const) : [])], ['direct', 'pipe', 'wirecache', 'base']);
  if (endpoints.includes('base') !== (baseCli !== null)) throw new Error('endpoint base and BENCH_BASE_CLI go together: set both or neither');
  const outFile = process.env.BENCH_OUT;
  const retries = envInt('BENCH_RETRIES', 2, 0);

  const cli = path.join(ROOT, 'dist', 'cli.js');
  try {
    await fs.access(cli);
  } catch {
    throw new Error(`${cli} not found: run npm run build first (bench/run.sh does)`);
  }

  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-bench-'));
  let topo: TopologyInfo | undefined;
  let wirecache: ChildProcess | undefined;
  let pipe: ChildProcess | undefined;
  let base: ChildProcess | undefined;
  const results: RunResult[] = [];
  let peakRssKb: number | null = null;
  let pipePeakRssKb: number | null = null;
  let basePeakRssKb: number | null = null;
  let topoPrimaryPid: number | undefined;

  const uninstallInterruptHandler = installInterruptHandler();

  try {
    // Replicas are not used: 0 keeps CPU for the benchmark.
    topo = await startTopology({ replicas: 0, baseDir: path.join(tmp, 'topo'), log: (m) => log(`topology: ${m}`) });
    checkInterrupted();
    const directPort = topo.primary.port;
    topoPrimaryPid = topo.primary.pid;
    const [wcPort, pipePort] = await getFreePorts(2);

    const primary = topo.primary;
    const configFile = path.join(tmp, 'wirecache.yaml');
    await fs.writeFile(configFile, wirecacheConfigYaml({ port: wcPort, adminPort: 0, primary, extra: workersLines() }));

    const wcLog = path.join(tmp, 'wirecache.log');
    const pipeLog = path.join(tmp, 'byte_pipe.log');
    const started = startWirecache({ cli, configFile, logFile: wcLog, port: wcPort });
    wirecache = started.child;
    pipe = spawnTracked(process.execPath, [path.join(ROOT, 'bench', 'byte_pipe.mjs'), String(pipePort), `${HOST}:${directPort}`], pipeLog);
    await Promise.all([started.ready, waitForPort(pipePort, pipe, 'byte_pipe', pipeLog)]);
    log(`direct :${directPort}  pipe :${pipePort} (pid ${pipe.pid})  wirecache :${wcPort} (pid ${wirecache.pid})`);
    let basePort = 0;
    if (baseCli) {
      const baseExtra = (process.env.BENCH_BASE_YAML ?? '').split('|').filter((l) => l !== '');
      const b = await startBase(baseCli, tmp, (port, adminPort) => wirecacheConfigYaml({ port, adminPort, primary, extra: baseExtra }));
      base = b.child;
      await b.ready;
      basePort = b.port;
      log(`base :${basePort} (pid ${base.pid}, ${baseCli})`);
    }

    const ports: Record<Endpoint, number> = { direct: directPort, pipe: pipePort, wirecache: wcPort, base: basePort };
    const procs: Record<Endpoint, ChildProcess | undefined> = { direct: undefined, pipe, wirecache, base };

    // Data: once, directly on the primary. oltp_read_only and oltp_point_select share the schema.
    log('sysbench prepare (direct)');
    await sysbenchOrThrow(['oltp_read_only', ...connArgs(directPort), '--tables=4', '--table-size=10000', '--threads=4', 'prepare'], 'sysbench prepare');

    if (warmup > 0) {
      for (const ep of endpoints) {
        log(`warm-up ${warmup}s oltp_point_select via ${ep}`);
        await sysbenchOrThrow(sysbenchRunArgs('oltp_point_select', ports[ep], SYSBENCH_COMMON, warmup, 'disable'), `warm-up via ${ep}`);
      }
    }

    const measure = async (workload: string, psMode: PsMode, ep: Endpoint, round: number): Promise<RunResult> => {
      const args = sysbenchRunArgs(workload, ports[ep], SYSBENCH_COMMON, seconds, psMode);
      const { stdout, stderr, ...m } = await measureSysbench(args, procs[ep]?.pid, topoPrimaryPid, [wirecache?.pid, pipe?.pid, base?.pid]);
      const r: RunResult = { workload, psMode, endpoint: ep, round, port: ports[ep], seconds, ...m, attempts: 1 };
      log(describeMeasurement(`round ${round} ${workload} ps=${psMode} ${ep}`, r));
      if (r.problem && (r.exitCode !== 0 || r.qps === 0)) log(`sysbench output:\n${stdout}\n${stderr}`.slice(-4000));
      return r;
    };

    let order = [...endpoints];
    for (let round = 1; round <= rounds; round++) {
      for (const workload of workloads) {
        for (const psMode of psModes) {
          // Endpoints interleaved within each workload/mode; the order rotates per round.
          for (const ep of order) results.push(await measureUndisturbed(retries, () => measure(workload, psMode, ep, round)));
        }
      }
      order = [...order.slice(1), order[0]];
    }

    // Peak RSS of the proxies over the whole run, read before they are stopped.
    peakRssKb = procStatusKb(wirecache.pid, 'VmHWM');
    pipePeakRssKb = procStatusKb(pipe.pid, 'VmHWM');
    basePeakRssKb = procStatusKb(base?.pid, 'VmHWM');
    const wcLogText = await tail(wcLog, 2000);
    if (wcLogText !== '(empty)') log(`wirecache log (tail):\n${wcLogText}`);
  } finally {
    uninstallInterruptHandler();
    await Promise.all([wirecache && stopChild(wirecache), pipe && stopChild(pipe), base && stopChild(base)]);
    if (topo) {
      log('stopping topology');
      await stopTopology(topo).catch((e: unknown) => log(`stopTopology: ${e instanceof Error ? e.message : String(e)}`));
    }
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }

  // ---- report
  interface Agg {
    workload: string;
    psMode: PsMode;
    endpoint: Endpoint;
    qps: number;
    p95Ms: number;
    proxyCpuPct: number | null;
    /** proxy CPU time per query in microseconds */
    proxyUsPerQuery: number | null;
    foreignCpuPct: number | null;
    errors: number;
  }
  const meanOrNull = (xs: (number | null)[]): number | null => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? mean(v) : null;
  };
  const agg: Agg[] = [];
  for (const workload of workloads) {
    for (const psMode of psModes) {
      for (const endpoint of endpoints) {
        const rs = results.filter((r) => r.workload === workload && r.psMode === psMode && r.endpoint === endpoint);
        if (rs.length === 0) continue;
        agg.push({
          workload,
          psMode,
          endpoint,
          qps: mean(rs.map((r) => r.qps)),
          p95Ms: mean(rs.map((r) => r.p95Ms)),
          proxyCpuPct: meanOrNull(rs.map((r) => r.proxyCpuPct)),
          proxyUsPerQuery: meanOrNull(rs.map((r) => (r.proxyCpuPct === null || r.qps === 0 ? null : (r.proxyCpuPct / 100 / r.qps) * 1e6))),
          foreignCpuPct: meanOrNull(rs.map((r) => r.foreignCpuPct)),
          // ignored errors + reconnects, plus 1 per run that failed outright (non-zero exit or unparsable output)
          errors: rs.reduce((a, r) => a + r.errors + r.reconnects + (r.exitCode !== 0 || r.qps === 0 ? 1 : 0), 0),
        });
      }
    }
  }
  const find = (w: string, m: PsMode, e: Endpoint): Agg | undefined => agg.find((a) => a.workload === w && a.psMode === m && a.endpoint === e);
  const ratio = (a: Agg | undefined, b: Agg | undefined): number | null => (a && b && b.qps > 0 ? a.qps / b.qps : null);

  const withBase = endpoints.includes('base');
  const rows: string[][] = [];
  const summary: {
    workload: string;
    psMode: PsMode;
    wcOverPipe: number | null;
    wcOverDirect: number | null;
    pipeOverDirect: number | null;
    wcOverBase: number | null;
    wcOverBasePerRound: number[];
    goalMet: boolean | null;
  }[] = [];
  for (const workload of workloads) {
    for (const psMode of psModes) {
      const d = find(workload, psMode, 'direct');
      const p = find(workload, psMode, 'pipe');
      const w = find(workload, psMode, 'wirecache');
      const b = find(workload, psMode, 'base');
      const wp = ratio(w, p);
      const wd = ratio(w, d);
      const pd = ratio(p, d);
      const wb = ratio(w, b);
      const runs = results.filter((r) => r.workload === workload && r.psMode === psMode);
      const wbPerRound = perRoundRatios(runs, 'wirecache', 'base', rounds);
      summary.push({ workload, psMode, wcOverPipe: wp, wcOverDirect: wd, pipeOverDirect: pd, wcOverBase: wb, wcOverBasePerRound: wbPerRound, goalMet: wp === null ? null : wp >= 0.9 });
      for (const a of [d, p, w, b]) {
        if (!a) continue;
        const isWc = a.endpoint === 'wirecache';
        rows.push([
          a.workload,
          a.psMode,
          a.endpoint,
          a.qps.toFixed(1),
          a.p95Ms.toFixed(2),
          a.proxyCpuPct === null ? '-' : `${a.proxyCpuPct.toFixed(0)}%`,
          a.proxyUsPerQuery === null ? '-' : a.proxyUsPerQuery.toFixed(1),
          a.foreignCpuPct === null ? '-' : `${a.foreignCpuPct.toFixed(0)}%`,
          String(a.errors),
          isWc ? fmtRatio(wp) : '',
          isWc ? fmtRatio(wd) : '',
          a.endpoint === 'pipe' ? fmtRatio(pd) : '',
          ...(withBase ? [isWc ? fmtRatio(wb) : ''] : []),
        ]);
      }
    }
  }
  const headers = ['workload', 'ps-mode', 'endpoint', 'qps', 'p95 ms', 'proxy CPU', 'proxy us/q', 'other CPU', 'errors', 'wc/pipe', 'wc/direct', 'pipe/direct', ...(withBase ? ['wc/base'] : [])];
  const git = gitInfo();
  const baseCommit = baseCli ? buildCommit(baseCli) : null;
  process.stdout.write(
    `\nsysbench ${SYSBENCH_COMMON.join(' ')} --time=${seconds}, ${rounds} round(s), ${os.cpus().length} CPUs, ` +
      `commit ${git.commit?.slice(0, 12) ?? '?'}${git.srcDirty ? ' (src/ modified)' : ''}` +
      `${baseCli ? `; base ${baseCli} (commit ${baseCommit?.slice(0, 12) ?? '?'})` : ''}\n\n`,
  );
  process.stdout.write(`${table(headers, rows, headers.map((_, i) => i >= 3))}\n\n`);
  const warning = disturbedWarning(results);
  if (warning) process.stdout.write(`${warning}\n\n`);
  for (const s of summary) {
    if (s.goalMet === null) continue;
    process.stdout.write(`goal wirecache >= 0.9x pipe qps, ${s.workload} ps=${s.psMode}: ${s.goalMet ? 'met' : 'NOT met'} (${fmtRatio(s.wcOverPipe)})\n`);
  }
  if (withBase) for (const s of summary) process.stdout.write(baseVerdictLine(`${s.workload} ps=${s.psMode}`, s.wcOverBase, s.wcOverBasePerRound));
  const mib = (kb: number | null): string => (kb === null ? 'n/a' : `${(kb / 1024).toFixed(1)} MiB`);
  process.stdout.write(`wirecache peak RSS (VmHWM): ${mib(peakRssKb)}; byte pipe peak RSS: ${mib(pipePeakRssKb)}${withBase ? `; base peak RSS: ${mib(basePeakRssKb)}` : ''}\n`);

  const failed = results.filter((r) => r.problem !== undefined);
  if (outFile) {
    const doc = {
      date: new Date().toISOString(),
      git: gitInfo(),
      machine: machineInfo(),
      sysbench: { args: SYSBENCH_COMMON, seconds, warmupSeconds: warmup, rounds, retries },
      results,
      aggregated: agg,
      summary,
      wirecachePeakRssKb: peakRssKb,
      pipePeakRssKb,
      base: baseCli ? { cli: baseCli, commit: baseCommit, peakRssKb: basePeakRssKb } : null,
      ok: failed.length === 0,
    };
    await writeResults(outFile, doc);
  }
  if (failed.length > 0) {
    process.stdout.write(`\n${failed.length} run(s) had errors:\n`);
    for (const r of failed) process.stdout.write(`  ${r.workload} ps=${r.psMode} ${r.endpoint} round ${r.round}: ${r.problem}\n`);
    return 1;
  }
  return 0;
}

runMain(main);
