/**
 * The cache rules file (`cache.rules_file`): a YAML list of rules, or a
 * mapping with `rules:`, validated with errors located in that file.
 */
import { readFileSync } from 'node:fs';
import { isSeq, parseDocument } from 'yaml';
import { rulesFileSchema, rulesListSchema, type RawRule } from './rules.js';
import { ConfigError, validateYaml } from './yaml_locations.js';

/**
 * Reads a rules file and validates it (errors point into that file). Rule
 * names must be unique across the file and the config's inline rules.
 */
export function loadRulesFile(path: string): { raw: RawRule[]; sources: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError({ file: path, message: `cannot read rules file: ${(err as Error).message}` }, { cause: err });
  }
  // A list, or a mapping with "rules": validated against the shape it has, so errors name the real field.
  const isList = isSeq(parseDocument(text).contents);
  const { data, locator } = validateYaml(text, path, isList ? rulesListSchema : rulesFileSchema, 'the rules file is empty');
  const list = Array.isArray(data) ? data : data.rules;
  const prefix = Array.isArray(data) ? [] : ['rules'];
  return { raw: list, sources: list.map((_, i) => `${path}:${locator.locate([...prefix, i]).line}`) };
}
