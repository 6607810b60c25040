#!/usr/bin/env bash
# Regenerate the settings table in docs/configuration.md from the settings object.
set -euo pipefail
cd "$(dirname "$0")/.."
head=$(sed '/^| variable | default | meaning |$/,$d' docs/configuration.md)
{ printf '%s\n' "$head"; .venv/bin/dualcheck config --docs; } > docs/configuration.md.new
mv docs/configuration.md.new docs/configuration.md
