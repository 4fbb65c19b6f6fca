/**
 * memcached API benchmark: the same memcached clients against a plain
 * memcached and against wirecache's memcached API (src/memcached_api/, a
 * container table in MariaDB with the cache tier on), in the same run.
 *
 *   npx tsx bench/memcached.ts
 *
 * Steps: start the topology (primary only, scripts/topology.ts), create the
 * container table, start wirecache in this process (startApp with
 * memcachedApi, the binlog reader as root and a cache tier of
 * BENCH_CACHE_MIB), and a plain memcached (`-m 256`). Then BENCH_ROUNDS
 * rounds; in each, every workload runs against both endpoints, one after the
 * other, the order swapped every round so that machine noise hits both:
 *
 *   memcslap set   `memcslap -t set -c C -e N`: C threads set N fresh keys each
 *                  (in wirecache: a row written to MariaDB per set)
 *   memcslap get   `memcslap -t get -c C -e N`: N fresh keys set by one thread,
 *                  then read N times by each of C threads
 *   mix 90/10      bench/memcached_load.mjs: C connections, one request in
 *                  flight each, 90% get / 10% set over a fixed working set of
 *                  BENCH_KEYS keys (all fit the tier), BENCH_SECONDS
 *   get 100%       the same, gets only, after one read of every key (the
 *                  warm-up that fills the tier): gets served from the cache tier
 *
 * memcslap prints only its elapsed times (ops/s, no latency); the Node load
 * generator measures each request (p50/p95). CPU per operation: wirecache's is
 * this process's CPU time (it runs nothing else during a run; the clients are
 * child processes), memcached's is its /proc time.
 *
 * The cache tier's hit rate: the gets that did not reach MariaDB. Every tier
 * miss is one SELECT on the primary, so per wirecache run it is
 * 1 - Com_select / cmd_get (the primary's SHOW GLOBAL STATUS, the API's
 * `stats`); `stats` get_hits/get_misses (found or not) are printed too.
 *
 * Environment: BENCH_ROUNDS (default 3), BENCH_SECONDS (default 10),
 * BENCH_CONNS (client connections / memcslap threads, default 4),
 * BENCH_KEYS (default 10000), BENCH_VALUE_BYTES (default 100),
 * BENCH_MEMCSLAP_EXECUTE (memcslap -e, default 5000), BENCH_CACHE_MIB (default 256),
 * BENCH_RETRIES (a run disturbed by other processes, > 10% of a core, is made
 * again this many times at most, default 1),
 * BENCH_MEMCACHED_PROFILE=1 (one more get-100% run of wirecache under the V8
 * CPU profiler, summarised with bench/cpuprofile_top.mjs; the .cpuprofile is
 * kept in BENCH_PROFILE_DIR, default the system temp dir), BENCH_OUT (JSON results),
 * BENCH_COMMIT (the commit measured, for the report).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { getFreePorts, startTopology, stopTopology, waitForPort } from '../scripts/topology.js';
import { startApp, type RunningApp } from '../src/app.js';
import { createLogger } from '../src/logger.js';
import { testConfig } from '../test/proxy-harness.js';
import { container, containerTableSql, memcachedApiConfig, TextClient, withBinlog } from '../test/memcached-api-harness.js';
import {
  allProcessCpu,
  cpuSeconds,
  envInt,
  FOREIGN_CPU_WARN_PCT,
  fmtRatio,
  HOST,
  log,
  machineCpuSeconds,
  machineInfo,
  median,
  reapedChildrenCpuSeconds,
  RETRY_WAIT_MS,
  ROOT,
  runMain,
  sleep,
  spawnTracked,
  stopChild,
  table,
  writeResults,
} from './common.js';

const ROUNDS = envInt('BENCH_ROUNDS', 3, 1);
const SECONDS = envInt('BENCH_SECONDS', 10, 1);
const CONNS = envInt('BENCH_CONNS', 4, 1);
const KEYS = envInt('BENCH_KEYS', 10_000, 1);
const VALUE_BYTES = envInt('BENCH_VALUE_BYTES', 100, 1);
const MEMCSLAP_EXECUTE = envInt('BENCH_MEMCSLAP_EXECUTE', 5000, 1);
const CACHE_MIB = envInt('BENCH_CACHE_MIB', 256, 1);
const RETRIES = envInt('BENCH_RETRIES', 1, 0);
const PROFILE = process.env.BENCH_MEMCACHED_PROFILE === '1';
/** The goal of the issue: gets served from the cache tier at >= this many times plain memcached's ops/s. */
const GOAL = 0.5;
const DB = 'wc_bench_memcached';

