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
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { BoundedLabel, OTHER_LABEL } from './bounded_label.js';
import { BinlogMetrics } from './binlog_metrics.js';
import { CacheMetrics } from './cache_metrics.js';
import { CommandStats } from './command_stats.js';
import type { ProxyObserver, RefusalReason } from '../session/observer.js';
import { RoutingMetrics } from './routing_metrics.js';
import { LATENCY_BUCKETS as QUERY_DURATION_BUCKETS } from './metrics_buckets.js';
import { MemcachedMetrics } from './memcached_metrics.js';
import { PoolMetrics } from './pool_metrics.js';


const REFUSAL_REASONS: readonly RefusalReason[] = ['max_connections', 'shutting_down', 'login_throttled', 'max_user_connections'];
const AUTH_FAILURE_REASONS = ['bad_credentials', 'backend_refused', 'backend_unavailable'] as const;
type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

const COMMAND_RE = /^COM_[A-Z0-9_]{1,40}$/;
const MAX_COMMAND_LABELS = 64;
const BACKEND_RE = /^[a-zA-Z0-9_-]{1,100}$/;
const MAX_BACKEND_LABELS = 256;

export interface MetricsOptions {
  /** Backend names from the config: their series are exported (as 0) from the start. */
  backendNames?: readonly string[];
  /** Also export prom-client's process_* and nodejs_* metrics. Default true. */
  defaultMetrics?: boolean;
}

export class Metrics implements ProxyObserver {
  readonly registry: Registry;

  private readonly clientConnections: Gauge;
  private readonly clientConnectionsTotal: Counter;
  private readonly clientConnectionsRefused: Counter<'reason'>;
  private readonly clientAuthFailures: Counter<'reason'>;
  private readonly commandStats = new CommandStats('command', QUERY_DURATION_BUCKETS);
  /** Statements by where their answer came from: cache, primary, replica. */
  private readonly routeStats = new CommandStats('route', QUERY_DURATION_BUCKETS);
  private readonly backendConnectErrors: Counter<'backend'>;
  private readonly configReloads: Counter<'result'>;
  private readonly loginBlocks: Counter;
  private readonly accountBlocks: Counter;
  private readonly clientAuthentications: Counter<'method'>;

  private readonly commands = new BoundedLabel(MAX_COMMAND_LABELS, COMMAND_RE);
  private readonly backends = new BoundedLabel(MAX_BACKEND_LABELS, BACKEND_RE);
  private current = 0;
  /** The query cache's metrics (the CacheObserver handed to the cache). */
  readonly cache: CacheMetrics;
  /** Read/write split and monitor metrics (the MonitorObserver handed to the monitor). */
  readonly routing: RoutingMetrics;
  /** The binlog reader's metrics (the BinlogObserver handed to the reader). */
  readonly binlog: BinlogMetrics;
  /** The memcached API's metrics (the MemcachedObserver handed to its server). */
  readonly memcached: MemcachedMetrics;
  /** The login pool's metrics (the LoginPoolObserver handed to the pool). */
  readonly pool: PoolMetrics;

  constructor(options: MetricsOptions = {}) {
    this.registry = new Registry();
    this.cache = new CacheMetrics(this.registry);
    this.routing = new RoutingMetrics(this.registry, options.backendNames ?? []);
    this.binlog = new BinlogMetrics(this.registry);
    this.memcached = new MemcachedMetrics(this.registry);
    this.pool = new PoolMetrics(this.registry, options.backendNames ?? []);
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
      help: 'Client connections refused, by reason (max_connections, shutting_down, login_throttled: the address is blocked after failed logins, max_user_connections).',
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
    this.routeStats.register(
      this.registry,
      { name: 'wirecache_statements_total', help: 'Statements (COM_QUERY, COM_STMT_EXECUTE) completed, by where the answer came from (route: cache, primary, replica).' },
      {
        name: 'wirecache_statement_duration_seconds',
        help: 'Time from receiving a statement to sending the end of its answer, by route (cache, primary, replica).',
      },
    );
    this.backendConnectErrors = new Counter({
      name: 'wirecache_backend_connect_errors_total',
      help: 'Failed connection or login attempts to a backend, by backend name.',
      labelNames: ['backend'],
      registers,
    });

    this.configReloads = new Counter({
      name: 'wirecache_config_reloads_total',
      help: 'Config reloads (SIGHUP, POST /reload) by result: success (applied) or failure (refused; the running config stays).',
      labelNames: ['result'],
      registers,
    });
    this.loginBlocks = new Counter({
      name: 'wirecache_login_blocks_total',
      help: 'Client addresses blocked after more than limits.login_failures_per_minute failed logins in a minute.',
      registers,
    });
    this.loginBlocks.inc(0);
    this.accountBlocks = new Counter({
      name: 'wirecache_account_blocks_total',
      help: 'Accounts blocked after more than limits.login_failures_per_minute failed logins to them in a minute, from any address.',
      registers,
    });
    this.accountBlocks.inc(0);
    this.clientAuthentications = new Counter({
      name: 'wirecache_client_authentications_total',
      help: 'Client passwords proven to the proxy, by method: native (mysql_native_password), sha2_fast (caching_sha2_password from a known digest), sha2_full_tls (password sent inside TLS), sha2_full_rsa (password encrypted with the RSA key).',
      labelNames: ['method'],
      registers,
    });
    for (const method of ['native', 'sha2_fast', 'sha2_full_tls', 'sha2_full_rsa']) this.clientAuthentications.inc({ method }, 0);
    this.configReloads.inc({ result: 'success' }, 0);
    this.configReloads.inc({ result: 'failure' }, 0);

    // Export the known label values as 0 so rate() and alerts work from the start.
    this.clientConnections.set(0);
    for (const reason of REFUSAL_REASONS) this.clientConnectionsRefused.inc({ reason }, 0);
    for (const reason of AUTH_FAILURE_REASONS) this.clientAuthFailures.inc({ reason }, 0);
    for (const name of options.backendNames ?? []) {
      this.backendConnectErrors.inc({ backend: this.backends.value(name) }, 0);
    }
  }

