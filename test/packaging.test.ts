/**
 * Packaging and deployment files (docs/deploy.md): the Dockerfile, the compose
 * example and the wirecache config it mounts, the systemd unit, and the
 * Grafana dashboard, whose every query must use metric names that a real
 * wirecache exports: a running app in front of the test topology's primary
 * and replicas, with the monitor and a tiered (memory + memcached) cache, is
 * scraped after a cache miss, a hit, a replica read and a write.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type mysql from 'mysql2/promise';
import mysqlClient from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { waitForReplication } from '../scripts/topology.js';
import { startApp, type RunningApp } from '../src/app.js';
import { compileRule } from '../src/config/rules.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/logger.js';
import { connect, routingConfig, testCacheConfig, testConfig } from './proxy-harness.js';
import { runCli, writeTemp } from './cli-process.js';
import { getTopology } from './topology-context.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const fileText = (rel: string) => readFileSync(path.join(ROOT, rel), 'utf8');

// ---------------------------------------------------------------------------
// PromQL: the metric names an expression uses

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless', 'inf', 'nan', 'atan2']);

/** The expression without strings, label matchers, ranges and label lists (by, without, on, ignoring, group_*). */
function stripPromql(expr: string): string {
  return expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
}

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or label names. */
export function metricNamesIn(expr: string): string[] {
  const names = new Set<string>();
  const text = stripPromql(expr);
  for (const m of text.matchAll(/(?<![A-Za-z0-9_:.$])[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const isFunction = /^\s*\(/.test(text.slice(m.index + m[0].length));
    if (!isFunction && !PROMQL_KEYWORDS.has(m[0].toLowerCase())) names.add(m[0]);
  }
  return [...names];
}

/** Labels an expression groups by (`by (a, b)`), `le` and Prometheus' own target labels left out. */
function groupingLabelsIn(expr: string): string[] {
  const labels = new Set<string>();
  for (const m of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
    for (const l of m[1].split(',').map((x) => x.trim())) if (l && !['le', 'instance', 'job'].includes(l)) labels.add(l);
  }
  return [...labels];
}

describe('metricNamesIn', () => {
  it('finds metric names, not functions, labels, ranges or variables', () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.99, sum by (le, route) (rate(wirecache_statement_duration_seconds_bucket{route="cache",instance=~"$instance"}[$__rate_interval])))',
      ),
    ).toEqual(['wirecache_statement_duration_seconds_bucket']);
    expect(
      metricNamesIn('sum by (rule) (rate(a_total[5m])) / (sum by (rule) (rate(a_total[5m])) + sum by(rule)(rate(b_total[5m] offset 1h)))'),
    ).toEqual(['a_total', 'b_total']);
    expect(metricNamesIn('x{state="up"} * 2 + ignoring(state) y{state="down"} * 1e3 or vector(0)')).toEqual(['x', 'y']);
  });
});

// ---------------------------------------------------------------------------
// The Grafana dashboard

interface Target {
  expr?: string;
  refId?: string;
}
interface Panel {
  type: string;
  title?: string;
  targets?: Target[];
  panels?: Panel[];
  datasource?: { type?: string; uid?: string };
}

const dashboard = JSON.parse(fileText('docs/grafana-dashboard.json')) as {
  schemaVersion: number;
  title: string;
  __inputs?: { name: string; type: string; pluginId: string }[];
  panels: Panel[];
  templating?: { list: { name: string; type: string; query?: string | { query?: string } }[] };
};

