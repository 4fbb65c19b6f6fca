#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { startApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

function loadOrExit(file: string) {
  try {
    return loadConfig(file);
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : `cannot read config ${file}: ${(err as Error).message}`}\n`);
    process.exit(2);
  }
}

async function run(file: string): Promise<void> {
  const config = loadOrExit(file);
  const logger = createLogger(config.log.level);
  process.on('uncaughtException', (err) => {
    // A bug in one session must not take every client down with it; it is logged loudly instead.
    logger.fatal({ err }, 'uncaught exception');
  });
  const app = await startApp(config, logger).catch((err: Error) => {
    logger.fatal({ err: err.message }, 'could not start');
    process.exit(1);
  });
  const stop = (signal: string) => {
    logger.info({ signal }, 'signal received');
    void app.stop().then(() => process.exit(0));
  };
  // SIGHUP re-reads the config: an invalid file is logged and refused, the running config stays.
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, 'reloading the config');
    void app.reload();
  });
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

const program = new Command()
  .name('wirecache')
  .description('Transparent MySQL wire-protocol caching proxy')
  .version(pkg.version)
  .option('-c, --config <file>', 'configuration file (YAML)')
  .action(async (opts: { config?: string }) => {
    if (!opts.config) program.error('missing --config FILE (see config.example.yaml)');
    await run(opts.config!);
  });

program
  .command('check-config')
  .description('validate a configuration file and exit non-zero on error')
  .argument('<file>', 'configuration file (YAML)')
  .action((file: string) => {
    const config = loadOrExit(file);
    process.stdout.write(
      `${config.sourcePath}: OK (${config.backends.length} backend(s), ${config.users.length} user(s), listen ${config.listen.host}:${config.listen.port})\n`,
    );
  });

await program.parseAsync(process.argv);
