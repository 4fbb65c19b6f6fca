/**
 * The memcached API's statements: keys and values only ever as hex literals
 * (no quoting a client could break out of), identifiers in backticks, the
 * expiry column assigned last (add's conditions read the old one), and the
 * live-row condition where the container has an expiry column.
 */
import { describe, expect, it } from 'vitest';
import { ContainerSql } from '../src/memcached_api/container_sql.js';
import { container } from './memcached-api-harness.js';

const sessions = new ContainerSql(container('sessions', 'app', 'sessions'));

describe('ContainerSql', () => {
  it('puts keys and values in as hex, whatever bytes they hold', () => {
    const key = Buffer.from("x'; DROP TABLE t; -- \\");
    const sql = sessions.set(key, { values: [Buffer.from([0, 0x27, 0x5c, 0xff])], flags: 3, cas: 7n, expiry: 0 });
    expect(sql).toBe(
      `INSERT INTO \`app\`.\`sessions\` (\`id\`, \`value\`, \`flags\`, \`cas\`, \`expiry\`) VALUES (X'${key.toString('hex')}', X'00275cff', 3, 7, 0) ON DUPLICATE KEY UPDATE \`value\` = VALUES(\`value\`), \`flags\` = VALUES(\`flags\`), \`cas\` = VALUES(\`cas\`), \`expiry\` = VALUES(\`expiry\`)`,
    );
    expect(sql).not.toContain('DROP');
    expect(sessions.select([key, Buffer.alloc(0)])).toBe(
      `SELECT \`id\`, \`value\`, \`flags\`, \`cas\`, \`expiry\` FROM \`app\`.\`sessions\` WHERE \`id\` IN (X'${key.toString('hex')}', '')`,
    );
  });

  it('add keeps a live row and replaces an expired one, the expiry column assigned last', () => {
    const sql = sessions.add(Buffer.from('k'), { values: [Buffer.from('v')], flags: 0, cas: 1n, expiry: 0 }, 1000);
    const live = '(`expiry` = 0 OR `expiry` > 1000)';
    expect(sql).toContain(`\`value\` = IF(${live}, \`value\`, VALUES(\`value\`))`);
    expect(sql.endsWith(`\`expiry\` = IF(${live}, \`expiry\`, VALUES(\`expiry\`))`)).toBe(true);
  });

  it('cas, delete and touch name one live row; without a cas column no cas matches', () => {
    expect(sessions.replace(Buffer.from('k'), { values: [Buffer.from('v')], flags: 0, cas: 9n, expiry: 0 }, 1000, 5n)).toMatch(
      /WHERE `id` = X'6b' AND \(`expiry` = 0 OR `expiry` > 1000\) AND `cas` = 5$/,
    );
    expect(sessions.delete(Buffer.from('k'), 1000, null)).toBe("DELETE FROM `app`.`sessions` WHERE `id` = X'6b' AND (`expiry` = 0 OR `expiry` > 1000)");
    expect(sessions.touch(Buffer.from('k'), 2000, 1000)).toBe("UPDATE `app`.`sessions` SET `expiry` = 2000 WHERE `id` = X'6b' AND (`expiry` = 0 OR `expiry` > 1000)");
    const bare = new ContainerSql({ name: 'b', schema: 's', table: 't', keyColumn: 'k', valueColumns: ['a', 'b'], separator: '|', flagsColumn: null, casColumn: null, expiryColumn: null });
    expect(bare.delete(Buffer.from('k'), 1000, 3n)).toBe("DELETE FROM `s`.`t` WHERE `k` = X'6b' AND TRUE AND FALSE");
    expect(bare.selectList).toBe('`k`, `a`, `b`, 0, 0, 0');
    expect(bare.deleteExpired(1000, 10)).toBeNull();
    expect(sessions.deleteExpired(1000, 10)).toBe('DELETE FROM `app`.`sessions` WHERE `expiry` <> 0 AND `expiry` <= 1000 LIMIT 10');
  });
});
