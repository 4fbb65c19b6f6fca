/**
 * What the benchmarks share (bench/run.ts: pass-through, bench/cache.ts:
 * cache hits, bench/routing.ts: read/write split): environment parsing,
 * child processes, the wirecache child and its config, sysbench, CPU
 * accounting from /proc, the report helpers, and BENCH_BASE_CLI (another
 * build measured beside wirecache as endpoint `base`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getFreePorts, waitForPort } from '../scripts/topology.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const HOST = '127.0.0.1';
export const DB = 'wc_test';
export const USER = 'app';
export const PASSWORD = 'app_pw';
/** "other CPU" above this (in % of one core) marks a run as disturbed by foreign load. */
export const FOREIGN_CPU_WARN_PCT = 10;
export const RETRY_WAIT_MS = 15_000;

export type PsMode = 'disable' | 'auto';

export function envInt(name: string, def: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return v;
}

export function envList<T extends string>(name: string, def: readonly T[], allowed?: readonly T[]): T[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return [...def];
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean) as T[];
  if (allowed) for (const i of items) if (!allowed.includes(i)) throw new Error(`${name}: unknown value ${i} (allowed: ${allowed.join(', ')})`);
  return items;
}

export function envString<T extends string>(name: string, def: T, allowed: readonly T[]): T {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  if (!allowed.includes(raw as T)) throw new Error(`${name}: unknown value ${raw} (allowed: ${allowed.join(', ')})`);
  return raw as T;
}

export const log = (m: string): void => {
  process.stderr.write(`[bench] ${m}\n`);
};
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// child processes and interruption

const children = new Set<ChildProcess>();
let currentSysbench: ChildProcess | null = null;
/** Set by the SIGINT/SIGTERM handler of installInterruptHandler(). */
export const interruption = { interrupted: false };

process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

export function spawnTracked(cmd: string, args: string[], logFile: string | null): ChildProcess {
  const fd = logFile === null ? 'ignore' : openSync(logFile, 'a');
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', fd, fd] });
  if (typeof fd === 'number') closeSync(fd);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export async function stopChild(child: ChildProcess, timeoutMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(t);
}

export async function tail(file: string, n = 3000): Promise<string> {
  try {
    const s = await fs.readFile(file, 'utf8');
    return s.slice(-n).trim() || '(empty)';
  } catch {
    return '(no log)';
  }
}

/**
 * First SIGINT/SIGTERM: stop the running sysbench and mark the run
 * interrupted (checkInterrupted() then throws); second: exit at once.
 * Returns the function that removes the handler (for the cleanup phase).
 */
export function installInterruptHandler(): () => void {
  const onSignal = (): void => {
    if (interruption.interrupted) {
      log('second SIGINT: exiting now');
      process.exit(130);
    }
    interruption.interrupted = true;
    log('SIGINT: stopping sysbench, proxies and topology');
    currentSysbench?.kill('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.on('SIGINT', () => log('SIGINT during cleanup: still stopping'));
    currentSysbench?.kill('SIGKILL');
  };
}

export function checkInterrupted(): void {
  if (interruption.interrupted) throw new Error('interrupted');
}

/** Runs a benchmark's main() and exits with its status (130 once interrupted, 1 when it throws). */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(interruption.interrupted ? 130 : code),
    (e: unknown) => {
      log(interruption.interrupted ? 'interrupted' : e instanceof Error ? (e.stack ?? e.message) : String(e));
      process.exit(interruption.interrupted ? 130 : 1);
    },
  );
}

// ---------------------------------------------------------------------------
// the wirecache child

/** BENCH_WORKERS as config lines for the measured wirecache (`workers: N` or `auto`), or none when unset. */
export function workersLines(): string[] {
  const raw = process.env.BENCH_WORKERS;
  if (!raw) return [];
  if (raw !== 'auto' && !/^[1-9][0-9]{0,2}$/.test(raw)) throw new Error(`BENCH_WORKERS must be auto or a count, got ${raw}`);
  return [`workers: ${raw}`];
}

/**
 * A wirecache config: listen and admin on HOST, the primary (and the replicas) as backends,
 * USER/PASSWORD as the one user, no shutdown grace, log level warn, then the `extra` lines
 * (top-level sections such as cache, monitor, routing). adminPort 0: a port the OS picks.
 */
