import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getFreePorts,
  startReplicationSet,
  stopMariaDB,
  stopReplicationSet,
  waitForReplication,
  type ReplicationSetInfo,
  type ServerInfo,
} from '../scripts/topology.js';
import type { BackendConfig, MonitorConfig } from '../src/config/types.js';
import { ServerMonitor } from '../src/routing/server_monitor.js';
import type { MonitorObserver, ServerState, ServerStatus } from '../src/routing/server_status.js';
import { getTopology } from './topology-context.js';
import { stopProcess } from './process-signals.js';

const topo = getTopology();

// ---------------------------------------------------------------------------
// helpers

function backends(primary: ServerInfo, replicas: ServerInfo[]): BackendConfig[] {
  return [
    { name: primary.name, host: primary.host, port: primary.port, role: 'primary', weight: 1 },
    ...replicas.map((r): BackendConfig => ({ name: r.name, host: r.host, port: r.port, role: 'replica', weight: 1 })),
  ];
}

function monitorConfig(overrides: Partial<MonitorConfig> = {}): MonitorConfig {
  return {
    user: 'root',
    password: topo.rootPassword,
    intervalMs: 300,
    checkTimeoutMs: 1000,
    failAfter: 2,
    recoverAfter: 2,
    heartbeatTable: 'wirecache.heartbeat',
    ...overrides,
  };
}

/** Records every observer call, with the server's status snapshot right after each check. */
class Recorder implements MonitorObserver {
  monitor: ServerMonitor | null = null;
  readonly checks: { server: string; ok: boolean; seconds: number; status: ServerStatus }[] = [];
  readonly primaryChanges: [string | null, string | null][] = [];
  readonly stateChanges: [string, ServerState, ServerState][] = [];
  checkCompleted(server: string, ok: boolean, seconds: number): void {
    const status = this.monitor?.server(server);
    if (!status) throw new Error(`no status for ${server}`);
    this.checks.push({ server, ok, seconds, status });
  }
  primaryChanged(from: string | null, to: string | null): void {
    this.primaryChanges.push([from, to]);
  }
  stateChanged(server: string, from: ServerState, to: ServerState): void {
    this.stateChanges.push([server, from, to]);
  }
  history(server: string, from = 0): ServerStatus[] {
    return this.checks.slice(from).filter((c) => c.server === server).map((c) => c.status);
  }
}

class LogCapture {
  readonly warnings: { o: object; m: string }[] = [];
  readonly infos: { o: object; m: string }[] = [];
  info(o: object, m: string): void {
    this.infos.push({ o, m });
  }
  warn(o: object, m: string): void {
    this.warnings.push({ o, m });
  }
}

function newMonitor(
  servers: BackendConfig[],
  overrides: Partial<MonitorConfig> = {},
  maxLag = 1,
): { monitor: ServerMonitor; rec: Recorder; log: LogCapture } {
  const rec = new Recorder();
  const log = new LogCapture();
  const monitor = new ServerMonitor(servers, monitorConfig(overrides), maxLag, rec, log);
  rec.monitor = monitor;
  return { monitor, rec, log };
}

async function query<T = mysql.RowDataPacket[]>(s: { port: number }, sql: string, params?: unknown[]): Promise<T> {
  const c = await mysql.createConnection({ host: '127.0.0.1', port: s.port, user: 'root', password: topo.rootPassword, connectTimeout: 5000 });
  try {
    const [rows] = await c.query(sql, params);
    return rows as T;
  } finally {
    await c.end();
  }
}

async function binlogPos(s: { port: number }): Promise<string> {
  const rows = await query(s, 'SELECT @@global.gtid_binlog_pos AS pos');
  return String(rows[0].pos);
}

