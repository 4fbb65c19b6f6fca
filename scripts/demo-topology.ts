/**
 * Starts a throw-away topology (primary, 2 replicas, memcached), prints its
 * TopologyInfo as JSON on stdout, and tears it down on SIGINT / SIGTERM.
 *
 *   npx tsx scripts/demo-topology.ts [--replicas N]
 */
import { startTopology, stopTopology, type TopologyInfo } from './topology.js';

async function main(): Promise<void> {
  const idx = process.argv.indexOf('--replicas');
  const replicas = idx >= 0 ? Number.parseInt(process.argv[idx + 1] ?? '', 10) : 2;
  if (!Number.isInteger(replicas) || replicas < 0) throw new Error('--replicas needs a non-negative integer');

  let topo: TopologyInfo | undefined;
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`[demo-topology] ${signal}: stopping\n`);
    try {
      if (topo) await stopTopology(topo);
      process.exit(0);
    } catch (e) {
      process.stderr.write(`[demo-topology] stop failed: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    }
  };
  // Installed before starting so a Ctrl-C during startup still waits for a clean stop.
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  topo = await startTopology({ replicas });
  if (stopping) {
    await stopTopology(topo);
    process.exit(0);
  }
  process.stdout.write(`${JSON.stringify(topo, null, 2)}\n`);
  process.stderr.write('[demo-topology] running; press Ctrl-C to stop\n');
  // The children are unref'd: keep the process alive until a signal arrives.
  setInterval(() => undefined, 1 << 30);
}

main().catch((e: unknown) => {
  process.stderr.write(`[demo-topology] ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
