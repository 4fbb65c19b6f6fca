/**
 * What the binlog reader reports, without knowing Prometheus: the metrics
 * layer implements it (src/metrics/binlog_metrics.ts).
 */
import type { BinlogEvent, BinlogFormat } from './binlog_events.js';

/**
 * The reader's state.
 * - `off`: not running (auto found no binary log or no REPLICATION SLAVE grant).
 * - `connecting`: logging in and asking for the stream.
 * - `catching_up`: streaming, not yet at the primary's position of when it connected.
 * - `streaming`: streaming and up to date.
 * - `disconnected`: lost, reconnecting with backoff.
 * - `stopped`: stopped by the proxy (shutdown, or a test).
 */
export type BinlogReaderState = 'off' | 'connecting' | 'catching_up' | 'streaming' | 'disconnected' | 'stopped';

export const BINLOG_READER_STATES: readonly BinlogReaderState[] = ['off', 'connecting', 'catching_up', 'streaming', 'disconnected', 'stopped'];

export type BinlogEventKind = BinlogEvent['kind'];

export const BINLOG_EVENT_KINDS: readonly BinlogEventKind[] = [
  'format',
  'rotate',
  'gtid',
  'gtid_list',
  'mysql_gtid',
  'query',
  'query_compressed',
  'table_map',
  'rows',
  'xid',
  'heartbeat',
  'incident',
  'other',
];

export interface BinlogObserver {
  eventRead(kind: BinlogEventKind): void;
  /** A transaction (or statement) read from the binlog bumped `tables` generation names ("*" for everything). */
  invalidated(tables: number): void;
  stateChanged(state: BinlogReaderState): void;
  /** Seconds between a transaction's commit on the primary (its event timestamp) and the reader applying it; 0 on a heartbeat. */
  delay(seconds: number): void;
  /** The connection was lost and opened again. */
  reconnected(): void;
}

export const nullBinlogObserver: BinlogObserver = {
  eventRead() {},
  invalidated() {},
  stateChanged() {},
  delay() {},
  reconnected() {},
};

/**
 * Follows the rows of some tables (the memcached API's containers): gets each
 * rows event of a table it watches with that table's TABLE_MAP, and hears of
 * changes that show no rows (statements, unknown writes, a fresh start).
 */
export interface RowWatcher {
  /** `table` is "schema.table" in lower case. */
  watches(table: string): boolean;
  rows(table: string, tableMap: Buffer, rows: Buffer, format: BinlogFormat): void;
  /** These tables (null: any table) changed in ways the rows do not show. */
  changed(tables: readonly string[] | null): void;
}