type Endpoint = 'memcached' | 'wirecache';
type Workload = 'memcslap set' | 'memcslap get' | 'mix 90/10' | 'get 100%';
const WORKLOADS: Workload[] = ['memcslap set', 'memcslap get', 'mix 90/10', 'get 100%'];

interface RunResult {
  workload: Workload;
  endpoint: Endpoint;
  round: number;
  ops: number;
  opsPerSec: number;
  p50Ms: number | null;
  p95Ms: number | null;
  /** Server CPU in % of one core and per operation. */
  serverCpuPct: number | null;
  serverUsPerOp: number | null;
  /**
   * CPU used by other processes than the server, the client, mariadbd and this process (those alive
   * at both ends of the run, kernel threads included), in % of one core, and the busiest of them.
   */
  otherCpuPct: number | null;
  otherTop: string;
  /** CPU of mariadbd, in % of one core. */
  mariadbCpuPct: number | null;
  /** CPU of the client (memcslap or the load generator), in % of one core. */
  clientCpuPct: number | null;
  /** Machine-wide CPU (user+nice+system+steal, all cores) during the run, in % of one core. */
  machineCpuPct: number | null;
  attempts: number;
  /** wirecache only: gets, tier misses (SELECTs on the primary), and `stats` found / not found. */
  gets: number | null;
  tierMisses: number | null;
  tierHitRate: number | null;
  found: number | null;
  notFound: number | null;
  errors: number;
  note?: string;
}

