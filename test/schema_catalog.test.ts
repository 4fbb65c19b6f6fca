import { describe, expect, it } from 'vitest';
import { decide } from '../src/cache/cache_policy.js';
import { SchemaCatalog } from '../src/cache/schema_catalog.js';
import { classify } from '../src/sql/classifier.js';
import { ServerStatus } from '../src/protocol/constants.js';

/** Definitions as MariaDB stores them in information_schema.VIEWS (qualified, back-quoted). */
const VIEWS = [
  { schema: 'app', name: 'v_orders', definition: 'select `app`.`orders`.`id` AS `id`,`app`.`customers`.`name` AS `name` from (`app`.`orders` join `app`.`customers` on(`app`.`orders`.`customer_id` = `app`.`customers`.`id`))' },
  { schema: 'app', name: 'v_totals', definition: 'select count(0) AS `n` from `app`.`v_orders`' },
  { schema: 'app', name: 'v_secret', definition: null },
];

describe('SchemaCatalog', () => {
  it('adds the base tables of each view, following views of views', () => {
    const c = new SchemaCatalog();
    expect(c.replace(VIEWS).sort()).toEqual(['app.v_orders', 'app.v_secret', 'app.v_totals']);
    expect(c.expand(['app.v_orders'])).toEqual(['app.v_orders', 'app.orders', 'app.customers']);
    expect(c.expand(['app.v_totals', 'app.items'])).toEqual(['app.v_totals', 'app.items', 'app.v_orders', 'app.orders', 'app.customers']);
  });

  it('gives a list without views back as it is, and null for a view whose definition it may not read', () => {
    const c = new SchemaCatalog();
    const tables = ['app.items'];
    expect(c.expand(tables)).toBe(tables);
    c.replace(VIEWS);
    expect(c.expand(tables)).toBe(tables);
    expect(c.expand(['app.v_secret'])).toBeNull();
  });

  it('reports the views that appeared, changed or went away', () => {
    const c = new SchemaCatalog();
    c.replace(VIEWS);
    expect(c.replace(VIEWS)).toEqual([]);
    const changed = [{ ...VIEWS[0], definition: 'select 1 AS `id` from `app`.`orders`' }, VIEWS[1]];
    expect(c.replace(changed).sort()).toEqual(['app.v_orders', 'app.v_secret']);
  });

  it('makes a cached read of a view depend on its base tables, and refuses one whose base tables are unknown', () => {
    const views = new SchemaCatalog();
    views.replace(VIEWS);
    const request = (sql: string) => ({
      statement: classify(sql),
      binary: false,
      metadataFlags: 0,
      params: '',
      user: 'u',
      schema: 'app',
      stateKey: '',
      clientAddress: '127.0.0.1',
      status: ServerStatus.AUTOCOMMIT,
    });
    const config = { mode: 'all', rules: [], defaultTtlSeconds: 60, defaultSoftTtlSeconds: null, maxResultBytes: 1 << 20 } as never;
    const plan = decide(config, request('SELECT * FROM v_totals'), views);
    expect(plan.cache && plan.deps).toEqual(['*', 'rule:', 'app.v_totals', 'app.v_orders', 'app.orders', 'app.customers']);
    const refused = decide(config, request('SELECT * FROM v_secret'), views);
    expect(refused).toMatchObject({ cache: false, reason: 'view' });
  });
});

describe('SchemaCatalog: stored functions', () => {
  it('finds calls by name in any case, back-quoted or qualified, with spaces before the parenthesis', () => {
    const c = new SchemaCatalog();
    expect(c.callsFunction('SELECT f_price(1)')).toBe(false);
    c.replaceFunctions([{ schema: 'app', name: 'f_price' }]);
    for (const sql of ['SELECT f_price(1)', 'select F_PRICE (1)', 'SELECT app.`f_price`(2)', 'SELECT x FROM t WHERE y = f_price(x)']) expect(c.callsFunction(sql), sql).toBe(true);
    for (const sql of ['SELECT f_price FROM t', 'SELECT my_f_price(1)', 'SELECT f_prices(1)']) expect(c.callsFunction(sql), sql).toBe(false);
  });

  it('a view that calls one makes its reads call one; caching refuses both', () => {
    const c = new SchemaCatalog();
    c.replaceFunctions([{ schema: 'app', name: 'f_price' }]);
    c.replace([
      { schema: 'app', name: 'v_priced', definition: 'select `app`.`items`.`id` AS `id`,`app`.`f_price`(`app`.`items`.`id`) AS `p` from `app`.`items`' },
      { schema: 'app', name: 'v_plain', definition: 'select `app`.`items`.`id` AS `id` from `app`.`items`' },
    ]);
    expect(c.readsFunctionView(c.expand(['app.v_priced'])!)).toBe(true);
    expect(c.readsFunctionView(c.expand(['app.v_plain'])!)).toBe(false);
    const config = { mode: 'all', rules: [], defaultTtlSeconds: 60, defaultSoftTtlSeconds: null, maxResultBytes: 1 << 20 } as never;
    const request = (sql: string) => ({ statement: classify(sql), binary: false, metadataFlags: 0, params: '', user: 'u', schema: 'app', stateKey: '', clientAddress: '127.0.0.1', status: ServerStatus.AUTOCOMMIT });
    expect(decide(config, request('SELECT * FROM v_priced'), c)).toMatchObject({ cache: false, reason: 'stored_function' });
    expect(decide(config, request('SELECT f_price(2)'), c)).toMatchObject({ cache: false, reason: 'stored_function' });
    expect(decide(config, request('SELECT * FROM v_plain'), c)).toMatchObject({ cache: true });
  });
});

describe('SchemaCatalog: base tables', () => {
  it('knows a read of only base tables (a bare name in the given schema), exactly as the server names them; nothing before the first read', () => {
    const c = new SchemaCatalog();
    const t = (schema: string | null, table: string) => ({ schema, table });
    expect(c.onlyBaseTables([t('app', 'items')], 'app')).toBe(false);
    c.replaceTables([
      { schema: 'app', name: 'items' },
      { schema: 'app', name: 'Orders' },
    ]);
    expect(c.onlyBaseTables([], null)).toBe(true);
    expect(c.onlyBaseTables([t('app', 'items'), t(null, 'Orders')], 'app')).toBe(true);
    // A view, another case, another schema, a bare name without a database, a system view: not known.
    for (const [tables, schema] of [
      [[t('app', 'v_items')], 'app'],
      [[t('app', 'orders')], 'app'],
      [[t(null, 'items')], 'other'],
      [[t(null, 'items')], null],
      [[t('information_schema', 'SESSION_STATUS')], 'app'],
      [[t('app', 'items'), t('performance_schema', 'events_statements_history')], 'app'],
    ] as const) {
      expect(c.onlyBaseTables(tables, schema), JSON.stringify(tables)).toBe(false);
    }
  });
});
