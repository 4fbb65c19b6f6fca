/**
 * Turns the monitor's view of the servers into connection targets: the
 * current primary, a replica for the next read (smooth weighted round robin
 * over the replicas in rotation), or a server by name.
 */
import { configuredPrimary } from '../config/lookup.js';
import type { BackendConfig, BackendEndpoint } from '../config/types.js';
import type { MonitorView } from './mirrored_monitor.js';
import type { ServerStatus } from './server_status.js';

export interface PrimaryChoice {
  /** The server writes go to; null while two servers are writable at once. */
  endpoint: BackendEndpoint | null;
  /** Names of the servers writable at once (writes are refused), or []. */
  conflict: string[];
}

const endpointOf = (b: { name: string; host: string; port: number }): BackendEndpoint => ({ name: b.name, host: b.host, port: b.port });

export class ServerSelector {
  /** Smooth weighted round robin: each replica's running credit. */
  private readonly credit = new Map<string, number>();
  private readonly endpoints = new Map<string, BackendEndpoint>();
  /** The backend with role: primary in the config. */
  readonly configuredPrimary: BackendEndpoint;

  constructor(
    backends: readonly BackendConfig[],
    private readonly monitor: MonitorView | null,
  ) {
    for (const b of backends) this.endpoints.set(b.name, endpointOf(b));
    this.configuredPrimary = endpointOf(configuredPrimary(backends)!);
  }

  get monitored(): boolean {
    return this.monitor !== null;
  }

  primary(): PrimaryChoice {
    if (!this.monitor) return { endpoint: this.configuredPrimary, conflict: [] };
    const conflict = this.monitor.writableConflict();
    if (conflict.length > 0) return { endpoint: null, conflict };
    const p = this.monitor.primary();
    return { endpoint: p ? this.endpoints.get(p.name) ?? endpointOf(p) : this.configuredPrimary, conflict: [] };
  }

  /** A replica in rotation for the next read, skipping `exclude`; null when none is usable. */
  pickReplica(exclude: ReadonlySet<string> | null): BackendEndpoint | null {
    if (!this.monitor) return null;
    let best: ServerStatus | null = null;
    let total = 0;
    let bestCredit = -Infinity;
    for (const s of this.monitor.readTargets()) {
      if (exclude?.has(s.name)) continue;
      const credit = (this.credit.get(s.name) ?? 0) + s.weight;
      this.credit.set(s.name, credit);
      total += s.weight;
      if (credit > bestCredit) {
        bestCredit = credit;
        best = s;
      }
    }
    if (!best) return null;
    this.credit.set(best.name, bestCredit - total);
    return this.endpoints.get(best.name) ?? endpointOf(best);
  }

  /** A configured server by name, if the monitor does not know it to be down. */
  server(name: string): BackendEndpoint | null {
    const endpoint = this.endpoints.get(name);
    if (!endpoint) return null;
    const status = this.monitor?.server(name);
    return status && status.state === 'down' ? null : endpoint;
  }

  /** The replica's last known GTID position (MariaDB gtid_current_pos), or null. */
  gtidPosition(name: string): string | null {
    return this.monitor?.server(name)?.gtidPosition ?? null;
  }

  /** A session failed to reach `name`: have the monitor look at it now. */
  suspect(name: string): void {
    this.monitor?.suspect(name);
  }
}
