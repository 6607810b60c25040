"""Vendor presets (issue 18): `dualcheck cameras add --vendor hikvision|dahua|uniview --host --channel
--stream` registers the URL each vendor documents (main and sub-stream), the password sealed; a
simulator camera mounted at the vendor's path is then reachable through the registered URL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from camsim.camera import probe
from ingest.cameras import RtspTarget
from ingest.credentials import PREFIX as SEALED
from ingest.credentials import CredentialBox
from storage.db import session_scope
from storage.models import Camera
from tests.cli.conftest import make_cli
from tests.ingest.conftest import (  # noqa: F401  (fixtures)
    camera_factory,
    gst_server_available,
    render_footage,
    sim_footage,
    sim_footage_cache,
)

pytestmark = pytest.mark.slow  # each command is a `dualcheck` subprocess


@pytest.fixture
def cli(make_settings, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    settings = make_settings(db_url)
    run = make_cli(settings, db_url)
    run.settings = settings
    return run


def _cam(cli, cam_id: str) -> Camera:
    with session_scope(cli.sessions) as db:
        cam = db.scalar(select(Camera).where(Camera.id == cam_id))
        db.expunge(cam)
        return cam


@pytest.mark.parametrize("vendor,channel,main,sub", [
    ("hikvision", 3, "rtsp://10.1.2.3:554/Streaming/Channels/301", "rtsp://10.1.2.3:554/Streaming/Channels/302"),
    ("dahua", 2, "rtsp://10.1.2.3:554/cam/realmonitor?channel=2&subtype=0",
     "rtsp://10.1.2.3:554/cam/realmonitor?channel=2&subtype=1"),
    ("uniview", 1, "rtsp://10.1.2.3:554/unicast/c1/s0/live", "rtsp://10.1.2.3:554/unicast/c1/s1/live"),
])
def test_presets_register_the_documented_main_and_sub_stream(cli, vendor, channel, main, sub):
    cli("orgs", "add", "CLINIC-1", "--region", "east")
    out = cli("cameras", "add", "CAM-1", "--org", "CLINIC-1", "--role", "pharmacy_counter", "--vendor", vendor,
              "--host", "10.1.2.3", "--channel", str(channel), "--user", "admin", "--password", "Pa55:w/rd").stdout
    assert main in out and sub in out and "Pa55" not in out
    cam = _cam(cli, "CAM-1")
    assert (cam.rtsp_url, cam.rtsp_sub_url, cam.rtsp_username) == (main, sub, "admin")
    assert cam.rtsp_password.startswith(SEALED) and "Pa55" not in cam.rtsp_password  # sealed as any camera's
    # recording the sub-stream instead: that one URL, no second
    cli("cameras", "add", "CAM-2", "--org", "CLINIC-1", "--role", "pharmacy_counter", "--vendor", vendor,
        "--host", "10.1.2.3", "--channel", str(channel), "--stream", "sub")
    assert (_cam(cli, "CAM-2").rtsp_url, _cam(cli, "CAM-2").rtsp_sub_url) == (sub, None)


def test_preset_bad_input_is_refused_with_the_reason(cli):
    cli("orgs", "add", "CLINIC-1", "--region", "east")
    base = ["cameras", "add", "CAM-1", "--org", "CLINIC-1", "--role", "pharmacy_counter"]
    for extra, why in [
        (["--vendor", "axis", "--host", "10.0.0.1"], "--vendor must be one of hikvision, dahua, uniview"),
        (["--vendor", "dahua"], "--vendor needs --host"),
        (["--vendor", "dahua", "--host", "10.0.0.1", "--channel", "0"], "--channel must be 1-512"),
        (["--vendor", "dahua", "--host", "10.0.0.1", "--stream", "third"], "--stream must be main or sub"),
        (["--vendor", "dahua", "--host", "bad host/x"], "is not an IP address or a host name"),
        (["--vendor", "dahua", "--host", "10.0.0.1", "--url", "rtsp://10.0.0.1/x"], "either --url or --vendor"),
        ([], "either --url or --vendor"),
    ]:
        p = cli(*base, *extra, ok=False)
        assert p.returncode == 2 and why in p.stderr, (extra, p.stderr)
    with session_scope(cli.sessions) as db:
        assert db.scalar(select(Camera.id)) is None  # nothing half-registered


@pytest.mark.parametrize("vendor,mount", [("hikvision", "/Streaming/Channels/101"), ("uniview", "/unicast/c1/s0/live")])
def test_a_camera_at_the_vendors_path_is_reached_through_the_preset(cli, camera_factory, vendor, mount):  # noqa: F811
    cam = camera_factory(mount=mount, user="admin", password="s3cret!")
    cli("orgs", "add", "CLINIC-1", "--region", "east")
    cli("cameras", "add", "CAM-1", "--org", "CLINIC-1", "--role", "pharmacy_counter", "--vendor", vendor,
        "--host", "127.0.0.1", "--port", str(cam.port), "--user", "admin", "--password", "s3cret!")
    row = _cam(cli, "CAM-1")
    password = CredentialBox.from_settings(cli.settings).open(row.rtsp_password)
    assert probe(RtspTarget(row.rtsp_url, row.rtsp_username, password).with_credentials())
    assert not probe(row.rtsp_url)  # the credentials are needed, and were sealed, not dropped


def test_main_and_sub_stream_recording_and_analysis_are_set_per_camera(cli):
    cli("orgs", "add", "CLINIC-1", "--region", "east")
    base = ("cameras", "add", "CAM-S", "--org", "CLINIC-1", "--role", "pharmacy_counter",
            "--url", "rtsp://admin:pw@10.1.2.3/Streaming/Channels/101")
    for extra, why in (
            (("--record", "both"), "needs the camera's sub-stream URL"),
            (("--sub-url", "rtsp://10.1.2.3/Streaming/Channels/102", "--analyse", "sub"), "set record_streams to both"),
            (("--sub-url", "rtsp://10.1.2.3/Streaming/Channels/102", "--record", "all"), "record_streams must be one of"),
            (("--sub-url", "rtsp://admin:pw@10.1.2.3/Streaming/Channels/102"), "not in its sub-stream URL")):
        p = cli(*base, *extra, ok=False)
        assert p.returncode == 2 and why in p.stderr, (extra, p.stderr)
    out = cli(*base, "--sub-url", "rtsp://10.1.2.3/Streaming/Channels/102", "--record", "both",
              "--analyse", "sub").stdout
    assert "Channels/102" in out and "pw" not in out
    cam = _cam(cli, "CAM-S")
    assert (cam.rtsp_sub_url, cam.record_streams, cam.analyse_stream) == (
        "rtsp://10.1.2.3/Streaming/Channels/102", "both", "sub")
    # back to the main stream for the checks, then recording it alone; a sub-only check cannot stay
    p = cli("cameras", "streams", "CAM-S", "--record", "main", ok=False)
    assert p.returncode == 2 and "set record_streams to both" in p.stderr
    out = cli("cameras", "streams", "CAM-S", "--analyse", "main", "--record", "main").stdout
    assert "records main, checks read main" in out
    cam = _cam(cli, "CAM-S")
    assert (cam.rtsp_sub_url, cam.record_streams, cam.analyse_stream) == (
        "rtsp://10.1.2.3/Streaming/Channels/102", "main", "main")
    cli("cameras", "streams", "CAM-S", "--sub-url", "")
    assert _cam(cli, "CAM-S").rtsp_sub_url is None
