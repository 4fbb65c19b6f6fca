#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with Node 20: installs
# what it needs (Debian packages, node_modules), type-checks, checks the layer
# rules (dependency-cruiser), builds, then
# runs vitest. The tests start their own MariaDB/memcached instances.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-deps.sh
npx tsc -p tsconfig.json --noEmit
# Layer rules (.dependency-cruiser.cjs): protocol/sql/cache/routing/session import only what their layer may.
npm run --silent check:layers
npm run build --silent
mkdir -p .tmp
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.tmp/vitest-report.json "$@" || status=$?
# A plain closing line ("N passed, N failed, N skipped") that any CI log reader understands.
node -e '
  const r = JSON.parse(require("fs").readFileSync(".tmp/vitest-report.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit "$status"
