#!/usr/bin/env bash
# The test command (README, .ci/run): set up, make sure PostgreSQL runs, run every test (in parallel).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "test: starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "test: PostgreSQL on 127.0.0.1:5432 is not running" >&2; exit 1; }
fi

# The floors (docs/architecture.md) and the import hygiene hold before anything runs: a later change
# cannot quietly make a stage import one above it.
layers=$(.venv/bin/lint-imports --no-cache 2>&1) || { echo "$layers"; echo "test: an import breaks the floors" >&2; exit 1; }
echo "test: import contracts: $(echo "$layers" | tail -n1)"
.venv/bin/ruff check --quiet . || { echo "test: ruff found unsorted or unused imports (ruff check --fix)" >&2; exit 1; }

# Several pytest-xdist workers: most slow tests wait on real time (RTSP cameras, recorders, Chromium), so
# more workers than cores still pays (docs/benchmarks.md, "The test suite"). --dist loadfile: a module's
# tests run in one worker, in order, so a module fixture (a served site, Chromium, a rendered scene) is built
# once (loadgroup's xdist_group marks do not group under pytest 9.2 with pytest-xdist 3.8: xdist issue 1386).
# DUALCHECK_TEST_WORKERS or ARGS choose otherwise ("-n 0": one process, as --pdb needs); a later -n wins.
workers=${DUALCHECK_TEST_WORKERS:-3}
.venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "test: pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit $rc
