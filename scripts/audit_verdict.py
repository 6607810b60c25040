"""The verdict of scripts/audit.sh on one pip-audit run over requirements.lock.

    python scripts/audit_verdict.py REPORT.json PIP_AUDIT_EXIT_CODE STDERR_FILE

Exit 1 when a locked package has a known vulnerability. When the vulnerability service could not be
asked (no network, DNS, an index that answers 404 for every package), print a loud
"NOT AUDITED: <reason>" and exit 0 - or 3 with AUDIT_STRICT=1, for a CI that can reach the service.
Anything else that went wrong (pip-audit crashed on the lock itself) exits 2.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

# pip-audit's own words when the service, not the lock, is the problem.
UNREACHABLE = re.compile(r"ConnectionError|NameResolutionError|Max retries exceeded|Failed to resolve|"
                         r"timed out|Temporary failure in name resolution|Connection refused|"
                         r"ServiceError|HTTPError|SSLError", re.I)


def not_audited(reason: str) -> int:
    bar = "!" * 78
    print(f"{bar}\nNOT AUDITED: {reason}\n"
          "The locked dependencies were NOT checked for known vulnerabilities. Run `make audit` where the\n"
          f"vulnerability service is reachable (see docs/deploy.md).\n{bar}")
    return 3 if os.environ.get("AUDIT_STRICT") == "1" else 0


def verdict(report: dict | None, rc: int, stderr: str) -> int:
    if report is None:
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else f"pip-audit exited {rc} without a report"
        if UNREACHABLE.search(stderr):
            return not_audited(f"the vulnerability service is unreachable ({last[:300]})")
        print(f"audit: pip-audit failed (exit {rc}): {last}", file=sys.stderr)
        return 2
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = len(deps) - len(skipped)
    for d in vulnerable:
        for v in d["vulns"]:
            fix = ", ".join(v.get("fix_versions") or []) or "no fixed version yet"
            print(f"VULNERABLE: {d['name']} {d.get('version', '')}: {v.get('id')} "
                  f"({', '.join(v.get('aliases') or [])}) fixed in: {fix}")
    if vulnerable:
        print(f"audit: {len(vulnerable)} of {len(deps)} locked package(s) have known vulnerabilities")
        return 1
    if deps and audited == 0:
        return not_audited(f"the vulnerability service answered for none of the {len(deps)} locked "
                           f"packages (e.g. {skipped[0]['skip_reason']})")
    if skipped:
        print(f"audit: WARNING: {len(skipped)} of {len(deps)} package(s) could not be audited: "
              + ", ".join(d["name"] for d in skipped))
    print(f"audit: {audited} locked package(s) audited, no known vulnerabilities")
    return 0


def main(argv: list[str]) -> int:
    report_path, rc, stderr_path = Path(argv[1]), int(argv[2]), Path(argv[3])
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        report = None
    stderr = stderr_path.read_text(errors="replace") if stderr_path.exists() else ""
    return verdict(report, rc, stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
