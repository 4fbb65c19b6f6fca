/**
 * MariaDB GTID helpers. A MariaDB GTID is `domain-server-seq` (three unsigned
 * integers); a position such as @@gtid_current_pos is a comma separated list
 * with at most one GTID per replication domain: `0-1-42,1-3-7`.
 */

export interface GtidEntry {
  /** server_id of the server that wrote the event (informative: ordering is by domain and seq only). */
  server: number;
  seq: bigint;
}

const GTID_RE = /^(\d{1,10})-(\d{1,10})-(\d{1,20})$/;
const UINT32_MAX = 0xffff_ffff;
const UINT64_MAX = (1n << 64n) - 1n;

/**
 * Parses a MariaDB GTID list (`0-1-42,1-3-7`; whitespace around entries is
 * allowed, the empty string is the empty list) into domain → {server, seq}.
 * If a domain appears twice, the entry with the higher seq wins.
 * Throws on anything that is not a MariaDB GTID list (e.g. a MySQL UUID set).
 */
export function parseGtidList(s: string): Map<number, GtidEntry> {
  const out = new Map<number, GtidEntry>();
  const text = s.trim();
  if (text === '') return out;
  for (const raw of text.split(',')) {
    const part = raw.trim();
    const m = GTID_RE.exec(part);
    if (m === null) throw new Error(`invalid MariaDB GTID ${JSON.stringify(part)} in ${JSON.stringify(s)}`);
    const domain = Number(m[1]);
    const server = Number(m[2]);
    const seq = BigInt(m[3]);
    if (domain > UINT32_MAX || server > UINT32_MAX || seq > UINT64_MAX) {
      throw new Error(`MariaDB GTID out of range: ${JSON.stringify(part)}`);
    }
    const prev = out.get(domain);
    if (prev === undefined || seq > prev.seq) out.set(domain, { server, seq });
  }
  return out;
}

/**
 * True when `position` (e.g. a replica's gtid_current_pos) includes `gtid`
 * (one GTID or a list): for every domain of `gtid`, the position has that
 * domain with a seq at least as high. The server id is ignored, as
 * MASTER_GTID_WAIT does. An empty `gtid` is always covered.
 *
 * Never throws: a string that is not a MariaDB GTID list (either argument)
 * gives false, so a caller falls back to the primary rather than reading
 * possibly stale data.
 */
export function gtidCovers(position: string, gtid: string): boolean {
  let want: Map<number, GtidEntry>;
  let have: Map<number, GtidEntry>;
  try {
    want = parseGtidList(gtid);
    if (want.size === 0) return true;
    have = parseGtidList(position);
  } catch {
    return false;
  }
  for (const [domain, w] of want) {
    const h = have.get(domain);
    if (h === undefined || h.seq < w.seq) return false;
  }
  return true;
}
