/**
 * What a reload changed, named by the config file's own field paths
 * (`limits.max_client_connections`, `cache.rules`): the YAML of the file
 * before and after, compared section by section. Only the names of what
 * changed are reported, never values (they may be passwords).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { WirecacheConfig } from './types.js';

/** The config file as plain data (null when it cannot be read or parsed: the comparison then falls back to whole sections). */
export function readRawConfig(path: string): Record<string, unknown> | null {
  try {
    const data: unknown = parse(readFileSync(path, 'utf8'));
    return data !== null && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Field paths whose value differs between two versions of the file, two
 * levels deep (`cache.memcached`, `users`: lists and deeper mappings count as
 * one field), sorted.
 */
export function changedFields(before: Record<string, unknown> | null, after: Record<string, unknown> | null): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string, depth: number) => {
    if (depth < 2 && isMapping(a) && isMapping(b)) {
      for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[key], b[key], path ? `${path}.${key}` : key, depth + 1);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(path);
  };
  walk(before ?? {}, after ?? {}, '', 0);
  return out.sort();
}

/** The rules of a rules file changed (the file's own fields are not in the config file). */
export function rulesFileChanged(before: WirecacheConfig, after: WirecacheConfig): boolean {
  const rules = (c: WirecacheConfig) =>
    JSON.stringify(c.cache?.rules ?? [], (_k, v: unknown) => (v instanceof RegExp ? v.source : v instanceof Set ? [...v] : v));
  return before.cache?.rulesFile != null && rules(before) !== rules(after);
}
