/**
 * Cache-hit benchmark: sysbench oltp_point_select answered from wirecache's
 * query cache (memory storage, every row cached beforehand) against the same
 * sysbench run directly on MariaDB, text protocol and server-side prepared
 * statements, in one run; reported as qps ratios (median over the rounds).
 *
 *   npm run build && npx tsx bench/cache.ts      (or BENCH_CACHE=1 bench/run.sh)
 *
 * BENCH_CACHE_QUERY=range measures a query that is expensive for the server
 * instead: "SELECT COUNT(*), SUM(k), MAX(LENGTH(c)) FROM sbtestN WHERE id
 * BETWEEN ? AND ?" over BENCH_CACHE_RANGE rows per event, start id drawn with
 * --rand-type in 1..table size (bench/cache_range.lua, used for the fill,
 * every start id of every table once, and for the measured runs of both
 * endpoints; one rule per table on that statement's digest).
 *
 * Steps: start a MariaDB primary (scripts/topology.ts), create the sysbench
 * tables on it, start wirecache with one cache rule per table (digest
 * "SELECT c FROM sbtestN WHERE id=?"), fill the cache with every id of every
 * table per protocol (bench/cache_fill.lua) and check that every entry is
 * there, warm both endpoints up, then measure direct and wirecache in turns
 * (the order rotates every round). The hit ratio of each wirecache run comes
 * from the admin endpoint GET /cache (hits and misses before and after).
 * With BENCH_BASE_CLI, a second wirecache (endpoint base: that build, the
 * same config on its own ports) is filled and checked the same way and
 * measured in the same rounds; the report adds wc/base (qps ratio).
 *
 * Environment:
 *   BENCH_SECONDS            --time of every measured run (default 10)
 *   BENCH_ROUNDS             rounds; figures are medians over them (default 3)
 *   BENCH_WARMUP_SECONDS     unrecorded run per endpoint and protocol after the fill (default 3; 0 = none)
 *   BENCH_PS_MODES           comma list, default "disable,auto"
 *   BENCH_THREADS            sysbench --threads, the same for both endpoints (default 4)
 *   BENCH_CACHE_TABLES       sysbench --tables (default 4)
 *   BENCH_CACHE_TABLE_SIZE   sysbench --table-size (default 10000)
 *   BENCH_CACHE_QUERY        point (default: oltp_point_select) or range (the range aggregate above)
 *   BENCH_CACHE_RANGE        range mode: rows per range, sysbench --range-size (default 1000)
 *   BENCH_CACHE_RAND_TYPE    sysbench --rand-type of the measured runs (default uniform: every entry is read,
 *                            not mostly sysbench's hot 1%)
 *   BENCH_CACHE_RULE         digest (default: one rule per table), tables (one rule listing the tables)
 *                            or regex (one rule with a regular expression)
 *   BENCH_CACHE_MAX_BYTES    cache.memory.max_bytes (default 268435456)
 *   BENCH_WORKERS            workers: of the measured wirecache (a count or auto; default: the config's default)
 *   BENCH_CACHE_PROFILE      a directory: after the measured rounds, one more wirecache run per protocol
 *                            (BENCH_SECONDS long, not part of the figures) under the V8 CPU profiler
 *                            (bench/cpuprof_signal.mjs); the profiles are written there and summarised
 *                            with bench/cpuprofile_top.mjs
 *   BENCH_CACHE_PERF         1 (with BENCH_CACHE_PROFILE): also one run per protocol under
 *                            `perf record -e cpu-clock -g` (on-CPU samples, kernel included; wirecache then
 *                            runs with --perf-basic-prof), written as perf-<text|ps>.data to that directory
 *                            and summarised with perf report
 *   BENCH_RETRIES            re-make a run disturbed by other processes up to N times (default 2)
 *   BENCH_OUT                if set, the results are also written there as JSON
 *   BENCH_BASE_CLI           another build's dist/cli.js (e.g. of the previous commit), run as endpoint base
 *                            (the profiles of BENCH_CACHE_PROFILE are of wirecache only)
 *   BENCH_WIRECACHE_NODE_ARGS  extra node flags for the wirecache children (split on spaces), e.g. --perf-basic-prof
 *   BENCH_KEEP_TMP           1: keep the temporary directory (config, wirecache log) instead of deleting it
 *   BENCH_COMMIT             the commit to report when running in an exported tree without .git
 *
 * Exit status: 0 when every sysbench run finished without errors and the
 * cache held every row, 1 otherwise, 130 on SIGINT.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getFreePorts, startTopology, stopTopology, type TopologyInfo } from '../scripts/topology.js';
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
  envString,
  fmtRatio,
  gitInfo,
  HOST,
  installInterruptHandler,
  log,
  machineInfo,
  measureSysbench,
  measureUndisturbed,
  waitUntilQuiet,
  median,
  perRoundRatios,
  procStatusKb,
  ROOT,
  runMain,
  sleep,
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

type Endpoint = 'direct' | 'wirecache' | 'base';
type Proxy = Exclude<Endpoint, 'direct'>;
type RuleStyle = 'digest' | 'tables' | 'regex';
type QueryKind = 'point' | 'range';

const GOAL = 1.7;
const FLOOR = 1.5;

interface RunResult extends Omit<Measurement, 'stdout' | 'stderr'> {
  psMode: PsMode;
  endpoint: Endpoint;
  round: number;
  attempts: number;
  /** wirecache runs: cache hits and misses during the run (from GET /cache), and their ratio. */
  hits: number | null;
  misses: number | null;
  hitRatio: number | null;
  /** wirecache runs: VmRSS right after the run, KiB. */
  rssKb: number | null;
}

