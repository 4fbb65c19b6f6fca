/**
 * Prometheus metrics of the read/write split and of the server monitor:
 * statements by destination, server state and lag, consecutive-check
 * counters, primary changes, retries. Server gauges are read from the
 * monitor at scrape time; counters bumped per statement are plain numbers
 * (CounterFamily) so routing costs no prom-client work per query.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { BoundedLabel } from './bounded_label.js';
import { CounterFamily } from './counter_family.js';
import type { MonitorObserver, ServerState, ServerStatus } from '../routing/server_status.js';

const SERVER_STATES: readonly ServerState[] = ['primary', 'up', 'lagging', 'not_replicating', 'down'];
/** Server names come from the config; a bound all the same, past which names fold into "other". */
const MAX_SERVERS = 64;

export class RoutingMetrics implements MonitorObserver {
  private readonly routed: CounterFamily;
  private readonly retries: Counter<'server'>;
  private readonly writesRefused: Counter<'reason'>;
  private readonly primaryMoves: Counter<'what'>;
  private readonly consistency: Counter<'outcome'>;
  private readonly primaryChanges: Counter;
  private readonly checks: Counter<'server' | 'result'>;
  private readonly checkDuration: Gauge<'server'>;
  private readonly stateChanges: Counter<'server' | 'to'>;
  private readonly knownServers: BoundedLabel;
  private servers: () => readonly ServerStatus[] = () => [];

  constructor(registry: Registry, serverNames: readonly string[]) {
    const registers = [registry];
    this.knownServers = new BoundedLabel(MAX_SERVERS, null, serverNames);
    this.routed = new CounterFamily(
      registry,
      'wirecache_routed_statements_total',
      'Statements sent to a backend by the read/write split, by destination (primary, replica), server and reason (write, not_a_read, multi_statement, read, transaction, locking_read, primary_function, server_state, session_pinned, hint, rule, cache_fill, diagnostics, no_replica, consistency_timeout). Cache hits are in wirecache_cache_hits_total.',
      ['destination', 'server', 'reason'],
    );
    this.retries = new Counter({
      name: 'wirecache_read_retries_total',
      help: 'Reads sent again to another server because their replica failed before answering, by the failed server.',
      labelNames: ['server'],
      registers,
    });
    this.writesRefused = new Counter({
      name: 'wirecache_writes_refused_total',
      help: 'Writes refused by the proxy, by reason (writable_conflict: two servers had read_only=OFF).',
      labelNames: ['reason'],
      registers,
    });
    this.primaryMoves = new Counter({
      name: 'wirecache_primary_move_interruptions_total',
      help: 'Sessions told that the primary moved while they held a transaction or session state on the old one, by what was lost.',
      labelNames: ['what'],
      registers,
    });
    this.consistency = new Counter({
      name: 'wirecache_consistency_checks_total',
      help: 'Session-consistent reads checked against a replica: covered (already applied), waited (caught up within the wait), timeout (went to the primary).',
      labelNames: ['outcome'],
      registers,
    });
    this.primaryChanges = new Counter({
      name: 'wirecache_primary_changes_total',
      help: 'Times the monitor found a different primary (including none, while two servers are writable).',
      registers,
    });
    this.checks = new Counter({
      name: 'wirecache_server_checks_total',
      help: 'Monitor checks by server and result (ok, failed).',
      labelNames: ['server', 'result'],
      registers,
    });
    this.checkDuration = new Gauge({
      name: 'wirecache_server_check_duration_seconds',
      help: 'How long the last monitor check of each server took.',
      labelNames: ['server'],
      registers,
    });
    this.stateChanges = new Counter({
      name: 'wirecache_server_state_changes_total',
      help: 'Changes of a server state seen by the monitor, by server and new state.',
      labelNames: ['server', 'to'],
      registers,
    });
    const self = this;
    new Gauge({
      name: 'wirecache_server_state',
      help: 'Each server state as the last monitor check saw it: 1 for the current state (primary, up, lagging, not_replicating, down), 0 for the others.',
      labelNames: ['server', 'state'],
      registers,
      collect() {
        this.reset();
        for (const s of self.servers()) for (const state of SERVER_STATES) this.set({ server: s.name, state }, s.state === state ? 1 : 0);
      },
    });
    new Gauge({
      name: 'wirecache_server_in_rotation',
      help: '1 when a replica takes reads (after monitor.fail_after bad or monitor.recover_after good checks in a row), else 0.',
      labelNames: ['server'],
      registers,
      collect() {
        this.reset();
        for (const s of self.servers()) this.set({ server: s.name }, s.inRotation ? 1 : 0);
      },
    });
    new Gauge({
      name: 'wirecache_server_replication_lag_seconds',
      help: 'Replication lag of each replica (heartbeat table, else Seconds_Behind_Master); absent when unknown.',
      labelNames: ['server'],
      registers,
      collect() {
        this.reset();
        for (const s of self.servers()) if (s.lagSeconds !== null) this.set({ server: s.name }, s.lagSeconds);
      },
    });
    new Gauge({
      name: 'wirecache_server_consecutive_checks',
      help: 'Consecutive bad (result="bad") and good (result="good") monitor checks of each server.',
      labelNames: ['server', 'result'],
      registers,
      collect() {
        this.reset();
        for (const s of self.servers()) {
          this.set({ server: s.name, result: 'bad' }, s.consecutiveBad);
          this.set({ server: s.name, result: 'good' }, s.consecutiveGood);
        }
      },
    });
    for (const reason of ['writable_conflict']) this.writesRefused.inc({ reason }, 0);
    for (const outcome of ['covered', 'waited', 'timeout']) this.consistency.inc({ outcome }, 0);
    for (const what of ['transaction', 'session_state']) this.primaryMoves.inc({ what }, 0);
    this.primaryChanges.inc(0);
  }

  /** Where server gauges are read from at scrape time. */
  watch(servers: () => readonly ServerStatus[]): void {
    this.servers = servers;
  }

  private server(name: string): string {
    return this.knownServers.value(name);
  }

  statementRouted(destination: 'primary' | 'replica', server: string, reason: string): void {
    this.routed.inc([destination, this.server(server), reason]);
  }

  /** A value of wirecache_routed_statements_total (tests). */
  routedCount(destination: 'primary' | 'replica', server: string, reason: string): number {
    return this.routed.get([destination, server, reason]);
  }

  readRetried(server: string): void {
    this.retries.inc({ server: this.server(server) });
  }

  writeRefused(reason: 'writable_conflict'): void {
    this.writesRefused.inc({ reason });
  }

  primaryMoveInterrupted(what: 'transaction' | 'session_state'): void {
    this.primaryMoves.inc({ what });
  }

  consistencyChecked(outcome: 'covered' | 'waited' | 'timeout'): void {
    this.consistency.inc({ outcome });
  }

  // --- MonitorObserver ---------------------------------------------------------

  checkCompleted(server: string, ok: boolean, seconds: number): void {
    const name = this.server(server);
    this.checks.inc({ server: name, result: ok ? 'ok' : 'failed' });
    this.checkDuration.set({ server: name }, seconds);
  }

  primaryChanged(): void {
    this.primaryChanges.inc();
  }

  stateChanged(server: string, _from: ServerState, to: ServerState): void {
    this.stateChanges.inc({ server: this.server(server), to });
  }
}
