"""Fixtures for ingest tests: simulated footage (cached across sessions) and real RTSP cameras.

* ``sim_footage_cache`` (session): directory of rendered footage, ``$DUALCHECK_SIM_CACHE`` or
  ``<repo>/var/simulator`` (git-ignored); renders are keyed by a hash of script + parameters.
* ``render_footage`` (session): ``render_footage(script, **render_kwargs) -> Footage`` using that cache.
* ``sim_footage`` (session): the default test clip, ``scenario_short()`` at 640x360, 25 fps,
  keyframe every 2 s, 12 s loop (0-4 s empty, 4-8 s face obama.jpg, 8-12 s back turned).
* ``camera`` (function): a started :class:`SimulatedCamera` serving ``sim_footage``; stopped after.
* ``camera_factory`` (function): ``camera_factory(footage=None, **kwargs) -> started camera``; all
  cameras it made are stopped after the test.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from camsim import camera as sim_camera
from camsim.footage import default_cache_dir, render, scenario_short

TEST_FOOTAGE = dict(width=640, height=360, fps=25, bitrate=800_000, keyint_s=2.0)


@pytest.fixture(scope="session")
def sim_footage_cache() -> Path:
    d = default_cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def render_footage(sim_footage_cache, testdata):
    def _render(script, **kwargs):
        kwargs.setdefault("cache_dir", sim_footage_cache)
        kwargs.setdefault("testdata", testdata)
        return render(script, **kwargs)

    return _render


@pytest.fixture(scope="session")
def sim_footage(render_footage):
    return render_footage(scenario_short(), **TEST_FOOTAGE)


@pytest.fixture(scope="session")
def gst_server_available() -> None:
    probe = ("import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0'); "
             "from gi.repository import GstRtspServer")
    try:
        r = subprocess.run([sim_camera.SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"no {sim_camera.SYSTEM_PYTHON} for the GStreamer camera simulator: {e}")
    if r.returncode != 0:
        pytest.skip("GStreamer RTSP server bindings missing (apt-get install gir1.2-gst-rtsp-server-1.0 "
                    "python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good): "
                    + r.stderr.decode(errors="replace")[-300:])


@pytest.fixture
def camera_factory(gst_server_available, sim_footage):
    made: list[sim_camera.SimulatedCamera] = []

    def _make(footage=None, **kwargs) -> sim_camera.SimulatedCamera:
        cam = sim_camera.SimulatedCamera(footage or sim_footage, **kwargs)
        made.append(cam)
        return cam.start()

    yield _make
    for cam in made:
        cam.close()


@pytest.fixture
def camera(camera_factory) -> sim_camera.SimulatedCamera:
    return camera_factory()
