/**
 * The monitor as a worker thread sees it: the main thread's monitor checks
 * the servers and posts each published snapshot; a worker's selector reads
 * this mirror, and its suspicions go back to the main thread's monitor.
 */
import type { ServerStatus } from './server_status.js';

/** What the selector reads of a monitor (ServerMonitor, or this mirror of one in another thread). */
export interface MonitorView {
  servers(): readonly ServerStatus[];
  server(name: string): ServerStatus | undefined;
  /** The primary; null while several servers are writable at once. */
  primary(): ServerStatus | null;
  writableConflict(): string[];
  /** Servers other than the primary that are in the read rotation. */
  readTargets(): ServerStatus[];
  /** A connection to `name` failed: check it again now. */
  suspect(name: string): void;
}

/** One published state of the monitor, as posted between threads. */
export interface MonitorSnapshot {
  servers: ServerStatus[];
  primary: string | null;
  conflict: string[];
}

export class MirroredMonitor implements MonitorView {
  private snapshot: MonitorSnapshot;
  private byName = new Map<string, ServerStatus>();
  private targets: ServerStatus[] = [];

  constructor(
    initial: MonitorSnapshot,
    private readonly suspected: (name: string) => void,
    /** Called with each server whose state changed in a new snapshot, and its new state. */
    private readonly stateChanged: (name: string, state: ServerStatus['state']) => void = () => {},
  ) {
    this.snapshot = initial;
    this.index();
  }

  /** A newer snapshot from the main thread. */
  update(next: MonitorSnapshot): void {
    const before = this.byName;
    this.snapshot = next;
    this.index();
    for (const s of next.servers) {
      const old = before.get(s.name);
      if (old && old.state !== s.state) this.stateChanged(s.name, s.state);
    }
  }

  private index(): void {
    this.byName = new Map(this.snapshot.servers.map((s) => [s.name, s]));
    this.targets = this.snapshot.servers.filter((s) => s.name !== this.snapshot.primary && s.inRotation);
  }

  servers(): readonly ServerStatus[] {
    return this.snapshot.servers;
  }

  server(name: string): ServerStatus | undefined {
    return this.byName.get(name);
  }

  primary(): ServerStatus | null {
    return this.snapshot.primary === null ? null : (this.byName.get(this.snapshot.primary) ?? null);
  }

  writableConflict(): string[] {
    return [...this.snapshot.conflict];
  }

  readTargets(): ServerStatus[] {
    return [...this.targets];
  }

  suspect(name: string): void {
    this.suspected(name);
  }
}
