"""deploy/ is checked without a cluster: yamllint, the Kubernetes schemas (1.30), the compose schema
(`docker-compose config`), and that what the manifests hand the code - settings and commands - is
something the code knows."""
from __future__ import annotations

import importlib
import ipaddress
import json
import pkgutil
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner
from yamllint import linter
from yamllint.config import YamlLintConfig

from dualcheck.cli import app as cli_app
from kernel.settings import Settings
from tests.deploy.manifests import (
    COMPOSE,
    DEPLOY,
    ENV_EXAMPLE,
    K8S,
    SCHEMAS,
    by_kind_name,
    compose_config,
    compose_processes,
    k8s_documents,
    k8s_processes,
    pod_spec,
)

K8S_VERSION = "1.30"
# Kinds that are CRDs (not in kubernetes-validate's built-in schemas): validated against the minimal
# schemas checked in under deploy/schemas/ instead. Any other kind must be a built-in one.
CRD_GROUPS = {"postgresql.cnpg.io"}


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def test_every_deploy_yaml_passes_yamllint():
    conf = YamlLintConfig(file=str(DEPLOY / ".yamllint"))
    files = yaml_files()
    assert COMPOSE in files and K8S / "api.yaml" in files
    problems = [f"{p.relative_to(DEPLOY)}:{x.line}:{x.column} {x.message}"
                for p in files for x in linter.run(p.read_text(), conf, str(p))]
    assert not problems, "\n".join(problems)


def test_yamllint_config_refuses_what_it_should():
    """The config is not so lax that it accepts anything: a duplicated key and a long line fail."""
    conf = YamlLintConfig(file=str(DEPLOY / ".yamllint"))
    bad = "a: 1\na: 2\nb: " + "x" * 130 + "\n"
    rules = {x.rule for x in linter.run(bad, conf)}
    assert {"key-duplicates", "line-length"} <= rules


def test_every_manifest_is_schema_valid():
    checked: dict[str, int] = {}
    for path, doc in k8s_documents():
        where = f"{path.name} {doc['kind']}/{doc['metadata']['name']}"
        group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
        if group in CRD_GROUPS:
            version = doc["apiVersion"].split("/")[1]
            schema = json.loads((SCHEMAS / f"{doc['kind'].lower()}-{group}-{version}.json").read_text())
            try:
                jsonschema.validate(doc, schema)
            except jsonschema.ValidationError as e:
                pytest.fail(f"{where}: {e.message} at {list(e.absolute_path)}")
            kind = f"{doc['kind']} (CRD, deploy/schemas)"
        else:
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{where}: {e.message}")
            kind = doc["kind"]
        checked[kind] = checked.get(kind, 0) + 1
    # The parts of a region the issue asks for are all there.
    for kind in ("Deployment", "StatefulSet", "Job", "CronJob", "Service", "Ingress", "NetworkPolicy", "Secret",
                 "ConfigMap", "Cluster (CRD, deploy/schemas)", "ScheduledBackup (CRD, deploy/schemas)"):
        assert checked.get(kind), f"no {kind} in deploy/k8s"


def test_strict_validation_refuses_a_misspelt_field():
    doc = by_kind_name("Deployment", "dualcheck-api")
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    cluster = by_kind_name("Cluster", "dualcheck-pg")
    cluster["spec"]["instance"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cluster, json.loads((SCHEMAS / "cluster-postgresql.cnpg.io-v1.json").read_text()))


def test_kustomization_lists_exactly_the_manifests():
    kz = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kz["resources"]) == on_disk
    for gen in kz.get("configMapGenerator", []):
        for f in gen["files"]:
            assert (K8S / f).is_file(), f


def _known(env: dict[str, str], where: str) -> None:
    unknown = sorted(k.removeprefix("DUALCHECK_").lower() for k in env
                     if k.startswith("DUALCHECK_") and k.removeprefix("DUALCHECK_").lower() not in Settings.model_fields)
    assert not unknown, f"{where}: settings the code does not know: {unknown}"


