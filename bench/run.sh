#!/usr/bin/env bash
# Installs dependencies (sysbench, MariaDB, node_modules), builds wirecache and
# runs a benchmark:
#   bench/run.sh                 the pass-through benchmark (bench/run.ts)
#   BENCH_CACHE=1 bench/run.sh   the cache-hit benchmark (bench/cache.ts)
#   BENCH_ROUTING=1 bench/run.sh the read/write split benchmark (bench/routing.ts)
# Environment variables: see the header of bench/run.ts, bench/cache.ts and bench/routing.ts
# (BENCH_SECONDS, BENCH_ROUNDS, BENCH_OUT, ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh
npm run build
case "${BENCH_ROUTING:-0}" in
  0|'') ;;
  1) exec npx tsx bench/routing.ts "$@" ;;
  *) echo "BENCH_ROUTING must be 0 or 1, got '${BENCH_ROUTING}'" >&2; exit 2 ;;
esac
case "${BENCH_CACHE:-0}" in
  0|'') exec npx tsx bench/run.ts "$@" ;;
  1) exec npx tsx bench/cache.ts "$@" ;;
  *) echo "BENCH_CACHE must be 0 or 1, got '${BENCH_CACHE}'" >&2; exit 2 ;;
esac
