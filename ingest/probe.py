"""A stream test: can the recorder open this camera, and what does it send? Opens the RTSP stream as
the recorder does (TCP, socket timeout), reads up to the first decodable picture and returns it as a
JPEG with the codec, size and how long it took. Nothing is recorded or stored."""
from __future__ import annotations

import time
from dataclasses import dataclass

import av
import cv2

from ingest.cameras import RtspTarget
from ingest.recorder import redact

MAX_PACKETS = 600  # a camera that sends this many packets without a decodable picture fails the test


@dataclass
class ProbeResult:
    ok: bool
    seconds: float
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    jpeg: bytes | None = None
    error: str | None = None

    def view(self) -> dict:
        """What the API and CLI report (the picture apart)."""
        return {"ok": self.ok, "seconds": round(self.seconds, 3), "codec": self.codec, "width": self.width,
                "height": self.height, "fps": self.fps, "error": self.error}


def probe_stream(url: str, username: str | None, password: str | None, timeout_s: float) -> ProbeResult:
    """Open ``url`` with the credentials and decode its first picture within about ``timeout_s``.
    Errors are returned (with the credentials redacted), never raised."""
    t0 = time.monotonic()
    full = RtspTarget(url, username, password).with_credentials()
    try:
        with av.open(full, options={"rtsp_transport": "tcp", "timeout": str(int(timeout_s * 1e6))},
                     timeout=(timeout_s, timeout_s)) as c:
            if not c.streams.video:
                return ProbeResult(False, time.monotonic() - t0, error="the stream has no video")
            st = c.streams.video[0]
            fps = float(st.average_rate) if st.average_rate else None
            for n, pkt in enumerate(c.demux(st)):
                if n >= MAX_PACKETS or time.monotonic() - t0 > timeout_s:
                    break
                for fr in pkt.decode():
                    ok, jpg = cv2.imencode(".jpg", fr.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, 85])
                    return ProbeResult(True, time.monotonic() - t0, st.codec_context.name, fr.width, fr.height,
                                       fps, jpg.tobytes() if ok else None)
            return ProbeResult(False, time.monotonic() - t0, st.codec_context.name,
                               error=f"no decodable picture within {timeout_s:g} s")
    except Exception as e:  # PyAV errors, OSError, a refused or silent camera: the test's answer
        return ProbeResult(False, time.monotonic() - t0,
                           error=redact(f"{type(e).__name__}: {e}", username, password))
