# The two commands of the README. Both set the machine up first (idempotent).
.PHONY: run test setup bench docs

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
