#!/usr/bin/env bash
# Starts the demo: installs what it needs (Debian packages, node_modules),
# then a local MariaDB primary + 2 replicas + memcached and wirecache on
# 127.0.0.1:6033 in front of them. Ctrl-C stops and removes everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-deps.sh --minimal
exec node --import tsx scripts/demo.ts