export function wirecacheConfigYaml(o: {
  port: number;
  adminPort: number;
  primary: { host: string; port: number };
  replicas?: { name: string; host: string; port: number }[];
  extra?: string[];
}): string {
  const backend = (name: string, s: { host: string; port: number }, role: string): string[] => [`  - name: ${name}`, `    host: ${s.host}`, `    port: ${s.port}`, `    role: ${role}`];
  return [
    'listen:',
    `  host: ${HOST}`,
    `  port: ${o.port}`,
    'admin:',
    `  host: ${HOST}`,
    `  port: ${o.adminPort}`,
    'backends:',
    ...backend('primary', o.primary, 'primary'),
    ...(o.replicas ?? []).flatMap((r) => backend(r.name, r, 'replica')),
    'users:',
    `  - name: ${USER}`,
    `    password: ${PASSWORD}`,
    'timeouts:',
    '  shutdown_grace_ms: 0',
    'log:',
    '  level: warn',
    ...(o.extra ?? []),
    '',
  ].join('\n');
}

/**
 * Starts `node [BENCH_WIRECACHE_NODE_ARGS] [nodeArgs] cli --config configFile` (output to logFile);
 * `ready` resolves once it accepts connections on `port` (then on `adminPort`, when given).
 */
export function startWirecache(o: {
  cli: string;
  configFile: string;
  logFile: string;
  port: number;
  adminPort?: number;
  /** names the child in startup errors (default "wirecache") */
  label?: string;
  nodeArgs?: string[];
}): { child: ChildProcess; ready: Promise<void> } {
  const envArgs = (process.env.BENCH_WIRECACHE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawnTracked(process.execPath, [...envArgs, ...(o.nodeArgs ?? []), o.cli, '--config', o.configFile], o.logFile);
  const label = o.label ?? 'wirecache';
  const ready = (async (): Promise<void> => {
    await waitForPort(o.port, child, label, o.logFile);
    if (o.adminPort !== undefined) await waitForPort(o.adminPort, child, `${label} admin`, o.logFile);
  })();
  return { child, ready };
}

// ---------------------------------------------------------------------------
// BENCH_BASE_CLI: another build of wirecache, endpoint `base`

/** wirecache over base below this (new qps / old qps) counts as slower. */
export const NOT_SLOWER = 0.98;

/** BENCH_BASE_CLI resolved (another build's dist/cli.js, run as endpoint `base`), or null when unset. */
export function baseCliFromEnv(): string | null {
  const raw = process.env.BENCH_BASE_CLI;
  if (!raw) return null;
  const cli = path.resolve(raw);
  if (!existsSync(cli)) throw new Error(`BENCH_BASE_CLI: ${cli} not found (build that checkout first)`);
  return cli;
}

/**
 * Starts the build `cli` as endpoint `base` on two free ports: `yaml(port, adminPort)` is wirecache's
 * config on those ports; config and log go to `dir`. Await `ready` (the child is returned first, to be stopped).
 */
export async function startBase(
  cli: string,
  dir: string,
  yaml: (port: number, adminPort: number) => string,
  nodeArgs?: string[],
): Promise<{ child: ChildProcess; ready: Promise<void>; port: number; adminPort: number }> {
  const [port, adminPort] = await getFreePorts(2);
  const configFile = path.join(dir, 'base.yaml');
  await fs.writeFile(configFile, yaml(port, adminPort));
  return { ...startWirecache({ cli, configFile, logFile: path.join(dir, 'base.log'), port, adminPort, label: 'base', nodeArgs }), port, adminPort };
}

/** The commit a build was made from (`git rev-parse HEAD` beside it, e.g. in its worktree), or null. */
export function buildCommit(cli: string): string | null {
  const rev = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: path.dirname(cli), encoding: 'utf8' });
  return rev.status === 0 ? rev.stdout.trim() : null;
}

/** qps of endpoint `a` over endpoint `b` in each round where both ran (`runs`: one workload and protocol). */
export function perRoundRatios(runs: { endpoint: string; round: number; qps: number }[], a: string, b: string, rounds: number): number[] {
  const out: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const ra = runs.find((r) => r.endpoint === a && r.round === round);
    const rb = runs.find((r) => r.endpoint === b && r.round === round);
    if (ra && rb && rb.qps > 0) out.push(ra.qps / rb.qps);
  }
  return out;
}

