/**
 * Pass-through benchmark: sysbench against MariaDB directly, through a plain
 * Node TCP byte pipe (bench/byte_pipe.mjs, the baseline) and through wirecache.
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
 *   BENCH_ENDPOINTS        comma list, default "direct,pipe,wirecache"
 *   BENCH_RETRIES          re-make a run up to N times (after a 15 s pause) when other processes used more
 *                          than 10% of a core during it (default 2); the last attempt is kept either way
 *   BENCH_OUT              if set, the results are also written there as JSON
 *   BENCH_WIRECACHE_NODE_ARGS  extra node flags for the wirecache child, e.g.
 *                          "--cpu-prof --cpu-prof-dir=/tmp/prof" (split on spaces)
 *
 * Exit status: 0 when every sysbench run finished without errors, 1 otherwise
 * (also when setup fails), 130 on SIGINT. The topology and both proxy children
 * are always stopped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getFreePorts, startTopology, stopTopology, waitForPort, type TopologyInfo } from '../scripts/topology.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HOST = '127.0.0.1';
const DB = 'wc_test';
const USER = 'app';
const PASSWORD = 'app_pw';
/** "other CPU" above this (in % of one core) marks a run as disturbed by foreign load. */
const FOREIGN_CPU_WARN_PCT = 10;
const RETRY_WAIT_MS = 15_000;
const SYSBENCH_COMMON = ['--tables=4', '--table-size=10000', '--threads=4', '--percentile=95'];

type Endpoint = 'direct' | 'pipe' | 'wirecache';
type PsMode = 'disable' | 'auto';

interface RunResult {
  workload: string;
  psMode: PsMode;
  endpoint: Endpoint;
  round: number;
  port: number;
  seconds: number;
  qps: number;
  tps: number;
  p95Ms: number;
  avgMs: number;
  errors: number;
  reconnects: number;
  exitCode: number | null;
  /** CPU used by the proxy process during the run, in % of one core (null for direct). */
  proxyCpuPct: number | null;
  /** CPU used by sysbench and by mariadbd during the run, in % of one core. */
  sysbenchCpuPct: number | null;
  mariadbCpuPct: number | null;
  /**
   * CPU used machine-wide by anything else (other users' tests, ...) during the run,
   * in % of one core: /proc/stat user+nice+system+steal minus sysbench, mariadbd, both proxies and this script.
   * High values mean the figures of that run are disturbed.
   */
  foreignCpuPct: number | null;
  /** Machine-wide irq + softirq time (loopback networking, charged to no process), in % of one core. */
  irqCpuPct: number | null;
  /** The busiest other processes during the run (pid, name, % of one core). */
  foreignTop: { pid: number; comm: string; cpuPct: number }[];
  /** How many times the run was made (re-made while disturbed by other processes, see BENCH_RETRIES). */
  attempts: number;
  problem?: string;
}

function envInt(name: string, def: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return v;
}

function envList<T extends string>(name: string, def: readonly T[], allowed?: readonly T[]): T[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return [...def];
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean) as T[];
  if (allowed) for (const i of items) if (!allowed.includes(i)) throw new Error(`${name}: unknown value ${i} (allowed: ${allowed.join(', ')})`);
  return items;
}

