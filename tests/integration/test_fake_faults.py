"""Fault injection over HTTP (POST/GET/DELETE /_fake/faults), on every fake: the knob a soak run or a person
driving `leadpipe up` uses, since they cannot reach the fakes' Python objects."""

from __future__ import annotations

import re
import time
from collections import Counter

import httpx
import pytest

from leadpipe_local.fakes.apollo import FakeApollo
from leadpipe_local.fakes.base import FakeServer, Fault, Reply, Request, route
from leadpipe_local.fakes.hubspot import FakeHubSpot


class Echo(FakeServer):
    """The smallest fake: one route that always answers, so only the faults decide what a call gets."""

    name = "echo"

    @route("GET", "/ping")
    def ping(self, request: Request) -> Reply:
        return Reply(200, {"pong": request.arg("n")})


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


def test_malformed_answers_and_timeouts_on_a_provider_fake() -> None:
    with FakeApollo() as fake, httpx.Client(base_url=fake.url, timeout=10) as http:
        http.post("/_fake/faults", json={"malformed": True, "times": 1})
        answer = http.post("/api/v1/people/bulk_match", json={"details": []}, headers={"x-api-key": "k"})
        assert answer.status_code == 200 and answer.content == b'{"truncated": '  # cut off mid-body
        http.post("/_fake/faults", json={"timeout": 0.5, "times": 1})
        with pytest.raises(httpx.ReadTimeout):
            http.post("/api/v1/people/bulk_match", json={"details": []}, headers={"x-api-key": "k"}, timeout=0.2)


def test_a_slow_answer_still_succeeds() -> None:
    with Echo() as fake, httpx.Client(base_url=fake.url, timeout=10) as http:
        assert http.post("/_fake/faults", json={"latency": 0.4, "times": 1}).status_code == 201
        started = time.monotonic()
        slow = http.get("/ping", params={"n": "1"})
        took = time.monotonic() - started
        assert slow.status_code == 200 and slow.json() == {"pong": "1"}  # the real answer, late
        assert took >= 0.4, took
        assert http.get("/ping", params={"n": "2"}).json() == {"pong": "2"}
        assert [(r.arg("n"), r.status, r.faulted) for r in fake.calls("^/ping$")] == [
            ("1", 200, True),
            ("2", 200, False),
        ]
        assert http.get("/_fake/faults").json() == {"faults": []}


def test_a_fraction_misbehaves_on_about_that_share_of_calls() -> None:
    with Echo(seed=11) as fake, httpx.Client(base_url=fake.url, timeout=10) as http:
        added = http.post("/_fake/faults", json={"status": 503, "fraction": 0.25, "path": "^/ping$"})
        assert added.status_code == 201 and added.json()["fault"] == {
            "status": 503,
            "fraction": 0.25,
            "path": "^/ping$",
        }
        statuses = Counter(http.get("/ping", params={"n": str(n)}).status_code for n in range(200))
        assert set(statuses) == {200, 503}
        assert 25 <= statuses[503] <= 75, statuses  # binomial(200, 0.25): mean 50, sd 6.1
        # the request log says which calls the fault answered, and with what
        logged = fake.calls("^/ping$")
        assert Counter(r.status for r in logged) == statuses
        assert all(r.faulted == (r.status == 503) for r in logged)
        assert len(http.get("/_fake/faults").json()["faults"]) == 1  # a fraction is never spent


def test_a_fault_for_a_period_ends_by_itself() -> None:
    with Echo() as fake, httpx.Client(base_url=fake.url, timeout=10) as http:
        posted = time.time()
        assert http.post("/_fake/faults", json={"status": 500, "seconds": 0.5}).status_code == 201
        added = time.time()
        answers: list[tuple[float, float, int]] = []  # (sent, answered, status)
        deadline = time.monotonic() + 30
        while not answers or answers[-1][2] != 200:
            assert time.monotonic() < deadline, answers
            sent = time.time()
            status = http.get("/ping").status_code
            answers.append((sent, time.time(), status))
            time.sleep(0.05)
        assert answers[0][2] == 500
        assert {status for *_, status in answers} == {500, 200}
        # the fault ended 0.5 s after it was added, not before, not long after
        assert all(sent <= added + 0.5 for sent, _, status in answers if status == 500), answers
        assert all(answered >= posted + 0.5 for _, answered, status in answers if status == 200), answers
        assert http.get("/_fake/faults").json() == {"faults": []}
        assert fake.faults == []