  /**
   * Proxy-wide figures read at scrape time: client bytes and backend
   * connections by server (nothing is counted per packet for them).
   */
  watchProxy(source: {
    clientTraffic(): { received: number; sent: number };
    backendConnections(): Map<string, { open: number; idle: number }>;
    statementMemo(): { hits: number; misses: number; entries: number; bytes: number };
  }): void {
    const registers = [this.registry];
    new Counter({
      name: 'wirecache_classifier_cache_lookups_total',
      help: 'Statement texts looked up among the remembered classifications (classifier_cache_bytes), by outcome: hit (not classified again) or miss (a SELECT or SHOW text not found: classified, and remembered when it fits).',
      labelNames: ['outcome'],
      registers,
      collect() {
        const memo = source.statementMemo();
        this.reset();
        this.inc({ outcome: 'hit' }, memo.hits);
        this.inc({ outcome: 'miss' }, memo.misses);
      },
    });
    new Gauge({
      name: 'wirecache_classifier_cache_bytes',
      help: 'Bytes (estimated) of remembered statement classifications now.',
      registers,
      collect() {
        this.set(source.statementMemo().bytes);
      },
    });
    new Counter({
      name: 'wirecache_client_received_bytes_total',
      help: 'Bytes received from clients (MySQL protocol, headers included).',
      registers,
      collect() {
        this.reset();
        this.inc(source.clientTraffic().received);
      },
    });
    new Counter({
      name: 'wirecache_client_sent_bytes_total',
      help: 'Bytes sent to clients (MySQL protocol, headers included).',
      registers,
      collect() {
        this.reset();
        this.inc(source.clientTraffic().sent);
      },
    });
    new Gauge({
      name: 'wirecache_backend_connections',
      help: 'Backend connections open now, by server and state (open: all of them; idle: running no command).',
      labelNames: ['server', 'state'],
      registers,
      collect() {
        this.reset();
        for (const [server, counts] of source.backendConnections()) {
          this.set({ server, state: 'open' }, counts.open);
          this.set({ server, state: 'idle' }, counts.idle);
        }
      },
    });
  }

  /** A config reload was applied (success) or refused (failure). */
  configReloaded(result: 'success' | 'failure'): void {
    this.configReloads.inc({ result });
  }

  /** Prometheus content type of metricsText(). */
  get contentType(): string {
    return this.registry.contentType;
  }

  private workerMetrics: (() => Promise<MetricObjectWithValues<MetricValue<string>>[][]>) | null = null;
  private workerRestarts: Counter | null = null;

  /**
   * With worker threads: /metrics is this registry summed with each worker's
   * (prom-client's AggregatorRegistry; every series is a sum: the workers
   * report no process-wide figures, and the main thread no session figures).
   */
  sumWorkers(count: number, source: () => Promise<MetricObjectWithValues<MetricValue<string>>[][]>, sessionsOf: (worker: number) => number): void {
    this.workerMetrics = source;
    new Gauge({ name: 'wirecache_workers', help: 'Event loops serving client connections (worker threads).', registers: [this.registry] }).set(count);
    // Per worker, where it helps: how evenly the kernel spreads the connections over the threads.
    new Gauge({
      name: 'wirecache_worker_client_connections',
      help: 'Client connections open now in each worker thread.',
      labelNames: ['worker'],
      registers: [this.registry],
      collect() {
        for (let i = 0; i < count; i++) this.set({ worker: String(i) }, sessionsOf(i));
      },
    });
    this.workerRestarts = new Counter({
      name: 'wirecache_worker_restarts_total',
      help: 'Worker threads that ended unexpectedly and were started again (their client sessions were lost).',
      registers: [this.registry],
    });
  }

  /** A worker thread ended unexpectedly and a new one was started. */
  workerRestarted(): void {
    this.workerRestarts?.inc();
  }

  /** All metrics in the Prometheus text exposition format. */
  async metricsText(): Promise<string> {
    if (!this.workerMetrics) return this.registry.metrics();
    const parts = [await this.registry.getMetricsAsJSON(), ...(await this.workerMetrics())];
    return AggregatorRegistry.aggregate(parts).metrics();
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

  clientAuthenticated(method: 'native' | 'sha2_fast' | 'sha2_full_tls' | 'sha2_full_rsa'): void {
    this.clientAuthentications.inc({ method });
  }

  loginBlocked(): void {
    this.loginBlocks.inc();
  }

  accountBlocked(): void {
    this.accountBlocks.inc();
  }

  backendConnectError(backend: string): void {
    this.backendConnectErrors.inc({ backend: this.backends.value(backend) });
  }

  statementCompleted(route: 'cache' | 'primary' | 'replica', durationSeconds: number): void {
    this.routeStats.observe(route, Number.isFinite(durationSeconds) && durationSeconds > 0 ? durationSeconds : 0);
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

  writeAwaitedInBinlog(outcome: 'passed' | 'timeout'): void {
    this.binlog.writeAwaited(outcome);
  }

  multiplexing(outcome: 'released' | 'kept', reason: string | null): void {
    this.pool.multiplexing(outcome, reason);
  }
}
