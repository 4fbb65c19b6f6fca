import { describe, expect, it } from 'vitest';
import { forEachToken, leadingKeywords, TokenKind } from '../src/sql_tokenizer.js';
import { batchContainsKill, mentionsKill } from '../src/sql_text.js';

function tokens(sql: string): [TokenKind, string][] {
  const out: [TokenKind, string][] = [];
  forEachToken(sql, (t) => {
    out.push([t.kind, sql.slice(t.start, t.end)]);
  });
  return out;
}

describe('SQL tokenizer', () => {
  it('splits words, strings, quoted identifiers and symbols, skipping comments', () => {
    expect(tokens("SELECT `a;b`, 'x''y;z', \"q\\\"r\" /* c; */ FROM t -- tail;\n# more;\n;")).toEqual([
      [TokenKind.Word, 'SELECT'],
      [TokenKind.QuotedIdentifier, '`a;b`'],
      [TokenKind.Symbol, ','],
      [TokenKind.String, "'x''y;z'"],
      [TokenKind.Symbol, ','],
      [TokenKind.String, '"q\\"r"'],
      [TokenKind.Word, 'FROM'],
      [TokenKind.Word, 't'],
      [TokenKind.Semicolon, ';'],
    ]);
  });

  it('reads executable comments as code', () => {
    expect(tokens('/*!50000 KILL 5 */ ; /*M!100100 DO 1*/')).toEqual([
      [TokenKind.Word, 'KILL'],
      [TokenKind.Word, '5'],
      [TokenKind.Semicolon, ';'],
      [TokenKind.Word, 'DO'],
      [TokenKind.Word, '1'],
    ]);
  });

  it('does not take "--" without a following space as a comment', () => {
    expect(tokens('SELECT 1--1')).toEqual([
      [TokenKind.Word, 'SELECT'],
      [TokenKind.Word, '1'],
      [TokenKind.Symbol, '-'],
      [TokenKind.Symbol, '-'],
      [TokenKind.Word, '1'],
    ]);
  });

  it('survives unterminated strings and comments', () => {
    expect(tokens("SELECT 'abc")).toEqual([
      [TokenKind.Word, 'SELECT'],
      [TokenKind.String, "'abc"],
    ]);
    expect(tokens('SELECT /* open')).toEqual([[TokenKind.Word, 'SELECT']]);
  });

  it('finds the leading keyword of every statement of a batch', () => {
    expect(leadingKeywords("select 1; /* x */ kill 5; SELECT ';kill 6'; ")).toEqual(['SELECT', 'KILL', 'SELECT']);
  });
});

describe('KILL inside a batch', () => {
  it('is found only where a statement starts with it', () => {
    expect(batchContainsKill('DO 1; KILL 5')).toBe(true);
    expect(batchContainsKill('DO 1;/*!KILL 5*/')).toBe(true);
    expect(batchContainsKill("SELECT 'a; kill 5'")).toBe(false);
    expect(batchContainsKill('SELECT skill FROM t; SELECT killed FROM t')).toBe(false);
    expect(batchContainsKill('KILL 5')).toBe(false);
  });

  it('mentionsKill is a case-insensitive byte scan', () => {
    expect(mentionsKill(Buffer.from('\x03do 1; kIlL 5'), 1)).toBe(true);
    expect(mentionsKill(Buffer.from('\x03SELECT 1; SELECT 2'), 1)).toBe(false);
  });
});
