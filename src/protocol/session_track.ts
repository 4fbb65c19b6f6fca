/**
 * Session-state tracking (CLIENT_SESSION_TRACK): the part of an OK packet
 * where the server reports what a statement changed in the session, and the
 * rewrite that gives a client exactly the OK it would get from the server
 * with its own tracking settings, while the proxy's connection tracks more.
 *
 * OK layout with CLIENT_SESSION_TRACK: header, lenenc affected rows, lenenc
 * insert id, status u16, warnings u16, then the info as a lenenc string, and,
 * when status has SESSION_STATE_CHANGED, a lenenc block of entries, each a
 * type byte and a lenenc data string. Without the capability the server
 * writes the info (lenenc) only when it is not empty, and never the block.
 */
import { PacketHeader, ServerStatus } from './constants.js';
import { PayloadReader, ProtocolError, skipLenenc } from './payload_reader.js';
import { PayloadWriter } from './payload_writer.js';

export const enum SessionTrackType {
  SystemVariable = 0,
  Schema = 1,
  StateChange = 2,
  Gtids = 3,
  TransactionCharacteristics = 4,
  TransactionState = 5,
}

/** One reported change: `name` for a system variable, `value` its new value (the schema, "1", a transaction state). */
export interface SessionTrackEntry {
  type: number;
  name: string;
  value: string;
  /** The entry's bytes as the server sent them (type, length, data). */
  raw: Buffer;
}

/** What a client would have the server report, from its own session_track_* settings. */
export interface ClientTrackingView {
  variables: ReadonlySet<string> | 'all';
  schema: boolean;
  stateChange: boolean;
  transactionInfo: 'OFF' | 'STATE' | 'CHARACTERISTICS';
}

/**
 * What the proxy sets on every backend connection it tracks. Not
 * session_track_transaction_info: MariaDB 10.11 reports an InnoDB write as a
 * non-transactional one ('W'), so its state would tell nothing the status
 * flags do not, and it would add bytes to every OK in a transaction.
 */
export const PROXY_TRACKING_SQL = "SET SESSION session_track_system_variables = '*', session_track_schema = ON, session_track_state_change = ON";
/** Reads a session's tracking settings, in parseTrackingView's order. */
export const TRACKING_VIEW_SQL =
  'SELECT @@session.session_track_system_variables, @@session.session_track_schema, @@session.session_track_state_change, ' +
  "IFNULL((SELECT @@session.session_track_transaction_info), 'OFF')";

/** Variable names the proxy reads as tracking settings (a client that sets one changes its view). */
export const TRACKING_VARIABLES = [
  'session_track_system_variables',
  'session_track_schema',
  'session_track_state_change',
  'session_track_transaction_info',
] as const;

function on(value: string | null): boolean {
  return value !== null && (value === '1' || value.toUpperCase() === 'ON');
}

/** A view from TRACKING_VIEW_SQL's row. */
export function parseTrackingView(row: readonly (string | null)[]): ClientTrackingView {
  const list = (row[0] ?? '').trim();
  const names = list.split(',').map((n) => n.trim().toLowerCase()).filter((n) => n !== '');
  const trx = (row[3] ?? 'OFF').toUpperCase();
  return {
    variables: names.includes('*') ? 'all' : new Set(names),
    schema: on(row[1]),
    stateChange: on(row[2]),
    transactionInfo: trx === 'STATE' || trx === 'CHARACTERISTICS' ? trx : 'OFF',
  };
}

/** The view a client has while the server tracks nothing for it. */
export const NO_TRACKING: ClientTrackingView = { variables: new Set(), schema: false, stateChange: false, transactionInfo: 'OFF' };

/** Where the parts of an OK (or EOF-standing-in OK) payload lie. */
interface OkLayout {
  /** Offset of the status flags. */
  status: number;
  /** Offset just after the warnings: the info starts here. */
  info: number;
  /** The info's text bytes. */
  message: Buffer;
  /** The entries block (without its length prefix), or null. */
  entries: Buffer | null;
}

