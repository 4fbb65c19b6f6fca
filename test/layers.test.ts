/**
 * The layer rules of .dependency-cruiser.cjs (what `npm run check:layers` runs):
 * src/ keeps them, and every rule catches a bad import in a small fixture
 * tree written here, while the imports each layer may make pass.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseOptions, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CONFIG_FILE = join(ROOT, '.dependency-cruiser.cjs');

async function loadOptions(): Promise<ICruiseOptions> {
  return extractDepcruiseOptions(CONFIG_FILE);
}

/** Cruises `dirs` (relative to `baseDir`) with the project's rules; returns the violations that count (not the ignored ones). */
async function violationsIn(baseDir: string, dirs: string[], extra: Partial<ICruiseOptions> = {}): Promise<IViolation[]> {
  const options = await loadOptions();
  const result = await cruise(dirs, { ...options, baseDir, validate: true, ...extra }, {}, { tsConfig: extractTSConfig(join(ROOT, 'tsconfig.json')) });
  const output = result.output as ICruiseResult;
  expect(output.summary.totalCruised).toBeGreaterThan(0);
  return output.summary.violations.filter((v) => v.rule.severity !== 'ignore');
}

/** Writes each file of `tree` (path relative to `dir` -> text). */
function writeTree(dir: string, tree: Record<string, string>): void {
  for (const [file, text] of Object.entries(tree)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
}

const show = (vs: IViolation[]): string[] => vs.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`).sort();

describe('src/ keeps the layer rules', () => {
  it('has no violations', async () => {
    const violations = await violationsIn(ROOT, ['src']);
    expect(show(violations)).toEqual([]);
  });
});

/**
 * A tree shaped like src/: the files named bad_* make exactly the bad imports
 * listed in EXPECTED; every other file makes only imports its layer may make.
 */
const FIXTURE: Record<string, string> = {
  // protocol: itself and node built-ins other than net/tls
  'src/protocol/constants.ts': 'export const OK = 0;\n',
  'src/protocol/ok_framing.ts':
    "import { createHash } from 'node:crypto';\nimport { Buffer } from 'node:buffer';\nimport { OK } from './constants.js';\nexport const f = (): string => createHash('sha1').update(Buffer.from([OK])).digest('hex');\n",
  'src/protocol/bad_layer.ts': "import { lex } from '../sql/lexer.js';\nexport const b = lex;\n",
  'src/protocol/bad_package.ts': "import * as z from 'zod';\nexport const b = z.string();\n",
  'src/protocol/bad_socket.ts': "import type { Socket } from 'node:net';\nexport type B = Socket;\n",
  // sql: only itself
  'src/sql/lexer.ts': 'export const lex = (s: string): string[] => s.split(" ");\n',
  'src/sql/ok_classifier.ts': "import { createHash } from 'node:crypto';\nimport { lex } from './lexer.js';\nexport const c = (s: string) => [lex(s), createHash('md5')];\n",
  'src/sql/bad_config.ts': "import type { Cfg } from '../config/types.js';\nexport type B = Cfg;\n",
  'src/sql/bad_session.ts': "import { s } from '../session/session.js';\nexport const b = s;\n",
  // cache and routing: below the session, no sockets
  'src/cache/ok_policy.ts':
    "import { lex } from '../sql/lexer.js';\nimport { OK } from '../protocol/constants.js';\nimport type { Cfg } from '../config/types.js';\nimport { randomBytes } from 'node:crypto';\nexport const p = (c: Cfg) => [lex(c.name), OK, randomBytes(1)];\n",
  'src/cache/bad_session.ts': "import type { S } from '../session/session.js';\nexport type B = S;\n",
  'src/cache/bad_tls.ts': "import { connect } from 'node:tls';\nexport const b = connect;\n",
  'src/routing/ok_router.ts': "import { p } from '../cache/ok_policy.js';\nexport const r = p;\n",
  'src/routing/bad_metrics.ts': "import { m } from '../metrics/metrics.js';\nexport const b = m;\n",
  'src/routing/bad_admin.ts': "import { a } from '../admin/admin.js';\nexport const b = a;\n",
  'src/routing/bad_net.ts': "import { isIP } from 'net';\nexport const b = isIP;\n",
  // the cache's storage driver may use sockets; its decisions may not
  'src/cache/memcached_store.ts': "import type { Socket } from 'node:net';\nexport type Store = Socket;\n",
  'src/config/types.ts': 'export interface Cfg { name: string }\n',
  // replication: protocol, sql, cache, routing and config are fine; no session, metrics or Prometheus
  'src/replication/ok_reader.ts':
    "import { lex } from '../sql/lexer.js';\nimport { r } from '../routing/ok_router.js';\nimport type { Cfg } from '../config/types.js';\nexport const x = (c: Cfg) => [lex(c.name), r];\n",
  'src/replication/bad_session.ts': "import type { S } from '../session/session.js';\nexport type B = S;\n",
  'src/replication/bad_prom.ts': "import { Registry } from 'prom-client';\nexport const b = new Registry();\n",
  'src/config/bad_top.ts': "import { app } from '../app.js';\nexport const b = app;\n",
  // memcached_api: sockets, replication and config are fine; no SQL sessions, query cache, metrics or Prometheus
  'src/memcached_api/ok_server.ts':
    "import { createServer } from 'node:net';\nimport { x } from '../replication/ok_reader.js';\nexport const o = [createServer, x];\n",
  'src/memcached_api/bad_session.ts': "import type { S } from '../session/session.js';\nexport type B = S;\n",
  'src/memcached_api/bad_cache.ts': "import { p } from '../cache/ok_policy.js';\nexport const b = p;\n",
  'src/memcached_api/bad_prom.ts': "import { Registry } from 'prom-client';\nexport const b = new Registry();\n",
  // session: sockets and the layers below are fine; no Prometheus, metrics or admin
  'src/session/session.ts':
    "import { connect } from 'node:net';\nimport { r } from '../routing/ok_router.js';\nimport { c } from '../sql/ok_classifier.js';\nexport interface S { x: number }\nexport const s = [connect, r, c];\n",
  'src/session/bad_prom.ts': "import { Registry } from 'prom-client';\nexport const b = new Registry();\n",
  'src/session/bad_metrics.ts': "import type { M } from '../metrics/metrics.js';\nexport type B = M;\n",
  'src/session/bad_admin.ts': "import { a } from '../admin/admin.js';\nexport const b = a;\n",
  'src/session/bad_top.ts': "import { ProxyServer } from '../proxy_server.js';\nexport const b = ProxyServer;\n",
  'src/metrics/metrics.ts': "import { Registry } from 'prom-client';\nexport interface M { r: Registry }\nexport const m = new Registry();\n",
  'src/admin/admin.ts': "import { s } from '../session/session.js';\nimport { m } from '../metrics/metrics.js';\nexport const a = [s, m];\n",
  'src/auth/bad_unresolvable.ts': "import { gone } from './missing.js';\nexport const b = gone;\n",
  // the top imports anything, itself included
  'src/proxy_server.ts': "import { a } from './admin/admin.js';\nimport { s } from './session/session.js';\nexport class ProxyServer { x = [a, s]; }\n",
  'src/app.ts': "import { ProxyServer } from './proxy_server.js';\nexport const app = new ProxyServer();\n",
  'src/cli.ts': "import { app } from './app.js';\nimport { Registry } from 'prom-client';\nexport const cli = [app, Registry];\n",
};

/** Every bad import of FIXTURE, as "rule: from". */
const EXPECTED = [
  'protocol-imports-only-protocol: src/protocol/bad_layer.ts',
  'protocol-imports-only-protocol: src/protocol/bad_package.ts',
  'protocol-no-sockets: src/protocol/bad_socket.ts',
  'sql-imports-only-sql: src/sql/bad_config.ts',
  'sql-imports-only-sql: src/sql/bad_session.ts',
  'cache-routing-sql-not-to-session-admin-metrics: src/sql/bad_session.ts',
  'cache-routing-sql-not-to-session-admin-metrics: src/cache/bad_session.ts',
  'cache-routing-sql-not-to-session-admin-metrics: src/routing/bad_metrics.ts',
  'cache-routing-sql-not-to-session-admin-metrics: src/routing/bad_admin.ts',
  'cache-routing-sql-no-sockets: src/cache/bad_tls.ts',
  'cache-routing-sql-no-sockets: src/routing/bad_net.ts',
  'replication-not-to-session-admin-metrics: src/replication/bad_session.ts',
  'replication-not-to-session-admin-metrics: src/replication/bad_prom.ts',
  'session-not-to-metrics-admin: src/session/bad_prom.ts',
  'session-not-to-metrics-admin: src/session/bad_metrics.ts',
  'session-not-to-metrics-admin: src/session/bad_admin.ts',
  'memcached-api-beside-sessions: src/memcached_api/bad_session.ts',
  'memcached-api-beside-sessions: src/memcached_api/bad_cache.ts',
  'memcached-api-beside-sessions: src/memcached_api/bad_prom.ts',
  'not-to-top: src/config/bad_top.ts',
  'not-to-top: src/session/bad_top.ts',
  'not-to-unresolvable: src/auth/bad_unresolvable.ts',
].sort();

describe('the layer rules catch bad imports', () => {
  // Inside the project, so that imports of npm packages resolve to its node_modules.
  const dir = join(ROOT, '.tmp', `layers-fixture-${randomBytes(4).toString('hex')}`);

  beforeAll(() => writeTree(dir, FIXTURE));

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('flags exactly the bad imports of a fixture tree, each with its rule', async () => {
    // The bad imports put folders in circles too: that rule has a tree of its own below.
    const violations = (await violationsIn(dir, ['src'])).filter((v) => v.rule.name !== 'no-folder-cycles');
    expect(violations.map((v) => `${v.rule.name}: ${v.from}`).sort()).toEqual(EXPECTED);
    // The violations name what was imported, resolved (core modules by name, packages in node_modules).
    const to = (from: string, rule: string) => violations.find((v) => v.from === from && v.rule.name === rule)?.to;
    expect(to('src/protocol/bad_socket.ts', 'protocol-no-sockets')).toBe('net');
    expect(to('src/cache/bad_tls.ts', 'cache-routing-sql-no-sockets')).toBe('tls');
    expect(to('src/session/bad_prom.ts', 'session-not-to-metrics-admin')).toMatch(/node_modules\/prom-client\//);
    expect(to('src/protocol/bad_package.ts', 'protocol-imports-only-protocol')).toMatch(/node_modules\/zod\//);
    expect(to('src/session/bad_top.ts', 'not-to-top')).toBe('src/proxy_server.ts');
  });

  it('has a fixture for every rule in the config, and every rule is an error', async () => {
    const rules = (await loadOptions()).ruleSet?.forbidden ?? [];
    expect(rules.length).toBeGreaterThan(0);
    const names = rules.map((r) => r.name);
    expect(new Set([...EXPECTED.map((e) => e.split(':')[0]), 'no-folder-cycles'])).toEqual(new Set(names));
    for (const r of rules) expect(r.severity, r.name).toBe('error');
  });
});

describe('the layer rules catch folders in a circle', () => {
  const dir = join(ROOT, '.tmp', `layers-cycle-${randomBytes(4).toString('hex')}`);
  const TREE: Record<string, string> = {
    'src/config/types.ts': 'export interface Cfg { name: string }\n',
    'src/auth/account.ts': "import type { Cfg } from '../config/types.js';\nexport const account = (c: Cfg) => c.name;\n",
    'src/sql/lexer.ts': 'export const lex = (s: string): string[] => s.split(" ");\n',
  };

  beforeAll(() => writeTree(dir, TREE));

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes imports that point one way, and flags both folders once they import each other', async () => {
    expect(show(await violationsIn(dir, ['src']))).toEqual([]);
    writeFileSync(join(dir, 'src/config/defaults.ts'), "import { account } from '../auth/account.js';\nexport const d = account({ name: 'x' });\n");
    const violations = await violationsIn(dir, ['src']);
    expect(violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`).sort()).toEqual([
      'no-folder-cycles: src/auth -> src/config',
      'no-folder-cycles: src/config -> src/auth',
    ]);
  });
});