/** Runs a client to its end; resolves with its stdout (throws on a non-zero exit, with its output). */
function runClient(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out}\n${err}`))));
  });
}

interface LoadOut {
  ops: number;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  gets: number;
  sets: number;
  found: number;
  notFound: number;
  stored: number;
  errors: number;
  errorSamples: string[];
}

async function load(port: number, o: Record<string, unknown>): Promise<LoadOut> {
  const args = { port, conns: CONNS, keys: KEYS, valueBytes: VALUE_BYTES, prefix: 'bench:', ...o };
  const out = await runClient(process.execPath, [path.join(ROOT, 'bench', 'memcached_load.mjs'), JSON.stringify(args)]);
  return JSON.parse(out.trim().split('\n').pop() as string) as LoadOut;
}

/** memcslap's figures: the operations of the measured phase, its seconds, and (get test) the one-thread load. */
function parseMemcslap(out: string, test: 'set' | 'get'): { ops: number; seconds: number } {
  const m = new RegExp(`Time to ${test}\\s+(\\d+) keys by\\s+\\d+ threads:\\s+([\\d.]+) seconds`).exec(out);
  if (!m) throw new Error(`memcslap output not understood:\n${out}`);
  return { ops: Number(m[1]), seconds: Number(m[2]) };
}

function parseStats(reply: string): Record<string, number> {
  const s: Record<string, number> = {};
  for (const m of reply.matchAll(/^STAT (\S+) (\d+)\r$/gm)) s[m[1]] = Number(m[2]);
  return s;
}

runMain(async () => {
  const topo = await startTopology({ replicas: 0, log });
  let app: RunningApp | null = null;
  let memcached: ChildProcess | null = null;
  let root: mysql.Connection | null = null;
  let statsClient: TextClient | null = null;
  const results: RunResult[] = [];
  const profileLines: string[] = [];
  let tierAfter: { items: number; bytes: number } | null = null;
  let totals: { cmdGet: number; tierMisses: number; getHits: number; getMisses: number } | null = null;
  try {
    root = await mysql.createConnection({ host: topo.primary.host, port: topo.primary.port, user: 'root', password: topo.rootPassword, multipleStatements: true });
    await root.query(`DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}; ${containerTableSql(`${DB}.kv`)}`);
    const api = memcachedApiConfig(topo, [container('default', DB, 'kv')], { cacheBytes: CACHE_MIB * 2 ** 20 });
    app = await startApp(testConfig(topo, { ...withBinlog(topo, 4401), memcachedApi: api, log: { level: 'error' } }), createLogger('error'));
    const wcPort = (app.memcachedAddress as { port: number }).port;
    for (let i = 0; app.proxy.binlog?.current !== true; i++) {
      if (i > 500) throw new Error('the binlog reader did not become current');
      await sleep(20);
    }
    const [mcPort] = await getFreePorts(1);
    const mcLog = path.join(topo.baseDir, 'bench-memcached.log');
    memcached = spawnTracked('memcached', ['-u', 'nobody', '-l', HOST, '-p', String(mcPort), '-U', '0', '-m', '256'], mcLog);
    await waitForPort(mcPort, memcached, 'memcached', mcLog);
    statsClient = await TextClient.connect(wcPort);
    log(`wirecache memcached API :${wcPort} (cache tier ${CACHE_MIB} MiB), plain memcached :${mcPort}, MariaDB :${topo.primary.port}`);

    const ports: Record<Endpoint, number> = { memcached: mcPort, wirecache: wcPort };
    const comSelect = async (): Promise<number> => {
      const [rows] = await (root as mysql.Connection).query("SHOW GLOBAL STATUS LIKE 'Com_select'");
      return Number((rows as { Value: string }[])[0].Value);
    };
    const wcStats = async (): Promise<Record<string, number>> => parseStats(await (statsClient as TextClient).call('stats\r\n', (r) => r.endsWith('END\r\n')));

    // The fixed working set, in both: set once and read once (wirecache's reads fill its tier).
    for (const ep of ['memcached', 'wirecache'] as Endpoint[]) {
      const f = await load(ports[ep], { mode: 'fill' });
      log(`fill ${ep}: ${f.sets} sets, ${f.gets} gets (${f.found} found) in ${f.seconds.toFixed(1)} s, errors ${f.errors}`);
      if (f.errors > 0) throw new Error(`fill of ${ep}: ${f.errors} errors (${f.errorSamples.join(' | ')})`);
    }

    const measure = async (workload: Workload, ep: Endpoint, round: number): Promise<RunResult> => {
      const port = ports[ep];
      if (workload === 'get 100%') await load(port, { mode: 'getall' }); // the warm-up: every key read once
      const wc = ep === 'wirecache';
      const before = wc ? { stats: await wcStats(), select: await comSelect() } : null;
      const serverPid = wc ? undefined : memcached?.pid;
      const self0 = process.cpuUsage();
      const srv0 = cpuSeconds(serverPid);
      const kids0 = reapedChildrenCpuSeconds();
      const maria0 = cpuSeconds(topo.primary.pid);
      const mach0 = machineCpuSeconds();
      const procs0 = allProcessCpu();
      const t0 = performance.now();
      let ops: number;
      let seconds: number;
      let p50: number | null = null;
      let p95: number | null = null;
      let errors = 0;
      let note: string | undefined;
      if (workload === 'memcslap set' || workload === 'memcslap get') {
        const test = workload === 'memcslap set' ? 'set' : 'get';
        const out = await runClient('memcslap', ['-s', `${HOST}:${port}`, '-t', test, '-c', String(CONNS), '-e', String(MEMCSLAP_EXECUTE)]);
        ({ ops, seconds } = parseMemcslap(out, test));
        const loadLine = /Time to set\s+(\d+) keys:\s+([\d.]+) seconds/.exec(out);
        if (loadLine) note = `its 1-thread load: ${(Number(loadLine[1]) / Number(loadLine[2])).toFixed(0)} sets/s`;
      } else {
        const r = await load(port, { seconds: SECONDS, getPct: workload === 'get 100%' ? 100 : 90, seed: round });
        ops = r.ops;
        seconds = r.seconds;
        p50 = r.p50Ms;
        p95 = r.p95Ms;
        errors = r.errors;
        if (r.errors > 0) note = `errors: ${r.errorSamples.join(' | ')}`;
      }
      const wall = (performance.now() - t0) / 1000;
      const self = process.cpuUsage(self0);
      const selfCpu = (self.user + self.system) / 1e6;
      const srvCpu = wc ? selfCpu : (cpuSeconds(serverPid) ?? NaN) - (srv0 ?? NaN);
      const kids = (reapedChildrenCpuSeconds() ?? NaN) - (kids0 ?? NaN);
      const maria = (cpuSeconds(topo.primary.pid) ?? NaN) - (maria0 ?? NaN);
      const mach1 = machineCpuSeconds();
      const procs1 = allProcessCpu();
      const machine = mach0 && mach1 ? mach1.task - mach0.task : NaN;
      const own = new Set([process.pid, memcached?.pid, topo.primary.pid]);
      let other = 0;
      const others: { name: string; cpu: number }[] = [];
      for (const [pid, p1] of procs1) {
        const p0 = procs0.get(pid);
        if (own.has(pid) || p0 === undefined || p0.comm !== p1.comm) continue;
        other += p1.cpu - p0.cpu;
        if (p1.cpu - p0.cpu >= 0.01 * wall) others.push({ name: `${p1.comm}[${pid}]`, cpu: p1.cpu - p0.cpu });
      }
      others.sort((a, b) => b.cpu - a.cpu);
      const num = (x: number): number | null => (Number.isFinite(x) ? x : null);
      const r: RunResult = {
        workload,
        endpoint: ep,
        round,
        ops,
        opsPerSec: ops / seconds,
        p50Ms: p50,
        p95Ms: p95,
        serverCpuPct: num(Math.round((srvCpu / wall) * 1000) / 10),
        // memcslap's seconds cover only its measured phase; the CPU covers the whole run (a get test's load too)
        serverUsPerOp: workload.startsWith('memcslap') ? null : num((srvCpu / ops) * 1e6),
        // The larger of the per-process sum and the machine-wide remainder (which also sees short-lived processes).
        otherCpuPct: num(Math.max(0, Math.round((Math.max(other, machine - kids - maria - selfCpu - (wc ? 0 : srvCpu)) / wall) * 1000) / 10)),
        mariadbCpuPct: num(Math.round((maria / wall) * 1000) / 10),
        otherTop: others.slice(0, 3).map((o) => `${o.name} ${((o.cpu / wall) * 100).toFixed(0)}%`).join(', '),
        clientCpuPct: num(Math.round((kids / wall) * 1000) / 10),
        machineCpuPct: num(Math.round((machine / wall) * 1000) / 10),
        attempts: 1,
        gets: null,
        tierMisses: null,
        tierHitRate: null,
        found: null,
        notFound: null,
        errors,
        note,
      };
      if (before) {
        const after = await wcStats();
        const select = await comSelect();
        r.gets = after.cmd_get - before.stats.cmd_get;
        r.tierMisses = select - before.select;
        r.tierHitRate = r.gets > 0 ? Math.max(0, 1 - r.tierMisses / r.gets) : null;
        r.found = after.get_hits - before.stats.get_hits;
        r.notFound = after.get_misses - before.stats.get_misses;
      }
      log(
        `round ${round} ${workload} ${ep}: ${r.opsPerSec.toFixed(0)} ops/s` +
          (p95 !== null ? `, p50 ${p50?.toFixed(3)} ms, p95 ${p95.toFixed(3)} ms` : '') +
          `, server CPU ${r.serverCpuPct}%, client ${r.clientCpuPct}%` +
          (r.serverUsPerOp !== null ? ` (${r.serverUsPerOp.toFixed(1)} us/op)` : '') +
          `, mariadbd ${r.mariadbCpuPct}%, machine ${r.machineCpuPct}%, other processes ${r.otherCpuPct}%${r.otherTop ? ` (${r.otherTop})` : ''}` +
          (r.tierHitRate !== null ? `, tier hit rate ${(r.tierHitRate * 100).toFixed(2)}% (${r.gets} gets, ${r.tierMisses} SELECTs; found ${r.found}, not found ${r.notFound})` : '') +
          (note ? `; ${note}` : ''),
      );
      return r;
    };

    let order: Endpoint[] = ['memcached', 'wirecache'];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const w of WORKLOADS) {
        for (const ep of order) {
          // A run disturbed by other processes is made again (BENCH_RETRIES times at most, after a pause).
          // When every attempt was disturbed, the least disturbed one is kept.
          let best: RunResult | null = null;
          for (let attempt = 1; ; attempt++) {
            const r = await measure(w, ep, round);
            r.attempts = attempt;
            if (best === null || (r.otherCpuPct ?? 0) < (best.otherCpuPct ?? 0)) best = { ...r };
            if ((r.otherCpuPct ?? 0) <= FOREIGN_CPU_WARN_PCT || attempt > RETRIES) {
              best.attempts = attempt;
              results.push(best);
              break;
            }
            log(`  disturbed by other processes; waiting ${RETRY_WAIT_MS / 1000}s, retry ${attempt}/${RETRIES}`);
            await sleep(RETRY_WAIT_MS);
          }
        }
      }
      order = [order[1], order[0]];
    }

    if (PROFILE) {
      const dir = process.env.BENCH_PROFILE_DIR ?? os.tmpdir();
      const file = path.join(dir, `memcached-get100-${Date.now()}.cpuprofile`);
      await load(wcPort, { mode: 'getall' });
      const session = new Session();
      session.connect();
      const post = (method: string, params: object = {}): Promise<unknown> =>
        new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
      await post('Profiler.enable');
      await post('Profiler.setSamplingInterval', { interval: 500 });
      await post('Profiler.start');
      const r = await load(wcPort, { seconds: SECONDS, getPct: 100, seed: 99 });
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      session.disconnect();
      writeFileSync(file, JSON.stringify(profile));
      const top = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'cpuprofile_top.mjs'), file, '30'], { encoding: 'utf8' });
      profileLines.push(`V8 CPU profile of wirecache during a get-100% run (${r.opsPerSec.toFixed(0)} ops/s under the profiler): ${file}`, top.stdout || top.stderr);
    }

    const s = await wcStats();
    tierAfter = { items: app.memcached?.cache.entries ?? 0, bytes: app.memcached?.cache.bytes ?? 0 };
    const wcRuns = results.filter((r) => r.endpoint === 'wirecache');
    totals = {
      cmdGet: wcRuns.reduce((a, r) => a + (r.gets ?? 0), 0),
      tierMisses: wcRuns.reduce((a, r) => a + (r.tierMisses ?? 0), 0),
      getHits: s.get_hits,
      getMisses: s.get_misses,
    };
  } finally {
    statsClient?.close();
    await root?.end().catch(() => undefined);
    if (memcached) await stopChild(memcached);
    await app?.stop();
    log('stopping topology');
    await stopTopology(topo).catch((e: unknown) => log(`stopTopology: ${e instanceof Error ? e.message : String(e)}`));
  }

  // ---- report
  const fmt = (x: number | null, d = 0): string => (x === null ? '-' : x.toFixed(d));
  const medianOrNull = (xs: (number | null)[]): number | null => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? median(v) : null;
  };
  const rows: string[][] = [];
  const summary: { workload: Workload; ratio: number | null; perRound: number[] }[] = [];
  for (const w of WORKLOADS) {
    const of = (ep: Endpoint): RunResult[] => results.filter((r) => r.workload === w && r.endpoint === ep);
    const mc = of('memcached');
    const wc = of('wirecache');
    const mcOps = median(mc.map((r) => r.opsPerSec));
    const wcOps = median(wc.map((r) => r.opsPerSec));
    const perRound = wc.map((r) => r.opsPerSec / (mc.find((m) => m.round === r.round)?.opsPerSec ?? NaN));
    // The verdict uses the paired ratios (each round's two runs were made back to back): the median of them.
    const ratio = perRound.filter(Number.isFinite).length ? median(perRound.filter(Number.isFinite)) : null;
    summary.push({ workload: w, ratio, perRound });
    const gets = wc.reduce((a, r) => a + (r.gets ?? 0), 0);
    const misses = wc.reduce((a, r) => a + (r.tierMisses ?? 0), 0);
    rows.push([
      w,
      fmt(mcOps),
      fmt(medianOrNull(mc.map((r) => r.p95Ms)), 3),
      fmt(wcOps),
      fmt(medianOrNull(wc.map((r) => r.p95Ms)), 3),
      fmtRatio(ratio),
      perRound.map((x) => x.toFixed(2)).join(', '),
      `${fmt(medianOrNull(mc.map((r) => r.serverUsPerOp)), 1)} / ${fmt(medianOrNull(wc.map((r) => r.serverUsPerOp)), 1)}`,
      `${fmt(medianOrNull(mc.map((r) => r.serverCpuPct)))}% / ${fmt(medianOrNull(wc.map((r) => r.serverCpuPct)))}%`,
      `${fmt(medianOrNull(mc.map((r) => r.clientCpuPct)))}% / ${fmt(medianOrNull(wc.map((r) => r.clientCpuPct)))}%`,
      gets > 0 ? `${((1 - misses / gets) * 100).toFixed(2)}%` : '-',
      `${Math.max(...results.filter((r) => r.workload === w).map((r) => r.otherCpuPct ?? 0)).toFixed(0)}%`,
    ]);
  }
  const headers = ['workload', 'memcached ops/s', 'memcached p95 ms', 'wirecache ops/s', 'wirecache p95 ms', 'wc/memcached (median of rounds)', 'per round', 'server us/op (mc / wc)', 'server CPU (mc / wc)', 'client CPU (mc / wc)', 'tier hit rate', 'max other CPU'];
  // No git here: BENCH_COMMIT names the measured commit when the caller knows it.
  const git = { commit: process.env.BENCH_COMMIT ?? null };
  process.stdout.write(
    `\nmemcached API: ${CONNS} connections (memcslap -c ${CONNS} -e ${MEMCSLAP_EXECUTE}), ${KEYS} keys x ${VALUE_BYTES} B, ${SECONDS} s per load-generator run, ` +
      `${ROUNDS} round(s), medians; ${os.cpus().length} CPUs, commit ${git.commit?.slice(0, 12) ?? '?'}\n\n`,
  );
  process.stdout.write(`${table(headers, rows, [false, true, true, true, true, true, false, true, true, true, true, true])}\n\n`);
  const get100 = summary.find((x) => x.workload === 'get 100%');
  const verdict = get100?.ratio == null ? 'n/a' : get100.ratio >= GOAL ? 'met' : 'NOT met';
  process.stdout.write(`goal: gets from the cache tier >= ${GOAL}x plain memcached ops/s: ${verdict} (${fmtRatio(get100?.ratio ?? null)}; per round ${get100?.perRound.map((x) => x.toFixed(2)).join(', ')})\n`);
  if (totals) {
    process.stdout.write(
      `cache tier over all measured wirecache runs: ${totals.cmdGet} gets, ${totals.tierMisses} went to MariaDB (SELECTs), hit rate ${totals.cmdGet > 0 ? ((1 - totals.tierMisses / totals.cmdGet) * 100).toFixed(2) : '-'}%; ` +
        `stats since start (warm-ups included): get_hits ${totals.getHits}, get_misses ${totals.getMisses}; tier now ${tierAfter?.items} items, ${((tierAfter?.bytes ?? 0) / 2 ** 20).toFixed(1)} MiB\n`,
    );
  }
  for (const r of results.filter((x) => x.note && x.round === 1)) process.stdout.write(`note, round 1, ${r.workload} ${r.endpoint}: ${r.note}\n`);
  const disturbed = results.filter((r) => (r.otherCpuPct ?? 0) > FOREIGN_CPU_WARN_PCT);
  if (disturbed.length > 0) {
    process.stdout.write(
      `WARNING: ${disturbed.length} of ${results.length} run(s) shared the machine with other processes using more than ${FOREIGN_CPU_WARN_PCT}% of a core ` +
        `(max ${Math.max(...disturbed.map((r) => r.otherCpuPct ?? 0))}%); their figures are disturbed.\n`,
    );
  }
  if (profileLines.length) process.stdout.write(`\n${profileLines.join('\n')}\n`);
  if (process.env.BENCH_OUT) {
    await writeResults(process.env.BENCH_OUT, {
      date: new Date().toISOString(),
      git,
      machine: machineInfo(),
      settings: { rounds: ROUNDS, seconds: SECONDS, conns: CONNS, keys: KEYS, valueBytes: VALUE_BYTES, memcslapExecute: MEMCSLAP_EXECUTE, cacheMiB: CACHE_MIB },
      results,
      summary,
      totals,
    });
  }
  const errors = results.reduce((a, r) => a + r.errors, 0);
  return errors > 0 ? 1 : 0;
});
