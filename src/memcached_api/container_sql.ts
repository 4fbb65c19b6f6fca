/**
 * The SQL of every memcached operation on a container's table.
 *
 * Keys and values go into the statement as hex literals, so any byte is safe
 * whatever the connection's sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES) and
 * character set. Identifiers come from the config, validated as plain names,
 * and are quoted with backticks. Times are unix seconds computed by the proxy,
 * so a statement is deterministic for statement-based replication.
 */
import type { ContainerConfig } from '../config/types.js';

function q(name: string): string {
  return `\`${name}\``;
}

export function hex(bytes: Buffer): string {
  return bytes.length === 0 ? "''" : `X'${bytes.toString('hex')}'`;
}

/** What a write puts into a row. */
export interface RowValues {
  /** One Buffer per value column. */
  values: Buffer[];
  flags: number;
  cas: bigint;
  /** Unix seconds (0: never). */
  expiry: number;
}

/** The statements of one container (its names quoted once). */
export class ContainerSql {
  readonly table: string;
  private readonly key: string;
  private readonly columns: string[];
  /** Columns a SELECT returns: key, values..., flags, cas, expiry (constants where the container has none). */
  readonly selectList: string;

  /**
   * @param exactKeys the key column compares byte for byte (VARBINARY), so a row's key bytes are the key asked
   *   for; false for a column with a collation (or not yet checked): lookups then go key by key.
   */
  constructor(
    readonly container: ContainerConfig,
    readonly exactKeys = false,
  ) {
    this.table = `${q(container.schema)}.${q(container.table)}`;
    this.key = q(container.keyColumn);
    this.columns = container.valueColumns.map(q);
    const opt = (c: string | null) => (c === null ? '0' : q(c));
    this.selectList = [this.key, ...this.columns, opt(container.flagsColumn), opt(container.casColumn), opt(container.expiryColumn)].join(', ');
  }

  /** The row is there and not expired at `now`. */
  private live(now: number): string {
    const e = this.container.expiryColumn;
    return e === null ? 'TRUE' : `(${q(e)} = 0 OR ${q(e)} > ${now})`;
  }

  select(keys: readonly Buffer[], forUpdate = false): string {
    const where = keys.length === 1 ? `${this.key} = ${hex(keys[0])}` : `${this.key} IN (${keys.map(hex).join(', ')})`;
    return `SELECT ${this.selectList} FROM ${this.table} WHERE ${where}${forUpdate ? ' FOR UPDATE' : ''}`;
  }

  /** Columns and values of a whole row, in the same order. */
  private assignments(key: Buffer, row: RowValues): [string[], string[]] {
    const c = this.container;
    const names = [this.key, ...this.columns];
    const values = [hex(key), ...row.values.map(hex)];
    if (c.flagsColumn) (names.push(q(c.flagsColumn)), values.push(String(row.flags)));
    if (c.casColumn) (names.push(q(c.casColumn)), values.push(String(row.cas)));
    // The expiry column comes last: add's conditions below read the old expiry.
    if (c.expiryColumn) (names.push(q(c.expiryColumn)), values.push(String(row.expiry)));
    return [names, values];
  }

  /** set: insert or overwrite. */
  set(key: Buffer, row: RowValues): string {
    const [names, values] = this.assignments(key, row);
    const updates = names.slice(1).map((n) => `${n} = VALUES(${n})`);
    return `INSERT INTO ${this.table} (${names.join(', ')}) VALUES (${values.join(', ')}) ON DUPLICATE KEY UPDATE ${updates.join(', ')}`;
  }

  /**
   * add: insert, or overwrite a row that has expired. A live row is left as
   * it is, so the statement changes nothing and reports 0 rows affected.
   */
  add(key: Buffer, row: RowValues, now: number): string {
    const [names, values] = this.assignments(key, row);
    const live = this.live(now);
    const updates = names.slice(1).map((n) => `${n} = IF(${live}, ${n}, VALUES(${n}))`);
    return `INSERT INTO ${this.table} (${names.join(', ')}) VALUES (${values.join(', ')}) ON DUPLICATE KEY UPDATE ${updates.join(', ')}`;
  }

  /** replace, and cas when `expectedCas` is given: overwrite a live row. */
  replace(key: Buffer, row: RowValues, now: number, expectedCas: bigint | null): string {
    const [names, values] = this.assignments(key, row);
    const sets = names.slice(1).map((n, i) => `${n} = ${values[i + 1]}`);
    return `UPDATE ${this.table} SET ${sets.join(', ')} WHERE ${this.key} = ${hex(key)} AND ${this.live(now)}${this.casCondition(expectedCas)}`;
  }

  /** append/prepend: the data joins the last (append) or first (prepend) value column of a live row. */
  concat(key: Buffer, data: Buffer, append: boolean, cas: bigint, now: number, expectedCas: bigint | null): string {
    const column = append ? this.columns[this.columns.length - 1] : this.columns[0];
    const joined = append ? `CONCAT(COALESCE(${column}, ''), ${hex(data)})` : `CONCAT(${hex(data)}, COALESCE(${column}, ''))`;
    const casSet = this.container.casColumn ? `, ${q(this.container.casColumn)} = ${cas}` : '';
    return `UPDATE ${this.table} SET ${column} = ${joined}${casSet} WHERE ${this.key} = ${hex(key)} AND ${this.live(now)}${this.casCondition(expectedCas)}`;
  }

  delete(key: Buffer, now: number, expectedCas: bigint | null): string {
    return `DELETE FROM ${this.table} WHERE ${this.key} = ${hex(key)} AND ${this.live(now)}${this.casCondition(expectedCas)}`;
  }

  /** touch: a new expiry for a live row. */
  touch(key: Buffer, expiry: number, now: number): string {
    const e = this.container.expiryColumn;
    const set = e === null ? `${this.key} = ${this.key}` : `${q(e)} = ${expiry}`;
    return `UPDATE ${this.table} SET ${set} WHERE ${this.key} = ${hex(key)} AND ${this.live(now)}`;
  }

  /** Whether a live row exists (after an update that changed nothing: was it there?). */
  exists(key: Buffer, now: number): string {
    return `SELECT ${this.container.casColumn === null ? '0' : q(this.container.casColumn)} FROM ${this.table} WHERE ${this.key} = ${hex(key)} AND ${this.live(now)}`;
  }

  /** Rows expired before `now`, at most `limit` of them (the background sweep). */
  deleteExpired(now: number, limit: number): string | null {
    const e = this.container.expiryColumn;
    if (e === null) return null;
    return `DELETE FROM ${this.table} WHERE ${q(e)} <> 0 AND ${q(e)} <= ${now} LIMIT ${limit}`;
  }

  flush(): string {
    return `DELETE FROM ${this.table}`;
  }

  private casCondition(expected: bigint | null): string {
    if (expected === null) return '';
    const c = this.container.casColumn;
    // Without a cas column no cas can match.
    return c === null ? ' AND FALSE' : ` AND ${q(c)} = ${expected}`;
  }
}
