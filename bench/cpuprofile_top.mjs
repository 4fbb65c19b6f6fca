#!/usr/bin/env node
// Summarises a V8 .cpuprofile (node --cpu-prof): top functions by self time,
// and self time per source file. Idle time is excluded from the shares.
// Usage: node bench/cpuprofile_top.mjs FILE.cpuprofile [N=25]
import { readFileSync } from 'node:fs';

const [file, nArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bench/cpuprofile_top.mjs FILE.cpuprofile [N]\n');
  process.exit(2);
}
const n = Number(nArg ?? 25);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((node) => [node.id, node]));
const selfUs = new Map();
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
}
const shortUrl = (u) => (u ? u.replace(/^file:\/\/.*?\/(node_modules|dist|src)\//, '$1/').replace(/^node:/, 'node:') : '');
const fn = new Map();
const files = new Map();
let total = 0;
let idle = 0;
for (const [id, us] of selfUs) {
  const cf = byId.get(id).callFrame;
  if (cf.functionName === '(idle)') {
    idle += us;
    continue;
  }
  total += us;
  const url = shortUrl(cf.url);
  const key = `${cf.functionName || '(anonymous)'}  ${url}${url ? `:${cf.lineNumber + 1}` : ''}`;
  fn.set(key, (fn.get(key) ?? 0) + us);
  const fk = url || cf.functionName;
  files.set(fk, (files.get(fk) ?? 0) + us);
}
const pct = (us) => `${((100 * us) / total).toFixed(1)}%`.padStart(6);
const ms = (us) => `${(us / 1000).toFixed(0)} ms`.padStart(9);
process.stdout.write(`${file}\nbusy ${(total / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms\n\ntop ${n} functions by self time (share of busy time):\n`);
for (const [k, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`${pct(us)} ${ms(us)}  ${k}\n`);
process.stdout.write(`\nself time by file:\n`);
for (const [k, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 20)) process.stdout.write(`${pct(us)} ${ms(us)}  ${k}\n`);
