/**
 * Prometheus metrics: the ProxyObserver the proxy core reports to, backed by
 * a private prom-client Registry (never the global one, so several proxies or
 * tests in one process do not collide).
 *
 * Label values are bounded: command labels must look like COM_* names and
 * backend labels come from the config; past a fixed number of distinct values
 * further ones are folded into "other", so a bug upstream cannot make the
 * number of series grow without limit.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { CacheMetrics } from './cache_metrics.js';
import { CommandStats } from './command_stats.js';
import type { ProxyObserver, RefusalReason } from './observer.js';
import { RoutingMetrics } from './routing_metrics.js';

/** Histogram buckets (seconds) covering 50µs to 10s. */
export const QUERY_DURATION_BUCKETS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

const REFUSAL_REASONS: readonly RefusalReason[] = ['max_connections', 'shutting_down'];
const AUTH_FAILURE_REASONS = ['bad_credentials', 'backend_refused', 'backend_unavailable'] as const;
type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

const COMMAND_RE = /^COM_[A-Z0-9_]{1,40}$/;
const MAX_COMMAND_LABELS = 64;
const BACKEND_RE = /^[a-zA-Z0-9_-]{1,100}$/;
const MAX_BACKEND_LABELS = 256;
/** Label value used for anything that fails the checks above. */
export const OTHER_LABEL = 'other';

export interface MetricsOptions {
  /** Backend names from the config: their series are exported (as 0) from the start. */
  backendNames?: readonly string[];
  /** Also export prom-client's process_* and nodejs_* metrics. Default true. */
  defaultMetrics?: boolean;
}

/** Accepts label values while they are well-formed and few; else "other". */
class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(
    private readonly pattern: RegExp,
    private readonly max: number,
  ) {}

  value(raw: string): string {
    if (this.seen.has(raw)) return raw;
    if (typeof raw !== 'string' || !this.pattern.test(raw) || this.seen.size >= this.max) return OTHER_LABEL;
    this.seen.add(raw);
    return raw;
  }
}

export class Metrics implements ProxyObserver {
  readonly registry: Registry;

  private readonly clientConnections: Gauge;
  private readonly clientConnectionsTotal: Counter;
  private readonly clientConnectionsRefused: Counter<'reason'>;
  private readonly clientAuthFailures: Counter<'reason'>;
  private readonly commandStats = new CommandStats('command', QUERY_DURATION_BUCKETS);
  private readonly backendConnectErrors: Counter<'backend'>;

  private readonly commands = new BoundedLabel(COMMAND_RE, MAX_COMMAND_LABELS);
  private readonly backends = new BoundedLabel(BACKEND_RE, MAX_BACKEND_LABELS);
  private current = 0;
  /** The query cache's metrics (the CacheObserver handed to the cache). */
  readonly cache: CacheMetrics;
  /** Read/write split and monitor metrics (the MonitorObserver handed to the monitor). */
  readonly routing: RoutingMetrics;

  constructor(options: MetricsOptions = {}) {
    this.registry = new Registry();
    this.cache = new CacheMetrics(this.registry);
    this.routing = new RoutingMetrics(this.registry, options.backendNames ?? []);
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    this.clientConnections = new Gauge({
      name: 'wirecache_client_connections',
      help: 'Client connections currently open.',
      registers,
    });
    this.clientConnectionsTotal = new Counter({
      name: 'wirecache_client_connections_total',
      help: 'Client connections accepted since start.',
      registers,
    });
    this.clientConnectionsRefused = new Counter({
      name: 'wirecache_client_connections_refused_total',
      help: 'Client connections refused, by reason (max_connections, shutting_down).',
      labelNames: ['reason'],
      registers,
    });
    this.clientAuthFailures = new Counter({
      name: 'wirecache_client_auth_failures_total',
      help: 'Failed client logins, by reason (bad_credentials, backend_refused, backend_unavailable).',
      labelNames: ['reason'],
      registers,
    });
    this.commandStats.register(
      this.registry,
      { name: 'wirecache_queries_total', help: 'Client commands completed, by command (COM_QUERY, COM_STMT_EXECUTE, ...).' },
      {
        name: 'wirecache_query_duration_seconds',
        help: 'Time from receiving a client command to sending the end of its response, by command.',
      },
    );
    this.backendConnectErrors = new Counter({
      name: 'wirecache_backend_connect_errors_total',
      help: 'Failed connection or login attempts to a backend, by backend name.',
      labelNames: ['backend'],
      registers,
    });

    // Export the known label values as 0 so rate() and alerts work from the start.
    this.clientConnections.set(0);
    for (const reason of REFUSAL_REASONS) this.clientConnectionsRefused.inc({ reason }, 0);
    for (const reason of AUTH_FAILURE_REASONS) this.clientAuthFailures.inc({ reason }, 0);
    for (const name of options.backendNames ?? []) {
      this.backendConnectErrors.inc({ backend: this.backends.value(name) }, 0);
    }
  }

  /** Prometheus content type of metricsText(). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** All metrics in the Prometheus text exposition format. */
  async metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  /** wirecache_queries_total as a plain object: completed commands by command name. */
  queriesByCommand(): Record<string, number> {
    return this.commandStats.counts();
  }

  /** Client connections currently open, as counted by the hooks. */
  get openClientConnections(): number {
    return this.current;
  }

  // --- ProxyObserver ---------------------------------------------------------

  clientConnected(): void {
    this.current += 1;
    this.clientConnections.set(this.current);
    this.clientConnectionsTotal.inc();
  }

  clientDisconnected(): void {
    // Never below zero, even if a caller reports a disconnect twice.
    this.current = Math.max(0, this.current - 1);
    this.clientConnections.set(this.current);
  }

  clientRefused(reason: RefusalReason): void {
    this.clientConnectionsRefused.inc({ reason: REFUSAL_REASONS.includes(reason) ? reason : OTHER_LABEL });
  }

  authFailed(reason: AuthFailureReason): void {
    this.clientAuthFailures.inc({ reason: AUTH_FAILURE_REASONS.includes(reason) ? reason : OTHER_LABEL });
  }

  commandCompleted(command: string, durationSeconds: number): void {
    this.commandStats.observe(
      this.commands.value(command),
      Number.isFinite(durationSeconds) && durationSeconds > 0 ? durationSeconds : 0,
    );
  }

  backendConnectError(backend: string): void {
    this.backendConnectErrors.inc({ backend: this.backends.value(backend) });
  }

  statementRouted(destination: 'primary' | 'replica', server: string, reason: string): void {
    this.routing.statementRouted(destination, server, reason);
  }

  readRetried(server: string): void {
    this.routing.readRetried(server);
  }

  writeRefused(reason: 'writable_conflict'): void {
    this.routing.writeRefused(reason);
  }

  primaryMoveInterrupted(what: 'transaction' | 'session_state'): void {
    this.routing.primaryMoveInterrupted(what);
  }

  consistencyChecked(outcome: 'covered' | 'waited' | 'timeout'): void {
    this.routing.consistencyChecked(outcome);
  }
}
