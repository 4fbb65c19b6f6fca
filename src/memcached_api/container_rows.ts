/**
 * Follows the binlog for the container tables: every row a write changed, by
 * anyone, invalidates its key in the cache tier; a change the rows do not
 * show (a statement, a table of another shape, a key the images cannot name)
 * invalidates the whole container.
 */
import type { BinlogFormat } from '../replication/binlog_events.js';
import type { RowWatcher } from '../replication/observer.js';
import { readTableColumns, rowsColumnValues } from '../replication/row_images.js';
import type { LoadedContainer } from './containers.js';
import type { ItemCache } from './item_cache.js';

export class ContainerRowWatcher implements RowWatcher {
  private indexedFrom: ReadonlyMap<string, LoadedContainer> | null = null;
  private byTable = new Map<string, LoadedContainer[]>();

  constructor(
    private readonly containers: () => ReadonlyMap<string, LoadedContainer>,
    private readonly cache: ItemCache,
  ) {}

  watches(table: string): boolean {
    return this.tables().has(table);
  }

  rows(table: string, tableMap: Buffer, rows: Buffer, format: BinlogFormat): void {
    for (const c of this.tables().get(table) ?? []) {
      const name = c.sql.container.name;
      try {
        const columns = readTableColumns(tableMap, format);
        const keys =
          c.keyIndex === null || columns.types.length !== c.columnCount ? null : rowsColumnValues(rows, format, columns, c.keyIndex);
        if (keys === null) this.cache.invalidateContainer(name);
        else for (const key of keys) this.cache.invalidateKey(name, key);
      } catch {
        this.cache.invalidateContainer(name);
      }
    }
  }

  changed(tables: readonly string[] | null): void {
    if (tables === null) {
      this.cache.invalidateAll();
      return;
    }
    for (const t of tables) for (const c of this.tables().get(t.toLowerCase()) ?? []) this.cache.invalidateContainer(c.sql.container.name);
  }

  /** Containers by "schema.table" (lower case), rebuilt when the containers are loaded again. */
  private tables(): Map<string, LoadedContainer[]> {
    const current = this.containers();
    if (current !== this.indexedFrom) {
      this.indexedFrom = current;
      this.byTable = new Map();
      for (const c of current.values()) {
        const key = `${c.sql.container.schema}.${c.sql.container.table}`.toLowerCase();
        this.byTable.set(key, [...(this.byTable.get(key) ?? []), c]);
      }
    }
    return this.byTable;
  }
}
