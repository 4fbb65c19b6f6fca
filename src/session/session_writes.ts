/**
 * Read-your-writes for one session: the GTID of its last write (reported in
 * the write's OK on a tracked connection, else asked of the primary with
 * `SELECT @@last_gtid` when a replica read needs it), and whether a replica
 * has applied it (the monitor's last position of that replica, what the
 * connection already waited for, or MASTER_GTID_WAIT up to
 * routing.consistency_wait_ms).
 */
import { gtidCovers } from '../routing/gtid.js';
import type { BackendLink } from './backend_links.js';
import type { ClientSession } from './client_session.js';

export class SessionWrites {
  /** A write ran on the primary since the session last learnt its GTID (untracked connections only). */
  private unlearnt = false;
  /** GTID of the session's last write (MariaDB @@last_gtid), once learnt. */
  private last: string | null = null;

  constructor(private readonly s: ClientSession) {}

  /** A write's GTID is still to be asked of the primary connection that made it. */
  get pending(): boolean {
    return this.unlearnt;
  }

  /** A write ran on an untracked primary connection: its GTID is asked for when a replica read needs it. */
  wrote(): void {
    this.unlearnt = true;
  }

  /** The server reported the session's last write GTID ('' when none). */
  reported(gtid: string): void {
    this.last = gtid === '' ? null : gtid;
    this.unlearnt = false;
  }

  /** Whether `link` has the session's last write, with nothing to ask or wait for. */
  covered(link: BackendLink): boolean {
    // The session wrote since it last learnt its GTID: ask the primary first (waitFor).
    if (this.unlearnt) return false;
    return this.last === null || link.coveredGtid === this.last || this.replicaCovers(link.server);
  }

  private replicaCovers(server: string): boolean {
    const position = this.s.ctx.selector.gtidPosition(server);
    return position !== null && this.last !== null && gtidCovers(position, this.last);
  }

  /**
   * True once `link`'s replica has applied the session's last write, waiting
   * up to routing.consistency_wait_ms with MASTER_GTID_WAIT; false when it
   * did not catch up, or the GTID could not be learnt from `primary`.
   */
  async waitFor(link: BackendLink, primary: BackendLink | undefined): Promise<boolean> {
    const ctx = this.s.ctx;
    if (this.unlearnt) {
      if (!primary || primary.conn.closed) return false;
      const result = await primary.conn.query('SELECT @@last_gtid');
      if (result.error) return false;
      this.reported(result.rows[0]?.[0] ?? '');
    }
    const gtid = this.last;
    if (gtid === null) return true;
    if (link.coveredGtid === gtid || this.replicaCovers(link.server)) {
      ctx.observer.consistencyChecked('covered');
      return true;
    }
    if (!/^[0-9,-]+$/.test(gtid)) return false;
    const seconds = ctx.config().routing.consistencyWaitMs / 1000;
    const result = await link.conn.query(`SELECT MASTER_GTID_WAIT('${gtid}', ${seconds})`);
    const caughtUp = !result.error && result.rows[0]?.[0] === '0';
    ctx.observer.consistencyChecked(caughtUp ? 'waited' : 'timeout');
    if (caughtUp) link.coveredGtid = gtid;
    return caughtUp;
  }
}
