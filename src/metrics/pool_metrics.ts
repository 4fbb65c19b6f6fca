/**
 * The login pool's Prometheus metrics: implements LoginPoolObserver
 * (src/backend/login_pool.ts). The server label takes the configured backend names.
 */
import { Gauge, type Registry } from 'prom-client';
import type { LoginPoolObserver } from '../backend/login_pool.js';
import { CounterFamily } from './counter_family.js';

export class PoolMetrics implements LoginPoolObserver {
  private readonly saved: CounterFamily;
  private readonly releases: CounterFamily;
  private readonly resets: CounterFamily;
  private readonly waits: CounterFamily;
  private readonly multiplexed: CounterFamily;
  private readonly multiplexingKept: CounterFamily;
  private usageReader: ((server: string) => { open: number; idle: number; waiting: number }) | null = null;

  constructor(registry: Registry, backendNames: readonly string[]) {
    this.saved = new CounterFamily(
      registry,
      'wirecache_backend_logins_saved_total',
      'Client sessions that got a kept backend connection instead of a backend login, by server.',
      ['server'],
    );
    this.releases = new CounterFamily(
      registry,
      'wirecache_backend_pool_releases_total',
      'Backend connections a client left behind, by server and outcome (kept: reset and pooled; closed: pool full, reset failed, or its database could not be restored).',
      ['server', 'outcome'],
    );
    this.resets = new CounterFamily(
      registry,
      'wirecache_backend_pool_resets_total',
      'Backend connections made fit for another client of their login, by server and outcome (reset: COM_RESET_CONNECTION and the login statements ran; skipped: only plain reads ran since its login or last reset, so it went over as it was; on_demand: the reset a first statement asking about the previous client\'s diagnostics needed).',
      ['server', 'outcome'],
    );
    this.waits = new CounterFamily(
      registry,
      'wirecache_backend_pool_waits_total',
      'New backend connections that waited because their server was at pool.max_connections, by server and outcome (served: got one; timeout: the client got ERR 1040).',
      ['server', 'outcome'],
    );
    this.multiplexed = new CounterFamily(
      registry,
      'wirecache_multiplexing_releases_total',
      'Client commands after which the session handed its idle backend connections back to the pool (multiplexing).',
      [],
    );
    this.multiplexingKept = new CounterFamily(
      registry,
      'wirecache_multiplexing_disabled_total',
      'Client commands after which the session kept its backend connections, by reason (transaction, temporary_table, get_lock, lock_tables, user_variable, last_insert_id, session_function, diagnostics, ...).',
      ['reason'],
    );
    this.multiplexed.inc([], 0);
    for (const server of backendNames) {
      this.saved.inc([server], 0);
      for (const outcome of ['served', 'timeout']) this.waits.inc([server, outcome], 0);
      for (const outcome of ['kept', 'closed']) this.releases.inc([server, outcome], 0);
      for (const outcome of ['reset', 'skipped', 'on_demand']) this.resets.inc([server, outcome], 0);
    }
    const self = this;
    new Gauge({
      name: 'wirecache_backend_pool_idle',
      help: 'Backend connections kept idle in the login pool, by server.',
      labelNames: ['server'],
      registers: [registry],
      collect() {
        this.reset();
        for (const server of backendNames) this.set({ server }, self.usageReader?.(server).idle ?? 0);
      },
    });
    new Gauge({
      name: 'wirecache_backend_pool_connections',
      help: "Client sessions' backend connections open per server (in use and idle), as pool.max_connections counts them.",
      labelNames: ['server'],
      registers: [registry],
      collect() {
        this.reset();
        for (const server of backendNames) this.set({ server }, self.usageReader?.(server).open ?? 0);
      },
    });
    new Gauge({
      name: 'wirecache_backend_pool_in_use',
      help: 'Backend connections of the login pool serving a client session now, by server.',
      labelNames: ['server'],
      registers: [registry],
      collect() {
        this.reset();
        for (const server of backendNames) {
          const usage = self.usageReader?.(server);
          this.set({ server }, usage ? usage.open - usage.idle : 0);
        }
      },
    });
    new Gauge({
      name: 'wirecache_backend_pool_waiting',
      help: 'New backend connections waiting now for a server at pool.max_connections.',
      labelNames: ['server'],
      registers: [registry],
      collect() {
        this.reset();
        for (const server of backendNames) this.set({ server }, self.usageReader?.(server).waiting ?? 0);
      },
    });
  }

  watch(usage: (server: string) => { open: number; idle: number; waiting: number }): void {
    this.usageReader = usage;
  }

  loginSaved(server: string): void {
    this.saved.inc([server]);
  }

  released(server: string, outcome: 'kept' | 'closed'): void {
    this.releases.inc([server, outcome]);
  }

  resetOutcome(server: string, outcome: 'reset' | 'skipped' | 'on_demand'): void {
    this.resets.inc([server, outcome]);
  }

  multiplexing(outcome: 'released' | 'kept', reason: string | null): void {
    if (outcome === 'released') this.multiplexed.inc([]);
    else this.multiplexingKept.inc([reason ?? 'unknown']);
  }

  waited(server: string, outcome: 'served' | 'timeout'): void {
    this.waits.inc([server, outcome]);
  }
}
