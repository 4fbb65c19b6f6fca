/**
 * The containers the memcached API serves: those of the config, and those of
 * an InnoDB memcached plugin's `innodb_memcache.containers` table for users
 * migrating from the plugin. Each is checked against information_schema at
 * start (its columns must exist); the key column's position is kept so that
 * the binlog's row images can name the keys a write changed.
 */
import type { BackendConnection } from '../backend/backend_connection.js';
import type { ContainerConfig } from '../config/types.js';
import { ContainerSql, hex } from './container_sql.js';

export interface LoadedContainer {
  sql: ContainerSql;
  /** 0-based position of the key column (for binlog row images); null when unknown or not a VARBINARY column. */
  keyIndex: number | null;
  /** Columns the table has (a row image of another width means the table changed since). */
  columnCount: number | null;
}

const PLAIN_NAME = /^[A-Za-z0-9_$]{1,64}$/;

/** Reads a plugin containers table: one container per row. */
export async function readPluginContainers(conn: BackendConnection, table: string): Promise<ContainerConfig[]> {
  const [schema, name] = table.split('.');
  const [result] = await conn.queries([
    `SELECT name, db_schema, db_table, key_columns, value_columns, flags, cas_column, expire_time_column FROM \`${schema}\`.\`${name}\``,
  ]);
  if (result.error) throw new Error(`cannot read ${table}: ${result.error.message}`);
  return result.rows.map((r, i) => {
    const columns = (r[4] ?? '').split(/[,;|\s]+/).filter((c) => c !== '');
    const optional = (v: string | null) => (v === null || v === '' || v === '0' ? null : v);
    const container: ContainerConfig = {
      name: r[0] ?? `row${i + 1}`,
      schema: r[1] ?? '',
      table: r[2] ?? '',
      keyColumn: r[3] ?? '',
      valueColumns: columns,
      separator: '|',
      flagsColumn: optional(r[5]),
      casColumn: optional(r[6]),
      expiryColumn: optional(r[7]),
    };
    const names = [container.schema, container.table, container.keyColumn, ...columns, container.flagsColumn, container.casColumn, container.expiryColumn];
    if (columns.length === 0 || names.some((n) => n !== null && !PLAIN_NAME.test(n))) {
      throw new Error(`${table}: row "${container.name}" names a column or table that is not a plain identifier`);
    }
    return container;
  });
}

/** Checks that every column a container names exists, and finds the key column's position. */
export async function checkContainer(conn: BackendConnection, container: ContainerConfig): Promise<LoadedContainer> {
  const [result] = await conn.queries([
    `SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ${hex(Buffer.from(container.schema))} AND TABLE_NAME = ${hex(Buffer.from(container.table))} ORDER BY ORDINAL_POSITION`,
  ]);
  if (result.error) throw new Error(`container "${container.name}": cannot read its columns: ${result.error.message}`);
  const columns = result.rows.map((r) => (r[0] ?? '').toLowerCase());
  if (columns.length === 0) throw new Error(`container "${container.name}": table ${container.schema}.${container.table} does not exist (or the account may not see it)`);
  const wanted = [container.keyColumn, ...container.valueColumns, container.flagsColumn, container.casColumn, container.expiryColumn];
  for (const c of wanted) {
    if (c !== null && !columns.includes(c.toLowerCase())) {
      throw new Error(`container "${container.name}": table ${container.schema}.${container.table} has no column ${c}`);
    }
  }
  const keyIndex = columns.indexOf(container.keyColumn.toLowerCase());
  // Only a VARBINARY key compares byte for byte: a collation (case, trailing spaces) or a number ("042" = 42) would let the
  // binlog name a row by other bytes than a client asked with, so other keys are invalidated per container.
  const exact = (result.rows[keyIndex][1] ?? '').toLowerCase() === 'varbinary';
  return { sql: new ContainerSql(container, exact), keyIndex: exact ? keyIndex : null, columnCount: columns.length };
}
