/**
 * Per-digest statement statistics ("query digest stats"): for each normalised
 * statement text, how often it ran, how long it took (total, mean, p95, max),
 * rows sent, errors, cache hits and misses, where it was answered from, and
 * when it was first and last seen.
 *
 * Hot path: record() is called once per statement. After the first sight of a
 * digest it is a Map lookup, a few number updates and a histogram increment;
 * it allocates nothing (except slicing a digest longer than MAX_DIGEST_CHARS
 * to look it up, which a normalised statement rarely is).
 *
 * Bounding to the top N by total time: at most `maxDigests` digests are kept.
 * A digest seen for the first time while the table is full always gets in,
 * and the kept digest with the smallest total time is dropped (`evicted`
 * counts the drops), so a newly hot query can appear and then climb.
 *
 * Finding that smallest entry without scanning all N on every newcomer: we
 * keep a small pool of eviction candidates (the POOL_SIZE smallest totals at
 * the last full scan, plus every newcomer since) and a threshold T, the
 * smallest total outside the pool at that scan. Totals only ever grow, so
 * every entry outside the pool still has total >= T. When the pool's smallest
 * current total is <= T it is therefore the global minimum and is evicted after
 * an O(POOL_SIZE) look at the pool; only when the whole pool has grown past T
 * is the table scanned again (O(N), rare: a newcomer takes the evicted one's
 * place in the pool, and newcomers are the usual victims). The eviction is
 * exact, not sampled.
 */

/** Longest digest text kept; longer ones are cut (and keyed by the cut text). */
export const MAX_DIGEST_CHARS = 2048;

export interface StatementSample {
  /** ClassifiedStatement.digestText (already normalised, literals as ?). */
  digest: string;
  /** Command time. */
  seconds: number;
  /** Rows sent to the client (0 for OK replies). */
  rows: number;
  /** null: not a cache candidate. */
  cache: 'hit' | 'miss' | null;
  destination: 'cache' | 'primary' | 'replica';
  /** The reply was an ERR. */
  error: boolean;
}

/** One digest with its histogram, as a worker thread hands it to the main thread to be summed. */
export interface DigestRecord {
  digest: string;
  count: number;
  errors: number;
  totalSeconds: number;
  maxSeconds: number;
  rows: number;
  hits: number;
  misses: number;
  toCache: number;
  toPrimary: number;
  toReplica: number;
  firstSeen: number;
  lastSeen: number;
  hist: number[];
}

export type QueryStatsSortKey = 'total_time' | 'count' | 'mean_time' | 'rows';
export const QUERY_STATS_SORT_KEYS: readonly QueryStatsSortKey[] = ['total_time', 'count', 'mean_time', 'rows'];

export interface QueryDigestStats {
  digest: string;
  count: number;
  errors: number;
  total_seconds: number;
  mean_seconds: number;
  /** Upper bound of the histogram bucket holding the 95th percentile, capped at max_seconds. */
  p95_seconds: number;
  max_seconds: number;
  rows_sent: number;
  cache_hits: number;
  cache_misses: number;
  destinations: { cache: number; primary: number; replica: number };
  /** ISO 8601. */
  first_seen: string;
  /** ISO 8601. */
  last_seen: string;
}

/*
 * Latency histogram: log scale, BUCKETS_PER_DECADE buckets per power of ten
 * from 10 µs to 100 s. Slot 0 holds times <= 10 µs, slot i (1..BOUND_COUNT-1)
 * times in (BOUNDS[i-1], BOUNDS[i]], the last slot times > 100 s. Each bucket
 * spans a factor of 10^(1/6) ~ 1.47, so p95 reported as a bucket's upper
 * bound overstates the true value by at most ~47% (less after capping at the
 * maximum): exact enough to tell which statements are slow.
 */
const BUCKETS_PER_DECADE = 6;
const MIN_BOUND = 1e-5;
const MAX_BOUND = 100;
const DECADES = 7; // 1e-5 .. 1e2
const BOUND_COUNT = DECADES * BUCKETS_PER_DECADE + 1; // 43 upper bounds
/** Upper bounds of the slots 0..BOUND_COUNT-1; the slot after them is the overflow (> MAX_BOUND). */
export const HISTOGRAM_BOUNDS: readonly number[] = Array.from({ length: BOUND_COUNT }, (_, i) =>
  Number((MIN_BOUND * 10 ** (i / BUCKETS_PER_DECADE)).toPrecision(12)),
);
const BOUNDS = Float64Array.from(HISTOGRAM_BOUNDS);
const SLOTS = BOUND_COUNT + 1;

/** Histogram slot of a duration (seconds >= 0, finite). */
function slotOf(seconds: number): number {
  if (seconds <= MIN_BOUND) return 0;
  if (seconds > MAX_BOUND) return BOUND_COUNT;
  // log10 gives the slot up to floating-point error at the bounds; fix up
  // against the stored bounds so a value on a bound lands in its own bucket.
  let i = Math.ceil(Math.log10(seconds / MIN_BOUND) * BUCKETS_PER_DECADE);
  if (i < 1) i = 1;
  else if (i > BOUND_COUNT - 1) i = BOUND_COUNT - 1;
  if (seconds > BOUNDS[i]) i++;
  else if (seconds <= BOUNDS[i - 1]) i--;
  return i;
}

