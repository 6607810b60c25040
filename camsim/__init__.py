"""Camera simulator for tests and demos: synthetic clinic footage with known truth, served over RTSP.

* :mod:`camsim.footage` composes and encodes the footage (venv side, numpy/OpenCV/PyAV).
* :mod:`camsim.rtsp_server` is the GStreamer RTSP server; it runs under Debian's
  ``/usr/bin/python3`` (stdlib + gi only) and is never imported from the venv.
* :mod:`camsim.camera` starts/stops one server process per camera (venv side).

Run ``python -m camsim --cameras 3`` for a demo.
"""
from __future__ import annotations

from .camera import CameraError, SimulatedCamera  # noqa: F401
from .footage import (  # noqa: F401
    Event,
    Footage,
    default_cache_dir,
    render,
    scenario_counter,
    scenario_ghost_visit,
    scenario_impersonation,
    scenario_short,
)
