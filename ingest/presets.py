"""RTSP URLs of the camera makes installed at Chinese clinics and pharmacies, built the way each
vendor documents them (sources in docs/recording.md, "Vendor presets"):

* Hikvision (海康威视): ``/Streaming/Channels/<ID>``, ID = channel x 100 + stream type (1 main,
  2 sub): 101 is channel 1's main stream, 102 its sub-stream (Hikvision's ISAPI RTSP reference);
* Dahua (大华): ``/cam/realmonitor?channel=<N>&subtype=<0 main | 1 sub>``;
* Uniview (宇视): ``/unicast/c<N>/s<0 main | 1 sub>/live``.

The URLs carry no credentials: they are given apart and sealed as for any camera.
"""
from __future__ import annotations

import ipaddress
import re

VENDORS = ("hikvision", "dahua", "uniview")
STREAMS = ("main", "sub")
MAX_CHANNEL = 512  # the largest NVRs have 256 channels; Hikvision numbers digital ones after analog
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                       r"[A-Za-z0-9])?)*$")


class PresetError(ValueError):
    pass


def _host(host: str) -> str:
    host = (host or "").strip()
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
        return f"[{ip}]" if ip.version == 6 else str(ip)
    except ValueError:
        pass
    if not _HOSTNAME.match(host):
        raise PresetError(f"--host {host[:80]!r} is not an IP address or a host name")
    return host


def vendor_url(vendor: str, host: str, channel: int = 1, stream: str = "main", port: int = 554) -> str:
    """The documented RTSP URL of ``stream`` (main | sub) of ``channel`` (1-based) of a camera or NVR."""
    if vendor not in VENDORS:
        raise PresetError(f"--vendor must be one of {', '.join(VENDORS)}")
    if stream not in STREAMS:
        raise PresetError("--stream must be main or sub")
    if not 1 <= channel <= MAX_CHANNEL:
        raise PresetError(f"--channel must be 1-{MAX_CHANNEL}")
    if not 1 <= port <= 65535:
        raise PresetError("--port must be 1-65535")
    base = f"rtsp://{_host(host)}:{port}"
    sub = stream == "sub"
    if vendor == "hikvision":
        return f"{base}/Streaming/Channels/{channel * 100 + (2 if sub else 1)}"
    if vendor == "dahua":
        return f"{base}/cam/realmonitor?channel={channel}&subtype={1 if sub else 0}"
    return f"{base}/unicast/c{channel}/s{1 if sub else 0}/live"
