"""A bounded schema-driven fuzz run (schemathesis) over every operation of the API's OpenAPI
document, in process, on a real SQLite index and SeaweedFS, with a key of each role (and none):
no answer may be a 5xx. Dates and numbers are pushed to the edges (issue 17: years 1 and 9999, zones
of +/-14 h, integers beyond 64 bits), where the strategies of the schema alone rarely go."""
from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from api.keys import add_service_key
from storage.db import session_scope
from tests.api.conftest import start_env

EXAMPLES_PER_OPERATION = 12
TOTAL_BUDGET_S = 150  # CPU seconds of this process for the whole run: a runaway fuzz, not a busy machine
DATE_PARAMS = {"start", "end", "from", "to", "day", "date_from", "date_to", "since", "until", "settled_at"}
EDGE_TIMES = ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00",
              "9999-12-31T23:59:59.999999Z", "9999-12-31", "0001-01-01", "1969-12-31T23:59:59Z",
              "2026-03-02T09:00:00+08:00", "2026-03-02 09:00:00+08:00", "2026-02-30", "9999-12-31T24:00:00Z"]
HUGE_INTS = [2**31, 2**63 - 1, 2**63, 2**64, 10**23, -(2**63) - 1, 10**400]
edge_time = st.sampled_from(EDGE_TIMES)
edge_int = st.sampled_from(HUGE_INTS) | st.integers()


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory, seaweed, models_dir, shared_pipeline):
    from kernel.settings import Settings

    tmp = tmp_path_factory.mktemp("fuzz")
    s = Settings(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'fuzz.db'}", s3_endpoint=seaweed.endpoint,
                 s3_access_key=seaweed.access_key, s3_secret_key=seaweed.secret_key, models_dir=models_dir,
                 bucket_biometrics="fuzz-bio", bucket_footage="fuzz-footage",
                 # the fuzzer is one caller sending thousands of requests: limits would answer 429
                 # (and admission 503) before the routes are reached
                 rate_limit_terminal="", rate_limit_user="", verify_latency_budget_ms=600_000, verify_max_queue=1000)
    env = start_env(s, shared_pipeline)
    with session_scope(env.rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "fuzz")
        env.keys["inspector"] = add_service_key(db, "inspector", "fuzz", regions=["north", "south"])
        env.keys["institution"] = add_service_key(db, "institution", "fuzz", org_id="CLINIC-A")
        env.keys["auditor"] = add_service_key(db, "auditor", "fuzz")
    body = {"id": "CAM-F", "org_id": "CLINIC-A", "name": "c", "role": "settlement_counter",
            "url": "rtsp://10.0.0.7/s", "covers": ["counter-1"]}
    assert env.client.post("/v1/cameras", json=body, headers=env.h("admin")).status_code == 201
    yield env
    env.client.__exit__(None, None, None)
    env.rt.close()


def _edges(case, data, query_names: list[str]) -> None:
    """Swap some generated values for edge ones: date-like query parameters (added when the generator
    left the optional ones out) and body fields, integer parameters; and name the known camera, so that
    the camera routes get past their 404 to the values themselves."""
    case.query = dict(case.query or {})
    for k in query_names:
        if k in DATE_PARAMS and data.draw(st.booleans()):
            case.query[k] = data.draw(edge_time)
    for where in (case.query, case.path_parameters or {}):
        for k, v in list(where.items()):
            if k == "camera_id" and data.draw(st.booleans()):
                where[k] = "CAM-F"
            elif k not in DATE_PARAMS and (isinstance(v, int) or str(v).lstrip("-").isdigit()) \
                    and data.draw(st.booleans()):
                where[k] = data.draw(edge_int)
    if isinstance(case.body, dict):
        for k in list(case.body):
            if k in DATE_PARAMS and data.draw(st.booleans()):
                case.body[k] = data.draw(edge_time)
            elif k == "camera_id" and data.draw(st.booleans()):
                case.body[k] = "CAM-F"


def test_no_operation_answers_5xx(fuzz_env):
    env = fuzz_env
    schema = schemathesis.openapi.from_asgi("/openapi.json", env.client.app)
    roles = [None, "terminal", "ingest", "admin", "inspector", "institution", "auditor"]
    t0, cpu0 = time.monotonic(), time.process_time()
    calls, failures, ops = 0, [], 0
    for result in schema.get_all_operations():
        op = result.ok()
        ops += 1
        query_names = [q.name for q in op.query]
        strategy = st.one_of(op.as_strategy(generation_mode=GenerationMode.POSITIVE),
                             op.as_strategy(generation_mode=GenerationMode.NEGATIVE))

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=strategy, data=st.data())
        def run(case, data):
            nonlocal calls
            _edges(case, data, query_names)
            for role in roles:
                headers = dict(case.headers or {})
                headers.pop("Authorization", None)
                if role:
                    headers["Authorization"] = f"Bearer {env.keys[role]}"
                r = case.call(headers=headers)
                calls += 1
                if r.status_code >= 500:
                    failures.append(f"{r.status_code} {case.method} {case.formatted_path} query={case.query} "
                                    f"body={str(case.body)[:200]} as {role}: {r.text[:200]}")

        run()
        # CPU time, not wall time: other test workers and other work share the 2 cores (the app runs in-process)
        assert time.process_time() - cpu0 < TOTAL_BUDGET_S, f"fuzz run over its CPU budget after {ops} operations"
    print(f"\nfuzz: {ops} operations, {calls} requests in {time.monotonic() - t0:.0f} s "
          f"({time.process_time() - cpu0:.0f} CPU s)")
    assert ops > 20 and not failures, "\n".join(failures[:20])
