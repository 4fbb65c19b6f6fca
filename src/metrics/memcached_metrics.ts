/**
 * The memcached API's Prometheus metrics: implements MemcachedObserver
 * (src/memcached_api/memcached_server.ts). Labels are bounded: commands and
 * outcomes are fixed sets, containers come from the config.
 */
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { MemcachedObserver } from '../memcached_api/memcached_server.js';
import { CounterFamily } from './counter_family.js';
import { LATENCY_BUCKETS } from './metrics_buckets.js';

export class MemcachedMetrics implements MemcachedObserver {
  private readonly commands: CounterFamily;
  private readonly latency: Histogram<'command'>;
  private readonly latencyByCommand = new Map<string, { observe(value: number): void }>();
  private readonly connections: Gauge;
  private cacheReader: (() => { bytes: number; items: number }) | null = null;

  constructor(registry: Registry) {
    const registers = [registry];
    this.commands = new CounterFamily(
      registry,
      'wirecache_memcached_commands_total',
      'memcached API commands by command (get, set, add, replace, append, prepend, cas, delete, incr, decr, touch, gat), container and outcome (hit, miss, partial, stored, not_stored, exists, not_found, deleted, touched, ok, non_numeric, error).',
      ['command', 'container', 'outcome'],
    );
    this.latency = new Histogram({
      name: 'wirecache_memcached_command_seconds',
      help: 'Time from a memcached API command read to its answer ready, by command.',
      labelNames: ['command'],
      buckets: [...LATENCY_BUCKETS],
      registers,
    });
    this.connections = new Gauge({ name: 'wirecache_memcached_connections', help: 'Open memcached API client connections.', registers });
    const self = this;
    new Gauge({
      name: 'wirecache_memcached_cache_bytes',
      help: 'Bytes held by the memcached API cache tier.',
      registers,
      collect() {
        this.set(self.cacheReader?.().bytes ?? 0);
      },
    });
    new Gauge({
      name: 'wirecache_memcached_cache_items',
      help: 'Items (and known misses) held by the memcached API cache tier.',
      registers,
      collect() {
        this.set(self.cacheReader?.().items ?? 0);
      },
    });
  }

  watchCache(read: () => { bytes: number; items: number }): void {
    this.cacheReader = read;
  }

  command(command: string, container: string, outcome: string, seconds: number): void {
    this.commands.inc([command, container, outcome]);
    // One child per command, bound once: observe() with a label object hashes it every time.
    let child = this.latencyByCommand.get(command);
    if (!child) {
      child = this.latency.labels(command);
      this.latencyByCommand.set(command, child);
    }
    child.observe(seconds);
  }

  connection(delta: 1 | -1): void {
    this.connections.inc(delta);
  }
}
