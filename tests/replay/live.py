"""Serve an ASGI app over real HTTP on a free port (uvicorn in a thread) for ffmpeg and Chromium."""
from __future__ import annotations

import contextlib
import threading
import time

import uvicorn

from tests.conftest import free_port


@contextlib.contextmanager
def serve(app):
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 10
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(10)
