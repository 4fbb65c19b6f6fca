#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { startApp } from './app.js';
import { loadConfig } from './config/load.js';
import { ConfigError } from './config/yaml_locations.js';
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

/** The config file given as an argument or with --config (the subcommand's or the main command's); both at once must agree. */
function configFrom(cmd: Command, arg: string | undefined): string | undefined {
  const opt = cmd.optsWithGlobals<{ config?: string }>().config;
  if (arg !== undefined && opt !== undefined && arg !== opt) {
    cmd.error(`give the config file once: as an argument (${arg}) or with --config (${opt})`, { exitCode: 2 });
  }
  return arg ?? opt;
}

const START_HELP = `
Start the proxy with a configuration file (see config.example.yaml):
  wirecache --config wirecache.yaml     (or: wirecache wirecache.yaml, wirecache run wirecache.yaml)
Check a configuration without starting:
  wirecache check-config wirecache.yaml
Dry run of the cache and routing rules over a SQL file or a general/slow log:
  wirecache rules test --config wirecache.yaml queries.sql
Signals: SIGTERM/SIGINT stop (letting statements in flight finish), SIGHUP reloads the config.
Help on one command: wirecache help <command>
`;

const program = new Command()
  .name('wirecache')
  .description('Transparent MySQL wire-protocol caching proxy')
  .usage('[options] [config] | <command> [options]')
  .version(pkg.version)
  .helpCommand(true)
  .argument('[config]', 'configuration file (YAML): starts the proxy, as `run` does')
  .option('-c, --config <file>', 'configuration file (YAML)')
  .addHelpText('after', START_HELP)
  .action(async (file: string | undefined, _opts: unknown, cmd: Command) => {
    const config = configFrom(cmd, file);
    if (!config) {
      // No arguments at all: how to use it, on stderr, and the usage-error exit code.
      process.stderr.write(program.helpInformation());
      process.stderr.write(START_HELP);
      process.exit(2);
    }
    await run(config);
  });

program
  .command('run')
  .description('start the proxy (the same as `wirecache --config FILE`)')
  .argument('[config]', 'configuration file (YAML)')
  .option('-c, --config <file>', 'configuration file (YAML)')
  .action(async (file: string | undefined, _opts: unknown, cmd: Command) => {
    const config = configFrom(cmd, file);
    if (!config) cmd.error('missing the config file: wirecache run FILE (or --config FILE; see config.example.yaml)', { exitCode: 2 });
    await run(config!);
  });

program
  .command('check-config')
  .description('validate a configuration file (and its rules file) and exit 2 on error, listing every error found')
  .argument('[config]', 'configuration file (YAML)')
  .option('-c, --config <file>', 'configuration file (YAML)')
  .action((file: string | undefined, _opts: unknown, cmd: Command) => {
    const path = configFrom(cmd, file);
    if (!path) cmd.error('missing the config file: wirecache check-config FILE (or --config FILE)', { exitCode: 2 });
    const config = loadOrExit(path!);
    process.stdout.write(
      `${config.sourcePath}: OK (${config.backends.length} backend(s), ${config.users.length} user(s), listen ${config.listen.host}:${config.listen.port})\n`,
    );
  });

// `wirecache rules test`: a dry run of the rules over a SQL file or a general/slow log.
program
  .command('rules')
  .description('work with cache and routing rules')
  .command('test')
  .description(
    'for each statement of a SQL file or a MariaDB/MySQL general or slow log: the rule it matches, ' +
      'whether it would be cached (and why not) and where it would go; exits 2 on a config or rules file error',
  )
  .usage('[options] [config] <queries>')
  .argument('<files...>', 'the configuration file (YAML; or give it with --config), then the queries: a plain SQL file (statements ended by ";"), general log or slow log')
  .option('-c, --config <file>', 'configuration file (YAML) whose rules and routing are tested')
  .option('--user <name>', "user for statements the file does not name one for (default: the config's first user)")
  .option('--schema <name>', 'default schema for statements the file does not give one for (default: none)')
  .option('--client <address>', 'client IP address for rules with match.clients (default: 127.0.0.1)')
  .option('--json', 'print the rows as JSON')
  .action(async (files: string[], _opts: unknown, cmd: Command) => {
    // --config is also the main command's option, which commander may have taken: look in both.
    const opts = cmd.optsWithGlobals<{ config?: string; user?: string; schema?: string; client?: string; json?: boolean }>();
    if (files.length > 2) cmd.error('give at most two files: [config] <queries>', { exitCode: 2 });
    const queries = files[files.length - 1];
    opts.config = configFrom(cmd, files.length === 2 ? files[0] : undefined);
    if (!opts.config) cmd.error('missing the config file: wirecache rules test CONFIG QUERIES (or --config CONFIG QUERIES)', { exitCode: 2 });
    // `... | head` closes the pipe early: that ends the output, it is not an error.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1));
    const config = loadOrExit(opts.config!);
    let text: string;
    try {
      text = readFileSync(queries, 'utf8');
    } catch (err) {
      process.stderr.write(`cannot read queries file ${queries}: ${(err as Error).message}\n`);
      process.exit(2);
    }
    const { readStatements } = await import('./plan/sql_log_reader.js');
    const { dryRun, formatDryRun } = await import('./plan/rules_dry_run.js');
    const file = readStatements(text);
    const rows = dryRun(config, file.statements, { user: opts.user, schema: opts.schema, client: opts.client });
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ file: queries, format: file.format, config: config.sourcePath, rows }, null, 2)}\n`);
      return;
    }
    const kind = { sql: 'SQL file', general_log: 'general log', slow_log: 'slow log' }[file.format];
    process.stdout.write(`${queries} (${kind}): ${rows.length} statement(s), rules of ${config.sourcePath}\n\n`);
    if (rows.length > 0) process.stdout.write(formatDryRun(rows, { regexText: config.cache?.rules.some((r) => r.match.regex !== null) ?? false }));
  });

await program.parseAsync(process.argv);