/** The report line of wirecache against the base build: the ratio of the aggregated qps, the verdict and the ratio per round. */
export function baseVerdictLine(what: string, ratio: number | null, perRound: number[]): string {
  const verdict = ratio === null ? 'n/a' : ratio >= NOT_SLOWER ? 'not slower' : 'SLOWER';
  return `wirecache/base qps (>= ${NOT_SLOWER}: not slower), ${what}: ${verdict} (${fmtRatio(ratio)}; per round ${perRound.map((x) => x.toFixed(2)).join(', ')})\n`;
}

// ---------------------------------------------------------------------------
// /proc accounting

/** utime + stime of a process in seconds (Linux /proc), or null. */
export function cpuSeconds(pid: number | undefined): number | null {
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

/** utime and stime of a process in seconds, separately (Linux /proc), or null. */
export function cpuSplitSeconds(pid: number | undefined): { user: number; sys: number } | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 };
  } catch {
    return null;
  }
}

/** CPU seconds of this process's reaped children (cutime + cstime): sysbench, once it has exited. */
export function reapedChildrenCpuSeconds(): number | null {
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
export function machineCpuSeconds(): { task: number; irq: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
    return { task: (v[0] + v[1] + v[2] + v[7]) / 100, irq: (v[5] + v[6]) / 100 };
  } catch {
    return null;
  }
}

