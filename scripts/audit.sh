#!/usr/bin/env bash
# pip-audit over the locked dependencies (requirements.lock). Fails on a known vulnerability.
# Where the vulnerability service cannot be reached (as on the project's CI machines), prints a loud
# "NOT AUDITED: <reason>" and exits 0; AUDIT_STRICT=1 makes that a failure (exit 3).
# AUDIT_SERVICE=osv|pypi chooses the service (default: pypi).
set -uo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/pip-audit ] || bash scripts/setup.sh || exit 1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# --disable-pip: the lock pins every package with hashes, so nothing needs to be resolved or installed.
.venv/bin/pip-audit --requirement requirements.lock --disable-pip --progress-spinner off \
  --vulnerability-service "${AUDIT_SERVICE:-pypi}" --format json --output "$work/report.json" \
  >"$work/stdout" 2>"$work/stderr"
rc=$?
exec .venv/bin/python scripts/audit_verdict.py "$work/report.json" "$rc" "$work/stderr"
