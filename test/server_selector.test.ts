/**
 * ServerSelector (src/routing/server_selector.ts) over a fake monitor whose
 * status snapshots the test sets: smooth weighted round robin over the read
 * targets, skipping servers a session already tried, down and lagging
 * servers, the primary choice and the writable conflict. No database.
 */
import { describe, expect, it } from 'vitest';
import type { BackendConfig } from '../src/config/types.js';
import type { ServerMonitor } from '../src/routing/server_monitor.js';
import { ServerSelector } from '../src/routing/server_selector.js';
import type { ServerState, ServerStatus } from '../src/routing/server_status.js';
import { serverStatus } from './server_status_fixture.js';

/** What the selector reads of a ServerMonitor, answered from snapshots the test sets. */
type MonitorView = Pick<ServerMonitor, 'primary' | 'writableConflict' | 'readTargets' | 'server' | 'suspect'>;

class FakeMonitor implements MonitorView {
  primaryName: string | null;
  conflict: string[] = [];
  readonly suspected: string[] = [];
  private snapshot: ServerStatus[];

  constructor(backends: BackendConfig[]) {
    this.snapshot = backends.map((b) => serverStatus(b, b.role === 'primary' ? 'primary' : 'up'));
    this.primaryName = backends.find((b) => b.role === 'primary')?.name ?? null;
  }

  /** Changes one server's published state, as a round of checks would. */
  set(name: string, state: ServerState, over: Partial<ServerStatus> = {}): void {
    this.snapshot = this.snapshot.map((s) => (s.name === name ? { ...s, state, inRotation: state === 'up', reachable: state !== 'down', ...over } : s));
  }

  primary(): ServerStatus | null {
    return this.snapshot.find((s) => s.name === this.primaryName) ?? null;
  }
  writableConflict(): string[] {
    return [...this.conflict];
  }
  readTargets(): ServerStatus[] {
    return this.snapshot.filter((s) => s.inRotation && s.name !== this.primaryName);
  }
  server(name: string): ServerStatus | undefined {
    return this.snapshot.find((s) => s.name === name);
  }
  suspect(name: string): void {
    this.suspected.push(name);
  }
}

const backend = (name: string, port: number, role: 'primary' | 'replica' = 'replica', weight = 1): BackendConfig => ({
  name,
  host: `10.0.0.${port - 3300}`,
  port,
  role,
  weight,
});
const endpoint = (b: BackendConfig) => ({ name: b.name, host: b.host, port: b.port });

function setup(backends: BackendConfig[]): { selector: ServerSelector; monitor: FakeMonitor } {
  const monitor = new FakeMonitor(backends);
  return { selector: new ServerSelector(backends, monitor as unknown as ServerMonitor), monitor };
}

const picks = (selector: ServerSelector, n: number, exclude: ReadonlySet<string> | null = null): (string | null)[] =>
  Array.from({ length: n }, () => selector.pickReplica(exclude)?.name ?? null);

const P = backend('primary', 3301, 'primary');

describe('pickReplica: smooth weighted round robin', () => {
  it('spreads reads 5:1:1 in the smooth order (no run of the heavy replica first), and repeats it', () => {
    const { selector } = setup([P, backend('r1', 3302, 'replica', 5), backend('r2', 3303), backend('r3', 3304)]);
    const cycle = ['r1', 'r1', 'r2', 'r1', 'r3', 'r1', 'r1'];
    expect(picks(selector, 7)).toEqual(cycle);
    expect(picks(selector, 14)).toEqual([...cycle, ...cycle]);
  });

  it('gives each replica its weight share over many picks, and never picks the primary', () => {
    const { selector } = setup([P, backend('a', 3302, 'replica', 3), backend('b', 3303, 'replica', 2), backend('c', 3304, 'replica', 1)]);
    const counts = new Map<string | null, number>();
    for (const name of picks(selector, 600)) counts.set(name, (counts.get(name) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ a: 300, b: 200, c: 100 });
  });

  it('rotates equal weights in configuration order, and returns the configured endpoint', () => {
    const r1 = backend('r1', 3302);
    const r2 = backend('r2', 3303);
    const { selector } = setup([P, r1, r2]);
    expect(picks(selector, 4)).toEqual(['r1', 'r2', 'r1', 'r2']);
    expect(selector.pickReplica(null)).toEqual(endpoint(r1));
  });

  it('skips servers the session already tried, without crediting them meanwhile', () => {
    const { selector } = setup([P, backend('a', 3302), backend('b', 3303), backend('c', 3304)]);
    expect(picks(selector, 4, new Set(['a']))).toEqual(['b', 'c', 'b', 'c']);
    // 'a' earned no credit while excluded: it takes its turn again, not four turns in a row.
    expect(picks(selector, 6)).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
    expect(picks(selector, 2, new Set(['a', 'b']))).toEqual(['c', 'c']);
    expect(selector.pickReplica(new Set(['a', 'b', 'c']))).toBeNull();
  });
});