/** Eviction candidates kept between full scans (see the header). */
const POOL_SIZE = 32;

class Entry {
  count = 0;
  errors = 0;
  totalSeconds = 0;
  maxSeconds = 0;
  rows = 0;
  hits = 0;
  misses = 0;
  toCache = 0;
  toPrimary = 0;
  toReplica = 0;
  lastSeen = 0;
  /** Index in QueryStats.pool, -1 when not a candidate. */
  poolIndex = -1;
  readonly hist = new Uint32Array(SLOTS);

  constructor(
    readonly digest: string,
    public firstSeen: number,
  ) {}

  p95(): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(this.count * 0.95);
    let seen = 0;
    for (let i = 0; i < SLOTS; i++) {
      seen += this.hist[i];
      if (seen >= rank) return i < BOUND_COUNT ? Math.min(BOUNDS[i], this.maxSeconds) : this.maxSeconds;
    }
    return this.maxSeconds;
  }

  toJSON(): QueryDigestStats {
    return {
      digest: this.digest,
      count: this.count,
      errors: this.errors,
      total_seconds: this.totalSeconds,
      mean_seconds: this.count > 0 ? this.totalSeconds / this.count : 0,
      p95_seconds: this.p95(),
      max_seconds: this.maxSeconds,
      rows_sent: this.rows,
      cache_hits: this.hits,
      cache_misses: this.misses,
      destinations: { cache: this.toCache, primary: this.toPrimary, replica: this.toReplica },
      first_seen: new Date(this.firstSeen).toISOString(),
      last_seen: new Date(this.lastSeen).toISOString(),
    };
  }
}

export class QueryStats {
  readonly maxDigests: number;
  private readonly entries = new Map<string, Entry>();
  private evictedCount = 0;
  /** Eviction candidates; every kept entry outside it has totalSeconds >= threshold. */
  private readonly pool: Entry[] = [];
  private threshold = Infinity;

  constructor(maxDigests: number) {
    if (!Number.isInteger(maxDigests) || maxDigests < 1) {
      throw new RangeError(`maxDigests must be a positive integer, got ${maxDigests}`);
    }
    this.maxDigests = maxDigests;
  }

  /** Digests currently kept. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Digests dropped because the table was full and a new digest arrived
   * (their statements are no longer in any entry). Zeroed by reset().
   */
  get evicted(): number {
    return this.evictedCount;
  }

  record(s: StatementSample): void {
    let digest = s.digest;
    if (digest.length > MAX_DIGEST_CHARS) digest = capDigest(digest);
    let e = this.entries.get(digest);
    const now = Date.now();
    if (e === undefined) e = this.add(digest, now);
    let seconds = s.seconds;
    if (!(seconds >= 0 && seconds < Infinity)) seconds = 0; // NaN, negative or infinite: count it, time 0
    const rows = s.rows;
    e.count++;
    e.totalSeconds += seconds;
    if (seconds > e.maxSeconds) e.maxSeconds = seconds;
    e.hist[slotOf(seconds)]++;
    if (rows > 0 && rows < Infinity) e.rows += rows;
    if (s.error) e.errors++;
    if (s.cache === 'hit') e.hits++;
    else if (s.cache === 'miss') e.misses++;
    switch (s.destination) {
      case 'cache':
        e.toCache++;
        break;
      case 'primary':
        e.toPrimary++;
        break;
      case 'replica':
        e.toReplica++;
        break;
    }
    e.lastSeen = now;
  }

