"""requirements.lock pins what pyproject.toml asks for; scripts/audit.sh fails on a vulnerability and
says so loudly when it could not ask; the package built for the image carries the UI files."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"


def locked() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes)."""
    out: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text()):
        m = re.match(r"([A-Za-z0-9._-]+)==([^\s\\]+)", block)
        if m:
            out[canonicalize_name(m.group(1))] = (m.group(2), block.count("--hash=sha256:"))
    return out


def test_lock_pins_every_declared_dependency_with_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"] + \
        project["optional-dependencies"]["dev"]
    pins = locked()
    assert len(pins) > 50
    for spec in declared:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements.lock: run `make lock`"
        version, hashes = pins[name]
        assert req.specifier.contains(version, prereleases=True), \
            f"requirements.lock has {req.name}=={version}, pyproject.toml asks {req.specifier}: run `make lock`"
    assert all(h >= 1 for _, h in pins.values()), "a pin without a hash"
    # setup.sh's headless-OpenCV step takes its pin and hashes from the lock.
    assert pins["opencv-python-headless"][1] >= 1


def run_verdict(tmp_path, report, rc=0, stderr="", strict=False):
    rep = tmp_path / "report.json"
    if report is not None:
        rep.write_text(json.dumps(report))
    err = tmp_path / "stderr"
    err.write_text(stderr)
    env = {**os.environ, "AUDIT_STRICT": "1" if strict else "0"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "audit_verdict.py"), str(rep), str(rc), str(err)],
                          capture_output=True, text=True, env=env)


# The shape of pip-audit's JSON report (--format json), as it wrote it on this machine.
SKIPPED = {"dependencies": [
    {"name": "alembic", "skip_reason": "Dependency not found on PyPI and could not be audited: alembic (1.20.1)"},
    {"name": "fastapi", "skip_reason": "Dependency not found on PyPI and could not be audited: fastapi (0.165.0)"}],
    "fixes": []}
VULNERABLE = {"dependencies": [
    {"name": "alembic", "version": "1.20.1", "vulns": []},
    {"name": "jinja2", "version": "3.1.2", "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"],
                                                       "aliases": ["CVE-2024-22195"], "description": "xss"}]}],
    "fixes": []}


def test_audit_fails_on_a_vulnerability(tmp_path):
    r = run_verdict(tmp_path, VULNERABLE, rc=1)
    assert r.returncode == 1
    assert "VULNERABLE: jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (CVE-2024-22195) fixed in: 3.1.3" in r.stdout


def test_audit_passes_when_audited_and_clean(tmp_path):
    clean = {"dependencies": [{"name": "alembic", "version": "1.20.1", "vulns": []}], "fixes": []}
    r = run_verdict(tmp_path, clean)
    assert r.returncode == 0 and "1 locked package(s) audited, no known vulnerabilities" in r.stdout
    assert "NOT AUDITED" not in r.stdout


def test_audit_says_not_audited_when_the_service_cannot_answer(tmp_path):
    r = run_verdict(tmp_path, SKIPPED)
    assert r.returncode == 0
    assert "NOT AUDITED: the vulnerability service answered for none of the 2 locked packages" in r.stdout
    (tmp_path / "offline").mkdir()
    offline = run_verdict(tmp_path / "offline", None, rc=1,
                          stderr="requests.exceptions.ConnectionError: ... Failed to resolve 'api.osv.dev'")
    assert offline.returncode == 0 and "NOT AUDITED: the vulnerability service is unreachable" in offline.stdout
    assert run_verdict(tmp_path, SKIPPED, strict=True).returncode == 3


def test_audit_fails_when_pip_audit_breaks_for_another_reason(tmp_path):
    r = run_verdict(tmp_path, None, rc=1, stderr="pip_audit: error: invalid requirement on line 3")
    assert r.returncode == 2 and "invalid requirement" in r.stderr


def test_audit_script_runs_on_the_lock():
    """The real thing: on this machine the services are unreachable, so it must say NOT AUDITED and
    pass; where they answer it must audit (and fail if the lock has a known vulnerability)."""
    r = subprocess.run(["bash", str(ROOT / "scripts" / "audit.sh")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "NOT AUDITED:" in r.stdout or "audited, no known vulnerabilities" in r.stdout


def test_built_package_carries_the_inspector_ui(tmp_path):
    """The image installs the project as a wheel (not editable): templates, static files and the
    migrations must be in it."""
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for f in files:
        if f.split("/")[0] in ("dualcheck", "api", "ingest", "storage", "vision", "correlate") \
                or f in ("pyproject.toml", "README.md"):
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / f).is_file():
                shutil.copy2(ROOT / f, src / f)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
                    "-w", str(tmp_path / "whl")], check=True, capture_output=True)
    names = set(zipfile.ZipFile(next((tmp_path / "whl").glob("*.whl"))).namelist())
    web = ROOT / "api" / "web"
    for sub in ("templates", "static"):
        for p in (web / sub).rglob("*"):
            if p.is_file():
                assert str(p.relative_to(ROOT)) in names, f"{p.relative_to(ROOT)} is not in the wheel"
    migrations = {str(p.relative_to(ROOT)) for p in (ROOT / "storage" / "migrations" / "versions").glob("*.py")}
    assert migrations <= names
