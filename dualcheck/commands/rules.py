"""`dualcheck rules list|show|set` (the rule library, correlate/rulebook.py) and
`dualcheck rules reference import` (a rule's reference data from CSV, correlate/rule_reference.py)."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from correlate import rule_reference, rulebook
from correlate.rule_defs import CLASSES
from correlate.rule_precision import precision
from dualcheck.commands.common import fail, migrated_runtime
from kernel.timefmt import TimeInvalid, iso_z, parse_instant
from storage.db import session_scope

rules = typer.Typer(help="The rule library (规则库): every check's rule with its class, level, switch, thresholds, "
                         "effective dates, version and history; edits need a note.", no_args_is_help=True)
reference = typer.Typer(help="A rule's reference data (知识库) from CSV: days of supply per drug, substitution "
                             "groups, price bands.", no_args_is_help=True)
rules.add_typer(reference, name="reference")




def list_rules(as_json: bool) -> None:
    rt = migrated_runtime()
    with session_scope(rt.sessions) as db:
        book = rulebook.load(db, rt.settings)
        stats = {s["rule"]: s for s in precision(db)}
        rows = [{**r.view(), "precision": stats.get(r.id, {}).get("precision")}
                for r in sorted(book, key=lambda r: (r.rule_class, r.id))]
    rt.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    for r in rows:
        p = "-" if r["precision"] is None else f"{r['precision'] * 100:.1f}%"
        typer.echo(f"{r['id']}\t{r['name_zh']}\t{CLASSES[r['class']][0]}\tlevel {r['level']}\t"
                   f"{'on' if r['enabled'] else 'OFF'}\tv{r['version']}\tprecision {p}\t"
                   f"{json.dumps(r['thresholds'], ensure_ascii=False)}")


@rules.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every rule as it stands, by class."""
    list_rules(as_json)


@rules.command("show")
def show_cmd(rule_id: str = typer.Argument(..., help="The rule's id (dualcheck rules list)."),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """One rule, its reference data counts and its history (who, when, note, before -> after)."""
    rt = migrated_runtime()
    try:
        with session_scope(rt.sessions) as db:
            r = rulebook.current(db, rule_id, rt.settings)
            hist = [{"version": c.version, "at": iso_z(c.at), "actor": c.actor, "note": c.note, "before": c.before,
                     "after": c.after} for c in rulebook.history(db, rule_id)]
            out = {**r.view(), "reference": rule_reference.counts(db, rule_id), "history": hist}
    except rulebook.RuleChangeInvalid as e:
        rt.close()
        fail(e.reason)
    rt.close()
    if as_json:
        typer.echo(json.dumps(out, indent=1, ensure_ascii=False))
        return
    typer.echo(f"{out['id']} ({out['name_zh']}, {out['class_zh']}) version {out['version']}: level {out['level']}, "
               f"{'enabled' if out['enabled'] else 'disabled'}, effective {out['effective_from'] or '-'} to "
               f"{out['effective_to'] or '-'}")
    typer.echo(f"thresholds: {json.dumps(out['thresholds'], ensure_ascii=False)}")
    if out["reference"]:
        typer.echo(f"reference data: {json.dumps(out['reference'])}")
    for h in hist:
        typer.echo(f"v{h['version']}\t{h['at']}\t{h['actor']}\t{h['note']}")


def _value(text: str):
    """A threshold typed on the command line: JSON (7, 0.1, true, ["X","Z"]), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@rules.command("set")
def set_cmd(rule_id: str = typer.Argument(...),
            note: str = typer.Option(..., "--note", help="Why (the batch, the expert review): required."),
            level: int = typer.Option(None, "--level", help="警示级别 1-5."),
            enable: bool = typer.Option(False, "--enable"), disable: bool = typer.Option(False, "--disable"),
            threshold: list[str] = typer.Option([], "--threshold", help="KEY=VALUE (VALUE as JSON: 7, 0.1, "
                                                "[\"X\",\"Z\"]); repeat for several."),
            effective_from: str = typer.Option(None, "--from", help="Effective from (ISO 8601 with a zone; "
                                               "'none' clears)."),
            effective_to: str = typer.Option(None, "--to", help="Effective until (exclusive; 'none' clears)."),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """The next version of a rule. Exit code 2 with the reason when the change is refused."""
    if enable and disable:
        fail("--enable and --disable together")
    th = {}
    for item in threshold:
        key, eq, val = item.partition("=")
        if not eq or not key.strip():
            fail(f"--threshold {item!r}: write KEY=VALUE")
        th[key.strip()] = _value(val.strip())

    def when(text, name):
        if text is None:
            return rulebook.UNSET
        if text.lower() == "none":
            return None
        try:
            return parse_instant(text, name)
        except TimeInvalid as e:
            fail(e.reason)

    a, b = when(effective_from, "--from"), when(effective_to, "--to")
    rt = migrated_runtime()
    try:
        with session_scope(rt.sessions) as db:
            r = rulebook.change(db, rule_id, actor="cli", note=note, level=level,
                                enabled=True if enable else (False if disable else None),
                                thresholds=th or None, effective_from=a, effective_to=b)
            out = r.view()
    except rulebook.RuleChangeInvalid as e:
        rt.close()
        fail(e.reason)
    rt.close()
    typer.echo(json.dumps(out, indent=1, ensure_ascii=False) if as_json else f"{out['tag']}: saved")


@reference.command("import")
def reference_import(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                                 help="CSV with a header row (columns per kind: docs/rules.md)."),
                     rule_id: str = typer.Option(..., "--rule", help="The rule the data belongs to."),
                     kind: str = typer.Option(..., "--kind", help=" | ".join(rule_reference.KINDS)),
                     note: str = typer.Option(..., "--note", help="Why (the batch, the review): required."),
                     as_json: bool = typer.Option(False, "--json")) -> None:
    """Import reference data (idempotent by drug / group). Good rows are kept, every refused row is listed
    with its line number and reason; anything changed makes the rule's next version. Exit code 0 when all
    rows were accepted, 3 when some were refused, 2 when the file or the arguments are refused whole."""
    rt = migrated_runtime()
    try:
        with session_scope(rt.sessions) as db:
            res = rule_reference.import_csv(db, rule_id, kind, file.read_bytes(), actor="cli", note=note,
                                            source=f"file:{file.name}")
            out = res.summary()
    except rulebook.RuleChangeInvalid as e:
        rt.close()
        fail(f"{file.name}: {e.reason}")
    rt.close()
    if as_json:
        typer.echo(json.dumps(out, indent=1, ensure_ascii=False))
    else:
        for e in out["errors"]:
            typer.secho(f"line {e['line']}: {e['reason']}" + (f" ({e['key']})" if e["key"] else ""), fg="red",
                        err=True)
        typer.echo(f"{out['rows']} rows: {out['imported']} imported, {out['changed']} changed, {out['unchanged']} "
                   f"unchanged, {out['refused']} refused"
                   + (f"; rule {rule_id} is now version {out['version']}" if out["version"] else ""))
    raise typer.Exit(3 if out["errors"] else 0)
