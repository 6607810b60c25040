"""Reading a /metrics page the way Prometheus does (prometheus_client's own parser)."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    def __init__(self, text: str):
        self.text = text
        self.samples: dict[tuple[str, frozenset], float] = {}
        self.families = {}
        for fam in text_string_to_metric_families(text):
            self.families[fam.name] = fam
            for s in fam.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def get(self, name: str, **labels) -> float:
        """The sample's value; 0 when absent (a labelled counter not yet incremented)."""
        return self.samples.get((name, frozenset({k: str(v) for k, v in labels.items()}.items())), 0.0)

    def series(self, name: str) -> dict[frozenset, float]:
        return {lab: v for (n, lab), v in self.samples.items() if n == name}

    def sum(self, name: str, **labels) -> float:
        want = {k: str(v) for k, v in labels.items()}
        return sum(v for lab, v in self.series(name).items() if want.items() <= dict(lab).items())


def scrape_client(client, **headers) -> Scrape:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return Scrape(r.text)


def scrape_url(url: str) -> Scrape:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as resp:
        return Scrape(resp.read().decode())
