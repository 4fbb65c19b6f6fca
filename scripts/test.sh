#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with Node 20: installs
# what it needs (Debian packages, node_modules), type-checks, builds, then
# runs vitest. The tests start their own MariaDB/memcached instances.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-deps.sh
npx tsc -p tsconfig.json --noEmit
npm run build --silent
npx vitest run "$@"
