#!/usr/bin/env python3
"""Regenerate docs/screenshots/*.png (queue, flag detail, cameras, overview, institution view, 300 cameras,
camera settings).

Runs the screenshot test against a real uvicorn, real footage and headless Debian Chromium
(/usr/bin/chromium): ``.venv/bin/python scripts/screenshots.py``."""
import os
import subprocess
import sys
from pathlib import Path

repo = Path(__file__).resolve().parents[1]
env = {**os.environ, "DUALCHECK_SCREENSHOTS": "1"}
sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", "tests/web/test_screenshots.py",
                          "tests/web/test_cameras_fleet.py"], cwd=repo, env=env))
