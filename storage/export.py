"""Evidence packages: a zip with the clip, a manifest of every hash, and a checksum file.

Hash scheme (a file cannot contain its own hash):

* ``manifest.json`` lists each segment's object key, index SHA-256 (re-checked against the bytes
  read from the store while building: a mismatch refuses the export), and the clip's SHA-256;
* ``SHA256SUMS`` (``sha256sum -c`` format) covers ``clip.mp4``, ``manifest.json`` and the Chinese summary
  page ``summary.zh-CN.html`` (storage/export_summary.py: the manifest restated in local time);
* the package's own SHA-256 (of the zip bytes) is computed after it is written, stored as the
  object's metadata in the footage bucket (``exports/<org>/<camera>/<export_id>.zip``), returned in
  the ``X-Dualcheck-Package-SHA256`` header and recorded in the ``export.create`` audit event, which
  is the export record. A recipient checks the zip against that recorded hash, then the files inside
  against ``SHA256SUMS``, then the segments against the store.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.settings import Settings
from kernel.timefmt import iso_z
from storage.audit import audit
from storage.clips import ClipError, plan_clip
from storage.export_summary import SUMMARY_FILE, summary_html
from storage.models import AuditEvent, Camera, Organisation, Segment, utcnow
from storage.objects import file_sha256
from storage.playable import PlayableCopies, is_hevc

FORMAT = "dualcheck-evidence/1"
HASH_SCHEME = ("manifest lists segment and clip SHA-256; SHA256SUMS covers clip.mp4, manifest.json and the Chinese "
               "summary page; the "
               "package's SHA-256 is returned in X-Dualcheck-Package-SHA256 and recorded in the export.create "
               "audit event (a file cannot contain its own hash)")


@dataclass
class ExportResult:
    export_id: str
    object_key: str
    sha256: str
    size: int
    clip_sha256: str
    manifest: dict


DERIVED_FILE = "derived/clip.h264.mp4"


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


def _local_reader(files: dict[str, Path]):
    def read(key: str, offset: int, length: int) -> Iterator[bytes]:
        with files[key].open("rb") as fh:
            fh.seek(offset)
            left = length or None
            while left is None or left > 0:
                chunk = fh.read(1 << 20 if left is None else min(1 << 20, left))
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                yield chunk

    return read


def build_package(db: Session, store, bucket: str, camera: Camera, start: datetime, end: datetime, *,
                  actor: str, reason: str | None = None, request_id: str | None = None,
                  workdir: Path | None = None, tz: str = Settings.model_fields["web_timezone"].default,
                  playable: PlayableCopies | None = None) -> ExportResult:
    """``playable``: add an H.264 copy of an H.265 clip for players without HEVC, labelled as derived
    (the evidence stays clip.mp4 and the segments, their bytes and hashes untouched)."""
    export_id = secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="export-", dir=workdir) as tmp:
        tmp = Path(tmp)
        files: dict[str, Path] = {}

        def fetch(seg: Segment) -> bytes:
            return files[seg.object_key].read_bytes()

        # every segment is read once from the store and checked against the index
        segs = list(db.scalars(select(Segment).where(Segment.camera_id == camera.id, Segment.stream == "main",
                                                     Segment.start_at < end, Segment.end_at > start)
                               .order_by(Segment.start_at)))
        for seg in segs:
            p = tmp / f"seg-{seg.id}.mp4"
            with p.open("wb") as fh:
                for chunk in store.stream(bucket, seg.object_key):
                    fh.write(chunk)
            sha = file_sha256(p)
            if sha != seg.sha256:
                raise ClipError("evidence_mismatch", f"segment {seg.object_key} does not match its recorded "
                                f"SHA-256 (store {sha[:12]}…, index {seg.sha256[:12]}…)")
            files[seg.object_key] = p
        plan = plan_clip(db, store, bucket, camera.id, camera.org_id, start, end, fetch=fetch)
        clip = tmp / "clip.mp4"
        h = hashlib.sha256()
        with clip.open("wb") as fh:
            for chunk in plan.iter_bytes(_local_reader(files)):
                h.update(chunk)
                fh.write(chunk)
        clip_sha = h.hexdigest()
        org = db.get(Organisation, camera.org_id)
        desc = plan.describe()
        manifest = {
            "format": FORMAT,
            "export_id": export_id,
            "created_at": iso_z(utcnow()),
            "created_by": actor,
            "reason": reason,
            "organisation": {"id": camera.org_id, "name": org.name if org else None,
                             "region": org.region if org else None},
            "camera": {"id": camera.id, "name": camera.name, "role": camera.role, "covers": camera.covers},
            "requested": desc["requested"],
            "clip": {"file": "clip.mp4", "start": desc["clip_start"], "end": desc["clip_end"],
                     "duration_s": desc["duration_s"], "bytes": plan.size, "sha256": clip_sha,
                     "container": "fragmented MP4, remuxed from the segments without transcoding; "
                                  "t=0 is clip.start, timestamps are wall-clock offsets (gaps are jumps)"},
            "gaps": plan.gaps,
            "segments": [{"bucket": bucket, "key": s["key"], "start_at": s["start_at"], "end_at": s["end_at"],
                          "bytes": s["bytes"], "sha256": s["sha256"]} for s in desc["segments"]],
            "hash_scheme": HASH_SCHEME,
        }
        derived = None
        if playable is not None and is_hevc(plan.parts[0].data or b""):
            derived = playable.get(PlayableCopies.key([clip_sha]), _file_chunks(clip))
            manifest["derived"] = [{
                "file": DERIVED_FILE, "bytes": derived.stat().st_size, "sha256": file_sha256(derived),
                "derived_from": "clip.mp4", "codec": "h264",
                "note": "DERIVED: transcoded to H.264 for players without an HEVC decoder; not the evidence "
                        "(the evidence is clip.mp4, remuxed from the segments as recorded)"}]
        manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
        summary = summary_html(manifest, tz)
        sums = (f"{clip_sha}  clip.mp4\n{hashlib.sha256(manifest_bytes).hexdigest()}  manifest.json\n"
                f"{hashlib.sha256(summary).hexdigest()}  {SUMMARY_FILE}\n").encode()
        if derived is not None:
            sums += f"{manifest['derived'][0]['sha256']}  {DERIVED_FILE}\n".encode()
        pkg = tmp / f"{export_id}.zip"
        with zipfile.ZipFile(pkg, "w", compression=zipfile.ZIP_STORED) as z:
            z.write(clip, "clip.mp4")
            if derived is not None:
                z.write(derived, DERIVED_FILE)
            z.writestr("manifest.json", manifest_bytes, compress_type=zipfile.ZIP_DEFLATED)
            z.writestr(SUMMARY_FILE, summary, compress_type=zipfile.ZIP_DEFLATED)
            z.writestr("SHA256SUMS", sums)
        key = f"exports/{camera.org_id}/{camera.id}/{export_id}.zip"
        obj = store.put_file(bucket, key, pkg, content_type="application/zip")
    audit(db, actor=actor, action="export.create", outcome="ok", org_id=camera.org_id, subject=f"export:{export_id}",
          request_id=request_id, note=reason,
          detail={"camera_id": camera.id, "start": desc["requested"]["start"], "end": desc["requested"]["end"],
                  "clip_start": desc["clip_start"], "clip_end": desc["clip_end"], "bucket": bucket, "key": key,
                  "bytes": obj.size, "package_sha256": obj.sha256, "clip_sha256": clip_sha,
                  "segments": len(segs), "gaps": len(plan.gaps)})
    return ExportResult(export_id, key, obj.sha256, obj.size, clip_sha, manifest)


def find_export(db: Session, export_id: str) -> AuditEvent | None:
    """The export record (its export.create audit event)."""
    return db.scalar(select(AuditEvent).where(AuditEvent.action == "export.create",
                                              AuditEvent.subject == f"export:{export_id}"))
