import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TopologyInfo } from '../scripts/topology.js';
import { doubleSha1 } from '../src/config/accounts.js';
import { runCommand } from './run-command.js';

const ROOT = path.resolve(import.meta.dirname, '..');

export interface CliProcess {
  child: ChildProcess;
  port: number;
  adminPort: number;
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * The YAML a test proxy runs with: the topology's primary and its accounts.
 * `other` is configured by its mysql.user hash in password_hash and `limited`
 * by the hash in the password field, so logins are also tested without any
 * plain password in the config.
 */
export function yamlFor(topo: TopologyInfo, extra = ''): string {
  const hash = (pw: string) => `*${doubleSha1(pw).toString('hex').toUpperCase()}`;
  const entry = (u: { name: string; password: string }) => {
    if (u.name === 'other') return `  - { name: other, password_hash: "${hash(u.password)}" }`;
    if (u.name === 'limited') return `  - { name: limited, password: "${hash(u.password)}" }`;
    return `  - { name: ${u.name}, password: "${u.password}" }`;
  };
  return `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
backends:
  - { name: primary, host: 127.0.0.1, port: ${topo.primary.port} }
users:
${topo.users.map(entry).join('\n')}
${extra}`;
}

export async function writeTemp(name: string, text: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-cli-'));
  const file = path.join(dir, name);
  await fs.writeFile(file, text);
  return file;
}

/** Runs `wirecache` (from source, through tsx) as its own process and waits until it listens. */
export async function startCli(args: string[], readyTimeoutMs = 60_000): Promise<CliProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const started = Date.now();
  for (;;) {
    const port = /"msg":"listening for MySQL clients"/.test(out) ? Number(/"port":(\d+),[^\n]*listening for MySQL clients/.exec(out)?.[1]) : 0;
    const admin = /"metrics":"http:\/\/[^:]+:(\d+)\/metrics"/.exec(out);
    if (port && admin) return { child, port, adminPort: Number(admin[1]), output: () => out, exited };
    if (child.exitCode !== null) throw new Error(`wirecache exited with ${child.exitCode}:\n${out}`);
    if (Date.now() - started > readyTimeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`wirecache did not start within ${readyTimeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the CLI to completion and returns its exit code and output. */
export async function runCli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], { cwd: ROOT, timeoutMs });
  return { code: r.code, output: r.stdout + r.stderr };
}