describe('pickReplica and server(): down and lagging servers', () => {
  it('reads go only to replicas in rotation; a lagging or down one takes none until it is back', () => {
    const { selector, monitor } = setup([P, backend('r1', 3302), backend('r2', 3303), backend('r3', 3304)]);
    monitor.set('r1', 'lagging', { lagSeconds: 42 });
    monitor.set('r2', 'down', { lastError: 'connect ECONNREFUSED' });
    expect(picks(selector, 3)).toEqual(['r3', 'r3', 'r3']);
    monitor.set('r3', 'not_replicating', { replicating: false });
    expect(selector.pickReplica(null)).toBeNull();
    monitor.set('r1', 'up', { lagSeconds: 0 });
    expect(picks(selector, 2)).toEqual(['r1', 'r1']);
    monitor.set('r2', 'up');
    expect(new Set(picks(selector, 2))).toEqual(new Set(['r1', 'r2']));
  });

  it('server(name): configured servers unless known down; a lagging one can still be named', () => {
    const r1 = backend('r1', 3302);
    const r2 = backend('r2', 3303);
    const { selector, monitor } = setup([P, r1, r2]);
    monitor.set('r1', 'lagging', { lagSeconds: 900 });
    monitor.set('r2', 'down');
    expect(selector.server('r1')).toEqual(endpoint(r1));
    expect(selector.server('r2')).toBeNull();
    expect(selector.server('primary')).toEqual(endpoint(P));
    expect(selector.server('nope')).toBeNull();
    monitor.set('r2', 'up');
    expect(selector.server('r2')).toEqual(endpoint(r2));
  });

  it('gtidPosition and suspect go to the monitor', () => {
    const { selector, monitor } = setup([P, backend('r1', 3302)]);
    expect(selector.gtidPosition('r1')).toBeNull();
    monitor.set('r1', 'up', { gtidPosition: '0-1-42' });
    expect(selector.gtidPosition('r1')).toBe('0-1-42');
    expect(selector.gtidPosition('nope')).toBeNull();
    selector.suspect('r1');
    expect(monitor.suspected).toEqual(['r1']);
  });
});

describe('primary()', () => {
  it('is the monitor primary, as configured, and follows a failover', () => {
    const r1 = backend('r1', 3302);
    const { selector, monitor } = setup([P, r1]);
    expect(selector.monitored).toBe(true);
    expect(selector.primary()).toEqual({ endpoint: endpoint(P), conflict: [] });
    monitor.primaryName = 'r1';
    monitor.set('primary', 'down');
    monitor.set('r1', 'primary', { readOnly: false });
    expect(selector.primary()).toEqual({ endpoint: endpoint(r1), conflict: [] });
    // The new primary takes no reads.
    expect(selector.pickReplica(null)).toBeNull();
  });

  it('falls back to the configured primary while the monitor knows none', () => {
    const { selector, monitor } = setup([P, backend('r1', 3302)]);
    monitor.primaryName = null;
    expect(selector.primary()).toEqual({ endpoint: endpoint(P), conflict: [] });
  });

  it('refuses a primary while two servers are writable at once', () => {
    const { selector, monitor } = setup([P, backend('r1', 3302)]);
    monitor.conflict = ['primary', 'r1'];
    expect(selector.primary()).toEqual({ endpoint: null, conflict: ['primary', 'r1'] });
    monitor.conflict = [];
    expect(selector.primary().endpoint).toEqual(endpoint(P));
  });
});

describe('without a monitor', () => {
  it('uses the configured primary, picks no replica, names any configured server', () => {
    const r1 = backend('r1', 3302);
    const selector = new ServerSelector([r1, P], null);
    expect(selector.monitored).toBe(false);
    expect(selector.primary()).toEqual({ endpoint: endpoint(P), conflict: [] });
    expect(selector.configuredPrimary).toEqual(endpoint(P));
    expect(selector.pickReplica(null)).toBeNull();
    expect(selector.server('r1')).toEqual(endpoint(r1));
    expect(selector.server('nope')).toBeNull();
    expect(selector.gtidPosition('r1')).toBeNull();
    expect(() => selector.suspect('r1')).not.toThrow();
  });

  it('takes the first backend as the primary when none has role primary', () => {
    const a = backend('a', 3302);
    const selector = new ServerSelector([a, backend('b', 3303)], null);
    expect(selector.primary().endpoint).toEqual(endpoint(a));
  });
});
