/**
 * Read/write split benchmark: sysbench oltp_read_only through wirecache with
 * its reads split over two replicas, against the same sysbench run directly
 * on the primary, text protocol and server-side prepared statements, in one
 * run; reported as qps ratios (median over the rounds) and as the spread of
 * the proxy's statements over the servers.
 *
 *   npm run build && npx tsx bench/routing.ts      (or BENCH_ROUTING=1 bench/run.sh)
 *
 * sysbench runs with --skip_trx=on by default: every query is autocommit, so
 * wirecache may send it to a replica. Without it (BENCH_ROUTING_SKIP_TRX=off)
 * oltp_read_only wraps every event in BEGIN ... COMMIT and the split sends
 * every read of an open transaction to the primary (reason "transaction").
 *
 * Steps: start a MariaDB primary and two GTID replicas (scripts/topology.ts),
 * create the sysbench tables on the primary and wait until both replicas have
 * them, start wirecache as a child with the three backends (primary role
 * primary, replica1 and replica2 role replica) and a monitor section (root,
 * interval 1000 ms), wait until the monitor has put both replicas in rotation,
 * warm both endpoints up, then measure direct (the primary) and wirecache in
 * turns (the order rotates every round). Every wirecache run reads
 * wirecache_routed_statements_total (destination, server, reason) from
 * /metrics before and after; every run, direct or not, also reads Com_select
 * and Com_stmt_execute of each server (SHOW GLOBAL STATUS, as root), so where
 * the reads went is seen from both sides.
 *
 * Environment:
 *   BENCH_SECONDS              --time of every measured run (default 10)
 *   BENCH_ROUNDS               rounds; figures are medians over them (default 3)
 *   BENCH_WARMUP_SECONDS       unrecorded run per endpoint and protocol before measuring (default 3; 0 = none)
 *   BENCH_PS_MODES             comma list, default "disable,auto"
 *   BENCH_ENDPOINTS            comma list, default "direct,wirecache"; add "wirecache_primary" for a second
 *                              wirecache with the primary as its only backend (the proxy without the split)
 *   BENCH_THREADS              sysbench --threads, the same for both endpoints (default 4)
 *   BENCH_ROUTING_TABLES       sysbench --tables (default 4)
 *   BENCH_ROUTING_TABLE_SIZE   sysbench --table-size (default 10000)
 *   BENCH_ROUTING_SKIP_TRX     on (default) or off: sysbench --skip_trx
 *   BENCH_ROUTING_WORKLOAD     oltp_read_only (default) or oltp_read_write
 *   BENCH_ROUTING_POOL         the pool of wirecache: multiplexing (default, the config default), pool (kept
 *                              connections, no multiplexing) or off (pool.max_idle 0, no multiplexing)
 *   BENCH_ROUTING_CONSISTENCY  routing.consistency of wirecache: session (default, the config default) or eventual
 *   BENCH_RETRIES              re-make a run disturbed by other processes up to N times (default 2)
 *   BENCH_OUT                  if set, the results are also written there as JSON
 *   BENCH_WIRECACHE_CLI        the wirecache entry point to run (default dist/cli.js), e.g. a build of
 *                              another commit
 *   BENCH_WIRECACHE_NODE_ARGS  extra node flags for the wirecache child (split on spaces)
 *   BENCH_KEEP_TMP             1: keep the temporary directory (config, wirecache log) instead of deleting it
 *   BENCH_COMMIT               the commit to report when running in an exported tree without .git
 *
 * Exit status: 0 when every sysbench run finished without errors, both
 * replicas were in rotation and (with --skip_trx=on) reads reached them;
 * 1 otherwise (also when setup fails); 130 on SIGINT. The topology and the
 * wirecache child are always stopped.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { getFreePorts, startTopology, stopTopology, waitForReplication, type ServerInfo, type TopologyInfo } from '../scripts/topology.js';
import {
  checkInterrupted,
  connArgs,
  cpuSeconds,
  describeMeasurement,
  disturbedWarning,
  envInt,
  envList,
  envString,
  gitInfo,
  HOST,
  installInterruptHandler,
  log,
  machineInfo,
  measureSysbench,
  measureUndisturbed,
  median,
  procStatusKb,
  ROOT,
  runMain,
  sleep,
  startWirecache,
  stopChild,
  sysbenchOrThrow,
  sysbenchRunArgs,
  table,
  tail,
  wirecacheConfigYaml,
  writeResults,
  type Measurement,
  type PsMode,
} from './common.js';

/**
 * direct: the primary itself; wirecache: the proxy splitting reads over the replicas;
 * wirecache_primary (optional): a second wirecache with the primary as its only backend (no split),
 * to tell the cost of the proxy from the effect of the split.
 */
