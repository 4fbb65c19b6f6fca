/**
 * Label capping: past a fixed number of distinct values (or for a value that
 * fails an optional pattern) a label value is folded into "other", so a bug
 * upstream cannot make the number of series grow without limit.
 */

/** Label value used for anything past the cap or failing the pattern. */
export const OTHER_LABEL = 'other';

/** Accepts label values while they are well-formed and few; else "other". */
export class BoundedLabel {
  private readonly seen: Set<string>;

  /** `initial` values are always accepted, and count towards `max`. */
  constructor(
    private readonly max: number,
    private readonly pattern: RegExp | null = null,
    initial: Iterable<string> = [],
  ) {
    this.seen = new Set(initial);
  }

  value(raw: string): string {
    if (this.seen.has(raw)) return raw;
    if (this.seen.size >= this.max) return OTHER_LABEL;
    if (this.pattern !== null && (typeof raw !== 'string' || !this.pattern.test(raw))) return OTHER_LABEL;
    this.seen.add(raw);
    return raw;
  }
}
