"""Issue 17: the API believes X-Forwarded-For only from the proxies a deployment names, and the
manifests name them (never everyone)."""
from __future__ import annotations

import ipaddress

import uvicorn

from dualcheck.commands import access
from kernel.settings import Settings
from tests.deploy.manifests import compose_config, compose_processes, k8s_processes


def _check(value: str, where: str) -> None:
    for part in filter(None, (p.strip() for p in value.split(","))):
        assert part != "*", where
        net = ipaddress.ip_network(part, strict=False)
        assert net.prefixlen >= 8, f"{where}: {part} trusts most of the internet"


def test_manifests_name_the_trusted_proxies():
    import yaml

    api = [p for p in k8s_processes() if p.command[:2] == ["dualcheck", "serve"]]
    assert api and all(p.env.get("DUALCHECK_API_FORWARDED_ALLOW_IPS") for p in api)
    for p in api:
        _check(p.env["DUALCHECK_API_FORWARDED_ALLOW_IPS"], p.where)
    r = compose_config()
    assert r.returncode == 0, r.stderr
    serve = [p for p in compose_processes(yaml.safe_load(r.stdout)) if p.command[:2] == ["dualcheck", "serve"]]
    assert serve and all("DUALCHECK_API_FORWARDED_ALLOW_IPS" in p.env for p in serve)
    for p in serve:
        _check(p.env["DUALCHECK_API_FORWARDED_ALLOW_IPS"], p.where)


def test_serve_passes_the_setting_to_uvicorn(monkeypatch):
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setattr(access, "get_settings", lambda: Settings(api_forwarded_allow_ips=""))
    access.serve()
    assert seen["proxy_headers"] is False  # uvicorn would otherwise believe 127.0.0.1
    monkeypatch.setattr(access, "get_settings", lambda: Settings(api_forwarded_allow_ips="10.244.0.0/16"))
    access.serve()
    assert seen["proxy_headers"] is True and seen["forwarded_allow_ips"] == "10.244.0.0/16"