def _clean_env(monkeypatch):
    import os

    for k in list(os.environ):
        if k.startswith("DUALCHECK_"):
            monkeypatch.delenv(k)


def test_k8s_settings_are_known_and_parse(monkeypatch, tmp_path):
    procs = k8s_processes()
    assert {p.dualcheck_argvs()[0][0] for p in procs} >= {"serve", "record", "correlate", "db", "retention"}
    for p in procs:
        _known({**p.env, **p.secret_files}, p.where)
        # The secret files are read where the settings look for them.
        assert p.secrets_mount == p.env["DUALCHECK_SECRETS_DIR"], p.where
        _clean_env(monkeypatch)
        secrets_dir = tmp_path / p.where.replace(" ", "_").replace("/", "_")
        secrets_dir.mkdir()
        for k, v in p.secret_files.items():
            (secrets_dir / k).write_text(v + "\n")  # as a Secret volume may have it
        for k, v in p.env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("DUALCHECK_SECRETS_DIR", str(secrets_dir))
        s = Settings()  # raises if a value does not parse
        assert s.database_url == p.secret_files["DUALCHECK_DATABASE_URL"], p.where
        assert s.database_url.startswith("postgresql+psycopg://"), p.where
        assert s.s3_secret_key.get_secret_value() == p.secret_files["DUALCHECK_S3_SECRET_KEY"], p.where
        assert s.s3_endpoint == "minio:9000" and s.s3_object_lock, p.where
        # one sealing key for the region: never a key file made per pod (recorders could not unseal)
        assert s.camera_credentials_key.get_secret_value() == p.secret_files["DUALCHECK_CAMERA_CREDENTIALS_KEY"], p.where
        if p.dualcheck_argvs()[0][0] == "record":
            assert s.recorder_id == "dualcheck-recorder-0"  # from the pod name
            assert s.metrics_port == 9100
        if p.dualcheck_argvs()[0][0] == "serve":
            # the replicas count each terminal's limit together, in the Redis of redis.yaml, with its password
            from sqlalchemy.engine import make_url

            uri = make_url(s.rate_limit_storage_uri)
            svc = by_kind_name("Service", "dualcheck-redis")
            password = by_kind_name("Secret", "dualcheck-redis")["stringData"]["password"]
            assert (uri.drivername, uri.host, uri.port, uri.password) == (
                "redis", "dualcheck-redis", svc["spec"]["ports"][0]["port"], password), p.where


def test_an_unknown_setting_is_caught(monkeypatch):
    with pytest.raises(AssertionError, match="dualcheck_no_such_knob|no_such_knob"):
        _known({"DUALCHECK_NO_SUCH_KNOB": "1"}, "test")


@pytest.fixture(scope="module")
def compose_resolved() -> dict:
    r = compose_config()
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


def test_compose_file_is_valid_and_has_every_part(compose_resolved):
    assert set(compose_resolved["services"]) == {"postgres", "minio", "minio-setup", "migrate", "api", "recorder",
                                                 "worker", "retention"}
    # The API starts only after the schema and the buckets exist.
    deps = compose_resolved["services"]["api"]["depends_on"]
    assert deps["migrate"]["condition"] == deps["minio-setup"]["condition"] == "service_completed_successfully"


def test_compose_refuses_a_missing_secret(tmp_path):
    env = tmp_path / ".env"
    env.write_text("\n".join(ln for ln in ENV_EXAMPLE.read_text().splitlines() if not ln.startswith("POSTGRES_")))
    r = compose_config(env)
    assert r.returncode != 0 and "POSTGRES_PASSWORD" in (r.stderr + r.stdout)