interface CacheView {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  stores: number;
}

/** A proxy's cache after the fill: GET /cache, the eviction and refusal counters, VmRSS. */
interface FillState {
  afterFill: CacheView;
  evictions: number;
  refusals: number;
  rssKb: number | null;
}

async function main(): Promise<number> {
  const seconds = envInt('BENCH_SECONDS', 10, 1);
  const rounds = envInt('BENCH_ROUNDS', 3, 1);
  const warmup = envInt('BENCH_WARMUP_SECONDS', 3, 0);
  const psModes = envList<PsMode>('BENCH_PS_MODES', ['disable', 'auto'], ['disable', 'auto']);
  const threads = envInt('BENCH_THREADS', 4, 1);
  const tables = envInt('BENCH_CACHE_TABLES', 4, 1);
  const tableSize = envInt('BENCH_CACHE_TABLE_SIZE', 10_000, 1);
  const randType = envString('BENCH_CACHE_RAND_TYPE', 'uniform', ['uniform', 'special', 'gaussian', 'pareto']);
  const query = envString<QueryKind>('BENCH_CACHE_QUERY', 'point', ['point', 'range']);
  const rangeSize = envInt('BENCH_CACHE_RANGE', 1000, 1);
  const ruleStyle = envString<RuleStyle>('BENCH_CACHE_RULE', 'digest', ['digest', 'tables', 'regex']);
  const maxBytes = envInt('BENCH_CACHE_MAX_BYTES', 268_435_456, 1_048_576);
  const profileDir = process.env.BENCH_CACHE_PROFILE ? path.resolve(process.env.BENCH_CACHE_PROFILE) : null;
  const usePerf = process.env.BENCH_CACHE_PERF === '1';
  if (usePerf && !profileDir) throw new Error('BENCH_CACHE_PERF=1 needs BENCH_CACHE_PROFILE (the directory for the perf data)');
  if (usePerf && spawnSync('perf', ['--version']).status !== 0) throw new Error('BENCH_CACHE_PERF=1: perf is not installed');
  const retries = envInt('BENCH_RETRIES', 2, 0);
  const outFile = process.env.BENCH_OUT;
  const baseCli = baseCliFromEnv();
  const endpoints: Endpoint[] = ['direct', 'wirecache', ...(baseCli ? (['base'] as const) : [])];
  const proxies = endpoints.filter((e): e is Proxy => e !== 'direct');
  const sizeArgs = [`--tables=${tables}`, `--table-size=${tableSize}`];
  const runArgs = [...sizeArgs, ...(query === 'range' ? [`--range-size=${rangeSize}`] : []), `--threads=${threads}`, '--percentile=95', `--rand-type=${randType}`];
  // The measured workload (both endpoints) and the fill script (through wirecache).
  const workload = query === 'range' ? path.join(ROOT, 'bench', 'cache_range.lua') : 'oltp_point_select';
  const workloadName = query === 'range' ? `bench/cache_range.lua (range aggregate over ${rangeSize} rows)` : 'oltp_point_select';
  const fillArgs = query === 'range' ? [path.join(ROOT, 'bench', 'cache_range.lua'), `--range-size=${rangeSize}`, '--fill=on'] : [path.join(ROOT, 'bench', 'cache_fill.lua')];
  const stmtText = (t: string): string =>
    query === 'range' ? `SELECT COUNT(*), SUM(k), MAX(LENGTH(c)) FROM ${t} WHERE id BETWEEN ? AND ?` : `SELECT c FROM ${t} WHERE id=?`;
  const expectedEntries = tables * tableSize * psModes.length;

  const cli = path.join(ROOT, 'dist', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} not found: run npm run build first (bench/run.sh does)`);
  if (profileDir) await fs.mkdir(profileDir, { recursive: true });

  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-bench-cache-'));
  let topo: TopologyInfo | undefined;
  let wirecache: ChildProcess | undefined;
  let base: ChildProcess | undefined;
  const results: RunResult[] = [];
  const profiles: { psMode: PsMode; kind: 'V8 CPU profile' | 'perf'; file: string; summary: string; qps: number; proxyCpuPct: number | null }[] = [];
  let peakRssKb: number | null = null;
  /** VmHWM before the profiled runs (the profiler adds its own memory). */
  let measuredPeakRssKb: number | null = null;
  let basePeakRssKb: number | null = null;
  const fill: Partial<Record<Proxy, FillState>> = {};
  const final: Partial<Record<Proxy, CacheView>> = {};
  const problems: string[] = [];
  const uninstallInterruptHandler = installInterruptHandler();

  try {
    topo = await startTopology({ replicas: 0, baseDir: path.join(tmp, 'topo'), log: (m) => log(`topology: ${m}`) });
    checkInterrupted();
    const primary = topo.primary;
    const mariadbPid = primary.pid;
    const directPort = primary.port;
    const [wcPort, adminPort] = await getFreePorts(2);

    const rules: string[] = [];
    const tableNames = Array.from({ length: tables }, (_, i) => `sbtest${i + 1}`);
    if (ruleStyle === 'digest') {
      for (const t of tableNames) {
        rules.push(`    - name: ${t}_${query === 'range' ? 'range_agg' : 'point_select'}`, '      match:', `        digest: "${stmtText(t)}"`, '      cache: true', '      ttl: 86400');
      }
    } else if (ruleStyle === 'tables') {
      rules.push('    - name: sbtest_tables', '      match:', `        tables: [${tableNames.join(', ')}]`, '      cache: true', '      ttl: 86400');
    } else {
      const regex = query === 'range' ? '^SELECT COUNT\\(\\*\\), SUM\\(k\\), MAX\\(LENGTH\\(c\\)\\) FROM sbtest[0-9]+ WHERE id BETWEEN ' : '^SELECT c FROM sbtest[0-9]+ WHERE id ?= ?';
      rules.push(`    - name: sbtest_${query === 'range' ? 'range_agg' : 'point_select'}`, '      match:', `        regex: '${regex}'`, '      cache: true', '      ttl: 86400');
    }
    const configYaml = (port: number, admin: number, workerLines: string[] = []): string =>
      wirecacheConfigYaml({ port, adminPort: admin, primary, extra: [...workerLines, 'cache:', '  mode: hinted', '  storage: memory', '  memory:', `    max_bytes: ${maxBytes}`, '  rules:', ...rules] });
    const configFile = path.join(tmp, 'wirecache.yaml');
    // BENCH_WORKERS: the measured build's worker threads (the base build keeps its own default).
    await fs.writeFile(configFile, configYaml(wcPort, adminPort, workersLines()));

    const wcLog = path.join(tmp, 'wirecache.log');
    const profArgs = [...(profileDir ? ['--import', path.join(ROOT, 'bench', 'cpuprof_signal.mjs')] : []), ...(usePerf ? ['--perf-basic-prof'] : [])];
    if (profileDir) process.env.WC_CPUPROF_DIR = profileDir;
    const started = startWirecache({ cli, configFile, logFile: wcLog, port: wcPort, adminPort, nodeArgs: profArgs });
    wirecache = started.child;
    await started.ready;
    log(`direct :${directPort}  wirecache :${wcPort} admin :${adminPort} (pid ${wirecache.pid}), rule style ${ruleStyle}, query ${workloadName}, ${workersLines()[0] ?? 'workers: default'}`);
    const wcPid = wirecache.pid;
    const ports: Record<Endpoint, number> = { direct: directPort, wirecache: wcPort, base: 0 };
    const adminPorts: Record<Proxy, number> = { wirecache: adminPort, base: 0 };
    if (baseCli) {
      const b = await startBase(baseCli, tmp, configYaml, profArgs);
      base = b.child;
      await b.ready;
      ports.base = b.port;
      adminPorts.base = b.adminPort;
      log(`base :${b.port} admin :${b.adminPort} (pid ${base.pid}, ${baseCli})`);
    }
    const pids: Record<Endpoint, number | undefined> = { direct: undefined, wirecache: wcPid, base: base?.pid };

    const cacheView = async (ep: Proxy = 'wirecache'): Promise<CacheView> => {
      const res = await fetch(`http://${HOST}:${adminPorts[ep]}/cache`);
      if (!res.ok) throw new Error(`GET /cache: HTTP ${res.status}`);
      const j = (await res.json()) as { memory: { entries: number; bytes: number }; rules: { hits: number; misses: number; stores: number }[] };
      const sum = (k: 'hits' | 'misses' | 'stores'): number => j.rules.reduce((a, r) => a + r[k], 0);
      return { entries: j.memory.entries, bytes: j.memory.bytes, hits: sum('hits'), misses: sum('misses'), stores: sum('stores') };
    };
    const metricSum = async (ep: Proxy, name: string): Promise<number> => {
      const res = await fetch(`http://${HOST}:${adminPorts[ep]}/metrics`);
      const text = await res.text();
      let total = 0;
      for (const line of text.split('\n')) {
        if (line.startsWith(name) && (line[name.length] === '{' || line[name.length] === ' ')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return total;
    };

    log(`sysbench prepare (direct): ${tables} tables of ${tableSize} rows`);
    await sysbenchOrThrow(['oltp_point_select', ...connArgs(directPort), ...sizeArgs, `--threads=${threads}`, 'prepare'], 'sysbench prepare');

    // Fill: every id (range: every start id) of every table once per protocol, through each proxy.
    for (const ep of proxies) {
      for (const psMode of psModes) {
        const t0 = Date.now();
        await sysbenchOrThrow(
          [...fillArgs, ...connArgs(ports[ep]), ...sizeArgs, `--threads=${threads}`, `--events=${threads}`, '--time=0', `--db-ps-mode=${psMode}`, 'run'],
          `cache fill ${ep} ps=${psMode}`,
        );
        const v = await cacheView(ep);
        log(`fill ${ep} ps=${psMode}: ${((Date.now() - t0) / 1000).toFixed(1)} s; cache now ${v.entries} entries, ${(v.bytes / 2 ** 20).toFixed(1)} MiB, ${v.misses} misses, ${v.hits} hits`);
      }
      const f: FillState = {
        afterFill: await cacheView(ep),
        evictions: await metricSum(ep, 'wirecache_cache_evictions_total'),
        refusals: await metricSum(ep, 'wirecache_cache_refused_total'),
        rssKb: procStatusKb(pids[ep], 'VmRSS'),
      };
      fill[ep] = f;
      if (f.afterFill.entries !== expectedEntries || f.evictions !== 0 || f.refusals !== 0) {
        const msg = `after the fill the cache of ${ep} holds ${f.afterFill.entries} entries, expected ${expectedEntries} (evictions ${f.evictions}, refusals ${f.refusals})`;
        problems.push(msg);
        log(`PROBLEM: ${msg}`);
      }
    }

    const measured = (ep: Endpoint, psMode: PsMode, time: number): string[] => sysbenchRunArgs(workload, ports[ep], runArgs, time, psMode);

    if (warmup > 0) {
      for (const psMode of psModes) {
        for (const ep of endpoints) {
          log(`warm-up ${warmup}s ps=${psMode} via ${ep}`);
          await sysbenchOrThrow(measured(ep, psMode, warmup), `warm-up via ${ep}`);
        }
      }
      for (const ep of proxies) {
        const misses = (await cacheView(ep)).misses - (fill[ep]?.afterFill.misses ?? 0);
        if (misses !== 0) log(`note: ${misses} misses in ${ep} during the warm-up`);
      }
    }

    const run = async (psMode: PsMode, ep: Endpoint, round: number, time: number): Promise<RunResult> => {
      // Every run starts on a quiet machine: no endpoint pays for MariaDB's work after a direct run (purge,
      // flushing). A suspected cause of the slot bias in docs/benchmarks.md, not a proven one.
      const waited = await waitUntilQuiet([mariadbPid, ...Object.values(pids)]);
      if (waited > 500) log(`waited ${(waited / 1000).toFixed(1)} s for a quiet machine before ${ep} ps=${psMode}`);
      const before = ep !== 'direct' ? await cacheView(ep) : null;
      const { stdout, stderr, ...m } = await measureSysbench(measured(ep, psMode, time), pids[ep], mariadbPid, [wcPid, base?.pid]);
      // Foreign load is the larger of the machine-wide and the per-process estimate (see Measurement.foreignProcCpuPct).
      if (m.foreignProcCpuPct !== null && (m.foreignCpuPct === null || m.foreignProcCpuPct > m.foreignCpuPct)) m.foreignCpuPct = m.foreignProcCpuPct;
      const after = before && ep !== 'direct' ? await cacheView(ep) : null;
      const hits = before && after ? after.hits - before.hits : null;
      const misses = before && after ? after.misses - before.misses : null;
      const r: RunResult = {
        psMode,
        endpoint: ep,
        round,
        ...m,
        attempts: 1,
        hits,
        misses,
        hitRatio: hits !== null && misses !== null && hits + misses > 0 ? hits / (hits + misses) : null,
        rssKb: procStatusKb(pids[ep], 'VmRSS'),
      };
      log(
        describeMeasurement(`round ${round} ps=${psMode} ${ep}`, r) +
          (r.hitRatio !== null ? `, hit ratio ${(r.hitRatio * 100).toFixed(3)}% (${hits} hits, ${misses} misses)` : ''),
      );
      if (r.problem && (r.exitCode !== 0 || r.qps === 0)) log(`sysbench output:\n${stdout}\n${stderr}`.slice(-4000));
      return r;
    };

    let order = [...endpoints];
    for (let round = 1; round <= rounds; round++) {
      for (const psMode of psModes) {
        for (const ep of order) results.push(await measureUndisturbed(retries, () => run(psMode, ep, round, seconds)));
      }
      order = [...order.slice(1), order[0]];
    }

    measuredPeakRssKb = procStatusKb(wcPid, 'VmHWM');
    basePeakRssKb = procStatusKb(base?.pid, 'VmHWM');
    if (profileDir) {
      for (const psMode of psModes) {
        checkInterrupted();
        const existing = new Set(await fs.readdir(profileDir));
        const waitFor = async (suffix: string): Promise<string> => {
          for (let i = 0; i < 600; i++) {
            const f = (await fs.readdir(profileDir)).find((n) => n.endsWith(suffix) && !existing.has(n));
            if (f) return path.join(profileDir, f);
            await sleep(50);
          }
          throw new Error(`wirecache wrote no ${suffix} file in ${profileDir} (see ${wcLog})`);
        };
        process.kill(wcPid as number, 'SIGUSR2');
        await fs.rm(await waitFor('.started'), { force: true });
        const r = await run(psMode, 'wirecache', 0, seconds);
        process.kill(wcPid as number, 'SIGUSR2');
        const produced = await waitFor('.cpuprofile');
        const file = path.join(profileDir, `cache-hit-${psMode === 'disable' ? 'text' : 'ps'}.cpuprofile`);
        await fs.rename(produced, file);
        const top = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'cpuprofile_top.mjs'), file, '25'], { encoding: 'utf8' });
        profiles.push({ psMode, kind: 'V8 CPU profile', file, summary: top.stdout || top.stderr, qps: r.qps, proxyCpuPct: r.proxyCpuPct });
        if (r.problem) problems.push(`profiled run ps=${psMode}: ${r.problem}`);
      }
      if (usePerf) {
        for (const psMode of psModes) {
          checkInterrupted();
          const file = path.join(profileDir, `perf-${psMode === 'disable' ? 'text' : 'ps'}.data`);
          // Recording starts with the run and stops a second before it ends (perf's own exit stays out of it).
          const perf = spawnTracked('perf', ['record', '-e', 'cpu-clock', '-F', '999', '-g', '-p', String(wcPid), '-o', file, '--', 'sleep', String(Math.max(1, seconds - 1))], null);
          const r = await run(psMode, 'wirecache', 0, seconds);
          await new Promise<void>((resolve) => (perf.exitCode !== null ? resolve() : perf.once('exit', () => resolve())));
          const report = (extra: string[]): string =>
            spawnSync('perf', ['report', '-i', file, '--stdio', '-g', 'none', ...extra], { encoding: 'utf8', maxBuffer: 64 << 20 })
              .stdout.split('\n')
              .filter((l) => l.trim() !== '' && !l.startsWith('#'))
              .join('\n');
          const byDso = report(['--no-children', '--sort', 'dso']).split('\n').slice(0, 6).join('\n');
          const bySym = report(['--no-children', '--sort', 'sym']).split('\n').slice(0, 25).join('\n');
          const inclusive = report(['--children', '--sort', 'sym'])
            .split('\n')
            .filter((l) => /JS:\*|WriteBuffer$|ksys_(read|write)|Heap::CollectGarbage|uv__io_poll/.test(l))
            .slice(0, 25)
            .join('\n');
          profiles.push({
            psMode,
            kind: 'perf',
            file,
            summary: `${file}\non-CPU samples by binary:\n${byDso}\n\ntop 25 symbols by self time:\n${bySym}\n\ninclusive (children, self) of the JS functions, the socket write and GC:\n${inclusive}\n`,
            qps: r.qps,
            proxyCpuPct: r.proxyCpuPct,
          });
          if (r.problem) problems.push(`perf run ps=${psMode}: ${r.problem}`);
        }
      }
    }

    for (const ep of proxies) final[ep] = await cacheView(ep);
    peakRssKb = procStatusKb(wcPid, 'VmHWM');
    const wcLogText = await tail(wcLog, 2000);
    if (wcLogText !== '(empty)' && wcLogText !== '(no log)') log(`wirecache log (tail):\n${wcLogText}`);
  } finally {
    uninstallInterruptHandler();
    await Promise.all([wirecache && stopChild(wirecache), base && stopChild(base)]);
    if (topo) {
      log('stopping topology');
      await stopTopology(topo).catch((e: unknown) => log(`stopTopology: ${e instanceof Error ? e.message : String(e)}`));
    }
    if (process.env.BENCH_KEEP_TMP === '1') log(`kept ${tmp} (wirecache.yaml, wirecache.log, topology)`);
    else await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }

  // ---- report
  const mib = (kb: number | null): string => (kb === null ? 'n/a' : `${(kb / 1024).toFixed(1)} MiB`);
  interface Agg {
    psMode: PsMode;
    endpoint: Endpoint;
    runs: number;
    qps: number;
    qpsMin: number;
    qpsMax: number;
    p95Ms: number;
    proxyCpuPct: number | null;
    proxyUsPerQuery: number | null;
    proxyUserUsPerQuery: number | null;
    proxySysUsPerQuery: number | null;
    sysbenchCpuPct: number | null;
    mariadbCpuPct: number | null;
    irqCpuPct: number | null;
    foreignCpuPct: number;
    hitRatio: number | null;
    errors: number;
  }
  const usPerQuery = (pct: number | null, qps: number): number | null => (pct === null || qps === 0 ? null : (pct / 100 / qps) * 1e6);
  const medianOrNull = (xs: (number | null)[]): number | null => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? median(v) : null;
  };
  const agg: Agg[] = [];
  for (const psMode of psModes) {
    for (const endpoint of endpoints) {
      const rs = results.filter((r) => r.psMode === psMode && r.endpoint === endpoint);
      if (rs.length === 0) continue;
      const hits = rs.reduce((a, r) => a + (r.hits ?? 0), 0);
      const misses = rs.reduce((a, r) => a + (r.misses ?? 0), 0);
      agg.push({
        psMode,
        endpoint,
        runs: rs.length,
        qps: median(rs.map((r) => r.qps)),
        qpsMin: Math.min(...rs.map((r) => r.qps)),
        qpsMax: Math.max(...rs.map((r) => r.qps)),
        p95Ms: median(rs.map((r) => r.p95Ms)),
        proxyCpuPct: medianOrNull(rs.map((r) => r.proxyCpuPct)),
        proxyUsPerQuery: medianOrNull(rs.map((r) => usPerQuery(r.proxyCpuPct, r.qps))),
        proxyUserUsPerQuery: medianOrNull(rs.map((r) => usPerQuery(r.proxyUserCpuPct, r.qps))),
        proxySysUsPerQuery: medianOrNull(rs.map((r) => usPerQuery(r.proxySysCpuPct, r.qps))),
        sysbenchCpuPct: medianOrNull(rs.map((r) => r.sysbenchCpuPct)),
        mariadbCpuPct: medianOrNull(rs.map((r) => r.mariadbCpuPct)),
        irqCpuPct: medianOrNull(rs.map((r) => r.irqCpuPct)),
        foreignCpuPct: Math.max(...rs.map((r) => r.foreignCpuPct ?? 0)),
        hitRatio: endpoint !== 'direct' && hits + misses > 0 ? hits / (hits + misses) : null,
        errors: rs.reduce((a, r) => a + r.errors + r.reconnects + (r.exitCode !== 0 || r.qps === 0 ? 1 : 0), 0),
      });
    }
  }
  const summary = psModes.map((psMode) => {
    const d = agg.find((a) => a.psMode === psMode && a.endpoint === 'direct');
    const w = agg.find((a) => a.psMode === psMode && a.endpoint === 'wirecache');
    const b = agg.find((a) => a.psMode === psMode && a.endpoint === 'base');
    const ratio = d && w && d.qps > 0 ? w.qps / d.qps : null;
    const wcOverBase = b && w && b.qps > 0 ? w.qps / b.qps : null;
    // Ratios of the runs of each round (made one after the other), for the spread.
    const runs = results.filter((r) => r.psMode === psMode);
    const perRound = perRoundRatios(runs, 'wirecache', 'direct', rounds);
    const wcOverBasePerRound = perRoundRatios(runs, 'wirecache', 'base', rounds);
    const verdict = ratio === null ? null : ratio >= GOAL ? 'met' : ratio >= FLOOR ? 'above the floor, below the goal' : 'NOT met';
    return { psMode, ratio, perRound, verdict, wcOverBase, wcOverBasePerRound };
  });

  const pctOrDash = (x: number | null): string => (x === null ? '-' : `${x.toFixed(0)}%`);
  const headers = ['ps-mode', 'endpoint', 'qps (median)', 'qps min..max', 'p95 ms', 'proxy CPU', 'proxy us/q (usr+sys)', 'sysbench', 'mariadbd', 'softirq', 'hit ratio', 'max other CPU', 'errors', 'wc/direct', ...(baseCli ? ['wc/base'] : [])];
  const rows = agg.map((a) => {
    const s = summary.find((x) => x.psMode === a.psMode);
    return [
      a.psMode === 'disable' ? 'disable (text)' : 'auto (PS)',
      a.endpoint,
      a.qps.toFixed(1),
      `${a.qpsMin.toFixed(0)}..${a.qpsMax.toFixed(0)}`,
      a.p95Ms.toFixed(2),
      pctOrDash(a.proxyCpuPct),
      a.proxyUsPerQuery === null ? '-' : `${a.proxyUsPerQuery.toFixed(1)} (${a.proxyUserUsPerQuery?.toFixed(1) ?? '?'}+${a.proxySysUsPerQuery?.toFixed(1) ?? '?'})`,
      pctOrDash(a.sysbenchCpuPct),
      pctOrDash(a.mariadbCpuPct),
      pctOrDash(a.irqCpuPct),
      a.hitRatio === null ? '-' : `${(a.hitRatio * 100).toFixed(2)}%`,
      `${a.foreignCpuPct.toFixed(0)}%`,
      String(a.errors),
      a.endpoint === 'wirecache' ? fmtRatio(s?.ratio ?? null) : '',
      ...(baseCli ? [a.endpoint === 'wirecache' ? fmtRatio(s?.wcOverBase ?? null) : ''] : []),
    ];
  });
  const git = gitInfo();
  const baseCommit = baseCli ? buildCommit(baseCli) : null;
  process.stdout.write(
    `\ncache hits: sysbench ${workloadName} ${runArgs.join(' ')} --time=${seconds}, ${rounds} round(s), medians; ` +
      `${os.cpus().length} CPUs, commit ${git.commit?.slice(0, 12) ?? '?'}${git.srcDirty ? ' (src/ modified)' : ''}` +
      `${baseCli ? `; base ${baseCli} (commit ${baseCommit?.slice(0, 12) ?? '?'})` : ''}\n\n`,
  );
  process.stdout.write(`${table(headers, rows, [false, false, ...headers.slice(2).map(() => true)])}\n\n`);
  for (const s of summary) {
    process.stdout.write(
      `goal cache hits >= ${GOAL}x direct qps (floor ${FLOOR}x), ps=${s.psMode}: ${s.verdict ?? 'n/a'} (${fmtRatio(s.ratio)}; per round ${s.perRound.map((x) => x.toFixed(2)).join(', ')})\n`,
    );
  }
  if (baseCli) for (const s of summary) process.stdout.write(baseVerdictLine(`ps=${s.psMode}`, s.wcOverBase, s.wcOverBasePerRound));
  const warning = disturbedWarning(results);
  if (warning) process.stdout.write(`${warning}\n`);
  for (const ep of proxies) {
    const f = fill[ep];
    const fin = final[ep];
    const name = ep === 'wirecache' ? 'cache' : `${ep} cache`;
    process.stdout.write(
      `${name} after the fill: ${f?.afterFill.entries ?? '?'} entries (expected ${expectedEntries}), ${f ? (f.afterFill.bytes / 2 ** 20).toFixed(1) : '?'} MiB ` +
        `of ${(maxBytes / 2 ** 20).toFixed(0)} MiB, evictions ${f?.evictions ?? '?'}, refusals ${f?.refusals ?? '?'}\n`,
    );
    if (fin) {
      const total = fin.hits + fin.misses;
      process.stdout.write(`${name} over the whole run: ${fin.hits} hits, ${fin.misses} misses (the fill), hit ratio ${total > 0 ? ((fin.hits / total) * 100).toFixed(2) : '-'}%\n`);
    }
  }
  const runRss = results.filter((r) => r.endpoint === 'wirecache' && r.rssKb !== null).map((r) => r.rssKb as number);
  process.stdout.write(
    `wirecache RSS: after the fill ${mib(fill.wirecache?.rssKb ?? null)}, after each measured run ${runRss.length ? `${mib(Math.min(...runRss))}..${mib(Math.max(...runRss))}` : 'n/a'}, ` +
      `peak (VmHWM) ${mib(measuredPeakRssKb)}${profiles.length ? ` (${mib(peakRssKb)} with the profiled runs)` : ''}` +
      `${baseCli ? `; base: after the fill ${mib(fill.base?.rssKb ?? null)}, peak ${mib(basePeakRssKb)}` : ''}\n`,
  );
  for (const p of profiles) {
    process.stdout.write(`\n${p.kind} of a cache-hit run, ps=${p.psMode} (${p.qps.toFixed(0)} qps, proxy CPU ${p.proxyCpuPct}%):\n${p.summary}`);
  }

  const failed = results.filter((r) => r.problem !== undefined);
  if (outFile) {
    const doc = {
      date: new Date().toISOString(),
      git,
      machine: machineInfo(),
      sysbench: { args: runArgs, seconds, warmupSeconds: warmup, rounds, retries },
      cache: {
        query,
        rangeSize: query === 'range' ? rangeSize : null,
        ruleStyle,
        maxBytes,
        expectedEntries,
        afterFill: fill.wirecache?.afterFill ?? null,
        final: final.wirecache ?? null,
        evictions: fill.wirecache?.evictions ?? null,
        refusals: fill.wirecache?.refusals ?? null,
      },
      results,
      aggregated: agg,
      summary,
      base: baseCli ? { cli: baseCli, commit: baseCommit, ...fill.base, final: final.base ?? null, peakRssKb: basePeakRssKb } : null,
      wirecacheRssAfterFillKb: fill.wirecache?.rssKb ?? null,
      wirecachePeakRssKb: measuredPeakRssKb,
      wirecachePeakRssWithProfilingKb: peakRssKb,
      profiles: profiles.map((p) => ({ psMode: p.psMode, kind: p.kind, file: p.file, qps: p.qps, proxyCpuPct: p.proxyCpuPct })),
      problems,
      ok: failed.length === 0 && problems.length === 0,
    };
    await writeResults(outFile, doc);
  }
  for (const p of problems) process.stdout.write(`PROBLEM: ${p}\n`);
  if (failed.length > 0) {
    process.stdout.write(`\n${failed.length} run(s) had errors:\n`);
    for (const r of failed) process.stdout.write(`  ps=${r.psMode} ${r.endpoint} round ${r.round}: ${r.problem}\n`);
  }
  return failed.length > 0 || problems.length > 0 ? 1 : 0;
}

runMain(main);
