/**
 * The memcached API's cache tier: items (and misses) read from the primary,
 * kept in process under a byte bound (lru-cache's maxSize).
 *
 * Validity works like the query cache's generations, per key: every key hashes
 * to one of SLOT_COUNT version slots, and every container has an epoch. A read
 * takes a ticket (slot version and epoch) before it goes to the database; its
 * row is stored only if the ticket is still current when the row arrives, and
 * served only while it is. A write bumps its key's slot before it is sent and
 * again after its reply (so a read that overlapped the write never stores what
 * it saw); the binlog bumps the slots of the keys in every row it reports, and
 * the epoch of a container when it cannot tell which rows changed. Two keys
 * sharing a slot only cost each other a miss.
 */
import { LRUCache } from 'lru-cache';
import type { Item } from './commands.js';

const SLOT_COUNT = 1 << 16;
/** Bytes charged per entry beyond its key and value (the object, the map's slot, the ticket). */
const ENTRY_OVERHEAD_BYTES = 96;

/** A row as the tier keeps it: null for "no such key". */
export interface CachedRow {
  item: Item | null;
  /** Unix seconds after which the item is a miss (0: never). */
  expiry: number;
}

interface Entry extends CachedRow {
  slot: number;
  version: number;
  epoch: number;
}

/** What a read recorded before it went to the database. */
export interface Ticket {
  slot: number;
  version: number;
  epoch: number;
}

export class ItemCache {
  private readonly slots = new Uint32Array(SLOT_COUNT);
  private readonly epochs = new Map<string, number>();
  /** Bumped by invalidateAll: part of every container's epoch. */
  private allEpoch = 0;
  private readonly lru: LRUCache<string, Entry> | null;

  constructor(maxBytes: number) {
    this.lru =
      maxBytes > 0
        ? new LRUCache<string, Entry>({
            maxSize: maxBytes,
            maxEntrySize: maxBytes,
            sizeCalculation: (entry, key) => key.length + (entry.item ? entry.item.value.length : 0) + ENTRY_OVERHEAD_BYTES,
          })
        : null;
  }

  get enabled(): boolean {
    return this.lru !== null;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  get entries(): number {
    return this.lru?.size ?? 0;
  }

  ticket(container: string, key: Buffer): Ticket {
    const slot = slotOf(container, key);
    return { slot, version: this.slots[slot], epoch: this.epochOf(container) };
  }

  /** The cached row of a key, if still valid (an expired item reads as a cached miss). */
  lookup(container: string, key: Buffer, nowSeconds: number): CachedRow | undefined {
    if (!this.lru) return undefined;
    const id = entryId(container, key);
    const entry = this.lru.get(id);
    if (!entry) return undefined;
    if (entry.version !== this.slots[entry.slot] || entry.epoch !== this.epochOf(container)) {
      this.lru.delete(id);
      return undefined;
    }
    if (entry.item && entry.expiry !== 0 && entry.expiry <= nowSeconds) return { item: null, expiry: 0 };
    return entry;
  }

  /** Stores what a read found, unless a write or the binlog moved its key since the ticket was taken. */
  fill(container: string, key: Buffer, ticket: Ticket, row: CachedRow): void {
    if (!this.lru) return;
    if (ticket.version !== this.slots[ticket.slot] || ticket.epoch !== this.epochOf(container)) return;
    this.lru.set(entryId(container, key), { ...row, slot: ticket.slot, version: ticket.version, epoch: ticket.epoch });
  }

  invalidateKey(container: string, key: Buffer): void {
    const slot = slotOf(container, key);
    this.slots[slot] = (this.slots[slot] + 1) >>> 0;
  }

  invalidateContainer(container: string): void {
    this.epochs.set(container, (this.epochs.get(container) ?? 0) + 1);
  }

  invalidateAll(): void {
    this.allEpoch++;
    this.lru?.clear();
  }

  /** A container's epoch and the global one in one number (each stays far below 2^26 bumps a day). */
  private epochOf(container: string): number {
    return (this.epochs.get(container) ?? 0) * 67_108_864 + this.allEpoch;
  }
}

function entryId(container: string, key: Buffer): string {
  return `${container}\0${key.toString('latin1')}`;
}

/** FNV-1a over the container name and the key bytes. */
function slotOf(container: string, key: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < container.length; i++) h = Math.imul(h ^ container.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0, 0x01000193);
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i], 0x01000193);
  return (h >>> 0) & (SLOT_COUNT - 1);
}