type Endpoint = 'direct' | 'wirecache' | 'wirecache_primary';
const ALL_ENDPOINTS: Endpoint[] = ['direct', 'wirecache', 'wirecache_primary'];
const SERVERS = ['primary', 'replica1', 'replica2'] as const;
type ServerName = (typeof SERVERS)[number];
/** How long the monitor may take to put both replicas in rotation after wirecache started. */
const ROTATION_TIMEOUT_MS = 30_000;

/** Statements counted by the servers themselves (SHOW GLOBAL STATUS). */
interface ServerCounts {
  comSelect: number;
  comStmtExecute: number;
  comStmtPrepare: number;
}

interface RunResult extends Omit<Measurement, 'stdout' | 'stderr'> {
  psMode: PsMode;
  endpoint: Endpoint;
  round: number;
  attempts: number;
  /** sysbench's total of queries in the run (not per second). */
  queries: number | null;
  /** wirecache runs: routed statements during the run, "destination|server|reason" -> count. */
  routed: Record<string, number> | null;
  /** wirecache runs: read retries and consistency checks during the run. */
  readRetries: number | null;
  consistency: Record<string, number> | null;
  /** Per server: Com_select / Com_stmt_execute during the run, and mariadbd CPU in % of one core. */
  servers: Record<ServerName, { comSelect: number | null; comStmtExecute: number | null; comStmtPrepare: number | null; cpuPct: number | null }>;
  /** The lines of sysbench's output that name an error (exact text). */
  errorLines: string[];
}

/** Prometheus text: every series of `name` as (labels, value). */
function parseSeries(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const labels: Record<string, string> = {};
    if (rest[0] === '{') {
      const body = rest.slice(1, rest.lastIndexOf('}'));
      for (const m of body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
    }
    out.push({ labels, value: Number(line.slice(line.lastIndexOf(' ') + 1)) });
  }
  return out;
}

function diffCounts(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const x = v - (before[k] ?? 0);
    if (x !== 0) d[k] = x;
  }
  return d;
}

