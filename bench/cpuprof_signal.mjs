// Preloaded into the wirecache child by bench/cache.ts (node --import) when
// BENCH_CACHE_PROFILE is set: the V8 CPU profiler that `node --cpu-prof`
// uses, but started and stopped on SIGUSR2, so a profile covers exactly one
// benchmark run instead of the whole life of the process (fill, warm-ups and
// the direct runs included).
//
//   1st SIGUSR2: start profiling, then create   $WC_CPUPROF_DIR/profile-N.started
//   2nd SIGUSR2: stop, write                    $WC_CPUPROF_DIR/profile-N.cpuprofile
//
// Sampling interval: $WC_CPUPROF_INTERVAL_US (default 1000, as --cpu-prof-interval).
import { writeFileSync, renameSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.WC_CPUPROF_DIR;
if (!dir) throw new Error('cpuprof_signal.mjs: WC_CPUPROF_DIR is not set');
const interval = Number(process.env.WC_CPUPROF_INTERVAL_US ?? 1000);

// Connected on the first SIGUSR2 only: nothing is attached to the process before profiling starts.
let session = null;
const post = (method, params) =>
  new Promise((resolve, reject) => {
    if (!session) {
      session = new Session();
      session.connect();
    }
    session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res)));
  });

/**
 * Removes the samples taken inside this module (Profiler.stop serialising
 * the profile shows up as a few hundred ms of "dispatch" at the end): they
 * are the profiler's cost, not wirecache's.
 */
function dropOwnSamples(profile) {
  const self = import.meta.url;
  const parent = new Map();
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const own = new Map();
  const isOwn = (id) => {
    if (own.has(id)) return own.get(id);
    const node = byId.get(id);
    const p = parent.get(id);
    const v = node.callFrame.url === self || (p !== undefined && isOwn(p));
    own.set(id, v);
    return v;
  };
  const samples = [];
  const deltas = [];
  let dropped = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    if (isOwn(profile.samples[i])) dropped += profile.timeDeltas[i] ?? 0;
    else {
      samples.push(profile.samples[i]);
      deltas.push(profile.timeDeltas[i] ?? 0);
    }
  }
  profile.samples = samples;
  profile.timeDeltas = deltas;
  if (dropped > 0) process.stderr.write(`cpuprof_signal: dropped ${(dropped / 1000).toFixed(0)} ms of the profiler's own samples\n`);
}

let running = false;
let busy = false;
let n = 0;

process.on('SIGUSR2', () => {
  if (busy) return;
  busy = true;
  const step = running
    ? post('Profiler.stop').then(({ profile }) => {
        running = false;
        dropOwnSamples(profile);
        const file = path.join(dir, `profile-${n}.cpuprofile`);
        writeFileSync(`${file}.tmp`, JSON.stringify(profile));
        renameSync(`${file}.tmp`, file);
      })
    : post('Profiler.enable')
        .then(() => post('Profiler.setSamplingInterval', { interval }))
        .then(() => post('Profiler.start'))
        .then(() => {
          running = true;
          n++;
          writeFileSync(path.join(dir, `profile-${n}.started`), '');
        });
  step.then(
    () => {
      busy = false;
    },
    (err) => {
      busy = false;
      process.stderr.write(`cpuprof_signal: ${err?.message ?? err}\n`);
    },
  );
});
