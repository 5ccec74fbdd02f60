"""Operations end to end through the local runtime: GET /status stats, GET /summary and GET /activity after an import
and its automatic enrichment (the run events go bus -> ActivityRule -> ActivityQueue -> activity function), a
manual enrichment served from the cache, a sync run, the CLI commands, bad inputs, and workspaces kept apart.

Each test works in a workspace of its own (the session's runtime is shared), so its numbers are its own."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from leadpipe_local.cli import main
from leadpipe_local.client import ApiClient, ApiError
from leadpipe_local.runtime import LocalRuntime
from tests.e2e.test_enrichment import known_domains, people_csv, wait_until


def expected_facets(contacts: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """What the summary should count, worked out from the contacts the API shows."""
    out: dict[str, Counter[str]] = {k: Counter() for k in ("industry", "size", "country", "provider")}
    for c in contacts:
        fields = c["enrichment"]

        def value(name: str, fields: dict[str, Any] = fields) -> Any:
            return fields[name]["value"] if name in fields else None

        if value("industry"):
            out["industry"][str(value("industry")).lower()] += 1
        if value("employee_range"):
            out["size"][value("employee_range")] += 1
        country = value("country") or c["country"] or value("company_country")
        if country:
            out["country"][str(country).lower()] += 1
        providers = {p for f in fields.values() for p in (f["provider"], *f["agreed_by"])} - {"import"}
        out["provider"].update(providers)
    return out


def run_entries(items: list[dict[str, Any]], request_id: str) -> list[tuple[str, dict[str, int]]]:
    return [(e["type"], e["counts"]) for e in items if e["request_id"] == request_id]


def test_status_summary_and_activity_follow_an_import_its_enrichment_and_a_sync(runtime: LocalRuntime) -> None:
    ws = f"ops-{uuid.uuid4().hex[:10]}"
    tag = f"t{uuid.uuid4().hex[:8]}"
    d0, d1 = known_domains(2)
    people = [(f"{tag}.ann@{d0}", "Ann"), (f"{tag}.bo@{d0}", "Bo"), (f"{tag}.cy@{d1}", "Cy")]
    emails = [e for e, _ in people]
    with runtime.api_client(ws) as api:
        before = api.status()
        assert before["total"] == 0 and before["stats"]["enriched"] == 0
        assert before["stats"]["last_run"] == {"enrichment": None, "sync": None}
        assert before["stats"]["cache_hit_rate"] is None
        assert "sample" in before["config"]["providers_configured"]
        assert "apollo" in before["config"]["providers_without_key"]

        # import -> contacts.imported -> AutoEnrich -> one enrichment run
        job = api.import_csv(people_csv(people, tag), "ops.csv")
        api.wait_job(job["job_id"], timeout=30)
        contacts = wait_until(
            lambda: api.contacts(limit=10)["items"],
            lambda items: len(items) == 3 and all(c["status"] == "enriched" for c in items),
            what="three enriched contacts",
        )
        status = wait_until(api.status, lambda s: s["stats"]["enrichment"]["runs"] == 1, what="the run's stats")
        stats = status["stats"]
        assert status["total"] == 3 and stats["by_status"]["enriched"] == 3 == status["counts"]["enriched"]
        assert (stats["enriched"], stats["failed"], stats["synced"]) == (3, 0, 0)
        assert stats["provider_calls"] > 0 and stats["cache_lookups"] > 0  # the people are new: providers asked
        first = stats["last_run"]["enrichment"]
        # the automatic enrichment of the import's first chunk (rows from 2): named by it, so a replay is recognised
        assert first["request_id"] == f"imp-{job['job_id']}-r2.0" and first["outcome"] == "completed"
        assert first["counts"]["contacts"] == 3 and first["counts"]["enriched"] == 3

        # the same contacts again: every answer comes from the cache, no provider is called
        accepted = api.enrich(emails)
        status = wait_until(
            api.status,
            lambda s: (s["stats"]["last_run"]["enrichment"] or {}).get("request_id") == accepted["request_id"],
            what="the manual run's stats",
        )
        stats = status["stats"]
        second = stats["last_run"]["enrichment"]["counts"]
        assert second["cache_hits"] == second["cache_lookups"] > 0 and second["provider_calls"] == 0
        assert stats["enrichment"]["runs"] == 2 and stats["enriched"] == 6
        assert stats["provider_calls"] == first["counts"]["provider_calls"]
        assert stats["cache_hit_rate"] == round(stats["cache_hits"] / stats["cache_lookups"], 4) > 0

        # the summary, from the counters, agrees with the contacts themselves
        contacts = api.contacts(limit=10)["items"]
        facets = expected_facets(contacts)
        summary = api.summary()
        assert summary["workspace"] == ws and (summary["total"], summary["enriched"]) == (3, 3)
        assert {f["value"]: f["contacts"] for f in summary["industries"]} == facets["industry"]
        assert facets["industry"] and facets["country"]  # known companies: something to summarise
        assert {f["value"]: f["contacts"] for f in summary["company_sizes"]} == facets["size"]
        assert {f["value"]: f["contacts"] for f in summary["countries"]} == facets["country"]
        assert {c["provider"]: c["contacts"] for c in summary["coverage"]} == facets["provider"]
        assert {c["provider"]: c["share"] for c in summary["coverage"]}["sample"] == 1.0
        buckets = Counter(f"{min(9, int(c['quality'] * 10 + 1e-9)) / 10:.1f}" for c in contacts)
        assert {b["range"][:3]: b["contacts"] for b in summary["quality"] if b["contacts"]} == buckets
        assert [f["value"] for f in api.summary(top=1)["industries"]] == [summary["industries"][0]["value"]]

        # a sync run (this workspace has no portal of its own: its outcome, whatever it is, is recorded)
        sync = api.sync(emails)
        status = wait_until(
            api.status,
            lambda s: (s["stats"]["last_run"]["sync"] or {}).get("request_id") == sync["request_id"],
            what="the sync run's stats",
        )
        synced = status["stats"]["last_run"]["sync"]["counts"]
        assert synced["contacts"] == 3 and synced["synced"] + synced["failed"] == 3
        assert status["stats"]["sync"]["runs"] == 1

        # the activity feed: every run started and ended, and the import, newest first
        def feed_has_everything(items: list[dict[str, Any]]) -> bool:
            ended = {(e["type"], e["request_id"]) for e in items}
            return {
                ("enrichment.completed", first["request_id"]),
                ("enrichment.completed", accepted["request_id"]),
                ("sync.completed", sync["request_id"]),
            } <= ended and any(e["type"] == "contacts.imported" for e in items)

        items = wait_until(lambda: api.activity(limit=100)["items"], feed_has_everything, what="the activity feed")
        assert all(e["workspace"] == ws for e in items)
        times = [datetime.fromisoformat(e["at"]) for e in items]
        assert times == sorted(times, reverse=True)
        assert run_entries(items, first["request_id"]) == [
            ("enrichment.completed", first["counts"]),
            ("enrichment.started", {"contacts": 3}),
        ]
        assert [t for t, _ in run_entries(items, accepted["request_id"])] == [
            "enrichment.completed",
            "enrichment.started",
        ]
        assert [t for t, _ in run_entries(items, sync["request_id"])] == ["sync.completed", "sync.started"]
        [imported] = [e for e in items if e["type"] == "contacts.imported"]
        assert imported["job_id"] == job["job_id"] and imported["counts"] == {"contacts": 3}

        # paging and since
        page = api.activity(limit=2)
        assert [e["id"] for e in page["items"]] == [e["id"] for e in items[:2]] and page["next_cursor"]
        rest = api.activity(limit=100, cursor=page["next_cursor"])["items"]
        assert [e["id"] for e in rest] == [e["id"] for e in items[2:]]
        sync_started = next(e for e in items if e["type"] == "sync.started")
        recent = api.activity(since=sync_started["at"])["items"]
        assert {e["id"] for e in recent} >= {sync_started["id"]}
        assert all(datetime.fromisoformat(e["at"]) >= datetime.fromisoformat(sync_started["at"]) for e in recent)
        assert not any(e["request_id"] == first["request_id"] for e in recent)

    # another workspace sees none of it, and this one's numbers did not leak into it
    with runtime.api_client(f"{ws}-b") as other:
        assert other.status()["total"] == 0 and other.status()["stats"]["enrichment"]["runs"] == 0
        assert other.summary()["total"] == 0 and other.summary()["industries"] == []
        assert other.activity()["items"] == []
    with runtime.api_client() as default:
        mine = {first["request_id"], accepted["request_id"], sync["request_id"]}
        assert not any(e["request_id"] in mine for e in default.activity(limit=100)["items"])


def test_the_commands_print_status_summary_and_activity(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = f"cli-{uuid.uuid4().hex[:10]}"
    tag = f"t{uuid.uuid4().hex[:8]}"
    [domain] = known_domains(1)
    monkeypatch.setenv("LEADPIPE_API_KEY", runtime.api_key(ws))
    url = ["--api-url", runtime.api_url]
    with runtime.api_client(ws) as api:
        job = api.import_csv(people_csv([(f"{tag}@{domain}", "Dee")], tag), "cli-ops.csv")
        api.wait_job(job["job_id"], timeout=30)
        wait_until(
            lambda: api.activity()["items"],
            lambda items: any(e["type"] == "enrichment.completed" for e in items),
            what="the enrichment run in the feed",
        )
        industry = api.summary()["industries"][0]["value"]
    assert main(["status", *url]) == 0
    out = capsys.readouterr().out
    assert f"workspace {ws}" in out and "enriched 1, synced 0, failed 0" in out and "cache hit rate" in out
    assert "providers_configured" in out
    assert main(["summary", *url]) == 0
    out = capsys.readouterr().out
    assert industry in out and "1 scored" in out and "0.9-1.0" in out
    assert main(["activity", *url]) == 0
    out = capsys.readouterr().out
    assert "enrichment.completed" in out and "enrichment.started" in out and "contacts.imported" in out
    assert main(["activity", "--json", "--limit", "1", *url]) == 0
    page = json.loads(capsys.readouterr().out)
    assert len(page["items"]) == 1 and page["next_cursor"]


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/activity", {"limit": "0"}, "validation_error"),
        ("/activity", {"limit": "101"}, "validation_error"),
        ("/activity", {"since": "yesterday"}, "validation_error"),
        ("/activity", {"cursor": "%%%"}, "invalid_cursor"),
        ("/activity", {"cursor": "eyJzayI6IDF9"}, "invalid_cursor"),
        ("/summary", {"top": "0"}, "validation_error"),
        ("/summary", {"top": "many"}, "validation_error"),
    ],
)
def test_bad_parameters_are_clear_400s(api: ApiClient, path: str, params: dict[str, str], code: str) -> None:
    with pytest.raises(ApiError) as refused:
        api._request("GET", path, params=params)
    assert (refused.value.status, refused.value.code) == (400, code)


def test_the_operations_routes_need_a_key(runtime: LocalRuntime) -> None:
    with ApiClient(runtime.api_url, api_key="lp_not_a_key") as stranger:
        for call in (stranger.status, stranger.summary, stranger.activity):
            with pytest.raises(ApiError) as refused:
                call()
            assert refused.value.status == 401