async function waitFor<T>(what: string, f: () => T | null | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function waitForSlaveRunning(s: { port: number }): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [r] = await query(s, 'SHOW SLAVE STATUS');
    if (r?.Slave_IO_Running === 'Yes' && r?.Slave_SQL_Running === 'Yes') return;
    if (Date.now() > deadline) throw new Error(`replication not running: IO=${String(r?.Slave_IO_Running)} SQL=${String(r?.Slave_SQL_Running)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

const names = (list: readonly ServerStatus[]): string[] => list.map((s) => s.name).sort();

// ---------------------------------------------------------------------------
// the shared topology (never promoted)

describe('ServerMonitor on the shared topology', () => {
  const servers = backends(topo.primary, topo.replicas);
  let active: ServerMonitor | null = null;

  afterAll(async () => {
    await active?.stop();
    // The heartbeat schema must not stay: other tests list SHOW DATABASES.
    await query(topo.primary, 'DROP DATABASE IF EXISTS wirecache');
    await waitForReplication(topo);
  });

  it('sees the primary and two healthy replicas in the first round, lag from the heartbeat', async () => {
    const { monitor, rec } = newMonitor(servers);
    active = monitor;
    const rootConns = async (s: ServerInfo): Promise<number> =>
      Number((await query(s, "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = 'root' AND ID <> CONNECTION_ID()"))[0].n);
    const before = await rootConns(topo.replicas[0]);

    await monitor.start();
    expect(monitor.primary()?.name).toBe('primary');
    expect(monitor.writableConflict()).toEqual([]);
    const p = monitor.server('primary') as ServerStatus;
    expect(p).toMatchObject({
      state: 'primary',
      reachable: true,
      readOnly: false,
      replicating: null,
      lagSeconds: null,
      serverId: topo.primary.serverId,
      flavor: 'mariadb',
      configuredRole: 'primary',
      lastError: null,
    });
    expect(p.gtidPosition).toMatch(/^0-1-\d+$/);
    for (const r of topo.replicas) {
      const s = monitor.server(r.name) as ServerStatus;
      expect(s).toMatchObject({
        state: 'up',
        reachable: true,
        readOnly: true,
        replicating: true,
        lagSource: 'heartbeat',
        serverId: r.serverId,
        inRotation: true,
        consecutiveGood: 1,
        consecutiveBad: 0,
        lastError: null,
        configuredRole: 'replica',
      });
      expect(s.lagSeconds).toBeGreaterThanOrEqual(0);
      expect(s.lagSeconds).toBeLessThan(1);
      expect(s.gtidPosition).toMatch(/^0-1-\d+$/);
      expect(typeof s.lastCheckAt).toBe('number');
    }
    expect(names(monitor.readTargets())).toEqual(['replica1', 'replica2']);
    expect(names(monitor.servers())).toEqual(['primary', 'replica1', 'replica2']);
    // one check per server, all answered; nothing "changed" at the first round
    expect(rec.checks.map((c) => [c.server, c.ok])).toEqual([
      ['primary', true],
      ['replica1', true],
      ['replica2', true],
    ]);
    expect(rec.stateChanges).toEqual([]);
    expect(rec.primaryChanges).toEqual([]);

    // the heartbeat row is the monitor's own, on the primary and on the replicas
    const [row] = await query(topo.primary, 'SELECT seq FROM wirecache.heartbeat WHERE proxy_id = ?', [monitor.proxyId]);
    expect(Number(row.seq)).toBeGreaterThanOrEqual(1);
    await waitForReplication(topo);
    const [rrow] = await query(topo.replicas[1], 'SELECT seq FROM wirecache.heartbeat WHERE proxy_id = ?', [monitor.proxyId]);
    expect(Number(rrow.seq)).toBeGreaterThanOrEqual(1);

    // later rounds: still healthy, the heartbeat keeps being written
    const seqBefore = Number(row.seq);
    await waitFor('two more rounds', () => rec.checks.length >= 9, 5000);
    expect(monitor.server('replica1')).toMatchObject({ state: 'up', lagSource: 'heartbeat', inRotation: true });
    expect(monitor.server('replica1')!.lagSeconds).toBeLessThan(1);
    const [row2] = await query(topo.primary, 'SELECT seq FROM wirecache.heartbeat WHERE proxy_id = ?', [monitor.proxyId]);
    expect(Number(row2.seq)).toBeGreaterThan(seqBefore);
    expect(await rootConns(topo.replicas[0])).toBe(before + 1);

    await monitor.stop();
    await monitor.stop(); // idempotent
    active = null;
    const deadline = Date.now() + 5000;
    let n = await rootConns(topo.replicas[0]);
    while (n !== before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      n = await rootConns(topo.replicas[0]);
    }
    expect(n).toBe(before);
    // no round after stop
    const count = rec.checks.length;
    await new Promise((r) => setTimeout(r, 700));
    expect(rec.checks.length).toBe(count);
  });

  it('uses Seconds_Behind_Master without a heartbeat table', async () => {
    const { monitor } = newMonitor(servers, { heartbeatTable: null });
    active = monitor;
    try {
      await monitor.start();
      for (const r of topo.replicas) {
        const s = monitor.server(r.name) as ServerStatus;
        expect(s).toMatchObject({ state: 'up', lagSource: 'seconds_behind_master', replicating: true });
        expect(s.lagSeconds).toBeLessThanOrEqual(1);
      }
    } finally {
      await monitor.stop();
      active = null;
    }
  });

  it('takes a delayed replica out of rotation after failAfter lagging checks, back after recoverAfter', async () => {
    const { monitor, rec, log } = newMonitor(servers, { intervalMs: 300, failAfter: 2, recoverAfter: 2 }, 1);
    active = monitor;
    const replica2 = topo.replicas[1];
    // MariaDB only changes MASTER_DELAY with both replication threads stopped.
    const setDelay = async (seconds: number): Promise<void> => {
      await query(replica2, 'STOP SLAVE');
      await query(replica2, `CHANGE MASTER TO MASTER_DELAY = ${seconds}`);
      await query(replica2, 'START SLAVE');
      await waitForSlaveRunning(replica2);
    };
    try {
      await monitor.start();
      expect(monitor.server('replica2')).toMatchObject({ state: 'up', inRotation: true });
      let mark2 = 0;
      try {
        await setDelay(5);
        // From a round that started after replication runs again: the monitor may have
        // caught the short STOP SLAVE above (one bad check, no effect on the rotation).
        await monitor.checkNow();
        expect(monitor.server('replica2')).toMatchObject({ state: 'up', inRotation: true, consecutiveBad: 0 });
        const mark = rec.checks.length;

        await waitFor('replica2 out of rotation', () => monitor.server('replica2')?.inRotation === false, 10_000);
        const h = rec.history('replica2', mark);
        const firstBad = h.findIndex((s) => s.state !== 'up');
        expect(firstBad).toBeGreaterThanOrEqual(0);
        // one lagging sample is not enough to leave the rotation
        expect(h[firstBad]).toMatchObject({ state: 'lagging', consecutiveBad: 1, inRotation: true, lagSource: 'heartbeat' });
        expect(h[firstBad].lagSeconds).toBeGreaterThan(1);
        expect(h[firstBad].lagSeconds).toBeLessThan(2.5);
        expect(h[firstBad].lastError).toMatch(/^lag \d+\.\d s > 1 s$/);
        const out = h.findIndex((s) => !s.inRotation);
        expect(out).toBe(firstBad + 1);
        expect(h[out]).toMatchObject({ state: 'lagging', consecutiveBad: 2 });
        expect(rec.stateChanges).toContainEqual(['replica2', 'up', 'lagging']);
        expect(names(monitor.readTargets())).toEqual(['replica1']);
        // One line when it leaves the rotation (the state change itself is logged with snake_case keys).
        const left = log.warnings.filter((l) => l.m === 'replica left the read rotation');
        expect(left).toHaveLength(1);
        expect(left[0].o).toMatchObject({ server: 'replica2', state: 'lagging', error: expect.stringMatching(/^lag /), replicas_in_rotation: 1 });
        expect(log.warnings.find((l) => l.m === 'backend state changed')?.o).toMatchObject({ server: 'replica2', to: 'lagging', in_rotation: true });
        // replica1 was never disturbed
        expect(rec.history('replica1', mark).every((s) => s.state === 'up' && s.inRotation)).toBe(true);
        // the heartbeat lag keeps growing with the delay (not a whole-second Seconds_Behind_Master)
        await waitFor('replica2 lag over 2.5 s', () => (monitor.server('replica2')?.lagSeconds ?? 0) > 2.5, 5000);
        expect(monitor.server('replica2')?.lagSeconds).toBeLessThan(6);
      } finally {
        mark2 = rec.checks.length;
        await setDelay(0);
      }
      await waitFor('replica2 back in rotation', () => monitor.server('replica2')?.inRotation === true, 10_000);
      const h2 = rec.history('replica2', mark2);
      const back = h2.findIndex((s) => s.inRotation);
      expect(back).toBeGreaterThanOrEqual(1);
      // one good check is not enough to come back
      expect(h2[back - 1]).toMatchObject({ state: 'up', consecutiveGood: 1, inRotation: false, lastError: null });
      expect(h2[back]).toMatchObject({ state: 'up', consecutiveGood: 2, inRotation: true });
      expect(h2[back].lagSeconds).toBeLessThan(1);
      expect(rec.stateChanges).toContainEqual(['replica2', 'lagging', 'up']);
      expect(names(monitor.readTargets())).toEqual(['replica1', 'replica2']);
      const rejoined = log.infos.filter((l) => l.m === 'replica rejoined the read rotation');
      expect(rejoined).toHaveLength(1);
      expect(rejoined[0].o).toMatchObject({ server: 'replica2', state: 'up', error: null, replicas_in_rotation: 2 });
      expect(log.warnings.filter((l) => l.m === 'replica left the read rotation')).toHaveLength(1);
    } finally {
      await monitor.stop();
      active = null;
    }
  });

  it('reports a replica whose replication is stopped as not_replicating', async () => {
    const { monitor, rec } = newMonitor(servers, { intervalMs: 300, failAfter: 2, recoverAfter: 2 }, 1);
    active = monitor;
    const replica1 = topo.replicas[0];
    try {
      await monitor.start();
      expect(monitor.server('replica1')).toMatchObject({ state: 'up', replicating: true, inRotation: true });
      const mark = rec.checks.length;
      try {
        await query(replica1, 'STOP SLAVE');
        await waitFor('replica1 out of rotation', () => monitor.server('replica1')?.inRotation === false, 5000);
        const h = rec.history('replica1', mark);
        const firstBad = h.findIndex((s) => s.state !== 'up');
        expect(h[firstBad]).toMatchObject({ state: 'not_replicating', replicating: false, inRotation: true, consecutiveBad: 1 });
        expect(h[firstBad].lastError).toMatch(/^replication stopped: /);
        expect(h[firstBad + 1]).toMatchObject({ state: 'not_replicating', inRotation: false, consecutiveBad: 2 });
        expect(rec.stateChanges).toContainEqual(['replica1', 'up', 'not_replicating']);
        expect(names(monitor.readTargets())).toEqual(['replica2']);
      } finally {
        await query(replica1, 'START SLAVE');
      }
      await waitFor('replica1 back in rotation', () => monitor.server('replica1')?.inRotation === true, 5000);
      expect(monitor.server('replica1')).toMatchObject({ state: 'up', replicating: true, lastError: null });
    } finally {
      await monitor.stop();
      active = null;
    }
  });
});

// ---------------------------------------------------------------------------
// a separate replication set: promoted, killed and stopped freely

describe('ServerMonitor on a separate replication set', () => {
  let baseDir: string;
  let set: ReplicationSetInfo | null = null;
  let monitor: ServerMonitor;
  let rec: Recorder;
  let log: LogCapture;
  const listenerCalls: [string | null, string | null][] = [];
  let ghostPort: number;
  const CHECK_TIMEOUT = 1000;

  beforeAll(async () => {
    baseDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wirecache-monitor-'));
    set = await startReplicationSet({ baseDir, templateDir: topo.templateDir, replicas: 2, log: () => undefined });
    [ghostPort] = await getFreePorts(1);
    const servers = [
      ...backends(set.primary, set.replicas),
      { name: 'ghost', host: '127.0.0.1', port: ghostPort, role: 'replica', weight: 1 } satisfies BackendConfig,
    ];
    // Rounds only when the test asks (checkNow) or suspect() triggers one.
    ({ monitor, rec, log } = newMonitor(servers, { intervalMs: 60_000, checkTimeoutMs: CHECK_TIMEOUT }, 5));
    monitor.onPrimaryChange((from, to) => listenerCalls.push([from, to]));
  });

  afterAll(async () => {
    const t0 = Date.now();
    await monitor?.stop();
    expect(Date.now() - t0).toBeLessThan(3000);
    if (set) {
      for (const s of [set.primary, ...set.replicas]) {
        try {
          process.kill(s.pid, 'SIGCONT');
        } catch {
          /* gone */
        }
      }
      await stopReplicationSet(set);
    }
    if (baseDir) await fs.rm(baseDir, { recursive: true, force: true });
  });

  it('starts although one backend is unreachable, and marks it down', async () => {
    const t0 = Date.now();
    await monitor.start();
    expect(Date.now() - t0).toBeLessThan(CHECK_TIMEOUT + 3000);
    expect(monitor.primary()?.name).toBe('primary');
    const ghost = monitor.server('ghost') as ServerStatus;
    expect(ghost).toMatchObject({ state: 'down', reachable: false, inRotation: false, consecutiveBad: 1, readOnly: null });
    expect(ghost.lastError).toMatch(/ECONNREFUSED/);
    expect(names(monitor.readTargets())).toEqual(['replica1', 'replica2']);
    expect(rec.checks.find((c) => c.server === 'ghost')?.ok).toBe(false);
    // a check later it is still down, without throwing
    await monitor.checkNow();
    expect(monitor.server('ghost')).toMatchObject({ state: 'down', consecutiveBad: 2, inRotation: false });
  });

  it('keeps the last primary while no server is writable, then follows a promotion within one round', async () => {
    const s = set as ReplicationSetInfo;
    const [r1] = s.replicas;
    await query(s.primary, 'SET GLOBAL read_only = ON');
    const posBefore = await binlogPos(s.primary);
    // The monitor still believes the primary writable (no round since): the heartbeat
    // statement itself must refuse to write on a read-only server (root has SUPER and could).
    expect(monitor.server('primary')?.readOnly).toBe(false);
    await (monitor as unknown as { writeHeartbeat(): Promise<void> }).writeHeartbeat();
    expect(await binlogPos(s.primary)).toBe(posBefore);
    await monitor.checkNow();
    expect(monitor.primary()?.name).toBe('primary');
    expect(monitor.server('primary')).toMatchObject({ state: 'primary', readOnly: true });
    expect(rec.primaryChanges).toEqual([]);
    // nothing is written on a read-only server (the heartbeat would be an errant transaction)
    await monitor.checkNow();
    expect(await binlogPos(s.primary)).toBe(posBefore);
    // no heartbeat possible: lag from Seconds_Behind_Master
    expect(monitor.server('replica2')?.lagSource).toBe('seconds_behind_master');

    const r1PosBefore = await binlogPos(r1);
    await query(r1, 'STOP SLAVE');
    await query(r1, 'SET GLOBAL read_only = OFF');
    await monitor.checkNow();
    expect(monitor.primary()?.name).toBe('replica1');
    expect(monitor.server('replica1')).toMatchObject({ state: 'primary', readOnly: false });
    expect(rec.primaryChanges).toEqual([['primary', 'replica1']]);
    expect(listenerCalls).toEqual([['primary', 'replica1']]);
    expect(log.infos.some((l) => l.m === 'primary changed' && JSON.stringify(l.o) === JSON.stringify({ from: 'primary', to: 'replica1' }))).toBe(true);
    expect(names(monitor.readTargets())).not.toContain('replica1');
    expect(names(monitor.readTargets())).toContain('replica2');
    // the heartbeat now goes to the new primary
    const r1Pos = await binlogPos(r1);
    expect(r1Pos).not.toBe(r1PosBefore);
    expect(r1Pos).toMatch(new RegExp(`^0-${r1.serverId}-\\d+$`));
    expect(await binlogPos(s.primary)).toBe(posBefore);
  });

  it('reports two writable servers as a conflict and picks no primary', async () => {
    const s = set as ReplicationSetInfo;
    const [r1] = s.replicas;
    const warningsBefore = log.warnings.length;
    await query(s.primary, 'SET GLOBAL read_only = OFF');
    try {
      const posP = await binlogPos(s.primary);
      const posR1 = await binlogPos(r1);
      await monitor.checkNow();
      expect(monitor.writableConflict().sort()).toEqual(['primary', 'replica1']);
      expect(monitor.primary()).toBeNull();
      expect(rec.primaryChanges.at(-1)).toEqual(['replica1', null]);
      await monitor.checkNow();
      expect(monitor.writableConflict().sort()).toEqual(['primary', 'replica1']);
      // warned once for this conflict, not at every round
      const conflictWarnings = log.warnings.slice(warningsBefore).filter((w) => /several backends are writable/.test(w.m));
      expect(conflictWarnings).toHaveLength(1);
      expect(conflictWarnings[0].o).toEqual({ servers: ['primary', 'replica1'] });
      // no heartbeat while the conflict lasts
      expect(await binlogPos(s.primary)).toBe(posP);
      expect(await binlogPos(r1)).toBe(posR1);
      expect(rec.primaryChanges).toHaveLength(2);
    } finally {
      await query(s.primary, 'SET GLOBAL read_only = ON');
    }
    await monitor.checkNow();
    expect(monitor.writableConflict()).toEqual([]);
    expect(monitor.primary()?.name).toBe('replica1');
    expect(rec.primaryChanges.at(-1)).toEqual([null, 'replica1']);
    expect(listenerCalls).toEqual([
      ['primary', 'replica1'],
      ['replica1', null],
      [null, 'replica1'],
    ]);
  });

  it('marks a killed server down, and suspect() checks it again at once', async () => {
    const s = set as ReplicationSetInfo;
    const r2 = s.replicas[1];
    expect(monitor.server('replica2')?.inRotation).toBe(true);
    await stopMariaDB(r2, { signal: 'SIGKILL' });
    const t0 = Date.now();
    await monitor.checkNow();
    expect(Date.now() - t0).toBeLessThan(CHECK_TIMEOUT + 1000);
    const st = monitor.server('replica2') as ServerStatus;
    expect(st).toMatchObject({ state: 'down', reachable: false, consecutiveBad: 1, inRotation: true });
    expect(st.lastError).toMatch(/ECONNREFUSED|PROTOCOL_CONNECTION_LOST|closed the connection|ECONNRESET/);
    expect(rec.stateChanges.filter((c) => c[0] === 'replica2').at(-1)?.[2]).toBe('down');

    // suspect(): a round without waiting for the (60 s) interval
    const last = st.lastCheckAt as number;
    monitor.suspect('replica2');
    await waitFor('a check triggered by suspect()', () => (monitor.server('replica2')?.lastCheckAt ?? 0) > last, 3000);
    expect(monitor.server('replica2')).toMatchObject({ state: 'down', consecutiveBad: 2, inRotation: false });
    expect(names(monitor.readTargets())).not.toContain('replica2');
  });

  it('fails the check of a SIGSTOPped server within checkTimeoutMs and keeps it as primary', async () => {
    const s = set as ReplicationSetInfo;
    const r1 = s.replicas[0];
    expect(monitor.primary()?.name).toBe('replica1');
    const mark = rec.checks.length;
    await stopProcess(r1.pid);
    try {
      const t0 = Date.now();
      await monitor.checkNow();
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(CHECK_TIMEOUT - 50);
      expect(elapsed).toBeLessThan(CHECK_TIMEOUT + 1500);
      const st = monitor.server('replica1') as ServerStatus;
      expect(st).toMatchObject({ state: 'down', reachable: false });
      expect(st.lastError).toMatch(/timed out after 1000 ms/);
      const check = rec.checks.slice(mark).find((c) => c.server === 'replica1');
      expect(check?.ok).toBe(false);
      expect(check?.seconds).toBeLessThan(CHECK_TIMEOUT / 1000 + 0.5);
      // unreachable: no writable server is seen, the last primary stays
      expect(monitor.primary()?.name).toBe('replica1');
    } finally {
      process.kill(r1.pid, 'SIGCONT');
    }
    await monitor.checkNow();
    expect(monitor.server('replica1')).toMatchObject({ state: 'primary', reachable: true, lastError: null });
    expect(monitor.primary()?.name).toBe('replica1');
  });
});
