"""`dualcheck enroll DIR`: bulk enrollment from a folder, one insured person per file or folder.

DIR/<insured_id>.jpg (or .jpeg/.png), or DIR/<insured_id>/*.jpg for several photos of one person.
Safe to rerun: photos already enrolled are recognised by their hash and reported as duplicates.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from facepay.enrollment import Enroller, PhotoResult
from kernel.ids import InvalidInsuredId, check_insured_id

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass
class FileResult:
    path: Path
    insured_id: str
    result: PhotoResult


def plan(root: Path) -> tuple[dict[str, list[Path]], list[tuple[Path, str]]]:
    """Group image files by insured id; return (groups, skipped files with the reason)."""
    groups: dict[str, list[Path]] = defaultdict(list)
    skipped: list[tuple[Path, str]] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((path, "not a .jpg/.jpeg/.png file"))
            continue
        rel = path.relative_to(root)
        insured_id = rel.parts[0] if len(rel.parts) > 1 else path.stem
        try:
            check_insured_id(insured_id)
        except InvalidInsuredId as e:
            skipped.append((path, f"file name is not an insured id: {e}"))
            continue
        groups[insured_id].append(path)
    return groups, skipped


def enroll_dir(enroller: Enroller, root: Path, actor: str,
               on_file: Callable[[FileResult], None] = lambda r: None) -> list[FileResult]:
    groups, _ = plan(root)
    out: list[FileResult] = []
    for insured_id, paths in groups.items():
        for path in paths:  # one call per file: a bad file never holds up the others
            [res] = enroller.enroll(insured_id, [(path.name, path.read_bytes())], actor=actor, source="cli")
            fr = FileResult(path, insured_id, res)
            out.append(fr)
            on_file(fr)
    return out