const log = (m: string): void => {
  process.stderr.write(`[bench] ${m}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// child processes

const children = new Set<ChildProcess>();
let interrupted = false;

process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function spawnTracked(cmd: string, args: string[], logFile: string | null): ChildProcess {
  const fd = logFile === null ? 'ignore' : openSync(logFile, 'a');
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', fd, fd] });
  if (typeof fd === 'number') closeSync(fd);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function stopChild(child: ChildProcess, timeoutMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(t);
}


async function tail(file: string, n = 3000): Promise<string> {
  try {
    const s = await fs.readFile(file, 'utf8');
    return s.slice(-n).trim() || '(empty)';
  } catch {
    return '(no log)';
  }
}

/** utime + stime of a process in seconds (Linux /proc), or null. */
function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after ")" start at field 3 (state); utime is field 14, stime 15
    return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** CPU seconds of this process's reaped children (cutime + cstime): sysbench, once it has exited. */
function reapedChildrenCpuSeconds(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return null;
  }
}

/**
 * Machine-wide CPU seconds (all cores) from /proc/stat: `task` = user + nice + system + steal
 * (time charged to processes, plus time the hypervisor took away), `irq` = irq + softirq (mostly
 * the loopback TCP stack here; the kernel charges it to no process).
 */
function machineCpuSeconds(): { task: number; irq: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
    return { task: (v[0] + v[1] + v[2] + v[7]) / 100, irq: (v[5] + v[6]) / 100 };
  } catch {
    return null;
  }
}

/** CPU seconds and name of every process (Linux /proc). */
function allProcessCpu(): Map<number, { comm: string; cpu: number }> {
  const m = new Map<number, { comm: string; cpu: number }>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return m;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      m.set(Number(e), { comm, cpu: (Number(f[11]) + Number(f[12])) / 100 });
    } catch {
      /* exited meanwhile */
    }
  }
  return m;
}

function procStatusKb(pid: number | undefined, key: string): number | null {
  if (pid === undefined) return null;
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// sysbench

interface SysbenchOut {
  code: number | null;
  stdout: string;
  stderr: string;
}

let currentSysbench: ChildProcess | null = null;

function sysbench(args: string[]): Promise<SysbenchOut> {
  return new Promise((resolve, reject) => {
    const child = spawn('sysbench', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    currentSysbench = child;
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => {
      children.delete(child);
      currentSysbench = null;
      resolve({ code, stdout, stderr });
    });
  });
}

function connArgs(port: number): string[] {
  return [
    '--db-driver=mysql',
    `--mysql-host=${HOST}`,
    `--mysql-port=${port}`,
    `--mysql-user=${USER}`,
    `--mysql-password=${PASSWORD}`,
    `--mysql-db=${DB}`,
  ];
}

function parseSysbench(out: string): { qps: number; tps: number; p95Ms: number; avgMs: number; errors: number; reconnects: number } | null {
  const num = (re: RegExp): number | null => {
    const m = re.exec(out);
    return m ? Number(m[1]) : null;
  };
  const qps = num(/^\s*queries:\s+\d+\s+\(([\d.]+) per sec\.\)/m);
  const tps = num(/^\s*transactions:\s+\d+\s+\(([\d.]+) per sec\.\)/m);
  const p95 = num(/^\s*95th percentile:\s+([\d.]+)/m);
  const avg = num(/^\s*avg:\s+([\d.]+)/m);
  const errors = num(/^\s*ignored errors:\s+(\d+)/m);
  const reconnects = num(/^\s*reconnects:\s+(\d+)/m);
  if (qps === null || tps === null || p95 === null || avg === null || errors === null || reconnects === null) return null;
  return { qps, tps, p95Ms: p95, avgMs: avg, errors, reconnects };
}

// ---------------------------------------------------------------------------
// formatting

function table(headers: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Commit and whether src/ differs from it: what the measured dist/ was built from (if it was built just before). */
function gitInfo(): { commit: string | null; srcDirty: boolean | null } {
  const rev = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  const st = spawnSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' });
  return { commit: rev.status === 0 ? rev.stdout.trim() : null, srcDirty: st.status === 0 ? st.stdout.trim() !== '' : null };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

// ---------------------------------------------------------------------------

async function main(): Promise<number> {
  const seconds = envInt('BENCH_SECONDS', 10, 1);
  const warmup = envInt('BENCH_WARMUP_SECONDS', 2, 0);
  const rounds = envInt('BENCH_ROUNDS', 1, 1);
  const workloads = envList('BENCH_WORKLOADS', ['oltp_point_select', 'oltp_read_only']);
  const psModes = envList<PsMode>('BENCH_PS_MODES', ['disable', 'auto'], ['disable', 'auto']);
  const endpoints = envList<Endpoint>('BENCH_ENDPOINTS', ['direct', 'pipe', 'wirecache'], ['direct', 'pipe', 'wirecache']);
  const wcNodeArgs = (process.env.BENCH_WIRECACHE_NODE_ARGS ?? '').split(' ').filter(Boolean);
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
  const results: RunResult[] = [];
  let peakRssKb: number | null = null;
  let pipePeakRssKb: number | null = null;
  let topoPrimaryPid: number | undefined;

  const onSigint = (): void => {
    if (interrupted) {
      log('second SIGINT: exiting now');
      process.exit(130);
    }
    interrupted = true;
    log('SIGINT: stopping sysbench, proxies and topology');
    currentSysbench?.kill('SIGTERM');
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  const checkInterrupted = (): void => {
    if (interrupted) throw new Error('interrupted');
  };

  try {
    // Replicas are not used: 0 keeps CPU for the benchmark.
    topo = await startTopology({ replicas: 0, baseDir: path.join(tmp, 'topo'), log: (m) => log(`topology: ${m}`) });
    checkInterrupted();
    const directPort = topo.primary.port;
    topoPrimaryPid = topo.primary.pid;
    const [wcPort, pipePort] = await getFreePorts(2);

    const configFile = path.join(tmp, 'wirecache.yaml');
    await fs.writeFile(
      configFile,
      [
        'listen:',
        `  host: ${HOST}`,
        `  port: ${wcPort}`,
        'admin:',
        `  host: ${HOST}`,
        '  port: 0',
        'backends:',
        '  - name: primary',
        `    host: ${topo.primary.host}`,
        `    port: ${topo.primary.port}`,
        '    role: primary',
        'users:',
        `  - name: ${USER}`,
        `    password: ${PASSWORD}`,
        'timeouts:',
        '  shutdown_grace_ms: 0',
        'log:',
        '  level: warn',
        '',
      ].join('\n'),
    );

    const wcLog = path.join(tmp, 'wirecache.log');
    const pipeLog = path.join(tmp, 'byte_pipe.log');
    wirecache = spawnTracked(process.execPath, [...wcNodeArgs, cli, '--config', configFile], wcLog);
    pipe = spawnTracked(process.execPath, [path.join(ROOT, 'bench', 'byte_pipe.mjs'), String(pipePort), `${HOST}:${directPort}`], pipeLog);
    await Promise.all([
      waitForPort(wcPort, wirecache, 'wirecache', wcLog),
      waitForPort(pipePort, pipe, 'byte_pipe', pipeLog),
    ]);
    log(`direct :${directPort}  pipe :${pipePort} (pid ${pipe.pid})  wirecache :${wcPort} (pid ${wirecache.pid})`);

    const ports: Record<Endpoint, number> = { direct: directPort, pipe: pipePort, wirecache: wcPort };
    const procs: Record<Endpoint, ChildProcess | undefined> = { direct: undefined, pipe, wirecache };

    // Data: once, directly on the primary. oltp_read_only and oltp_point_select share the schema.
    log('sysbench prepare (direct)');
    const prep = await sysbench(['oltp_read_only', ...connArgs(directPort), '--tables=4', '--table-size=10000', '--threads=4', 'prepare']);
    checkInterrupted();
    if (prep.code !== 0) throw new Error(`sysbench prepare failed (${prep.code}):\n${prep.stdout}\n${prep.stderr}`);

    if (warmup > 0) {
      for (const ep of endpoints) {
        log(`warm-up ${warmup}s oltp_point_select via ${ep}`);
        const w = await sysbench(['oltp_point_select', ...connArgs(ports[ep]), ...SYSBENCH_COMMON, `--time=${warmup}`, '--db-ps-mode=disable', 'run']);
        checkInterrupted();
        if (w.code !== 0) throw new Error(`warm-up via ${ep} failed (${w.code}):\n${w.stdout}\n${w.stderr}`);
      }
    }

    const measure = async (workload: string, psMode: PsMode, ep: Endpoint, round: number): Promise<RunResult> => {
      const pid = procs[ep]?.pid;
      const ownPids = new Set([topoPrimaryPid, wirecache?.pid, pipe?.pid, process.pid]);
      const snap = (): (number | null)[] => [
        cpuSeconds(pid),
        reapedChildrenCpuSeconds(),
        cpuSeconds(topoPrimaryPid),
        cpuSeconds(wirecache?.pid),
        cpuSeconds(pipe?.pid),
        cpuSeconds(process.pid),
        machineCpuSeconds()?.task ?? null,
        machineCpuSeconds()?.irq ?? null,
      ];
      const procs0 = allProcessCpu();
      const s0 = snap();
      const t0 = process.hrtime.bigint();
      const out = await sysbench([workload, ...connArgs(ports[ep]), ...SYSBENCH_COMMON, `--time=${seconds}`, `--db-ps-mode=${psMode}`, 'run']);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const s1 = snap();
      const procs1 = allProcessCpu();
      const d = s0.map((v, i) => (v === null || s1[i] === null ? null : (s1[i] as number) - v));
      const pct = (x: number | null): number | null => (x === null ? null : Math.round((x / wall) * 1000) / 10);
      const [dProxy, dSysbench, dMaria, dWc, dPipe, dSelf, dBusy, dIrq] = d;
      const foreign =
        dSysbench === null || dMaria === null || dWc === null || dPipe === null || dSelf === null || dBusy === null
          ? null
          : Math.max(0, dBusy - dSysbench - dMaria - dWc - dPipe - dSelf);
      // Which other processes used the CPU (those alive at both ends of the run).
      const others: { pid: number; comm: string; cpuPct: number }[] = [];
      for (const [opid, p1] of procs1) {
        const p0 = procs0.get(opid);
        if (ownPids.has(opid) || p0 === undefined || p0.comm !== p1.comm) continue;
        const pc = pct(p1.cpu - p0.cpu) ?? 0;
        if (pc >= 1) others.push({ pid: opid, comm: p1.comm, cpuPct: pc });
      }
      others.sort((a, b) => b.cpuPct - a.cpuPct);
      const parsed = parseSysbench(out.stdout);
      const r: RunResult = {
        workload,
        psMode,
        endpoint: ep,
        round,
        port: ports[ep],
        seconds,
        qps: parsed?.qps ?? 0,
        tps: parsed?.tps ?? 0,
        p95Ms: parsed?.p95Ms ?? 0,
        avgMs: parsed?.avgMs ?? 0,
        errors: parsed?.errors ?? 0,
        reconnects: parsed?.reconnects ?? 0,
        exitCode: out.code,
        proxyCpuPct: pid === undefined ? null : pct(dProxy),
        sysbenchCpuPct: pct(dSysbench),
        mariadbCpuPct: pct(dMaria),
        foreignCpuPct: pct(foreign),
        irqCpuPct: pct(dIrq),
        foreignTop: others.slice(0, 5),
        attempts: 1,
      };
      if (out.code !== 0 || parsed === null) {
        r.problem = `sysbench exit ${out.code}${parsed === null ? ', output not parsed' : ''}: ${(out.stderr + out.stdout).split('\n').filter((l) => /FATAL|error|ERROR/.test(l)).slice(0, 5).join(' | ')}`;
      } else if (r.errors > 0 || r.reconnects > 0) {
        r.problem = `${r.errors} errors, ${r.reconnects} reconnects`;
      }
      log(
        `round ${round} ${workload} ps=${psMode} ${ep}: ${r.qps.toFixed(1)} qps, p95 ${r.p95Ms} ms` +
          (r.proxyCpuPct !== null ? `, proxy CPU ${r.proxyCpuPct}%` : '') +
          `, sysbench ${r.sysbenchCpuPct}%, mariadbd ${r.mariadbCpuPct}%, softirq ${r.irqCpuPct}%, other processes ${r.foreignCpuPct}%` +
          (r.foreignTop.length ? ` (${r.foreignTop.map((o) => `${o.comm}[${o.pid}] ${o.cpuPct}%`).join(', ')})` : '') +
          (r.problem ? `  PROBLEM: ${r.problem}` : ''),
      );
      if (r.problem && (out.code !== 0 || parsed === null)) log(`sysbench output:\n${out.stdout}\n${out.stderr}`.slice(-4000));
      return r;
    };

    let order = [...endpoints];
    for (let round = 1; round <= rounds; round++) {
      for (const workload of workloads) {
        for (const psMode of psModes) {
          // Endpoints interleaved within each workload/mode; the order rotates per round.
          for (const ep of order) {
            let r: RunResult | undefined;
            for (let attempt = 0; attempt <= retries; attempt++) {
              checkInterrupted();
              if (attempt > 0) {
                log(`  run disturbed by other processes; waiting ${RETRY_WAIT_MS / 1000}s, retry ${attempt}/${retries}`);
                await sleep(RETRY_WAIT_MS);
                checkInterrupted();
              }
              r = await measure(workload, psMode, ep, round);
              r.attempts = attempt + 1;
              if (r.problem !== undefined || r.foreignCpuPct === null || r.foreignCpuPct <= FOREIGN_CPU_WARN_PCT) break;
            }
            results.push(r as RunResult);
          }
        }
      }
      order = [...order.slice(1), order[0]];
    }

    // Peak RSS of the proxies over the whole run, read before they are stopped.
    peakRssKb = procStatusKb(wirecache.pid, 'VmHWM');
    pipePeakRssKb = procStatusKb(pipe.pid, 'VmHWM');
    const wcLogText = await tail(wcLog, 2000);
    if (wcLogText !== '(empty)') log(`wirecache log (tail):\n${wcLogText}`);
  } finally {
    process.off('SIGINT', onSigint);
    process.on('SIGINT', () => log('SIGINT during cleanup: still stopping'));
    currentSysbench?.kill('SIGKILL');
    await Promise.all([wirecache && stopChild(wirecache), pipe && stopChild(pipe)]);
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
  const fmtRatio = (x: number | null): string => (x === null ? '-' : `${x.toFixed(2)}x`);

  const rows: string[][] = [];
  const summary: { workload: string; psMode: PsMode; wcOverPipe: number | null; wcOverDirect: number | null; pipeOverDirect: number | null; goalMet: boolean | null }[] = [];
  for (const workload of workloads) {
    for (const psMode of psModes) {
      const d = find(workload, psMode, 'direct');
      const p = find(workload, psMode, 'pipe');
      const w = find(workload, psMode, 'wirecache');
      const wp = ratio(w, p);
      const wd = ratio(w, d);
      const pd = ratio(p, d);
      summary.push({ workload, psMode, wcOverPipe: wp, wcOverDirect: wd, pipeOverDirect: pd, goalMet: wp === null ? null : wp >= 0.9 });
      for (const a of [d, p, w]) {
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
        ]);
      }
    }
  }
  const headers = ['workload', 'ps-mode', 'endpoint', 'qps', 'p95 ms', 'proxy CPU', 'proxy us/q', 'other CPU', 'errors', 'wc/pipe', 'wc/direct', 'pipe/direct'];
  const git = gitInfo();
  process.stdout.write(
    `\nsysbench ${SYSBENCH_COMMON.join(' ')} --time=${seconds}, ${rounds} round(s), ${os.cpus().length} CPUs, ` +
      `commit ${git.commit?.slice(0, 12) ?? '?'}${git.srcDirty ? ' (src/ modified)' : ''}\n\n`,
  );
  process.stdout.write(`${table(headers, rows, [false, false, false, true, true, true, true, true, true, true, true, true])}\n\n`);
  const disturbed = results.filter((r) => r.foreignCpuPct !== null && r.foreignCpuPct > FOREIGN_CPU_WARN_PCT);
  if (disturbed.length > 0) {
    process.stdout.write(
      `WARNING: ${disturbed.length} of ${results.length} run(s) shared the machine with other processes using more than ` +
        `${FOREIGN_CPU_WARN_PCT}% of a core (max ${Math.max(...disturbed.map((r) => r.foreignCpuPct as number))}%); their figures are disturbed.\n\n`,
    );
  }
  for (const s of summary) {
    if (s.goalMet === null) continue;
    process.stdout.write(`goal wirecache >= 0.9x pipe qps, ${s.workload} ps=${s.psMode}: ${s.goalMet ? 'met' : 'NOT met'} (${fmtRatio(s.wcOverPipe)})\n`);
  }
  process.stdout.write(`wirecache peak RSS (VmHWM): ${peakRssKb === null ? 'n/a' : `${(peakRssKb / 1024).toFixed(1)} MiB`}`);
  process.stdout.write(`; byte pipe peak RSS: ${pipePeakRssKb === null ? 'n/a' : `${(pipePeakRssKb / 1024).toFixed(1)} MiB`}\n`);

  const failed = results.filter((r) => r.problem !== undefined);
  if (outFile) {
    const doc = {
      date: new Date().toISOString(),
      git: gitInfo(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memMiB: Math.round(os.totalmem() / 2 ** 20), node: process.version, kernel: os.release() },
      sysbench: { args: SYSBENCH_COMMON, seconds, warmupSeconds: warmup, rounds, retries },
      results,
      aggregated: agg,
      summary,
      wirecachePeakRssKb: peakRssKb,
      pipePeakRssKb,
      ok: failed.length === 0,
    };
    await fs.mkdir(path.dirname(path.resolve(outFile)), { recursive: true });
    await fs.writeFile(outFile, `${JSON.stringify(doc, null, 2)}\n`);
    log(`results written to ${outFile}`);
  }
  if (failed.length > 0) {
    process.stdout.write(`\n${failed.length} run(s) had errors:\n`);
    for (const r of failed) process.stdout.write(`  ${r.workload} ps=${r.psMode} ${r.endpoint} round ${r.round}: ${r.problem}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(interrupted ? 130 : code),
  (e: unknown) => {
    log(interrupted ? 'interrupted' : e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(interrupted ? 130 : 1);
  },
);
