/**
 * The server's general log as the judge of "did this statement reach the
 * database": tests put a unique marker comment in their SQL (comments do not
 * change cache keys) and count the statements the server ran with it.
 */
import type mysql from 'mysql2/promise';

export async function enableGeneralLog(root: mysql.Connection): Promise<void> {
  await root.query("SET GLOBAL log_output = 'TABLE'");
  await root.query('SET GLOBAL general_log = 1');
}

export async function disableGeneralLog(root: mysql.Connection): Promise<void> {
  await root.query('SET GLOBAL general_log = 0');
  await root.query("SET GLOBAL log_output = 'FILE'");
}

/** Statements the server ran (text or prepared executes) whose text contains `marker`. */
export async function serverRan(root: mysql.Connection, marker: string): Promise<number> {
  const [rows] = await root.query(
    "SELECT COUNT(*) AS n FROM mysql.general_log WHERE command_type IN ('Query', 'Execute') AND CONVERT(argument USING utf8mb4) LIKE ? AND CONVERT(argument USING utf8mb4) NOT LIKE '%general_log%'",
    [`%${marker}%`],
  );
  return Number((rows as { n: number }[])[0].n);
}

/** A maker of unique marker comments, e.g. `/*m1234_7*\/`. */
export function markers(prefix: string): () => string {
  let seq = 0;
  return () => `/*${prefix}${process.pid}_${++seq}*/`;
}
