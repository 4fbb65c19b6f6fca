/**
 * The binlog reader's Prometheus metrics: implements BinlogObserver
 * (src/replication/observer.ts). Label values are fixed sets (event kinds,
 * reader states).
 */
import { Gauge, type Registry } from 'prom-client';
import { BINLOG_EVENT_KINDS, BINLOG_READER_STATES, type BinlogEventKind, type BinlogObserver, type BinlogReaderState } from '../replication/observer.js';
import { CounterFamily } from './counter_family.js';

export class BinlogMetrics implements BinlogObserver {
  private readonly events: CounterFamily;
  private readonly invalidations: CounterFamily;
  private readonly reconnects: CounterFamily;
  private readonly writeWaits: CounterFamily;
  private readonly connectedGauge: Gauge;
  private readonly stateGauge: Gauge<'state'>;
  private readonly delayGauge: Gauge;
  private currentState: BinlogReaderState | null = null;

  constructor(registry: Registry) {
    const registers = [registry];
    this.events = new CounterFamily(registry, 'wirecache_binlog_events_total', 'Binlog events read from the primary, by kind (gtid, table_map, rows, query, xid, heartbeat, ...).', ['type']);
    this.invalidations = new CounterFamily(
      registry,
      'wirecache_binlog_invalidations_total',
      'Table generations bumped for transactions read from the binlog ("*" counts as one).',
      [],
    );
    this.reconnects = new CounterFamily(registry, 'wirecache_binlog_reconnects_total', 'Times the binlog reader connected again after losing its connection.', []);
    this.writeWaits = new CounterFamily(
      registry,
      'wirecache_binlog_write_waits_total',
      'Writes through the proxy whose tables it could not name (CALL, EXECUTE, compound statements), held until the binlog reader passed their GTID: passed, or timeout (everything was invalidated instead).',
      ['outcome'],
    );
    this.connectedGauge = new Gauge({ name: 'wirecache_binlog_connected', help: '1 while the binlog reader streams from the primary (catching up or up to date), else 0.', registers });
    this.stateGauge = new Gauge({ name: 'wirecache_binlog_state', help: 'The binlog reader state: 1 for the current one.', labelNames: ['state'], registers });
    this.delayGauge = new Gauge({
      name: 'wirecache_binlog_delay_seconds',
      help: 'Seconds between the commit of the last transaction read from the binlog (its event timestamp, 1 s resolution) and the reader applying it; 0 after a heartbeat (nothing left to read).',
      registers,
    });
  }

  /** The reader exists: export its series from the start. */
  enable(): void {
    for (const k of BINLOG_EVENT_KINDS) this.events.inc([k], 0);
    this.invalidations.inc([], 0);
    this.reconnects.inc([], 0);
    for (const o of ['passed', 'timeout']) this.writeWaits.inc([o], 0);
    this.connectedGauge.set(0);
    this.delayGauge.set(0);
    for (const s of BINLOG_READER_STATES) this.stateGauge.set({ state: s }, 0);
  }

  eventRead(kind: BinlogEventKind): void {
    this.events.inc([kind]);
  }

  invalidated(tables: number): void {
    this.invalidations.inc([], tables);
  }

  stateChanged(state: BinlogReaderState): void {
    if (this.currentState) this.stateGauge.set({ state: this.currentState }, 0);
    this.currentState = state;
    this.stateGauge.set({ state }, 1);
    this.connectedGauge.set(state === 'streaming' || state === 'catching_up' ? 1 : 0);
  }

  delay(seconds: number): void {
    this.delayGauge.set(seconds);
  }

  reconnected(): void {
    this.reconnects.inc([]);
  }

  writeAwaited(outcome: 'passed' | 'timeout'): void {
    this.writeWaits.inc([outcome]);
  }

  /** Current value of a counter, for tests and the admin API. */
  value(which: 'events' | 'invalidations' | 'reconnects' | 'write_waits', kind?: BinlogEventKind | 'passed' | 'timeout'): number {
    if (which === 'events') return this.events.get([kind ?? 'other']);
    if (which === 'write_waits') return this.writeWaits.get([kind ?? 'passed']);
    return (which === 'invalidations' ? this.invalidations : this.reconnects).get([]);
  }
}
