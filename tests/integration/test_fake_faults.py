"""Fault injection over HTTP (POST/GET/DELETE /_fake/faults), on every fake: the knob a soak run or a person
driving `leadpipe up` uses, since they cannot reach the fakes' Python objects."""

from __future__ import annotations

import httpx
import pytest

from leadpipe_local.fakes.apollo import FakeApollo
from leadpipe_local.fakes.hubspot import FakeHubSpot


def test_a_fault_for_the_next_calls_then_recovery() -> None:
    with FakeHubSpot() as fake, httpx.Client(base_url=fake.url, timeout=10) as http:
        auth = {"Authorization": f"Bearer {fake.token}"}
        added = http.post("/_fake/faults", json={"status": 503, "times": 2, "path": "/crm/v3/objects/contacts"})
        assert added.status_code == 201 and added.json()["fault"] == {
            "status": 503,
            "times": 2,
            "path": "/crm/v3/objects/contacts",
        }
        assert [http.get("/crm/v3/objects/contacts", headers=auth).status_code for _ in range(3)] == [503, 503, 200]
        assert http.get("/_fake/faults").json() == {"faults": []}  # spent


def test_a_fraction_for_a_period_and_clearing() -> None:
    with FakeHubSpot() as fake, httpx.Client(base_url=fake.url, timeout=10) as http:
        auth = {"Authorization": f"Bearer {fake.token}"}
        http.post("/_fake/faults", json={"status": 500, "fraction": 1.0, "seconds": 60})
        assert http.get("/crm/v3/objects/contacts", headers=auth).status_code == 500
        assert http.get("/_fake/state").status_code == 200  # the fake's own controls never misbehave
        assert len(http.get("/_fake/faults").json()["faults"]) == 1
        assert http.delete("/_fake/faults").json() == {"cleared": 1}
        assert http.get("/crm/v3/objects/contacts", headers=auth).status_code == 200


def test_malformed_and_slow_answers_on_a_provider_fake() -> None:
    with FakeApollo() as fake, httpx.Client(base_url=fake.url, timeout=10) as http:
        http.post("/_fake/faults", json={"malformed": True, "times": 1})
        answer = http.post("/api/v1/people/bulk_match", json={"details": []}, headers={"x-api-key": "k"})
        assert answer.status_code == 200 and answer.content == b'{"truncated": '  # cut off mid-body
        http.post("/_fake/faults", json={"timeout": 0.5, "times": 1})
        with pytest.raises(httpx.ReadTimeout):
            http.post("/api/v1/people/bulk_match", json={"details": []}, headers={"x-api-key": "k"}, timeout=0.2)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b'{"status": 503, "explode": true}', b'{"fraction": 2}', b'{"times": "x", "status": {}}'],
)
def test_bad_fault_specs_are_refused_with_the_reason(body: bytes) -> None:
    with FakeHubSpot() as fake, httpx.Client(base_url=fake.url, timeout=10) as http:
        answer = http.post("/_fake/faults", content=body)
        assert answer.status_code == 400 and answer.json()["error"]
        assert http.get("/_fake/faults").json() == {"faults": []}
