import { PayloadReader } from '../../src/protocol/payload_reader.js';

/** Protocol::ColumnDefinition41. */
export interface ColumnDefinition {
  catalog: string;
  schema: string;
  table: string;
  orgTable: string;
  name: string;
  orgName: string;
  characterSet: number;
  columnLength: number;
  type: number;
  flags: number;
  decimals: number;
}

/** Column flag: the value is unsigned (matters for decoding binary integers). */
export const UNSIGNED_FLAG = 0x20;
export const BINARY_FLAG = 0x80;

export function parseColumnDefinition(payload: Buffer): ColumnDefinition {
  const r = new PayloadReader(payload);
  const catalog = r.lenencString();
  const schema = r.lenencString();
  const table = r.lenencString();
  const orgTable = r.lenencString();
  const name = r.lenencString();
  const orgName = r.lenencString();
  r.lenenc(); // length of the fixed-length fields: always 0x0c
  const characterSet = r.u16();
  const columnLength = r.u32();
  const type = r.u8();
  const flags = r.u16();
  const decimals = r.u8();
  return { catalog, schema, table, orgTable, name, orgName, characterSet, columnLength, type, flags, decimals };
}
