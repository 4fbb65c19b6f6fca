/**
 * Binlog reader benchmark: how long after a commit made directly on the
 * primary the cache is invalidated (p50/p99 in ms), and the reader's CPU per
 * binlog event while sysbench oltp_write_only writes to the primary.
 *
 *   npx tsx bench/binlog.ts
 *
 * Steps: start the topology (scripts/topology.ts), start a wirecache proxy in
 * this process with a memory cache and the binlog reader on (as root), then:
 *
 * 1. Delay: BENCH_BINLOG_WRITES times, an UPDATE on the primary over a
 *    connection that tracks last_gtid (the GTID arrives with the OK, no extra
 *    round trip); the delay runs from the OK to the reader having applied that
 *    GTID (BinlogReader.waitFor resolves when the event is applied, i.e. the
 *    cache's generations are bumped). One write at a time, so each delay is
 *    the reader's own latency, not a queue.
 * 2. CPU: sysbench oltp_write_only (BENCH_THREADS threads, BENCH_SECONDS) on
 *    the primary directly. This process runs only the proxy meanwhile (the
 *    reader streams, no client uses the proxy), so its CPU time over the run
 *    divided by the binlog events read is the reader's cost per event, and by
 *    the transactions read its cost per transaction.
 *
 * Environment: BENCH_BINLOG_WRITES (default 500), BENCH_SECONDS (default 20),
 * BENCH_THREADS (default 4), BENCH_OUT (JSON results).
 */
import mysql from 'mysql2/promise';
import { startTopology, stopTopology } from '../scripts/topology.js';
import { parseConfig } from '../src/config/load.js';
import { createLogger } from '../src/logger.js';
import { Metrics } from '../src/metrics/metrics.js';
import { ProxyServer } from '../src/proxy_server.js';
import { BINLOG_EVENT_KINDS } from '../src/replication/observer.js';
import { connArgs, envInt, gitInfo, log, machineInfo, runMain, sysbenchOrThrow, writeResults } from './common.js';

const WRITES = envInt('BENCH_BINLOG_WRITES', 500, 10);
const SECONDS = envInt('BENCH_SECONDS', 20, 1);
const THREADS = envInt('BENCH_THREADS', 4, 1);

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

runMain(async () => {
  const topo = await startTopology();
  let proxy: ProxyServer | null = null;
  try {
    const config = parseConfig(
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        'admin: { host: 127.0.0.1, port: 0 }',
        'backends:',
        `  - { name: primary, host: ${topo.primary.host}, port: ${topo.primary.port}, role: primary }`,
        'users:',
        '  - { name: app, password: app_pw }',
        'cache: { mode: hinted, storage: memory }',
        `binlog: { enabled: true, user: root, password: "${topo.rootPassword}" }`,
        'log: { level: warn }',
      ].join('\n'),
      '/tmp/bench-binlog.yaml',
    );
    const metrics = new Metrics({ backendNames: ['primary'] });
    proxy = new ProxyServer(config, createLogger('warn'), metrics, metrics.cache, metrics.routing, metrics.binlog);
    metrics.binlog.enable();
    await proxy.start();
    const reader = proxy.binlog!;

    const root = await mysql.createConnection({ host: topo.primary.host, port: topo.primary.port, user: 'root', password: topo.rootPassword, database: 'wc_test' });
    await root.query("SET SESSION session_track_system_variables = 'last_gtid'");
    await root.query('CREATE TABLE IF NOT EXISTS bench_binlog (id INT PRIMARY KEY, v INT)');
    await root.query('REPLACE INTO bench_binlog VALUES (1, 0)');

    // 1. Delay from commit to invalidation.
    const delays: number[] = [];
    for (let i = 1; i <= WRITES; i++) {
      const [ok] = await root.query<mysql.ResultSetHeader>('UPDATE bench_binlog SET v = ? WHERE id = 1', [i]);
      const committed = performance.now();
      const gtid = (ok as unknown as { stateChanges?: { systemVariables?: Record<string, string> } }).stateChanges?.systemVariables?.last_gtid;
      if (!gtid) throw new Error('the UPDATE did not report last_gtid');
      if (!(await reader.waitFor(gtid, 5000))) throw new Error(`the reader did not pass ${gtid} within 5 s`);
      delays.push(performance.now() - committed);
    }
    delays.sort((a, b) => a - b);
    const delay = { writes: WRITES, p50Ms: percentile(delays, 50), p99Ms: percentile(delays, 99), maxMs: delays[delays.length - 1] };
    log(`commit -> invalidation: p50 ${delay.p50Ms.toFixed(3)} ms, p99 ${delay.p99Ms.toFixed(3)} ms, max ${delay.maxMs.toFixed(3)} ms over ${WRITES} writes`);

    // 2. Reader CPU per event under oltp_write_only.
    const size = ['--tables=4', '--table-size=10000'];
    const direct = connArgs(topo.primary.port);
    await sysbenchOrThrow(['oltp_write_only', ...direct, ...size, '--threads=4', 'prepare'], 'sysbench prepare');
    const pos = (await root.query<mysql.RowDataPacket[]>('SELECT @@gtid_binlog_pos AS p'))[0][0].p as string;
    await reader.waitFor(pos, 30_000);
    const eventsBefore = totalEvents(metrics);
    const trxBefore = metrics.binlog.value('events', 'gtid');
    const cpuBefore = process.cpuUsage();
    const out = await sysbenchOrThrow(['oltp_write_only', ...direct, ...size, `--threads=${THREADS}`, `--time=${SECONDS}`, 'run'], 'sysbench run');
    const end = (await root.query<mysql.RowDataPacket[]>('SELECT @@gtid_binlog_pos AS p'))[0][0].p as string;
    if (!(await reader.waitFor(end, 60_000))) throw new Error('the reader did not catch up after the run');
    const cpu = process.cpuUsage(cpuBefore);
    const events = totalEvents(metrics) - eventsBefore;
    const transactions = metrics.binlog.value('events', 'gtid') - trxBefore;
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const tps = /transactions:\s+\d+\s+\(([\d.]+) per sec/.exec(out.stdout)?.[1];
    const reading = {
      seconds: SECONDS,
      threads: THREADS,
      sysbenchTps: tps ? Number(tps) : null,
      events,
      transactions,
      cpuSeconds,
      cpuPctOfOneCore: (100 * cpuSeconds) / SECONDS,
      usPerEvent: (cpuSeconds * 1e6) / events,
      usPerTransaction: (cpuSeconds * 1e6) / transactions,
    };
    log(
      `oltp_write_only ${SECONDS} s, ${THREADS} threads (${reading.sysbenchTps} tps): ${events} events, ${transactions} transactions; ` +
        `reader CPU ${cpuSeconds.toFixed(2)} s (${reading.cpuPctOfOneCore.toFixed(1)}% of a core), ${reading.usPerEvent.toFixed(1)} µs/event, ${reading.usPerTransaction.toFixed(1)} µs/transaction`,
    );
    await root.end();
    if (process.env.BENCH_OUT) await writeResults(process.env.BENCH_OUT, { git: gitInfo(), machine: machineInfo(), delay, reading });
    return 0;
  } finally {
    await proxy?.shutdown(100);
    await stopTopology(topo);
  }
});

function totalEvents(metrics: Metrics): number {
  return BINLOG_EVENT_KINDS.reduce((n, kind) => n + metrics.binlog.value('events', kind), 0);
}
