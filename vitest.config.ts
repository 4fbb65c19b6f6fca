import { defineConfig } from 'vitest/config';

/**
 * Test files that need no database, no memcached and no other process: they run
 * without test/global-setup.ts (`npm run test:unit`, in seconds). Every other
 * file under test/ is an integration test and gets the shared MariaDB/memcached
 * topology. A new file lands in the integration project unless it is listed here.
 */
export const UNIT_TEST_FILES = [
  'test/backend_links.test.ts',
  'test/binlog_events.test.ts',
  'test/cache_decide.test.ts',
  'test/decision_memo.test.ts',
  'test/cache_policy.test.ts',
  'test/caching_sha2_password.test.ts',
  'test/cli_usage.test.ts',
  'test/config.test.ts',
  'test/dashboard_page.test.ts',
  'test/gtid.test.ts',
  'test/logger.test.ts',
  'test/memcached_binary_protocol.test.ts',
  'test/memcached_container_sql.test.ts',
  'test/memcached_item_cache.test.ts',
  'test/memcached_text_protocol.test.ts',
  'test/layers.test.ts',
  'test/login_pool_queue.test.ts',
  'test/metrics.test.ts',
  'test/multiplexing_rules.test.ts',
  'test/protocol.test.ts',
  'test/query_stats.test.ts',
  'test/result_replay.test.ts',
  'test/router.test.ts',
  'test/row_images.test.ts',
  'test/server_selector.test.ts',
  'test/session_state.test.ts',
  'test/session_track.test.ts',
  'test/sql_classifier.test.ts',
  'test/sql_text.test.ts',
  'test/statement_plan.test.ts',
  'test/schema_catalog.test.ts',
];

export default defineConfig({
  test: {
    // One shared MariaDB topology: files run one after another so a test that
    // restarts or floods a server cannot disturb another file's assertions.
    // (`npm run test:unit` turns file parallelism back on for the unit project alone.)
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // `vitest run` runs both projects; `--project unit` / `--project integration` one of them.
    // The global setup belongs to the integration project only, so a unit run never starts MariaDB.
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: UNIT_TEST_FILES },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: UNIT_TEST_FILES,
          globalSetup: ['test/global-setup.ts'],
        },
      },
    ],
  },
});
