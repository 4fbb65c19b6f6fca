#!/usr/bin/env bash
# Installs dependencies (sysbench, MariaDB, node_modules), builds wirecache and
# runs a benchmark:
#   bench/run.sh                 the pass-through benchmark (bench/run.ts)
#   BENCH_CACHE=1 bench/run.sh   the cache-hit benchmark (bench/cache.ts)
# Environment variables: see the header of bench/run.ts and bench/cache.ts
# (BENCH_SECONDS, BENCH_ROUNDS, BENCH_OUT, ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh
npm run build
case "${BENCH_CACHE:-0}" in
  0|'') exec npx tsx bench/run.ts "$@" ;;
  1) exec npx tsx bench/cache.ts "$@" ;;
  *) echo "BENCH_CACHE must be 0 or 1, got '${BENCH_CACHE}'" >&2; exit 2 ;;
esac