function layoutOf(payload: Buffer): OkLayout {
  let off = skipLenenc(payload, 1);
  off = skipLenenc(payload, off);
  if (off + 4 > payload.length) throw new ProtocolError('OK packet too short for its status');
  const status = off;
  const flags = payload[off] | (payload[off + 1] << 8);
  const r = new PayloadReader(payload);
  r.offset = off + 4;
  const message = r.remaining > 0 ? r.lenencBytes() : Buffer.alloc(0);
  const entries = flags & ServerStatus.SESSION_STATE_CHANGED && r.remaining > 0 ? r.lenencBytes() : null;
  return { status, info: off + 4, message, entries };
}

/** The changes an OK payload reports (none without SESSION_STATE_CHANGED). Throws ProtocolError on a malformed block. */
export function readSessionTrack(payload: Buffer): SessionTrackEntry[] {
  const block = layoutOf(payload).entries;
  return block ? readEntries(block) : [];
}

function readEntries(block: Buffer): SessionTrackEntry[] {
  const out: SessionTrackEntry[] = [];
  const r = new PayloadReader(block);
  while (r.remaining > 0) {
    const begin = r.offset;
    const type = r.u8();
    const data = r.lenencBytes();
    const raw = block.subarray(begin, r.offset);
    const d = new PayloadReader(data);
    if (type === SessionTrackType.SystemVariable) {
      const name = d.lenencString('latin1').toLowerCase();
      out.push({ type, name, value: d.remaining > 0 ? d.lenencString('latin1') : '', raw });
    } else if (type === SessionTrackType.Gtids) {
      d.u8(); // encoding specification
      out.push({ type, name: '', value: d.remaining > 0 ? d.lenencString('latin1') : '', raw });
    } else if (type === SessionTrackType.StateChange) {
      // Its data is the flag itself ("1"), not a length-encoded string.
      out.push({ type, name: '', value: data.toString('latin1'), raw });
    } else {
      out.push({ type, name: '', value: d.remaining > 0 ? d.lenencString('latin1') : '', raw });
    }
  }
  return out;
}

/** Whether a client with `view` would be told about `entry`. */
function visible(entry: SessionTrackEntry, view: ClientTrackingView): boolean {
  switch (entry.type) {
    case SessionTrackType.SystemVariable:
      return view.variables === 'all' || view.variables.has(entry.name);
    case SessionTrackType.Schema:
      return view.schema;
    case SessionTrackType.StateChange:
      return view.stateChange;
    case SessionTrackType.TransactionState:
      return view.transactionInfo !== 'OFF';
    case SessionTrackType.TransactionCharacteristics:
      return view.transactionInfo === 'CHARACTERISTICS';
    default:
      // GTIDs (MySQL) are reported only to a client that asked for them; the proxy never sets session_track_gtids.
      return true;
  }
}

/**
 * The OK payload a client with `view` would receive: entries it does not
 * track removed, and when none is left the SESSION_STATE_CHANGED flag
 * cleared and the info written as a client without tracking gets it.
 * `view` null: the client did not negotiate CLIENT_SESSION_TRACK.
 * Returns `payload` itself when nothing changes.
 */
export function okForClient(payload: Buffer, entries: readonly SessionTrackEntry[], view: ClientTrackingView | null): Buffer {
  const layout = layoutOf(payload);
  const kept = view === null ? [] : entries.filter((e) => visible(e, view));
  if (kept.length === entries.length && view !== null) return payload;
  const head = Buffer.from(payload.subarray(0, layout.info));
  const w = new PayloadWriter(payload.length);
  if (kept.length === 0) {
    const flags = (head[layout.status] | (head[layout.status + 1] << 8)) & ~ServerStatus.SESSION_STATE_CHANGED;
    head.writeUInt16LE(flags, layout.status);
    w.bytes(head);
    if (layout.message.length > 0) w.lenencBytes(layout.message);
    return w.finish();
  }
  w.bytes(head).lenencBytes(layout.message).lenencBytes(Buffer.concat(kept.map((e) => e.raw)));
  return w.finish();
}

/** A plain EOF packet (5 bytes, no entries) with SESSION_STATE_CHANGED cleared. */
export function eofWithoutStateFlag(payload: Buffer): Buffer {
  const out = Buffer.from(payload);
  if (out.length >= 5 && out[0] === PacketHeader.EOF) out[4] &= ~(ServerStatus.SESSION_STATE_CHANGED >> 8);
  return out;
}
