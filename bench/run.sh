#!/usr/bin/env bash
# Installs dependencies (sysbench, MariaDB, node_modules), builds wirecache and
# runs the pass-through benchmark. Environment variables: see bench/run.ts
# (BENCH_SECONDS, BENCH_OUT, ...). Usage: bench/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh
npm run build
exec npx tsx bench/run.ts "$@"
