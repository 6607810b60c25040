"""Fixtures of the observability tests: JSON log capture of this process (real handler, real formatter)."""
from __future__ import annotations

import io
import json
import logging

import pytest

from tests.api.conftest import api_sqlite, shared_pipeline  # noqa: F401  (fixtures)


class JsonLogs:
    def __init__(self, buf: io.StringIO):
        self.buf = buf

    @property
    def text(self) -> str:
        return self.buf.getvalue()

    def records(self) -> list[dict]:
        lines = [ln for ln in self.text.splitlines() if ln.strip()]
        out = []
        for ln in lines:
            out.append(json.loads(ln))  # every line is one JSON object, or this fails
        return out


@pytest.fixture
def json_logs():
    """Everything this process logs, at DEBUG, through dualcheck's JSON setup (role 'api')."""
    from kernel import logs

    root = logging.getLogger()
    level = root.level
    buf = io.StringIO()
    handler = logs.setup("DEBUG", "json", "api", stream=buf)
    yield JsonLogs(buf)
    root.removeHandler(handler)
    root.setLevel(level)
    logs.set_role("cli")


from tests.correlate.conftest import world, world_sqlite  # noqa: E402,F401  (settlements, flags, API)
from tests.ingest.conftest import (  # noqa: E402,F401  (fixtures: real RTSP cameras)
    camera_factory,
    gst_server_available,
    render_footage,
    sim_footage,
    sim_footage_cache,
)
from tests.ingest.conftest_recorder import rec_env  # noqa: E402,F401