def test_compose_settings_are_known_and_parse(compose_resolved, monkeypatch):
    procs = compose_processes(compose_resolved)
    assert len(procs) == 5
    for p in procs:
        _known(p.env, p.where)
        _clean_env(monkeypatch)
        for k, v in p.env.items():
            monkeypatch.setenv(k, v)
        s = Settings()
        assert s.database_url.startswith("postgresql+psycopg://dualcheck:CHANGE_ME_DB_PASSWORD@postgres:5432/")


def test_every_command_is_a_dualcheck_command(compose_resolved):
    """`dualcheck <sub> [options] --help` exits 0 only if the subcommand and the options exist."""
    runner = CliRunner()
    argvs = {tuple(a) for p in k8s_processes() + compose_processes(compose_resolved) for a in p.dualcheck_argvs()}
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    # The image's build steps (RUN dualcheck models fetch && dualcheck models verify) and its CMD.
    argvs |= {tuple(m.split()) for m in re.findall(r"(?:^RUN |&& )dualcheck ((?:[a-z][a-z-]* ?)+)", dockerfile, re.M)}
    argvs.add(tuple(json.loads(re.search(r"^CMD (.*)$", dockerfile, re.M).group(1))[1:]))
    assert ("models", "fetch") in argvs and ("serve",) in argvs and ("retention", "run") in argvs
    for argv in sorted(argvs):
        r = runner.invoke(cli_app, [*argv, "--help"])
        assert r.exit_code == 0, f"dualcheck {' '.join(argv)}: {r.output}"
    assert runner.invoke(cli_app, ["correlate", "worker", "--no-such-option", "--help"]).exit_code != 0


def test_minio_setup_makes_the_buckets_the_code_uses_with_object_lock(compose_resolved):
    config = by_kind_name("ConfigMap", "dualcheck-config")["data"]
    buckets = {config["DUALCHECK_BUCKET_FOOTAGE"], config["DUALCHECK_BUCKET_BIOMETRICS"]}
    job = by_kind_name("Job", "minio-setup")
    env = {e["name"]: e["value"] for e in pod_spec(job)["containers"][0]["env"]}
    assert {env["FOOTAGE_BUCKET"], env["BIOMETRICS_BUCKET"]} == buckets
    svc = compose_resolved["services"]["minio-setup"]["environment"]
    assert {svc["FOOTAGE_BUCKET"], svc["BIOMETRICS_BUCKET"]} == buckets
    script = (K8S / "minio" / "setup.sh").read_text()
    assert re.search(r'for b in "\$FOOTAGE_BUCKET" "\$BIOMETRICS_BUCKET"; do\s+mc mb --ignore-existing --with-lock', script)
    policy = json.loads((K8S / "minio" / "policy.json").read_text())
    allowed = {r for st in policy["Statement"] if st["Effect"] == "Allow" for r in st["Resource"]}
    assert allowed == {f"arn:aws:s3:::{b}{s}" for b in buckets for s in ("", "/*")}
    denied = {a for st in policy["Statement"] if st["Effect"] == "Deny" for a in st["Action"]}
    assert "s3:BypassGovernanceRetention" in denied


def _selects(policy: dict) -> set[str] | None:
    """The app names a NetworkPolicy's podSelector picks; None = every pod."""
    sel = policy["spec"]["podSelector"]
    if not sel:
        return None
    if "matchLabels" in sel:
        return {sel["matchLabels"].get("app.kubernetes.io/name") or json.dumps(sel["matchLabels"])}
    return {v for e in sel["matchExpressions"] for v in e["values"]}


