#!/usr/bin/env bash
# Installs what the test suite / demo / benchmarks need, idempotently and without prompting:
#   - Debian packages: mariadb-server, mariadb-client, memcached, openssl, sysbench, php-cli, php-mysql, chromium,
#     mediawiki (its real installer runs through the split in test/mediawiki_install.test.ts),
#     libmemcached-tools (memccapable, memcslap) and php-memcached (PHP's memcached extension as the
#     session handler), both for the memcached API tests (test/memcached_api.test.ts, test/memcached_clients.test.ts)
#   - node_modules (npm ci, or npm install when there is no package-lock.json)
#
# Usage: scripts/install-deps.sh [--minimal]
#   --minimal   skip sysbench, php, chromium, mediawiki, libmemcached-tools and php-memcached (enough for the demo)
#
# The system MariaDB service is never used (scripts/topology.ts runs its own
# mariadbd processes with --no-defaults); whatever the package's postinst does
# with it is irrelevant.
set -euo pipefail

log() { printf '[install-deps] %s\n' "$*" >&2; }

minimal=0
for arg in "$@"; do
  case "$arg" in
    --minimal) minimal=1 ;;
    -h|--help)
      sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 0
      ;;
    *)
      log "unknown argument: $arg"
      exit 2
      ;;
  esac
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# mariadbd lives in /usr/sbin, which is not always in a non-root PATH.
have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  local d
  for d in /usr/sbin /usr/local/sbin /sbin; do
    [ -x "$d/$1" ] && return 0
  done
  return 1
}

missing=()
have mariadbd || missing+=("mariadbd")
have mariadb-install-db || missing+=("mariadb-install-db")
have mariadb || missing+=("mariadb")
have memcached || missing+=("memcached")
# openssl makes the self-signed TLS pairs of the demo and the TLS tests.
have openssl || missing+=("openssl")
# A C compiler, make and python3 build native/fd_dup.c (node-gyp, at npm ci): the worker threads' listening sockets.
have cc || missing+=("cc")
have make || missing+=("make")
have python3 || missing+=("python3")
if [ "$minimal" -eq 0 ]; then
  have sysbench || missing+=("sysbench")
  if ! have php; then
    missing+=("php")
  else
    php_modules="$(php -m 2>/dev/null || true)"
    grep -qix 'mysqli' <<<"$php_modules" || missing+=("php:mysqli")
    grep -qix 'pdo_mysql' <<<"$php_modules" || missing+=("php:pdo_mysql")
    # php-memcached: the session handler of test/memcached_clients.test.ts.
    grep -qix 'memcached' <<<"$php_modules" || missing+=("php:memcached")
  fi
  # libmemcached-tools: memccapable (protocol checker) and memcslap (load) against the memcached API.
  have memccapable || missing+=("memccapable")
  have memcslap || missing+=("memcslap")
  # Headless Chromium for the dashboard test (test/dashboard.test.ts, driven by playwright-core).
  have chromium || missing+=("chromium")
  # MediaWiki 1.39, whose installer (maintenance/install.php) is run through the split by test/mediawiki_install.test.ts.
  [ -f /usr/share/mediawiki/maintenance/install.php ] || missing+=("mediawiki")
fi

if [ "${#missing[@]}" -gt 0 ]; then
  log "missing: ${missing[*]}"
  packages=(mariadb-server mariadb-client memcached openssl build-essential python3)
  if [ "$minimal" -eq 0 ]; then
    packages+=(sysbench php-cli php-mysql chromium mediawiki libmemcached-tools php-memcached)
  fi

  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo_cmd=(sudo -n)
    else
      log "not root and sudo is not available: install ${packages[*]} manually"
      exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get not found: install ${packages[*]} with your package manager"
    exit 1
  fi

  export DEBIAN_FRONTEND=noninteractive
  # mediawiki pulls in apache2, whose postinst starts the service: in a container
  # or chroot that fails (or hangs). A policy-rc.d that answers 101 ("action not
  # allowed") makes invoke-rc.d skip every start; it is put in place only for this
  # install and only when there is none already (Docker images ship one).
  policy_rc_d=/usr/sbin/policy-rc.d
  if [ ! -e "$policy_rc_d" ]; then
    log "installing a temporary $policy_rc_d (no service starts during the install)"
    printf '#!/bin/sh\n# temporary, from wirecache scripts/install-deps.sh\nexit 101\n' \
      | ${sudo_cmd[@]+"${sudo_cmd[@]}"} tee "$policy_rc_d" >/dev/null
    ${sudo_cmd[@]+"${sudo_cmd[@]}"} chmod 755 "$policy_rc_d"
    trap '${sudo_cmd[@]+"${sudo_cmd[@]}"} rm -f "$policy_rc_d"' EXIT
  fi
  log "running: apt-get update"
  ${sudo_cmd[@]+"${sudo_cmd[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update >&2
  log "running: apt-get install -y --no-install-recommends ${packages[*]}"
  ${sudo_cmd[@]+"${sudo_cmd[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${packages[@]}" >&2
else
  if [ "$minimal" -eq 1 ]; then
    log "system packages present (mariadb, memcached)"
  else
    log "system packages present (mariadb, memcached, sysbench, php with mysqli + pdo_mysql + memcached, chromium, mediawiki, libmemcached-tools)"
  fi
fi

cd "$repo_root"
if ! command -v npm >/dev/null 2>&1; then
  log "npm not found: install Node.js >= 20 first"
  exit 1
fi
if [ -f package-lock.json ]; then
  if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] \
     || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "running: npm ci"
    npm ci >&2
  else
    log "node_modules up to date"
  fi
else
  if [ ! -d node_modules ]; then
    log "no package-lock.json: running npm install"
    npm install >&2
  else
    log "node_modules present (no package-lock.json)"
  fi
fi
# npm ci builds the native addon (the install script); a checkout whose node_modules predate it builds it here.
if [ ! -f build/Release/fd_dup.node ] || [ native/fd_dup.c -nt build/Release/fd_dup.node ]; then
  log "building the native addon (node-gyp)"
  npm run --silent install >&2
fi
log "done"