async function main(): Promise<number> {
  const seconds = envInt('BENCH_SECONDS', 10, 1);
  const rounds = envInt('BENCH_ROUNDS', 3, 1);
  const warmup = envInt('BENCH_WARMUP_SECONDS', 3, 0);
  const psModes = envList<PsMode>('BENCH_PS_MODES', ['disable', 'auto'], ['disable', 'auto']);
  const endpoints = envList<Endpoint>('BENCH_ENDPOINTS', ['direct', 'wirecache'], ALL_ENDPOINTS);
  if (!endpoints.includes('direct') || !endpoints.includes('wirecache')) throw new Error('BENCH_ENDPOINTS must include direct and wirecache');
  const threads = envInt('BENCH_THREADS', 4, 1);
  const tables = envInt('BENCH_ROUTING_TABLES', 4, 1);
  const tableSize = envInt('BENCH_ROUTING_TABLE_SIZE', 10_000, 1);
  const skipTrx = envString('BENCH_ROUTING_SKIP_TRX', 'on', ['on', 'off']);
  const workload = envString('BENCH_ROUTING_WORKLOAD', 'oltp_read_only', ['oltp_read_only', 'oltp_read_write']);
  const poolMode = envString('BENCH_ROUTING_POOL', 'multiplexing', ['multiplexing', 'pool', 'off']);
  const consistency = envString('BENCH_ROUTING_CONSISTENCY', 'session', ['session', 'eventual']);
  const retries = envInt('BENCH_RETRIES', 2, 0);
  const outFile = process.env.BENCH_OUT;
  const cli = path.resolve(process.env.BENCH_WIRECACHE_CLI || path.join(ROOT, 'dist', 'cli.js'));
  if (!existsSync(cli)) throw new Error(`${cli} not found: run npm run build first (bench/run.sh does)`);
  if (!existsSync(path.join(path.dirname(cli), 'routing', 'router.js'))) {
    throw new Error(`${path.dirname(cli)} predates the read/write split (no routing/router.js): run npm run build`);
  }

  const sizeArgs = [`--tables=${tables}`, `--table-size=${tableSize}`];
  const runArgs = [...sizeArgs, `--threads=${threads}`, `--skip_trx=${skipTrx}`, '--percentile=95'];

  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-bench-routing-'));
  let topo: TopologyInfo | undefined;
  let wirecache: ChildProcess | undefined;
  let wcPrimaryOnly: ChildProcess | undefined;
  const statusConns = new Map<ServerName, mysql.Connection>();
  const results: RunResult[] = [];
  const problems: string[] = [];
  let peakRssKb: number | null = null;
  let primaryOnlyPeakRssKb: number | null = null;
  let rotationMs: number | null = null;
  let finalStates: Record<string, string> = {};
  let finalLag: Record<string, number> = {};
  let wcLogText = '';
  const uninstallInterruptHandler = installInterruptHandler();

  try {
    topo = await startTopology({ replicas: 2, baseDir: path.join(tmp, 'topo'), log: (m) => log(`topology: ${m}`) });
    checkInterrupted();
    const t = topo;
    const servers: Record<ServerName, ServerInfo> = { primary: t.primary, replica1: t.replicas[0], replica2: t.replicas[1] };
    const directPort = t.primary.port;
    const [wcPort, adminPort, wcPrimaryPort] = await getFreePorts(3);

    for (const name of SERVERS) {
      const s = servers[name];
      statusConns.set(name, await mysql.createConnection({ host: s.host, port: s.port, user: t.rootUser, password: t.rootPassword }));
    }
    const serverCounts = async (): Promise<Record<ServerName, ServerCounts | null>> => {
      const out = {} as Record<ServerName, ServerCounts | null>;
      for (const name of SERVERS) {
        try {
          const [rows] = await (statusConns.get(name) as mysql.Connection).query<mysql.RowDataPacket[]>(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select', 'Com_stmt_execute', 'Com_stmt_prepare')",
          );
          const v = (k: string): number => Number(rows.find((r) => String(r.Variable_name).toLowerCase() === k)?.Value ?? NaN);
          out[name] = { comSelect: v('com_select'), comStmtExecute: v('com_stmt_execute'), comStmtPrepare: v('com_stmt_prepare') };
        } catch (e) {
          log(`SHOW GLOBAL STATUS on ${name}: ${e instanceof Error ? e.message : String(e)}`);
          out[name] = null;
        }
      }
      return out;
    };

    log(`sysbench prepare (direct, primary): ${tables} tables of ${tableSize} rows`);
    await sysbenchOrThrow(['oltp_read_only', ...connArgs(directPort), ...sizeArgs, `--threads=${Math.min(threads, tables)}`, 'prepare'], 'sysbench prepare');
    const tRepl = Date.now();
    await waitForReplication(t, 120_000);
    log(`both replicas caught up with the prepare (${Date.now() - tRepl} ms after it ended)`);

    const configFile = path.join(tmp, 'wirecache.yaml');
    await fs.writeFile(
      configFile,
      wirecacheConfigYaml({
        port: wcPort,
        adminPort,
        primary: servers.primary,
        replicas: (['replica1', 'replica2'] as const).map((n) => ({ name: n, host: servers[n].host, port: servers[n].port })),
        extra: [
          'monitor:',
          `  user: ${t.rootUser}`,
          `  password: "${t.rootPassword}"`,
          '  interval_ms: 1000',
          '  check_timeout_ms: 1000',
          '  fail_after: 3',
          '  recover_after: 3',
          '  heartbeat_table: wirecache.heartbeat',
          'routing:',
          '  max_replication_lag: 10',
          `  consistency: ${consistency}`,
          '  consistency_wait_ms: 500',
          'pool:',
          `  max_idle: ${poolMode === 'off' ? 0 : 100}`,
          `  multiplexing: ${poolMode === 'multiplexing'}`,
        ],
      }),
    );
    const primaryOnlyConfig = path.join(tmp, 'wirecache-primary-only.yaml');
    await fs.writeFile(primaryOnlyConfig, wirecacheConfigYaml({ port: wcPrimaryPort, adminPort: 0, primary: servers.primary }));

    const wcLog = path.join(tmp, 'wirecache.log');
    const tStart = Date.now();
    const started = startWirecache({ cli, configFile, logFile: wcLog, port: wcPort, adminPort });
    wirecache = started.child;
    await started.ready;
    const wcPid = wirecache.pid;
    log(`direct (primary) :${directPort}  wirecache :${wcPort} admin :${adminPort} (pid ${wcPid}, ${cli})`);
    if (endpoints.includes('wirecache_primary')) {
      const wcPrimaryLog = path.join(tmp, 'wirecache-primary-only.log');
      const startedPrimaryOnly = startWirecache({ cli, configFile: primaryOnlyConfig, logFile: wcPrimaryLog, port: wcPrimaryPort, label: 'wirecache (primary only)' });
      wcPrimaryOnly = startedPrimaryOnly.child;
      await startedPrimaryOnly.ready;
      log(`wirecache_primary :${wcPrimaryPort} (pid ${wcPrimaryOnly.pid}; the primary as its only backend)`);
    }
    const ports: Record<Endpoint, number> = { direct: directPort, wirecache: wcPort, wirecache_primary: wcPrimaryPort };
    const procPid: Record<Endpoint, number | undefined> = { direct: undefined, wirecache: wcPid, wirecache_primary: wcPrimaryOnly?.pid };

    const metricsText = async (): Promise<string> => {
      const res = await fetch(`http://${HOST}:${adminPort}/metrics`);
      if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
      return res.text();
    };
    const routedNow = (text: string): Record<string, number> => {
      const m: Record<string, number> = {};
      for (const s of parseSeries(text, 'wirecache_routed_statements_total')) m[`${s.labels.destination}|${s.labels.server}|${s.labels.reason}`] = s.value;
      return m;
    };
    const byLabel = (text: string, name: string, label: string): Record<string, number> => {
      const m: Record<string, number> = {};
      for (const s of parseSeries(text, name)) m[s.labels[label] ?? ''] = (m[s.labels[label] ?? ''] ?? 0) + s.value;
      return m;
    };
    const states = (text: string): Record<string, string> => {
      const m: Record<string, string> = {};
      for (const s of parseSeries(text, 'wirecache_server_state')) if (s.value === 1) m[s.labels.server] = s.labels.state;
      return m;
    };

    // The monitor puts a replica in rotation after recover_after good checks.
    for (;;) {
      checkInterrupted();
      const text = await metricsText();
      const inRot = byLabel(text, 'wirecache_server_in_rotation', 'server');
      if (inRot.replica1 === 1 && inRot.replica2 === 1) {
        rotationMs = Date.now() - tStart;
        log(`both replicas in rotation ${rotationMs} ms after wirecache was started; states ${JSON.stringify(states(text))}`);
        break;
      }
      if (Date.now() - tStart > ROTATION_TIMEOUT_MS) {
        const msg = `replicas not in rotation ${ROTATION_TIMEOUT_MS} ms after wirecache started: in_rotation ${JSON.stringify(inRot)}, states ${JSON.stringify(states(text))}`;
        problems.push(msg);
        log(`PROBLEM: ${msg}`);
        break;
      }
      await sleep(250);
    }

    const measured = (ep: Endpoint, psMode: PsMode, time: number): string[] => sysbenchRunArgs(workload, ports[ep], runArgs, time, psMode);

    if (warmup > 0) {
      for (const psMode of psModes) {
        for (const ep of endpoints) {
          log(`warm-up ${warmup}s ps=${psMode} via ${ep}`);
          await sysbenchOrThrow(measured(ep, psMode, warmup), `warm-up via ${ep} ps=${psMode}`);
        }
      }
    }

    const pids: Record<ServerName, number> = { primary: servers.primary.pid, replica1: servers.replica1.pid, replica2: servers.replica2.pid };
    const run = async (psMode: PsMode, ep: Endpoint, round: number): Promise<RunResult> => {
      const m0 = ep === 'wirecache' ? await metricsText() : null;
      const c0 = await serverCounts();
      const cpu0 = SERVERS.map((n) => cpuSeconds(pids[n]));
      const t0 = process.hrtime.bigint();
      // The replicas count as the benchmark's own processes (passed with the proxy), not as foreign load.
      const { stdout, stderr, ...m } = await measureSysbench(measured(ep, psMode, seconds), procPid[ep], pids.primary, [
        wcPid,
        wcPrimaryOnly?.pid,
        pids.replica1,
        pids.replica2,
      ]);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu1 = SERVERS.map((n) => cpuSeconds(pids[n]));
      const c1 = await serverCounts();
      const m1 = ep === 'wirecache' ? await metricsText() : null;
      // Foreign load is the larger of the machine-wide and the per-process estimate (see Measurement.foreignProcCpuPct).
      if (m.foreignProcCpuPct !== null && (m.foreignCpuPct === null || m.foreignProcCpuPct > m.foreignCpuPct)) m.foreignCpuPct = m.foreignProcCpuPct;
      const qm = /^\s*queries:\s+(\d+)\s+\(/m.exec(stdout);
      const srv = {} as RunResult['servers'];
      SERVERS.forEach((n, i) => {
        const a = c0[n];
        const b = c1[n];
        srv[n] = {
          comSelect: a && b ? b.comSelect - a.comSelect : null,
          comStmtExecute: a && b ? b.comStmtExecute - a.comStmtExecute : null,
          comStmtPrepare: a && b ? b.comStmtPrepare - a.comStmtPrepare : null,
          cpuPct: cpu0[i] === null || cpu1[i] === null ? null : Math.round((((cpu1[i] as number) - (cpu0[i] as number)) / wall) * 1000) / 10,
        };
      });
      const r: RunResult = {
        psMode,
        endpoint: ep,
        round,
        ...m,
        attempts: 1,
        queries: qm ? Number(qm[1]) : null,
        routed: m0 && m1 ? diffCounts(routedNow(m1), routedNow(m0)) : null,
        readRetries: m0 && m1 ? Object.values(byLabel(m1, 'wirecache_read_retries_total', 'server')).reduce((a, x) => a + x, 0) - Object.values(byLabel(m0, 'wirecache_read_retries_total', 'server')).reduce((a, x) => a + x, 0) : null,
        consistency: m0 && m1 ? diffCounts(byLabel(m1, 'wirecache_consistency_checks_total', 'outcome'), byLabel(m0, 'wirecache_consistency_checks_total', 'outcome')) : null,
        servers: srv,
        errorLines: `${stderr}\n${stdout}`.split('\n').filter((l) => /FATAL|error|ERROR|warning|WARNING/.test(l)).slice(0, 20),
      };
      const spread = r.routed
        ? Object.entries(r.routed)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => `${k.replaceAll('|', '/')} ${v}`)
            .join(', ')
        : null;
      log(
        describeMeasurement(`round ${round} ps=${psMode} ${ep}`, r) +
          `; mariadbd CPU ${SERVERS.map((n) => `${n} ${srv[n].cpuPct}%`).join(', ')}` +
          `; Com_select ${SERVERS.map((n) => `${n} ${srv[n].comSelect}`).join(', ')}` +
          (spread !== null ? `; routed: ${spread}` : ''),
      );
      if (r.problem) log(`sysbench output of the failed run:\n${`${stdout}\n${stderr}`.slice(-4000)}`);
      return r;
    };

    let order = [...endpoints];
    for (let round = 1; round <= rounds; round++) {
      for (const psMode of psModes) {
        for (const ep of order) results.push(await measureUndisturbed(retries, () => run(psMode, ep, round)));
      }
      order = [...order.slice(1), order[0]];
    }

    peakRssKb = procStatusKb(wcPid, 'VmHWM');
    primaryOnlyPeakRssKb = procStatusKb(wcPrimaryOnly?.pid, 'VmHWM');
    const finalText = await metricsText();
    finalStates = states(finalText);
    finalLag = byLabel(finalText, 'wirecache_server_replication_lag_seconds', 'server');
    wcLogText = await tail(wcLog, 3000);
    if (wcLogText !== '(empty)' && wcLogText !== '(no log)') log(`wirecache log (tail):\n${wcLogText}`);
  } finally {
    uninstallInterruptHandler();
    await Promise.all([...statusConns.values()].map((c) => c.end().catch(() => undefined)));
    await Promise.all([wirecache && stopChild(wirecache), wcPrimaryOnly && stopChild(wcPrimaryOnly)]);
    if (topo) {
      log('stopping topology');
      await stopTopology(topo).catch((e: unknown) => log(`stopTopology: ${e instanceof Error ? e.message : String(e)}`));
    }
    if (process.env.BENCH_KEEP_TMP === '1') log(`kept ${tmp} (wirecache.yaml, wirecache.log)`);
    else await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }

  // ---- report
  const fmtRatio = (x: number | null): string => (x === null ? '-' : `${x.toFixed(2)}x`);
  const pctOrDash = (x: number | null): string => (x === null ? '-' : `${x.toFixed(0)}%`);
  const medianOrNull = (xs: (number | null)[]): number | null => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? median(v) : null;
  };
  interface Agg {
    psMode: PsMode;
    endpoint: Endpoint;
    runs: number;
    qps: number;
    qpsMin: number;
    qpsMax: number;
    p95Ms: number;
    proxyCpuPct: number | null;
    sysbenchCpuPct: number | null;
    serverCpuPct: Record<ServerName, number | null>;
    irqCpuPct: number | null;
    foreignCpuPct: number;
    errors: number;
  }
  const agg: Agg[] = [];
  for (const psMode of psModes) {
    for (const endpoint of endpoints) {
      const rs = results.filter((r) => r.psMode === psMode && r.endpoint === endpoint);
      if (rs.length === 0) continue;
      agg.push({
        psMode,
        endpoint,
        runs: rs.length,
        qps: median(rs.map((r) => r.qps)),
        qpsMin: Math.min(...rs.map((r) => r.qps)),
        qpsMax: Math.max(...rs.map((r) => r.qps)),
        p95Ms: median(rs.map((r) => r.p95Ms)),
        proxyCpuPct: medianOrNull(rs.map((r) => r.proxyCpuPct)),
        sysbenchCpuPct: medianOrNull(rs.map((r) => r.sysbenchCpuPct)),
        serverCpuPct: Object.fromEntries(SERVERS.map((n) => [n, medianOrNull(rs.map((r) => r.servers[n].cpuPct))])) as Record<ServerName, number | null>,
        irqCpuPct: medianOrNull(rs.map((r) => r.irqCpuPct)),
        foreignCpuPct: Math.max(...rs.map((r) => r.foreignCpuPct ?? 0)),
        errors: rs.reduce((a, r) => a + r.errors + r.reconnects + (r.exitCode !== 0 || r.qps === 0 ? 1 : 0), 0),
      });
    }
  }
  const proxyEndpoints = endpoints.filter((e) => e !== 'direct');
  const summary = psModes.flatMap((psMode) =>
    proxyEndpoints.map((endpoint) => {
      const d = agg.find((a) => a.psMode === psMode && a.endpoint === 'direct');
      const w = agg.find((a) => a.psMode === psMode && a.endpoint === endpoint);
      const ratio = d && w && d.qps > 0 ? w.qps / d.qps : null;
      const perRound: number[] = [];
      for (let round = 1; round <= rounds; round++) {
        const dr = results.find((r) => r.psMode === psMode && r.endpoint === 'direct' && r.round === round);
        const wr = results.find((r) => r.psMode === psMode && r.endpoint === endpoint && r.round === round);
        if (dr && wr && dr.qps > 0) perRound.push(wr.qps / dr.qps);
      }
      return { psMode, endpoint, ratio, perRound };
    }),
  );

  const headers = ['ps-mode', 'endpoint', 'qps (median)', 'qps min..max', 'p95 ms', 'proxy CPU', 'sysbench', 'primary', 'replica1', 'replica2', 'softirq', 'max other CPU', 'errors', '/direct'];
  const rows = agg.map((a) => [
    a.psMode === 'disable' ? 'disable (text)' : 'auto (PS)',
    a.endpoint,
    a.qps.toFixed(1),
    `${a.qpsMin.toFixed(0)}..${a.qpsMax.toFixed(0)}`,
    a.p95Ms.toFixed(2),
    pctOrDash(a.proxyCpuPct),
    pctOrDash(a.sysbenchCpuPct),
    pctOrDash(a.serverCpuPct.primary),
    pctOrDash(a.serverCpuPct.replica1),
    pctOrDash(a.serverCpuPct.replica2),
    pctOrDash(a.irqCpuPct),
    `${a.foreignCpuPct.toFixed(0)}%`,
    String(a.errors),
    a.endpoint === 'direct' ? '' : fmtRatio(summary.find((s) => s.psMode === a.psMode && s.endpoint === a.endpoint)?.ratio ?? null),
  ]);
  const git = gitInfo();
  process.stdout.write(
    `\nread/write split (pool: ${poolMode}): sysbench ${workload} ${runArgs.join(' ')} --time=${seconds}, ${rounds} round(s), medians; ` +
      `wirecache: primary + replica1 + replica2, routing.consistency ${consistency}; ` +
      `${os.cpus().length} CPUs, commit ${git.commit?.slice(0, 12) ?? '?'}${git.srcDirty ? ' (src/ modified)' : ''}\n` +
      `(primary, replica1, replica2: mariadbd CPU in % of one core)\n\n`,
  );
  process.stdout.write(`${table(headers, rows, [false, false, ...headers.slice(2).map(() => true)])}\n\n`);
  for (const s of summary) {
    process.stdout.write(`${s.endpoint}/direct qps, ps=${s.psMode}: ${fmtRatio(s.ratio)} (per round ${s.perRound.map((x) => x.toFixed(2)).join(', ')})\n`);
  }

  // Where the proxy's statements went, summed over the measured wirecache runs.
  const spreadRows: string[][] = [];
  const spread: { psMode: PsMode; destination: string; server: string; reason: string; statements: number; share: number }[] = [];
  for (const psMode of psModes) {
    const rs = results.filter((r) => r.psMode === psMode && r.endpoint === 'wirecache' && r.routed);
    const tot: Record<string, number> = {};
    for (const r of rs) for (const [k, v] of Object.entries(r.routed as Record<string, number>)) tot[k] = (tot[k] ?? 0) + v;
    const all = Object.values(tot).reduce((a, x) => a + x, 0);
    const queries = rs.reduce((a, r) => a + (r.queries ?? 0), 0);
    for (const [k, v] of Object.entries(tot).sort((a, b) => b[1] - a[1])) {
      const [destination, server, reason] = k.split('|');
      spread.push({ psMode, destination, server, reason, statements: v, share: all > 0 ? v / all : 0 });
      spreadRows.push([psMode, destination, server, reason, String(v), `${((v / all) * 100).toFixed(1)}%`]);
    }
    spreadRows.push([psMode, 'total', '', '', String(all), `(sysbench counted ${queries} queries)`]);
    const toReplicas = Object.entries(tot).filter(([k]) => k.startsWith('replica|')).reduce((a, [, v]) => a + v, 0);
    if (skipTrx === 'on' && rs.length > 0 && toReplicas === 0) problems.push(`ps=${psMode}: no statement went to a replica with --skip_trx=on`);
  }
  process.stdout.write(`\nwirecache_routed_statements_total during the measured wirecache runs:\n\n`);
  process.stdout.write(`${table(['ps-mode', 'destination', 'server', 'reason', 'statements', 'share'], spreadRows, [false, false, false, false, true, true])}\n\n`);

  // The servers' own counters, summed over the measured runs of each endpoint.
  const comRows: string[][] = [];
  for (const psMode of psModes) {
    for (const ep of endpoints) {
      const rs = results.filter((r) => r.psMode === psMode && r.endpoint === ep);
      if (rs.length === 0) continue;
      const sum = (n: ServerName, k: 'comSelect' | 'comStmtExecute' | 'comStmtPrepare'): string => {
        const v = rs.map((r) => r.servers[n][k]);
        return v.some((x) => x === null) ? '?' : String(v.reduce((a: number, x) => a + (x as number), 0));
      };
      comRows.push([psMode, ep, ...SERVERS.map((n) => `${sum(n, 'comSelect')} / ${sum(n, 'comStmtExecute')} / ${sum(n, 'comStmtPrepare')}`)]);
    }
  }
  process.stdout.write(`Com_select / Com_stmt_execute / Com_stmt_prepare on each server (SHOW GLOBAL STATUS), during the measured runs:\n\n`);
  process.stdout.write(`${table(['ps-mode', 'endpoint', ...SERVERS], comRows, [false, false, true, true, true])}\n\n`);

  const wcRuns = results.filter((r) => r.endpoint === 'wirecache');
  const retriesTotal = wcRuns.reduce((a, r) => a + (r.readRetries ?? 0), 0);
  const cons: Record<string, number> = {};
  for (const r of wcRuns) for (const [k, v] of Object.entries(r.consistency ?? {})) cons[k] = (cons[k] ?? 0) + v;
  process.stdout.write(
    `read retries ${retriesTotal}; consistency checks ${JSON.stringify(cons)}; replicas in rotation after ${rotationMs ?? '?'} ms; ` +
      `server states at the end ${JSON.stringify(finalStates)}, lag ${JSON.stringify(finalLag)}\n`,
  );
  const mib = (kb: number | null): string => (kb === null ? 'n/a' : `${(kb / 1024).toFixed(1)} MiB`);
  process.stdout.write(
    `wirecache peak RSS (VmHWM): ${mib(peakRssKb)}${endpoints.includes('wirecache_primary') ? `; wirecache_primary: ${mib(primaryOnlyPeakRssKb)}` : ''}\n`,
  );
  const warning = disturbedWarning(results);
  if (warning) process.stdout.write(`${warning}\n`);

  const failed = results.filter((r) => r.problem !== undefined);
  if (outFile) {
    const doc = {
      date: new Date().toISOString(),
      git,
      wirecacheCli: cli,
      machine: machineInfo(),
      pool: poolMode,
      sysbench: { workload, args: runArgs, seconds, warmupSeconds: warmup, rounds, retries },
      routing: { consistency, rotationMs, finalStates, finalLag },
      results,
      aggregated: agg,
      summary,
      spread,
      wirecachePeakRssKb: peakRssKb,
      wirecachePrimaryOnlyPeakRssKb: primaryOnlyPeakRssKb,
      wirecacheLogTail: wcLogText,
      problems,
      ok: failed.length === 0 && problems.length === 0,
    };
    await writeResults(outFile, doc);
  }
  for (const p of problems) process.stdout.write(`PROBLEM: ${p}\n`);
  if (failed.length > 0) {
    process.stdout.write(`\n${failed.length} run(s) had errors:\n`);
    for (const r of failed) {
      process.stdout.write(`  ps=${r.psMode} ${r.endpoint} round ${r.round}: ${r.problem}\n`);
      for (const l of r.errorLines) process.stdout.write(`    ${l}\n`);
    }
  }
  return failed.length > 0 || problems.length > 0 ? 1 : 0;
}

runMain(main);