def test_network_policies_default_deny_and_only_recorders_reach_cameras():
    policies = [d for _, d in k8s_documents() if d["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if _selects(p) is None and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny, "no default-deny policy"
    cidr = ipaddress.ip_network(by_kind_name("NetworkPolicy", "recorder-to-cameras")["spec"]["egress"][0]["to"][0]
                                ["ipBlock"]["cidr"])
    for p in policies:
        for rule in p["spec"].get("egress", []):
            if _selects(p) == {"dualcheck-recorder"}:
                continue
            assert "to" in rule, f"{p['metadata']['name']}: an egress rule to anywhere"
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    block = ipaddress.ip_network(peer["ipBlock"]["cidr"])
                    excepted = [ipaddress.ip_network(x) for x in peer["ipBlock"].get("except", [])]
                    assert not block.overlaps(cidr) or any(cidr.subnet_of(x) for x in excepted), \
                        f"{p['metadata']['name']} lets other pods reach the cameras"
    api = by_kind_name("NetworkPolicy", "api-ingress")
    sources = {peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
               for rule in api["spec"]["ingress"] for peer in rule["from"]}
    assert sources == {"ingress-nginx", "monitoring"}


def test_terminal_ingress_exposes_only_verification_routes():
    # Every route of every router the app includes (api/routes/*, the UI pages) and the static files.
    import api.routes
    import api.web
    from api.web import pages

    routers = [importlib.import_module(f"api.routes.{m.name}").router for m in pkgutil.iter_modules(api.routes.__path__)]
    pages_routers = [getattr(importlib.import_module(f"api.web.{m.name}"), "router", None)
                     for m in pkgutil.iter_modules(api.web.__path__)]  # the UI's pages, one module per area
    routes = {r.path for router in routers + [x for x in pages_routers if x is not None] for r in router.routes}
    routes |= {f"/static/{p.name}" for p in (Path(pages.__file__).parent / "static").iterdir()}
    term = by_kind_name("Ingress", "dualcheck-terminals")
    paths = {(p["path"], p["pathType"]) for rule in term["spec"]["rules"] for p in rule["http"]["paths"]}
    assert paths == {("/v1/verify", "Exact"), ("/v1/verifications", "Prefix")}
    assert "/v1/verify" in routes and "/v1/verifications/{verification_id}" in routes
    secrets = {d["metadata"]["name"] for _, d in k8s_documents() if d["kind"] == "Secret"}
    for name in ("dualcheck-terminals", "dualcheck-inspect"):
        ing = by_kind_name("Ingress", name)
        assert ing["spec"]["tls"] and all(t["secretName"] in secrets for t in ing["spec"]["tls"])
    inspect = by_kind_name("Ingress", "dualcheck-inspect")
    prefixes = [p["path"] for rule in inspect["spec"]["rules"] for p in rule["http"]["paths"]]
    for prefix in prefixes:  # each path leads somewhere
        assert any(r == prefix or r.startswith(prefix.rstrip("/") + "/") for r in routes), prefix
    for private in ("/metrics", "/readyz", "/healthz", "/docs", "/openapi.json"):
        assert not any(private == p or private.startswith(p.rstrip("/") + "/") for p in prefixes if p != "/"), private
    # The probes use the health routes that exist.
    api = pod_spec(by_kind_name("Deployment", "dualcheck-api"))["containers"][0]
    assert {api["readinessProbe"]["httpGet"]["path"], api["livenessProbe"]["httpGet"]["path"]} == {"/readyz",
                                                                                                  "/healthz"}
    assert {"/readyz", "/healthz"} <= routes


def test_secrets_are_placeholders_and_containers_are_sized():
    for path, doc in k8s_documents():
        if doc["kind"] == "Secret":
            assert "data" not in doc, f"{path.name}: base64 data in a template"
            for k, v in doc["stringData"].items():
                assert "CHANGE_ME" in v or k == "username", f"{path.name} {doc['metadata']['name']}.{k}"
        spec = pod_spec(doc)
        for c in (spec or {}).get("containers", []):
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= set(res.get("requests", {})), f"{doc['metadata']['name']}/{c['name']}"
            assert "memory" in res.get("limits", {}), f"{doc['metadata']['name']}/{c['name']}"
    for line in ENV_EXAMPLE.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "DUALCHECK_IMAGE=")):
            assert "CHANGE_ME" in line, line
    assert ".env" in (COMPOSE.parent / ".gitignore").read_text().split()