def test_apply_carries_the_request_out_then_answers_with_the_fault() -> None:
    with FakeHubSpot() as fake, httpx.Client(base_url=fake.url, timeout=10) as http:
        auth = {"Authorization": f"Bearer {fake.token}"}
        gateway = {"status": 502, "body": {"message": "Bad Gateway"}, "apply": True, "times": 1}
        added = http.post("/_fake/faults", json=gateway | {"path": "^/crm/v3/objects/contacts$"})
        assert added.status_code == 201 and added.json()["fault"]["apply"] is True
        made = http.post("/crm/v3/objects/contacts", json={"properties": {"email": "made@example.com"}}, headers=auth)
        assert made.status_code == 502 and made.json() == {"message": "Bad Gateway"}
        found = http.get("/crm/v3/objects/contacts/made@example.com", params={"idProperty": "email"}, headers=auth)
        assert found.status_code == 200, found.text  # HubSpot did the work; only the answer was lost
        # without apply, the fault answers instead: nothing is made
        http.post("/_fake/faults", json={"status": 502, "times": 1, "path": "^/crm/v3/objects/contacts$"})
        lost = http.post("/crm/v3/objects/contacts", json={"properties": {"email": "lost@example.com"}}, headers=auth)
        assert lost.status_code == 502
        missing = http.get("/crm/v3/objects/contacts/lost@example.com", params={"idProperty": "email"}, headers=auth)
        assert missing.status_code == 404
        # the log keeps what the caller was told
        assert [r.status for r in fake.calls("^/crm/v3/objects/contacts$", "POST")] == [502, 502]


def test_a_fault_can_be_limited_to_requests_whose_body_matches() -> None:
    with FakeHubSpot() as fake, httpx.Client(base_url=fake.url, timeout=10) as http:
        auth = {"Authorization": f"Bearer {fake.token}"}
        fake.inject(Fault(status=401, times=1, path="batch/read", body_match=r'"id":\s*"42"'))
        other = http.post("/crm/v3/objects/contacts/batch/read", json={"inputs": [{"id": "7"}]}, headers=auth)
        assert other.status_code != 401, other.text  # not the named record: served as usual
        named = http.post("/crm/v3/objects/contacts/batch/read", json={"inputs": [{"id": "42"}]}, headers=auth)
        assert named.status_code == 401
        assert fake.faults == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "JSON object"),
        (b'{"status": 503, "explode": true}', "unknown field"),
        (b'{"times": "x", "status": {}}', "times must be a count"),
        (b'{"status": 503, "fraction": 2}', r"fraction must be a number in \(0, 1\]"),
        (b'{"status": 503, "fraction": 0}', r"fraction must be a number in \(0, 1\]"),
        (b'{"status": 503, "fraction": -0.5}', r"fraction must be a number in \(0, 1\]"),
        (b'{"status": 503, "times": 3, "fraction": 0.5}', "give times or fraction, not both"),
        (b'{"status": 503, "times": -1}', "times must be a count"),
        (b'{"status": 503, "seconds": 0}', "seconds must be a period"),
        (b'{"apply": true, "times": 1}', "apply needs a status"),
        (b'{"status": 503, "path": "("}', "path is not a regular expression"),
        (b'{"status": 503, "body_match": "["}', "body_match is not a regular expression"),
    ],
)
def test_bad_fault_specs_are_refused_with_the_reason(body: bytes, reason: str) -> None:
    with FakeHubSpot() as fake, httpx.Client(base_url=fake.url, timeout=10) as http:
        answer = http.post("/_fake/faults", content=body)
        assert answer.status_code == 400, answer.text
        assert re.search(reason, answer.json()["error"]), answer.json()
        assert http.get("/_fake/faults").json() == {"faults": []}


def test_a_bad_fault_is_refused_in_process_too() -> None:
    with pytest.raises(ValueError, match="give times or fraction, not both"):
        Fault(status=503, times=2, fraction=0.5)
    with pytest.raises(ValueError, match="fraction must be"):
        Fault(status=503, fraction=1.5)
    with pytest.raises(ValueError, match="times must be a count"):
        Fault(status=503, times=-2)
