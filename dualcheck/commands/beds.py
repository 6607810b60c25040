"""`dualcheck beds set|list|remove|reference` (the ward bed map, correlate/beds.py) and `dualcheck ward check`
(bed-hanging, correlate/ward_checks.py). The command line acts as the operator ``cli``."""
from __future__ import annotations

import json

import typer

from correlate import beds as beds_mod
from correlate.check import detect_wide
from correlate.tracking import box_of
from correlate.ward_checks import WardChecker
from dualcheck.commands.common import fail, migrated_runtime
from kernel.timefmt import TimeInvalid, parse_instant
from storage.audit import audit
from storage.db import session_scope
from storage.models import Organisation

beds = typer.Typer(help="Ward beds: bed ids as admissions name them, mapped to a ward camera and a region of "
                        "its picture, with empty-bed pictures for day and infrared.", no_args_is_help=True)
ward = typer.Typer(help="Bed-hanging (挂床住院): the ward cameras' daily checks of admitted patients.",
                   no_args_is_help=True)
ACTOR = "cli"




def _run(fn):
    rt = migrated_runtime()
    try:
        with session_scope(rt.sessions) as db:
            return fn(rt, db)
    except beds_mod.BedRefusal as e:
        fail(f"{e.code}: {e.reason}")
    finally:
        rt.close()


def _bed(db, org: str, bed: str, dept: str):
    row = beds_mod.find_bed(db, org, bed, dept)
    if row is None:
        raise beds_mod.BedRefusal(f"organisation {org} has no bed {bed!r}" + (f" in department {dept}" if dept else ""),
                                  status=404, code="bed_not_found")
    return row


@beds.command("set")
def set_cmd(org: str = typer.Argument(..., help="The organisation (fixmedins_code)."),
            bed: str = typer.Argument(..., help="The bed id as admissions send it (adm_bed / wardarea_bed)."),
            camera: str = typer.Option(..., "--camera", help="The ward camera that sees the bed."),
            region: str = typer.Option(..., "--region", help='The bed\'s outline "x,y x,y x,y ..." (fractions 0-1 '
                                                             "of the picture's width and height)."),
            dept: str = typer.Option("", "--dept", help="The department (adm_dept_codg); none: any department."),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Map a bed (or move it: its empty pictures are dropped when the camera or region changes)."""
    def go(rt, db):
        row = beds_mod.set_bed(db, org_id=org, bed_no=bed, camera_id=camera, region=beds_mod.parse_region_text(region),
                               actor=ACTOR, dept_codg=dept)
        audit(db, actor=ACTOR, action="bed.set", outcome="ok", org_id=org, subject=f"bed:{row.id}",
              detail={"bed": row.bed_no, "dept": row.dept_codg, "camera_id": row.camera_id})
        return beds_mod.view(row)

    v = _run(go)
    typer.echo(json.dumps(v, ensure_ascii=False, indent=1) if as_json else
               f"bed {v['bed']} of {v['org_id']}{' / ' + v['dept_codg'] if v['dept_codg'] else ''}: camera {v['camera_id']}")


@beds.command("list")
def list_cmd(org: str = typer.Option(None, "--org"), as_json: bool = typer.Option(False, "--json")) -> None:
    """The bed map (each bed with its camera and whether it has its day and night empty pictures)."""
    rows = _run(lambda rt, db: [beds_mod.view(b) for b in beds_mod.list_beds(db, [org] if org else None)])
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    for v in rows:
        refs = ",".join(k for k, r in v["reference"].items() if r) or "no empty pictures"
        typer.echo(f"{v['org_id']}\t{v['dept_codg'] or '*'}\t{v['bed']}\t{v['camera_id']}\t{refs}")


@beds.command("remove")
def remove_cmd(org: str = typer.Argument(...), bed: str = typer.Argument(...),
               dept: str = typer.Option("", "--dept")) -> None:
    """Remove a bed from the map (its checks stay: they are what was seen)."""
    def go(rt, db):
        row = _bed(db, org, bed, dept)
        beds_mod.remove_bed(db, rt.store, rt.settings.bucket_footage, row)
        audit(db, actor=ACTOR, action="bed.remove", outcome="ok", org_id=org, detail={"bed": bed, "dept": dept})

    _run(go)
    typer.echo(f"bed {bed} of {org} removed")


@beds.command("reference")
def reference_cmd(org: str = typer.Argument(...), bed: str = typer.Argument(...),
                  at: str = typer.Option(..., "--at", help="A recorded moment with the bed empty (ISO 8601, zone)."),
                  light: str = typer.Option(None, "--light", help="day | night (default: the frame's own)."),
                  dept: str = typer.Option("", "--dept")) -> None:
    """Take the bed's empty picture (day or infrared night) from the recorded frame at --at."""
    try:
        when = parse_instant(at, "--at")
    except TimeInvalid as e:
        fail(e.reason)

    def go(rt, db):
        row = _bed(db, org, bed, dept)
        pipe, side = rt.pipeline, rt.settings.correlate_detect_max_side
        ref = beds_mod.take_reference(db, rt.store, rt.settings.bucket_footage, row, when, ACTOR, light=light,
                                      faces=lambda img: [box_of(f) for f in detect_wide(pipe, img, side)])
        audit(db, actor=ACTOR, action="bed.reference", outcome="ok", org_id=org, subject=f"bed:{row.id}",
              detail={"at": ref["at"], "sha256": ref["sha256"]})
        return ref

    ref = _run(go)
    typer.echo(f"empty picture of bed {bed} taken from {ref['at']}")


@ward.command("check")
def check_cmd(org: str = typer.Option(..., "--org", help="The organisation (fixmedins_code)."),
              mdtrt_id: str = typer.Option(None, "--mdtrt-id", help="Only this admission."),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """Check the beds of the organisation's admissions up to now (each check time once) and apply 挂床住院."""
    def go(rt, db):
        if db.get(Organisation, org) is None:
            raise beds_mod.BedRefusal(f"no organisation {org!r}", status=404, code="not_found")
        rt.store.ensure_bucket(rt.settings.bucket_footage)
        checker = WardChecker(settings=rt.settings, store=rt.store, pipeline=rt.pipeline, legal=rt.legal_holds)
        rep = checker.run(db, org_ids=[org], mdtrt_id=mdtrt_id)
        audit(db, actor=ACTOR, action="ward.check", outcome="ok", org_id=org, detail=rep.view())
        return rep.view()

    v = _run(go)
    if as_json:
        typer.echo(json.dumps(v, ensure_ascii=False, indent=1))
        return
    o = v["by_outcome"]
    typer.echo(f"{v['admissions']} admissions, {v['checks']} checks (present {o['present']}, absent {o['absent']}, "
               f"unknown {o['unknown']}), {len(v['flags'])} bed-hanging flags"
               + (f"; no bed mapped for {', '.join(v['no_bed'])}" if v["no_bed"] else ""))
