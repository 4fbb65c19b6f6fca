/**
 * The memcached commands as plain types, shared by the text and the binary
 * protocol: each protocol parses its bytes into a MemcachedCommand and writes
 * the ItemStore's answer back in its own form.
 *
 * Keys are Buffers (the binary protocol allows any byte); the container
 * prefix (`@@name.`) is still part of them here, the session resolves it.
 */

/** How a storage command treats an existing item (memcached's set/add/replace/append/prepend/cas). */
export const enum StoreMode {
  Set = 0,
  Add = 1,
  Replace = 2,
  Append = 3,
  Prepend = 4,
  /** Set only while the item's cas still equals the command's. */
  Cas = 5,
}

export type MemcachedCommand =
  /** get/gets (text), GET/GETQ/GETK/GETKQ (binary); with `touch`, gat/gats and GAT/GATQ/GATK/GATKQ. */
  | { kind: 'get'; keys: Buffer[]; withCas: boolean; touch: number | null }
  /** `cas` is 0n when the command carries none (binary SET with cas 0 is a plain set). */
  | { kind: 'store'; mode: StoreMode; key: Buffer; flags: number; exptime: number; value: Buffer; cas: bigint }
  | { kind: 'delete'; key: Buffer; cas: bigint }
  /**
   * incr/decr. `initial` is null for the text protocol (a missing item is NOT_FOUND);
   * the binary protocol creates a missing item with `initial` unless its expiration is 0xffffffff.
   */
  | { kind: 'arith'; key: Buffer; incr: boolean; delta: bigint; initial: bigint | null; exptime: number }
  | { kind: 'touch'; key: Buffer; exptime: number }
  | { kind: 'flush'; delay: number }
  | { kind: 'version' }
  /** `group` is '' for the general statistics. */
  | { kind: 'stats'; group: string }
  | { kind: 'verbosity' }
  | { kind: 'noop' }
  | { kind: 'quit' }
  /** Binary SASL: LIST_MECHS, AUTH and STEP. */
  | { kind: 'sasl_list' }
  | { kind: 'sasl_auth'; mechanism: string; data: Buffer };

/** One item as a get returns it. */
export interface Item {
  key: Buffer;
  flags: number;
  cas: bigint;
  value: Buffer;
}

export type StoreOutcome = 'stored' | 'not_stored' | 'exists' | 'not_found';
export type DeleteOutcome = 'deleted' | 'not_found' | 'exists';
export type ArithOutcome =
  | { outcome: 'ok'; value: bigint; cas: bigint }
  | { outcome: 'not_found' }
  | { outcome: 'non_numeric' };

/**
 * An error the client is told about: `client` for a bad request (CLIENT_ERROR,
 * binary status Invalid arguments / Value too large), `server` for a failure on
 * our side or the database's (SERVER_ERROR, binary Internal error / Temporary failure).
 */
export class MemcachedError extends Error {
  constructor(
    readonly side: 'client' | 'server',
    message: string,
    /** The binary protocol's status for it (see BinaryStatus in binary_protocol.ts). */
    readonly binaryStatus: number = side === 'client' ? 0x0004 : 0x0084,
  ) {
    super(message);
  }
}

/** Largest key memcached accepts (both protocols). */
export const MAX_KEY_BYTES = 250;

/**
 * Expiration as memcached defines it: 0 never; up to 30 days, seconds from
 * now; beyond, a unix time; negative, already expired. Returns a unix time
 * in seconds (0 for never).
 */
export function absoluteExpiry(exptime: number, nowSeconds: number): number {
  if (exptime === 0) return 0;
  if (exptime < 0) return nowSeconds - 1;
  if (exptime <= 60 * 60 * 24 * 30) return nowSeconds + exptime;
  return exptime;
}
