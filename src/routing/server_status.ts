/**
 * What the server monitor publishes: the status snapshot of each backend,
 * and the observer and logger interfaces it reports to.
 */

export type ServerState = 'primary' | 'up' | 'lagging' | 'not_replicating' | 'down';

export interface ServerStatus {
  name: string;
  host: string;
  port: number;
  weight: number;
  configuredRole: 'primary' | 'replica';
  /** Instant state at the last check. */
  state: ServerState;
  /** The last check succeeded. */
  reachable: boolean;
  /** @@read_only at the last successful check. */
  readOnly: boolean | null;
  /** Slave_IO_Running and Slave_SQL_Running both 'Yes'; null when SHOW SLAVE STATUS is empty (not a replica) or unknown. */
  replicating: boolean | null;
  /** Replication lag in seconds (ms precision with the heartbeat); null when unknown, and for the primary. */
  lagSeconds: number | null;
  lagSource: 'heartbeat' | 'seconds_behind_master' | null;
  /** MariaDB @@global.gtid_current_pos (MySQL: @@global.gtid_executed) at the last successful check. */
  gtidPosition: string | null;
  serverId: number | null;
  /** Consecutive failed-or-unhealthy checks (reset to 0 by a good one). */
  consecutiveBad: number;
  consecutiveGood: number;
  /** May take reads (debounced: failAfter / recoverAfter). */
  inRotation: boolean;
  /** Why the last check was bad, human readable; null when it was good. */
  lastError: string | null;
  /** Date.now() of the last check; null before the first one. */
  lastCheckAt: number | null;
  flavor: 'mariadb' | 'mysql' | null;
}

export interface MonitorObserver {
  /** After every check of a server; `ok`: the server answered the check (it may still be unhealthy: see its state). */
  checkCompleted(server: string, ok: boolean, seconds: number): void;
  primaryChanged(from: string | null, to: string | null): void;
  stateChanged(server: string, from: ServerState, to: ServerState): void;
}

export const nullMonitorObserver: MonitorObserver = {
  checkCompleted() {},
  primaryChanged() {},
  stateChanged() {},
};

export interface MonitorLogger {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  debug?(o: object, m: string): void;
}
