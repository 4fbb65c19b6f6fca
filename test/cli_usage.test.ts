/**
 * The command line's conventions, without a database: the config file as an
 * argument or with --config for every command, usage on no arguments,
 * `help <command>`, and a top-level --help that says how to start the proxy.
 */
import { describe, expect, it } from 'vitest';
import { runCli, writeTemp } from './cli-process.js';

const CONFIG = `backends:
  - { name: primary, host: 127.0.0.1, port: 3306 }
users:
  - { name: app, password: app_pw }
`;

describe('wirecache command line usage', () => {
  it('with no arguments prints the usage on stderr and exits 2', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/^Usage: wirecache /m);
    expect(r.output).toMatch(/wirecache --config wirecache\.yaml/);
    expect(r.output).not.toMatch(/Error|at .*\.ts:\d+/);
  });

  it('--help says how to start the proxy, and help <command> shows that command', async () => {
    const [top, check, rules, rulesTest] = await Promise.all([
      runCli(['--help']),
      runCli(['help', 'check-config']),
      runCli(['help', 'rules']),
      runCli(['rules', 'help', 'test']),
    ]);
    expect(top.code).toBe(0);
    expect(top.output).toMatch(/Start the proxy with a configuration file[^\n]*\n\s+wirecache --config wirecache\.yaml/);
    expect(top.output).toMatch(/help \[command\]/);
    expect(check.code).toBe(0);
    expect(check.output).toMatch(/^Usage: wirecache check-config \[options\] \[config\]/m);
    expect(rules.code).toBe(0);
    expect(rules.output).toMatch(/^Usage: wirecache rules /m);
    expect(rulesTest.code).toBe(0);
    expect(rulesTest.output).toMatch(/^Usage: wirecache rules test \[options\] \[config\] <queries>/m);
  });

  it('takes the config file as an argument or with --config, for check-config and rules test', async () => {
    const config = await writeTemp('cli.yaml', CONFIG);
    const queries = await writeTemp('q.sql', 'SELECT 1;\n');
    const runs = await Promise.all([
      runCli(['check-config', config]),
      runCli(['check-config', '--config', config]),
      runCli(['--config', config, 'check-config']),
      runCli(['rules', 'test', config, queries]),
      runCli(['rules', 'test', '--config', config, queries]),
    ]);
    for (const r of runs.slice(0, 3)) {
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(/cli\.yaml: OK \(1 backend\(s\), 1 user\(s\)/);
    }
    for (const r of runs.slice(3)) {
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(/q\.sql \(SQL file\): 1 statement\(s\), rules of .*cli\.yaml/);
    }
  });

  it('refuses a missing or doubly given config file with exit 2 and a clear message', async () => {
    const config = await writeTemp('cli.yaml', CONFIG);
    const [check, run, rules, both, missing] = await Promise.all([
      runCli(['check-config']),
      runCli(['run']),
      runCli(['rules', 'test', '/dev/null']),
      runCli(['check-config', config, '--config', '/elsewhere.yaml']),
      runCli(['run', '/nonexistent/wirecache.yaml']),
    ]);
    expect([check.code, run.code, rules.code, both.code, missing.code]).toEqual([2, 2, 2, 2, 2]);
    expect(check.output).toMatch(/missing the config file: wirecache check-config FILE/);
    expect(run.output).toMatch(/missing the config file: wirecache run FILE/);
    expect(rules.output).toMatch(/missing the config file: wirecache rules test CONFIG QUERIES/);
    expect(both.output).toMatch(/give the config file once/);
    expect(missing.output).toMatch(/\/nonexistent\/wirecache\.yaml: cannot read config: file not found/);
  });
});
