"""Reading deploy/: the Kubernetes documents, the compose file as `docker-compose config` sees it,
and the dualcheck processes each of them starts (command + DUALCHECK_* environment)."""
from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / "compose" / ".env.example"
SCHEMAS = DEPLOY / "schemas"
IMAGE = "dualcheck/dualcheck"  # the image name the manifests use (kustomization.yaml rewrites it)
# The value a fieldRef gives in a pod, for the settings that come from the downward API.
FIELD_REFS = {"metadata.name": "dualcheck-recorder-0", "metadata.namespace": "dualcheck"}


def k8s_documents() -> list[tuple[Path, dict]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out += [(path, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def by_kind_name(kind: str, name: str) -> dict:
    hits = [d for _, d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} found"
    return hits[0]


def pod_spec(doc: dict) -> dict | None:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if "template" in spec:
        return spec["template"]["spec"]
    return None


@dataclass
class Process:
    where: str  # "k8s api.yaml Deployment/dualcheck-api" or "compose api"
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)  # every DUALCHECK_* the process gets, files included
    secret_files: dict[str, str] = field(default_factory=dict)  # of env: those that come from secret files
    secrets_mount: str | None = None

    def dualcheck_argvs(self) -> list[list[str]]:
        """The `dualcheck ...` command lines this process runs (also inside `sh -c '...'`)."""
        if self.command[:1] == ["dualcheck"]:
            return [self.command[1:]]
        if self.command[:1] in (["/bin/sh"], ["sh"]) and self.command[1] == "-c":
            out = []
            for part in self.command[2].replace("||", ";").replace("&&", ";").split(";"):
                words = shlex.split(part)
                while words and words[0] in ("do", "then", "while", ":"):
                    words = words[1:]
                if words[:1] == ["dualcheck"]:
                    out.append(words[1:])
            return out
        return []


def k8s_processes() -> list[Process]:
    config = {d["metadata"]["name"]: d.get("data", {}) for _, d in k8s_documents() if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d.get("stringData", {}) for _, d in k8s_documents() if d["kind"] == "Secret"}
    out = []
    for path, doc in k8s_documents():
        spec = pod_spec(doc)
        if spec is None:
            continue
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"] + spec.get("initContainers", []):
            if not is_dualcheck_image(c["image"]):
                continue
            p = Process(f"k8s {path.name} {doc['kind']}/{doc['metadata']['name']}", c["command"] + c.get("args", []))
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    p.env.update(config[src["configMapRef"]["name"]])
                if "secretRef" in src:
                    p.env.update(secrets[src["secretRef"]["name"]])
            for e in c.get("env", []):
                if "value" in e:
                    p.env[e["name"]] = e["value"]
                elif "fieldRef" in e.get("valueFrom", {}):
                    p.env[e["name"]] = FIELD_REFS[e["valueFrom"]["fieldRef"]["fieldPath"]]
                elif "secretKeyRef" in e.get("valueFrom", {}):
                    ref = e["valueFrom"]["secretKeyRef"]
                    p.env[e["name"]] = secrets[ref["name"]][ref["key"]]
                elif "configMapKeyRef" in e.get("valueFrom", {}):
                    ref = e["valueFrom"]["configMapKeyRef"]
                    p.env[e["name"]] = config[ref["name"]][ref["key"]]
            for m in c.get("volumeMounts", []):
                vol = volumes.get(m["name"], {})  # absent: a StatefulSet's volumeClaimTemplate
                if "secret" in vol:
                    p.secrets_mount = m["mountPath"]
                    p.secret_files = dict(secrets[vol["secret"]["secretName"]])
            out.append(p)
    return out


def compose_tool() -> list[str]:
    """`docker compose` (v2 plugin) where there is one, else Debian's docker-compose (scripts/setup.sh)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    assert shutil.which("docker-compose"), "neither `docker compose` nor `docker-compose` (scripts/setup.sh installs it)"
    return ["docker-compose"]


def compose_config(env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess:
    """The compose file as the compose tool resolves it (schema-checked, variables filled in)."""
    return subprocess.run([*compose_tool(), "--env-file", str(env_file), "-f", str(COMPOSE), "config"],
                          capture_output=True, text=True, cwd=COMPOSE.parent, timeout=60)


def is_dualcheck_image(image: str) -> bool:
    """dualcheck/dualcheck:TAG, also under a registry (registry.example.org/dualcheck/dualcheck:TAG)."""
    return ("/" + image).rsplit(":", 1)[0].endswith("/" + IMAGE)


def compose_processes(resolved: dict) -> list[Process]:
    out = []
    for name, svc in resolved["services"].items():
        if not is_dualcheck_image(svc.get("image", "")):
            continue
        cmd = svc.get("command")
        cmd = shlex.split(cmd) if isinstance(cmd, str) else list(cmd or [])
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        out.append(Process(f"compose {name}", cmd, {k: "" if v is None else str(v) for k, v in env.items()}))
    return out
