"""Demo: ``python -m camsim --cameras 3`` runs N simulated RTSP cameras and prints their URLs."""
from __future__ import annotations

import argparse
import signal
import sys
import time

from .camera import SimulatedCamera
from .footage import SCENARIOS, render


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m camsim", description=__doc__)
    ap.add_argument("--cameras", "-n", type=int, default=2)
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="counter")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--bitrate", type=int, default=1_000_000)
    ap.add_argument("--keyint", type=float, default=2.0, help="keyframe interval, seconds")
    ap.add_argument("--host", default="127.0.0.1", help="listen address (0.0.0.0 for the LAN)")
    ap.add_argument("--base-port", type=int, default=0, help="first port (default: free ports)")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--stagger", type=float, default=7.0,
                    help="seconds between the cameras' timelines, so they do not show the same thing")
    args = ap.parse_args(argv)

    t = time.time()
    footage = render(SCENARIOS[args.scenario](), width=args.width, height=args.height, fps=args.fps,
                     bitrate=args.bitrate, keyint_s=args.keyint)
    print(f"footage {footage.directory} ({footage.duration_s:.0f} s loop, {time.time() - t:.1f} s)", flush=True)
    cams = []
    now = time.time()
    try:
        for i in range(args.cameras):
            cam = SimulatedCamera(footage, port=(args.base_port + i) if args.base_port else None,
                                  mount=f"/cam{i + 1}", user=args.user, password=args.password, host=args.host,
                                  epoch=now - i * args.stagger)
            cams.append(cam.start())
            print(f"camera {i + 1}: {cam.url}  (pid {cam.pid})", flush=True)
        print("truth:", footage.truth_path, "- Ctrl-C to stop", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(5)
            for i, cam in enumerate(cams):
                if not cam.running:
                    print(f"camera {i + 1} died, restarting: {cam.log_tail(300)}", flush=True)
                    cam.start()
    except KeyboardInterrupt:
        pass
    finally:
        for cam in cams:
            cam.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