/** CPU seconds and name of every process (Linux /proc). */
export function allProcessCpu(): Map<number, { comm: string; cpu: number }> {
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

export function procStatusKb(pid: number | undefined, key: string): number | null {
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

export interface SysbenchOut {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs sysbench (a workload name, or a path to a Lua script, then options and the command). */
export function sysbench(args: string[]): Promise<SysbenchOut> {
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

/** Runs sysbench; throws `${what} failed (exit code): output` unless it exits 0. */
export async function sysbenchOrThrow(args: string[], what: string): Promise<SysbenchOut> {
  const out = await sysbench(args);
  checkInterrupted();
  if (out.code !== 0) throw new Error(`${what} failed (${out.code}):\n${out.stdout}\n${out.stderr}`);
  return out;
}

/** The arguments of a timed sysbench run of `workload` against `port`. */
export function sysbenchRunArgs(workload: string, port: number, args: string[], seconds: number, psMode: PsMode): string[] {
  return [workload, ...connArgs(port), ...args, `--time=${seconds}`, `--db-ps-mode=${psMode}`, 'run'];
}

export function connArgs(port: number): string[] {
  return [
    '--db-driver=mysql',
    `--mysql-host=${HOST}`,
    `--mysql-port=${port}`,
    `--mysql-user=${USER}`,
    `--mysql-password=${PASSWORD}`,
    `--mysql-db=${DB}`,
  ];
}

export interface SysbenchFigures {
  qps: number;
  tps: number;
  p95Ms: number;
  avgMs: number;
  errors: number;
  reconnects: number;
}

export function parseSysbench(out: string): SysbenchFigures | null {
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

/** One measured sysbench run: its figures and where the machine's CPU went meanwhile. */
export interface Measurement extends SysbenchFigures {
  exitCode: number | null;
  /** CPU used by the proxy process during the run, in % of one core (null: no proxy, i.e. direct). */
  proxyCpuPct: number | null;
  /** The same split into user space and kernel (utime, stime). */
  proxyUserCpuPct: number | null;
  proxySysCpuPct: number | null;
  /** CPU used by sysbench and by mariadbd during the run, in % of one core. */
  sysbenchCpuPct: number | null;
  mariadbCpuPct: number | null;
  /**
   * CPU used machine-wide by anything else (other users' tests, ...) during the run,
   * in % of one core: /proc/stat user+nice+system+steal minus sysbench, mariadbd, the proxies and this script.
   * High values mean the figures of that run are disturbed.
   */
  foreignCpuPct: number | null;
  /**
   * The same measured per process: the sum of every other process's CPU (those alive at both ends of
   * the run), in % of one core. On a saturated machine the /proc/stat figure above can miss foreign
   * load (softirq time is counted both machine-wide and in the benchmark's processes), this one does not.
   */
  foreignProcCpuPct: number | null;
  /** Machine-wide irq + softirq time (loopback networking, charged to no process), in % of one core. */
  irqCpuPct: number | null;
  /** The busiest other processes during the run (pid, name, % of one core). */
  foreignTop: { pid: number; comm: string; cpuPct: number }[];
  /** Set when the run failed: non-zero exit, unparsable output, ignored errors or reconnects. */
  problem?: string;
  stdout: string;
  stderr: string;
}

/**
 * Runs sysbench with `args` and measures CPU meanwhile. `proxyPid`: the
 * process sysbench talks to (undefined when direct); `proxyPids`: every
 * proxy of the benchmark (running or not; undefined: not started), which
 * with mariadbd, sysbench and this script does not count as foreign load.
 */
export async function measureSysbench(args: string[], proxyPid: number | undefined, mariadbPid: number | undefined, proxyPids: (number | undefined)[]): Promise<Measurement> {
  proxyPids = proxyPids.filter((p) => p !== undefined);
  const ownPids = new Set([mariadbPid, ...proxyPids, process.pid]);
  const snap = (): (number | null)[] => {
    const machine = machineCpuSeconds();
    return [
      cpuSeconds(proxyPid),
      reapedChildrenCpuSeconds(),
      cpuSeconds(mariadbPid),
      cpuSeconds(process.pid),
      machine?.task ?? null,
      machine?.irq ?? null,
      ...proxyPids.map(cpuSeconds),
    ];
  };
  const procs0 = allProcessCpu();
  const split0 = cpuSplitSeconds(proxyPid);
  const s0 = snap();
  const t0 = process.hrtime.bigint();
  const out = await sysbench(args);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const s1 = snap();
  const split1 = cpuSplitSeconds(proxyPid);
  const procs1 = allProcessCpu();
  const d = s0.map((v, i) => (v === null || s1[i] === null ? null : (s1[i] as number) - v));
  const pct = (x: number | null): number | null => (x === null ? null : Math.round((x / wall) * 1000) / 10);
  const [dProxy, dSysbench, dMaria, dSelf, dBusy, dIrq, ...dProxies] = d;
  const foreign =
    dSysbench === null || dMaria === null || dSelf === null || dBusy === null || dProxies.some((x) => x === null)
      ? null
      : Math.max(0, dBusy - dSysbench - dMaria - dSelf - dProxies.reduce((a: number, x) => a + (x as number), 0));
  // Which other processes used the CPU (those alive at both ends of the run).
  const others: { pid: number; comm: string; cpuPct: number }[] = [];
  let othersCpu = 0;
  for (const [opid, p1] of procs1) {
    const p0 = procs0.get(opid);
    if (ownPids.has(opid) || p0 === undefined || p0.comm !== p1.comm) continue;
    othersCpu += p1.cpu - p0.cpu;
    const pc = pct(p1.cpu - p0.cpu) ?? 0;
    if (pc >= 1) others.push({ pid: opid, comm: p1.comm, cpuPct: pc });
  }
  others.sort((a, b) => b.cpuPct - a.cpuPct);
  const parsed = parseSysbench(out.stdout);
  const m: Measurement = {
    qps: parsed?.qps ?? 0,
    tps: parsed?.tps ?? 0,
    p95Ms: parsed?.p95Ms ?? 0,
    avgMs: parsed?.avgMs ?? 0,
    errors: parsed?.errors ?? 0,
    reconnects: parsed?.reconnects ?? 0,
    exitCode: out.code,
    proxyCpuPct: proxyPid === undefined ? null : pct(dProxy),
    proxyUserCpuPct: split0 && split1 ? pct(split1.user - split0.user) : null,
    proxySysCpuPct: split0 && split1 ? pct(split1.sys - split0.sys) : null,
    sysbenchCpuPct: pct(dSysbench),
    mariadbCpuPct: pct(dMaria),
    foreignCpuPct: pct(foreign),
    foreignProcCpuPct: pct(othersCpu),
    irqCpuPct: pct(dIrq),
    foreignTop: others.slice(0, 5),
    stdout: out.stdout,
    stderr: out.stderr,
  };
  if (out.code !== 0 || parsed === null) {
    m.problem = `sysbench exit ${out.code}${parsed === null ? ', output not parsed' : ''}: ${(out.stderr + out.stdout).split('\n').filter((l) => /FATAL|error|ERROR/.test(l)).slice(0, 5).join(' | ')}`;
  } else if (m.errors > 0 || m.reconnects > 0) {
    m.problem = `${m.errors} errors, ${m.reconnects} reconnects`;
  }
  return m;
}

/** The log line of a measured run. */
export function describeMeasurement(label: string, m: Omit<Measurement, 'stdout' | 'stderr'>): string {
  return (
    `${label}: ${m.qps.toFixed(1)} qps, p95 ${m.p95Ms} ms` +
    (m.proxyCpuPct !== null ? `, proxy CPU ${m.proxyCpuPct}%` : '') +
    `, sysbench ${m.sysbenchCpuPct}%, mariadbd ${m.mariadbCpuPct}%, softirq ${m.irqCpuPct}%, other processes ${m.foreignCpuPct}%` +
    (m.foreignTop.length ? ` (${m.foreignTop.map((o) => `${o.comm}[${o.pid}] ${o.cpuPct}%`).join(', ')})` : '') +
    (m.problem ? `  PROBLEM: ${m.problem}` : '')
  );
}

/** The warning about runs disturbed by other processes (more than FOREIGN_CPU_WARN_PCT), or null when there were none. */
export function disturbedWarning(results: { foreignCpuPct: number | null }[]): string | null {
  const disturbedRuns = results.filter((r) => r.foreignCpuPct !== null && r.foreignCpuPct > FOREIGN_CPU_WARN_PCT);
  if (disturbedRuns.length === 0) return null;
  return (
    `WARNING: ${disturbedRuns.length} of ${results.length} run(s) shared the machine with other processes using more than ` +
    `${FOREIGN_CPU_WARN_PCT}% of a core (max ${Math.max(...disturbedRuns.map((r) => r.foreignCpuPct as number))}%); their figures are disturbed.`
  );
}

/** True when the run is worth making again: it worked, but other processes took more than FOREIGN_CPU_WARN_PCT. */
export function disturbed(m: { problem?: string; foreignCpuPct: number | null }): boolean {
  return m.problem === undefined && m.foreignCpuPct !== null && m.foreignCpuPct > FOREIGN_CPU_WARN_PCT;
}

// ---------------------------------------------------------------------------
// formatting

export const fmtRatio = (x: number | null): string => (x === null ? '-' : `${x.toFixed(2)}x`);

export function table(headers: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * Commit and whether src/ differs from it: what the measured dist/ was built from (if it was built just before).
 * BENCH_COMMIT names the commit when the benchmark runs in an exported tree (git archive) without .git.
 */
export function gitInfo(): { commit: string | null; srcDirty: boolean | null } {
  if (process.env.BENCH_COMMIT) return { commit: process.env.BENCH_COMMIT, srcDirty: null };
  const rev = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  const st = spawnSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' });
  return { commit: rev.status === 0 ? rev.stdout.trim() : null, srcDirty: st.status === 0 ? st.stdout.trim() !== '' : null };
}

/** The machine, for the JSON results. */
export function machineInfo(): { cpus: number; cpuModel: string | undefined; memMiB: number; node: string; kernel: string } {
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memMiB: Math.round(os.totalmem() / 2 ** 20), node: process.version, kernel: os.release() };
}

/** Writes the JSON results to `outFile` (creating its directory). */
export async function writeResults(outFile: string, doc: unknown): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(outFile)), { recursive: true });
  await fs.writeFile(outFile, `${JSON.stringify(doc, null, 2)}\n`);
  log(`results written to ${outFile}`);
}

export const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/**
 * Waits until `pids` together use less than `maxPct` of a core over 250 ms
 * (at most `limitMs`): MariaDB goes on working (purge, flushing) for a while
 * after a direct run, and would take CPU from whichever endpoint runs next.
 * Returns how long it waited.
 */
export async function waitUntilQuiet(pids: (number | undefined)[], maxPct = 5, limitMs = 10_000): Promise<number> {
  const started = Date.now();
  const total = (): number => pids.reduce<number>((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0);
  for (;;) {
    const before = total();
    await sleep(250);
    const pct = ((total() - before) / 0.25) * 100;
    if (pct < maxPct || Date.now() - started >= limitMs) return Date.now() - started;
  }
}

/** Makes a measured run, re-making it (up to `retries` times, after a pause) while other processes disturb it. */
export async function measureUndisturbed<R extends { attempts: number; problem?: string; foreignCpuPct: number | null }>(
  retries: number,
  run: () => Promise<R>,
): Promise<R> {
  for (let attempt = 0; ; attempt++) {
    checkInterrupted();
    if (attempt > 0) {
      log(`  run disturbed by other processes; waiting ${RETRY_WAIT_MS / 1000}s, retry ${attempt}/${retries}`);
      await sleep(RETRY_WAIT_MS);
      checkInterrupted();
    }
    const r = await run();
    r.attempts = attempt + 1;
    if (!disturbed(r) || attempt >= retries) return r;
  }
}