/** Every panel, those inside collapsed rows included; rows themselves left out. */
const panels: Panel[] = dashboard.panels.flatMap((p) => (p.type === 'row' ? (p.panels ?? []) : [p]));
const exprs: { panel: string; expr: string }[] = panels.flatMap((p) => (p.targets ?? []).filter((t) => t.expr).map((t) => ({ panel: p.title ?? '?', expr: t.expr! })));
for (const v of dashboard.templating?.list ?? []) {
  if (v.type !== 'query') continue;
  const q = typeof v.query === 'string' ? v.query : v.query?.query;
  // label_values(metric, label): the metric must exist too.
  const m = q?.match(/^label_values\(\s*([^,]+),/);
  if (m) exprs.push({ panel: `variable ${v.name}`, expr: m[1] });
}

/** (), [] and {} nest properly outside string literals. */
function balanced(expr: string): boolean {
  const stack: string[] = [];
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  for (const ch of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if ('([{'.includes(ch)) stack.push(ch);
    else if (ch in pairs && stack.pop() !== pairs[ch]) return false;
  }
  return stack.length === 0;
}

describe('docs/grafana-dashboard.json', () => {
  it('is a dashboard with panels, each with at least one query, on the ${DS_PROMETHEUS} input', () => {
    expect(dashboard.title).toBeTruthy();
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.__inputs).toContainEqual(expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }));
    expect(panels.length).toBeGreaterThan(5);
    for (const p of panels) {
      const withExpr = (p.targets ?? []).filter((t) => typeof t.expr === 'string' && t.expr.trim() !== '');
      expect(withExpr.length, `panel "${p.title}" has no target with an expr`).toBeGreaterThan(0);
      expect(p.datasource?.uid, `panel "${p.title}" datasource`).toBe('${DS_PROMETHEUS}');
      expect(metricNamesIn(withExpr.map((t) => t.expr).join(' + ')).length, `panel "${p.title}" queries no metric`).toBeGreaterThan(0);
    }
    for (const { panel, expr } of exprs) expect(balanced(expr), `${panel}: unbalanced brackets in ${expr}`).toBe(true);
    const ids = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).map((p) => (p as { id?: number }).id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('has the panels an operator looks for', () => {
    const all = exprs.map((e) => e.expr).join('\n');
    for (const name of [
      'wirecache_routed_statements_total',
      'wirecache_cache_hits_total',
      'wirecache_cache_misses_total',
      'wirecache_query_duration_seconds_bucket',
      'wirecache_statement_duration_seconds_bucket',
      'wirecache_server_replication_lag_seconds',
      'wirecache_server_state',
      'wirecache_client_connections',
      'wirecache_backend_connect_errors_total',
      'wirecache_consistency_checks_total',
      'wirecache_read_retries_total',
      'wirecache_primary_changes_total',
    ]) {
      expect(all, name).toMatch(new RegExp(`\\b${name}\\b`));
    }
    expect(all).toMatch(/histogram_quantile\([^,]+,\s*sum by \(le, route\) \(rate\(wirecache_statement_duration_seconds_bucket/);
  });
});

// ---------------------------------------------------------------------------
// A real scrape

/** Families declared in an exposition (# TYPE) and the names of the samples present. */
function parseExposition(text: string): { families: Map<string, string>; samples: Map<string, Set<string>[]> } {
  const families = new Map<string, string>();
  const samples = new Map<string, Set<string>[]>();
  for (const line of text.split('\n')) {
    const type = line.match(/^# TYPE (\S+) (\S+)/);
    if (type) {
      families.set(type[1], type[2]);
      continue;
    }
    const sample = line.match(/^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? \S+/);
    if (!sample) continue;
    const labels = new Set([...(sample[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g)].map((m) => m[1]));
    const list = samples.get(sample[1]) ?? [];
    list.push(labels);
    samples.set(sample[1], list);
  }
  return { families, samples };
}

/** The exposition family a sample name belongs to: itself, or a histogram's/summary's without _bucket, _sum, _count. */
function familyOf(name: string, families: Map<string, string>): string | null {
  if (families.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  if (base !== name && ['histogram', 'summary'].includes(families.get(base) ?? '')) return base;
  return null;
}

describe('the dashboard against a real /metrics scrape', () => {
  const topo = getTopology();
  let app: RunningApp;
  let root: mysql.Connection;
  let scrape = '';

  beforeAll(async () => {
    root = await mysqlClient.createConnection({ host: topo.primary.host, port: topo.primary.port, user: 'root', password: topo.rootPassword });
    await root.query('CREATE TABLE IF NOT EXISTS wc_test.pkg_items (id INT PRIMARY KEY, name VARCHAR(20))');
    await root.query('REPLACE INTO wc_test.pkg_items VALUES (1, "one"), (2, "two")');
    await waitForReplication(topo);

    const rules = [compileRule({ name: 'pkg-items', match: { tables: 'wc_test.pkg_items' }, cache: true, ttl: 30 }, 'test')];
    const cache = testCacheConfig({
      storage: 'tiered',
      memcached: { servers: [`${topo.memcached.host}:${topo.memcached.port}`], timeoutMs: 500, itemLimitBytes: 1_048_576, maxItemsPerEntry: 16, keyPrefix: `pkg${process.pid}_${Date.now()}` },
      rules,
    });
    app = await startApp(testConfig(topo, { ...routingConfig(topo), cache }), createLogger('error'));

    // Wait until the monitor has both replicas in the read rotation.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const servers = (await (await fetch(`http://127.0.0.1:${app.adminAddress.port}/servers`)).json()) as { servers: { name: string; in_rotation: boolean }[] };
      if (servers.servers.filter((s) => s.name !== 'primary' && s.in_rotation).length === topo.replicas.length) break;
      if (Date.now() > deadline) throw new Error(`replicas not in rotation: ${JSON.stringify(servers)}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const conn = await connect(app.mysqlAddress.port, topo);
    try {
      await conn.query('SELECT name FROM pkg_items WHERE id = 1'); // miss (filled from the primary)
      await conn.query('SELECT name FROM pkg_items WHERE id = 1'); // hit
      await conn.query('SELECT @@server_id AS id'); // replica read
      await conn.execute('SELECT name FROM pkg_items WHERE id = ?', [2]); // prepared: miss
      await conn.execute('SELECT name FROM pkg_items WHERE id = ?', [2]); // prepared: hit
      await conn.query('UPDATE pkg_items SET name = "uno" WHERE id = 1'); // write
      await conn.query('SELECT @@server_id AS id'); // read after the write: consistency check
    } finally {
      await conn.end();
    }
    const res = await fetch(`http://127.0.0.1:${app.adminAddress.port}/metrics`);
    expect(res.status).toBe(200);
    scrape = await res.text();
  });

  afterAll(async () => {
    await app?.stop();
    await root?.query('DROP TABLE IF EXISTS wc_test.pkg_items');
    await root?.end();
  });

  it('the traffic reached the cache, the primary and a replica', () => {
    const value = (re: RegExp) => [...scrape.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0);
    expect(value(/^wirecache_cache_hits_total\{rule="pkg-items"\} (\S+)/gm)).toBeGreaterThanOrEqual(2);
    expect(value(/^wirecache_cache_misses_total\{rule="pkg-items"\} (\S+)/gm)).toBeGreaterThanOrEqual(2);
    expect(value(/^wirecache_routed_statements_total\{[^}]*destination="replica"[^}]*\} (\S+)/gm)).toBeGreaterThan(0);
    expect(value(/^wirecache_routed_statements_total\{[^}]*reason="write"[^}]*\} (\S+)/gm)).toBeGreaterThan(0);
  });

  it('every metric a dashboard query uses is exported', () => {
    const { families } = parseExposition(scrape);
    const used = new Map<string, string[]>();
    for (const { panel, expr } of exprs) {
      for (const name of metricNamesIn(expr)) used.set(name, [...(used.get(name) ?? []), panel]);
    }
    expect(used.size).toBeGreaterThan(10);
    const missing = [...used.keys()].filter((name) => familyOf(name, families) === null).sort();
    expect(missing.map((name) => `${name} (panels: ${[...new Set(used.get(name))].join('; ')})`)).toEqual([]);
  });

  it('every label a dashboard query groups by is on the samples of its metric', () => {
    const { families, samples } = parseExposition(scrape);
    const problems: string[] = [];
    for (const { panel, expr } of exprs) {
      const labels = groupingLabelsIn(expr);
      for (const name of metricNamesIn(expr)) {
        // Families without a sample yet (counters whose series appear at their first event) cannot be checked.
        const seen = samples.get(name) ?? (familyOf(name, families) === name ? samples.get(`${name}_bucket`) : undefined);
        if (!seen || seen.length === 0) continue;
        for (const label of labels) {
          if (!seen.some((s) => s.has(label))) problems.push(`${panel}: ${name} has no label "${label}"`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// Dockerfile

describe('Dockerfile', () => {
  const lines = fileText('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const instr = (name: string) => lines.filter((l) => l.toUpperCase().startsWith(`${name} `)).map((l) => l.slice(name.length).trim());

  it('builds in one stage and runs from another', () => {
    const froms = instr('FROM');
    expect(froms).toHaveLength(2);
    expect(froms[0]).toMatch(/^node:20-bookworm-slim AS build$/i);
    expect(froms[1]).toMatch(/^node:20-bookworm-slim\b/);
    expect(lines.join('\n')).toMatch(/npm ci\b/);
    expect(lines.join('\n')).toMatch(/npm run build/);
    expect(lines.join('\n')).toMatch(/npm prune --omit=dev/);
    // The runtime stage takes the build's output, not the sources.
    const runtime = lines.slice(lines.findIndex((l, i) => i > 0 && l.toUpperCase().startsWith('FROM ')));
    expect(runtime.filter((l) => /^COPY\b/i.test(l)).join('\n')).not.toMatch(/\bsrc\b/);
    expect(runtime.join('\n')).toMatch(/COPY --from=build \/app\/dist/);
    // The native addon of the worker threads: built with the build stage's compiler, copied to where dist/ loads it.
    expect(lines.join('\n')).toMatch(/COPY native \.\/native/);
    expect(runtime.join('\n')).toMatch(/COPY --from=build \/app\/build\/Release\/fd_dup\.node \.\/build\/Release\/fd_dup\.node/);
  });

  it('runs as a user that is not root, with a HEALTHCHECK on /healthz, and exposes 6033 and 9104', () => {
    const users = instr('USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    const health = instr('HEALTHCHECK');
    expect(health).toHaveLength(1);
    expect(health[0]).toMatch(/CMD .*\/healthz/);
    const exposed = instr('EXPOSE').flatMap((e) => e.split(/\s+/));
    expect(exposed).toContain('6033');
    expect(exposed).toContain('9104');
    expect(instr('ENTRYPOINT')[0]).toBe('["node", "dist/cli.js"]');
    expect(instr('CMD').at(-1)).toBe('["--config", "/etc/wirecache/wirecache.yaml"]');
  });
});

// ---------------------------------------------------------------------------
// docker compose

describe('deploy/docker-compose.yml', () => {
  const compose = parseYaml(fileText('deploy/docker-compose.yml')) as {
    services: Record<
      string,
      { image?: string; command?: unknown; volumes?: string[]; depends_on?: unknown; environment?: unknown; ports?: string[]; restart?: string }
    >;
  };

  it('has wirecache, a primary, a replica, memcached and prometheus', () => {
    const names = Object.keys(compose.services);
    for (const s of ['wirecache', 'primary', 'replica', 'memcached', 'prometheus']) expect(names).toContain(s);
    expect(compose.services.primary.image).toMatch(/^mariadb:11/);
    expect(compose.services.replica.image).toMatch(/^mariadb:11/);
  });

  it('sets up GTID replication with distinct server ids and a binlog on the primary', () => {
    const cmd = (s: string) => JSON.stringify(compose.services[s].command ?? '');
    expect(cmd('primary')).toMatch(/--server-id=1\b/);
    expect(cmd('primary')).toMatch(/--log-bin/);
    expect(cmd('replica')).toMatch(/--server-id=2\b/);
    expect(cmd('replica')).toMatch(/--read-only/);
    expect(fileText('deploy/docker-compose.yml')).toMatch(/MASTER_USE_GTID\s*=\s*slave_pos/);
    expect(fileText('deploy/docker-compose.yml')).toMatch(/START SLAVE/);
  });

  it('publishes every port on the host loopback only (demo passwords)', () => {
    const ports = Object.entries(compose.services).flatMap(([name, s]) => (s.ports ?? []).map((p) => [name, String(p)]));
    expect(ports.map(([name, p]) => `${name} ${p.split(':').slice(-1)[0]}`)).toEqual(expect.arrayContaining(['wirecache 6033', 'wirecache 9104']));
    for (const [name, p] of ports) expect(p, `${name}: ${p}`).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  it('checks the config before starting wirecache, and never restarts it forever', async () => {
    const check = compose.services['wirecache-check-config'];
    expect(check).toBeDefined();
    expect(check.image).toBe(compose.services.wirecache.image);
    expect(check.volumes).toEqual(compose.services.wirecache.volumes);
    expect(check.restart).toBe('no');
    expect(compose.services.wirecache.depends_on).toMatchObject({ 'wirecache-check-config': { condition: 'service_completed_successfully' } });
    // A bounded restart policy: not unless-stopped or always, whose loop on a config error never ends.
    expect(compose.services.wirecache.restart).toMatch(/^on-failure:\d+$/);
    expect(Object.entries(compose.services).filter(([, s]) => s.restart === 'unless-stopped' || s.restart === 'always').map(([n]) => n)).not.toContain('wirecache');
    // The command is what the image's entrypoint (node dist/cli.js) runs: it must accept it, and fail a broken config with exit 2.
    const command = check.command as string[];
    const mount = check.volumes!.find((v) => v.includes('/etc/wirecache/wirecache.yaml'))!;
    const local = path.join(ROOT, 'deploy', mount.split(':')[0]);
    const inContainer = mount.split(':')[1];
    const args = command.map((a) => (a === inContainer ? local : a));
    const ok = await runCli(args);
    expect(ok.code, ok.output).toBe(0);
    expect(ok.output).toMatch(/wirecache\.compose\.yaml: OK/);
    const broken = await writeTemp('broken.yaml', 'listen: { port: -1 }\nbackends: []\n');
    const bad = await runCli(command.map((a) => (a === inContainer ? broken : a)));
    expect(bad.code).toBe(2);
    expect(bad.output).toMatch(/broken\.yaml:1:\d+: field listen\.port/);
  });

  it('mounts the config and the prometheus scrape config that exist in deploy/', () => {
    expect(compose.services.wirecache.volumes?.join('\n')).toMatch(/\.\/wirecache\.compose\.yaml:\/etc\/wirecache\/wirecache\.yaml/);
    expect(compose.services.prometheus.volumes?.join('\n')).toMatch(/\.\/prometheus\.yml:/);
  });
});

describe('deploy/wirecache.compose.yaml', () => {
  const file = path.join(ROOT, 'deploy/wirecache.compose.yaml');

  it('passes the config validation', () => {
    const config = loadConfig(file);
    expect(config.listen.host).toBe('0.0.0.0');
    expect(config.admin.host).toBe('0.0.0.0');
    expect(config.backends.map((b) => [b.host, b.role])).toEqual([
      ['primary', 'primary'],
      ['replica', 'replica'],
    ]);
    expect(config.monitor).not.toBeNull();
    expect(config.cache?.storage).toBe('tiered');
    expect(config.cache?.memcached.servers).toEqual(['memcached:11211']);
  });

  it('shares its admin token with the prometheus scrape config', () => {
    const token = (parseYaml(fileText('deploy/wirecache.compose.yaml')) as { admin: { token?: string } }).admin.token;
    expect(token).toBeTruthy();
    const prom = parseYaml(fileText('deploy/prometheus.yml')) as {
      scrape_configs: { job_name: string; authorization?: { type?: string; credentials?: string }; static_configs: { targets: string[] }[] }[];
    };
    const job = prom.scrape_configs.find((j) => j.static_configs.some((s) => s.targets.includes('wirecache:9104')));
    expect(job).toBeDefined();
    expect(job!.authorization).toMatchObject({ credentials: token });
  });
});

// ---------------------------------------------------------------------------
// systemd

describe('deploy/wirecache.service', () => {
  const unit = fileText('deploy/wirecache.service');
  const directive = (name: string) => [...unit.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1].trim());

  it('starts the CLI with a config as an unprivileged user, reloads on HUP and restarts on failure', () => {
    expect(directive('ExecStart')).toHaveLength(1);
    expect(directive('ExecStart')[0]).toMatch(/cli\.js --config \S+/);
    expect(directive('ExecReload')[0]).toMatch(/kill -HUP \$MAINPID/);
    expect(directive('User')[0]).toMatch(/^\S+$/);
    expect(directive('User')[0]).not.toBe('root');
    expect(directive('Restart')[0]).toBe('on-failure');
    expect(directive('NoNewPrivileges')[0]).toBe('true');
  });
});