  /**
   * Kept digests, sorted descending by `sortBy` (default total_time; ties by
   * total time, then digest text), at most `limit` of them (default all).
   */
  top(limit?: number, sortBy: QueryStatsSortKey = 'total_time'): QueryDigestStats[] {
    const key = sortKeyOf(sortBy);
    const all = [...this.entries.values()];
    all.sort((a, b) => key(b) - key(a) || b.totalSeconds - a.totalSeconds || (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
    const n = limit === undefined || limit >= all.length ? all.length : limit > 0 ? Math.floor(limit) : 0;
    const out: QueryDigestStats[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = all[i].toJSON();
    return out;
  }

  /** Every kept digest with its histogram (see absorb()). */
  records(): DigestRecord[] {
    const out: DigestRecord[] = [];
    for (const e of this.entries.values()) {
      const { digest, count, errors, totalSeconds, maxSeconds, rows, hits, misses, toCache, toPrimary, toReplica, firstSeen, lastSeen } = e;
      out.push({ digest, count, errors, totalSeconds, maxSeconds, rows, hits, misses, toCache, toPrimary, toReplica, firstSeen, lastSeen, hist: Array.from(e.hist) });
    }
    return out;
  }

  /** Adds other tables' digests to this one (the main thread sums its workers'), and their evicted counts. */
  absorb(records: readonly DigestRecord[], evicted = 0): void {
    this.evictedCount += evicted;
    for (const r of records) {
      const e = this.entries.get(r.digest) ?? this.add(r.digest, r.firstSeen);
      e.count += r.count;
      e.errors += r.errors;
      e.totalSeconds += r.totalSeconds;
      e.maxSeconds = Math.max(e.maxSeconds, r.maxSeconds);
      e.rows += r.rows;
      e.hits += r.hits;
      e.misses += r.misses;
      e.toCache += r.toCache;
      e.toPrimary += r.toPrimary;
      e.toReplica += r.toReplica;
      e.firstSeen = Math.min(e.firstSeen, r.firstSeen);
      e.lastSeen = Math.max(e.lastSeen, r.lastSeen);
      for (let i = 0; i < SLOTS && i < r.hist.length; i++) e.hist[i] += r.hist[i];
    }
  }

  /** Forgets every digest and zeroes the evicted counter. */
  reset(): void {
    this.entries.clear();
    this.pool.length = 0;
    this.threshold = Infinity;
    this.evictedCount = 0;
  }

  private add(digest: string, now: number): Entry {
    if (this.entries.size >= this.maxDigests) this.evictSmallest();
    // A fresh flat copy when cut, so the kept key does not pin a huge parent string.
    const e = new Entry(digest.length >= MAX_DIGEST_CHARS - 1 ? flatCopy(digest) : digest, now);
    this.entries.set(e.digest, e);
    e.poolIndex = this.pool.length;
    this.pool.push(e);
    return e;
  }

  private evictSmallest(): void {
    // Every digest joins the pool while the table fills up (or after a
    // reset); cut it down to the POOL_SIZE smallest on the first eviction.
    // From then on each eviction leaves one and each newcomer adds one.
    if (this.pool.length > POOL_SIZE) this.refillPool();
    let victim = this.smallestInPool();
    if (victim === undefined || victim.totalSeconds > this.threshold) {
      this.refillPool();
      victim = this.smallestInPool();
    }
    if (victim === undefined) return; // unreachable while the table is full
    this.removeFromPool(victim);
    this.entries.delete(victim.digest);
    this.evictedCount++;
  }

  private smallestInPool(): Entry | undefined {
    const pool = this.pool;
    let best: Entry | undefined;
    for (let i = 0; i < pool.length; i++) {
      const e = pool[i];
      if (best === undefined || e.totalSeconds < best.totalSeconds) best = e;
    }
    return best;
  }

  private removeFromPool(e: Entry): void {
    const pool = this.pool;
    const last = pool.pop()!;
    if (last !== e) {
      pool[e.poolIndex] = last;
      last.poolIndex = e.poolIndex;
    }
    e.poolIndex = -1;
  }

  /** Full scan: the pool becomes the POOL_SIZE smallest totals, threshold the smallest total outside it. */
  private refillPool(): void {
    for (const e of this.pool) e.poolIndex = -1;
    this.pool.length = 0;
    // `pool` is kept sorted ascending by total while scanning; at most POOL_SIZE + 1 long.
    const pool = this.pool;
    let threshold = Infinity;
    for (const e of this.entries.values()) {
      const t = e.totalSeconds;
      if (pool.length === POOL_SIZE && t >= pool[POOL_SIZE - 1].totalSeconds) {
        if (t < threshold) threshold = t;
        continue;
      }
      let i = pool.length;
      pool.push(e);
      while (i > 0 && pool[i - 1].totalSeconds > t) {
        pool[i] = pool[i - 1];
        i--;
      }
      pool[i] = e;
      if (pool.length > POOL_SIZE) {
        const out = pool.pop()!;
        if (out.totalSeconds < threshold) threshold = out.totalSeconds;
      }
    }
    for (let i = 0; i < pool.length; i++) pool[i].poolIndex = i;
    this.threshold = threshold;
  }
}

function sortKeyOf(sortBy: QueryStatsSortKey): (e: Entry) => number {
  switch (sortBy) {
    case 'total_time':
      return (e) => e.totalSeconds;
    case 'count':
      return (e) => e.count;
    case 'mean_time':
      return (e) => (e.count > 0 ? e.totalSeconds / e.count : 0);
    case 'rows':
      return (e) => e.rows;
    default:
      throw new RangeError(`unknown sort key ${JSON.stringify(sortBy)}`);
  }
}

/** The first MAX_DIGEST_CHARS characters, not splitting a surrogate pair. */
function capDigest(digest: string): string {
  const code = digest.charCodeAt(MAX_DIGEST_CHARS - 1);
  const end = code >= 0xd800 && code <= 0xdbff ? MAX_DIGEST_CHARS - 1 : MAX_DIGEST_CHARS;
  return digest.slice(0, end);
}

/** A copy that does not share storage with the string it was sliced from (value-preserving). */
function flatCopy(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}
