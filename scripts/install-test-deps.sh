#!/usr/bin/env bash
# Installs what the test suite needs that a fresh Debian machine lacks: the
# non-Go clients of the compatibility suite (compat/): kcat (librdkafka) and
# the Python clients, which must import under Debian's /usr/bin/python3;
# PostgreSQL's server binaries for the database-backed tests; and Burrow
# (the lag monitor) with the ZooKeeper it coordinates through (package
# zookeeper only: compat starts it as a process, no service is enabled).
# Idempotent: does nothing when everything is present. Needs root for apt-get.
# With --check it only reports what is missing (exit 1 if anything is).
set -euo pipefail

py=/usr/bin/python3

missing() {
  need=()
  [ -x "$py" ] || need+=(python3)
  command -v kcat >/dev/null 2>&1 || need+=(kcat)
  { [ -x "$py" ] && "$py" -c 'import confluent_kafka' >/dev/null 2>&1; } || need+=(python3-confluent-kafka)
  { [ -x "$py" ] && "$py" -c 'import kafka' >/dev/null 2>&1; } || need+=(python3-kafka)
  # PostgreSQL server binaries for internal/pgtest (outbox, consumer tests).
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
  # Burrow and ZooKeeper for compat's TestGroupBurrow.
  command -v Burrow >/dev/null 2>&1 || need+=(burrow)
  { [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1; } || need+=(zookeeper)
}

missing
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "install-test-deps: missing ${need[*]}" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: missing ${need[*]} and not root; install them with apt-get" >&2
  exit 1
fi
echo "install-test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

missing
if [ ${#need[@]} -ne 0 ]; then
  echo "install-test-deps: still missing after apt-get: ${need[*]}" >&2
  exit 1
fi
