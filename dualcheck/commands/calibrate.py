"""`dualcheck calibrate`: match thresholds (and the uncertain band) for the deployment's own population."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from kernel.settings import get_settings
from vision.decision import BANDS, Thresholds, recommend
from vision.evaluation import EvaluationError, collect, collect_pairs, identity_folders, labelled_pairs, outcomes
from vision.packs import ModelError
from vision.pipeline import FacePipeline


def calibrate(
    source: Path = typer.Argument(..., help="Identity folders: DIR/<person>/*.jpg (e.g. captures confirmed "
                                  "by inspectors; each person's first photo is enrolled, the rest are probes), "
                                  "or a CSV of labelled pairs: enrolled_photo,probe_photo,same (paths relative "
                                  "to the CSV; same: 1/0)."),
    target_far: float = typer.Option(0.001, min=1e-6, max=0.5, help="Largest acceptable false-accept rate: "
                                     "the upper threshold is the lowest whose 95 % upper confidence bound meets it."),
    target_frr: float = typer.Option(0.01, min=0.0, max=0.5, help="Share of genuine pairs that may be called a "
                                     "mismatch: sets the lower threshold (between the two: uncertain)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Recommend (lower, upper) thresholds per face-size band for the configured model pack, with the FAR's
    confidence bound and the FRR they cost. Runs the same models and quality gate as the API; nothing is stored."""
    s = get_settings()
    try:
        if source.is_file():
            pairs, people = labelled_pairs(source), None
        else:
            pairs, people = None, identity_folders(source)
        pipeline = FacePipeline.from_settings(s)
    except (EvaluationError, ModelError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    scores = collect(pipeline, s, people) if people is not None else collect_pairs(pipeline, s, pairs)
    current = Thresholds.of(s, pipeline)
    result = {"pack": current.pack, "model": pipeline.model_id,
              "people": len(people) if people is not None else None,
              "pairs": len(pairs) if pairs is not None else None, "enrolled": scores.enrolled,
              "not_enrolled": scores.not_enrolled, "target_far": target_far, "target_frr": target_frr, "bands": {}}
    table = {}
    for band in BANDS:
        g, im = scores.values("genuine", band), scores.values("impostor", band)
        entry = {"probes_tried": scores.tried[band], "probes_refused": scores.refused[band],
                 "genuine_pairs": int(g.size), "impostor_pairs": int(im.size)}
        now = current.bands[band]
        og, oi = outcomes(scores.genuine[band], current), outcomes(scores.impostor[band], current)
        entry["current"] = {"lower": now[0], "upper": now[1],
                            "genuine": {"match": og.match, "uncertain": og.uncertain, "mismatch": og.mismatch},
                            "impostor": {"match": oi.match, "uncertain": oi.uncertain, "mismatch": oi.mismatch}}
        if g.size and im.size:
            r = recommend(g, im, band=band, target_far=target_far, target_frr=target_frr, fallback_upper=now[1])
            entry["recommended"] = r.to_dict()
            table[band] = [r.lower, r.upper]
        else:
            entry["recommended"] = None
        result["bands"][band] = entry
    result["settings"] = {current.pack: table}
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    what = f"{len(people)} people" if people is not None else f"{len(pairs)} labelled pairs"
    typer.echo(f"pack {current.pack} ({pipeline.model_id}): {what}, {scores.enrolled} enrolled"
               + (f"; not enrolled (no usable face in the enrolled photo): {len(scores.not_enrolled)}"
                  if scores.not_enrolled else ""))
    for band, e in result["bands"].items():
        typer.echo(f"\n[{band}] probes {e['probes_tried']} (refused by the quality gate: {e['probes_refused']}), "
                   f"genuine pairs {e['genuine_pairs']}, impostor pairs {e['impostor_pairs']}")
        c = e["current"]
        typer.echo(f"  now ({c['lower']:.3f}, {c['upper']:.3f}): genuine {c['genuine']}, impostor {c['impostor']}")
        r = e["recommended"]
        if r is None:
            typer.echo("  no recommendation: this band needs both genuine and impostor pairs")
            continue
        typer.echo(f"  recommended lower {r['lower']:.4f} upper {r['upper']:.4f}"
                   + ("" if r["meets_target"] else "  (target FAR NOT shown: too few impostor pairs or overlap; "
                      "upper kept at least at the threshold in force)"))
        for k in ("far", "frr", "false_mismatch", "uncertain_genuine", "uncertain_impostor"):
            x = r[k]
            typer.echo(f"    {k:18s} {x['errors']}/{x['n']} = {x['rate']:.4%}  95% CI {x['ci95'][0]:.4%}-{x['ci95'][1]:.4%}")
    typer.echo(f"\nDUALCHECK_MATCH_THRESHOLDS='{json.dumps(result['settings'])}'")
