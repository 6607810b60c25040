"""The demo's simulated world: three cameras at two institutions, and the settlements that happen
in front of them.

Each counter camera loops a scripted scene whose truth is known; settlements are pushed when the
scene makes them genuine visits, ghost visits (nobody there for the whole check window),
impersonations (someone else's face) or fall into a camera outage. A check window is 120 s before
to 30 s after a settlement, so every scripted stretch lasts longer than 150 s.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from camsim.footage import Event, render
from correlate.settlements import Importer
from facepay.verification import Caller
from storage.db import session_scope

log = logging.getLogger("dualcheck.demo")


def _ev(a: float, b: float, kind: str, **params) -> Event:
    return Event(float(a), float(b), kind, params)


# Loop of the clinic's settlement counter (700 s).
CLINIC_COUNTER = [
    _ev(0, 190, "empty"),
    _ev(190, 340, "face", image="obama.jpg"),
    _ev(340, 350, "empty"),
    _ev(350, 500, "face", image="biden.jpg"),
    _ev(500, 510, "empty"),
    _ev(510, 700, "back_turned"),
]
# Loop of the pharmacy counter (420 s), with a camera outage.
PHARMACY_COUNTER = [
    _ev(0, 200, "face", image="obama.jpg"),
    _ev(200, 210, "empty"),
    _ev(210, 400, "camera_off"),
    _ev(400, 420, "empty"),
]
# The clinic's consulting room (90 s): recorded, covers no counter.
CONSULTING_ROOM = [
    _ev(0, 30, "face", image="obama.jpg"),
    _ev(30, 60, "back_turned"),
    _ev(60, 90, "empty"),
]


@dataclass(frozen=True)
class Planned:
    """A settlement made when the camera's loop reaches `phase_s`."""

    phase_s: float
    kind: str  # what the footage will show: genuine | ghost | impersonation | inconclusive | outage
    insured_id: str
    amount: str
    type: str
    face_pay_capture: str | None = None  # portrait sent to /verify first, when the org uses face-pay


@dataclass(frozen=True)
class DemoCamera:
    camera_id: str
    org_id: str
    name: str
    role: str
    script: list
    covers: tuple[str, ...]
    terminal_id: str | None
    plan: tuple[Planned, ...]


CAMERAS = (
    DemoCamera("DEMO-CLINIC-CAM1", "DEMO-CLINIC", "收费窗口1号", "settlement_counter", CLINIC_COUNTER,
               ("DEMO-CLINIC-T1", "counter-1"), "DEMO-CLINIC-T1", (
                   Planned(155, "ghost", "DEMO-INS-0001", "86.00", "outpatient"),
                   Planned(300, "genuine", "DEMO-INS-0001", "132.50", "outpatient", "obama2.jpg"),
                   Planned(470, "impersonation", "DEMO-INS-0001", "1234.50", "outpatient", "biden.jpg"),
                   Planned(675, "inconclusive", "DEMO-INS-0002", "45.00", "outpatient"),
               )),
    DemoCamera("DEMO-CLINIC-CAM2", "DEMO-CLINIC", "诊室", "consulting_room", CONSULTING_ROOM,
               (), None, ()),
    DemoCamera("DEMO-PHARM-CAM1", "DEMO-PHARMACY", "药房柜台", "pharmacy_counter", PHARMACY_COUNTER,
               ("DEMO-PHARMACY-T1", "counter-1"), "DEMO-PHARMACY-T1", (
                   Planned(170, "genuine", "DEMO-INS-0001", "58.80", "pharmacy", "obama3.jpg"),
                   Planned(350, "outage", "DEMO-INS-0002", "35.50", "pharmacy"),
               )),
)


def render_all(testdata: Path):
    """Encode each camera's loop once (cached under var/simulator)."""

    return {c.camera_id: render(c.script, width=640, height=360, fps=15, bitrate=500_000, keyint_s=2.0,
                                testdata=testdata) for c in CAMERAS}


class Traffic(threading.Thread):
    """Pushes the planned settlements as the cameras' loops reach them (the data exchange's role)."""

    def __init__(self, rt, sims: dict, terminal_keys: dict[str, str], testdata: Path):
        super().__init__(name="demo-traffic", daemon=True)
        self.rt, self.sims, self.testdata = rt, sims, testdata
        self.terminal_keys = terminal_keys
        self.stop_evt = threading.Event()
        self.sent = 0

    def run(self) -> None:
        last_phase = {cid: sim.footage_time(time.time()) for cid, sim in self.sims.items()}
        while not self.stop_evt.wait(1.0):
            now = time.time()
            for cam in CAMERAS:
                sim = self.sims.get(cam.camera_id)
                if sim is None or not cam.plan:
                    continue
                phase = sim.footage_time(now)
                prev, last_phase[cam.camera_id] = last_phase[cam.camera_id], phase
                for p in cam.plan:
                    crossed = prev < p.phase_s <= phase if prev <= phase else (p.phase_s > prev or p.phase_s <= phase)
                    if crossed:
                        try:
                            self.settle(cam, p, now - (phase - p.phase_s) % sim.loop_duration_s)
                        except Exception:  # the demo goes on; the log says what failed
                            log.exception("demo settlement failed")

    def settle(self, cam: DemoCamera, p: Planned, at: float) -> None:

        settled_at = datetime.fromtimestamp(at, timezone.utc)
        verification_id = None
        if p.face_pay_capture and cam.terminal_id:
            caller = Caller(org_id=cam.org_id, terminal_id=cam.terminal_id, actor=f"demo:{cam.terminal_id}")
            image = (self.testdata / "faces" / p.face_pay_capture).read_bytes()
            sid_hint = f"{cam.org_id}-{settled_at:%Y%m%d%H%M%S}"
            verification_id = self.rt.verifier.verify(caller, p.insured_id, image, sid_hint)["verification_id"]
        row = {
            "settlement_id": f"{cam.org_id}-{settled_at:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:4]}",
            "insured_id": p.insured_id, "org_id": cam.org_id, "terminal_id": cam.terminal_id,
            "settled_at": settled_at.isoformat(), "amount": p.amount, "type": p.type,
            "verification_id": verification_id,
        }
        with session_scope(self.rt.sessions) as db:
            imp = Importer(db, actor="demo:data-exchange", allowed_orgs={cam.org_id})
            imp.add(1, row)
            if imp.result.errors:
                raise RuntimeError(f"demo settlement refused: {imp.result.errors[0].to_dict()}")
        self.sent += 1
        log.info("demo settlement %s at %s (%s, footage shows: %s)", row["settlement_id"], cam.camera_id,
                 settled_at.strftime("%H:%M:%S"), p.kind)

    def stop(self) -> None:
        self.stop_evt.set()
        self.join(5)
