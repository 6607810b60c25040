# The two commands of the README. Both set the machine up first (idempotent).
.PHONY: run test setup bench docs audit lock

run: setup          ## run the service on its embedded default (SQLite + local SeaweedFS + simulated cameras)
	.venv/bin/dualcheck run

test:               ## run every test against real SeaweedFS, PostgreSQL, SQLite, cameras and models
	bash scripts/test.sh $(ARGS)

setup:
	bash scripts/setup.sh

bench: setup
	.venv/bin/python bench/verify.py

docs:               ## regenerate generated documentation (settings table)
	bash scripts/gen-docs.sh

audit:              ## pip-audit of requirements.lock (fails on a known vulnerability; says NOT AUDITED when offline)
	bash scripts/audit.sh

lock:               ## re-pin requirements.lock from pyproject.toml (exact versions with hashes)
	.venv/bin/pip-compile --quiet --extra test --extra dev --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
