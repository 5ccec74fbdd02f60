"""Reliability (issue 8): one enrichment provider down. The others enrich the contacts, the gap is recorded on each,
and once the provider is back the retry schedule enriches them again and fills what it alone knows."""

from __future__ import annotations

from pathlib import Path

import httpx

from leadpipe_local.fakes.apollo import FakeApollo
from leadpipe_local.runtime import LocalRuntime
from tests.conftest import TEMPLATE
from tests.e2e.conftest import wait_until
from tests.e2e.test_enrichment import known_domains


def gap_entries(rt: LocalRuntime) -> list[dict[str, object]]:
    table = rt.provisioned.ref("StateTable")  # type: ignore[union-attr]
    return rt.client("dynamodb").query(  # type: ignore[no-any-return]
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "GAPRETRY#default"}},
    )["Items"]


def test_one_provider_down_the_others_enrich_the_gap_is_recorded_and_filled_later(
    tmp_path: Path, apollo: FakeApollo
) -> None:
    domain = known_domains(8)[7]
    emails = [f"gap{i}@{domain}" for i in range(3)]
    for i, email in enumerate(emails):
        apollo.add_person(email, first_name=f"Gap{i}", last_name=f"Surname{i}", title="Head of Sales")
    rt = LocalRuntime(
        TEMPLATE,
        api_port=0,
        state_dir=tmp_path,
        retry_delay=0,
        run_schedules=False,  # the retry schedule is fired below, when the test says it is due
        parameters={"EnrichProviders": "apollo,sample"},
        env_overrides={"EnrichFunction": {"APOLLO_BASE_URL": apollo.url, "ENRICH_GAP_RETRY_MINUTES": "0"}},
    )
    with rt, rt.api_client() as api:
        rt.client("ssm").put_parameter(
            Name="/leadpipe/dev/workspaces/default/providers/apollo", Value="apollo-test-key", Type="SecureString"
        )
        down = {"status": 503, "body": {"error": "Service Unavailable"}, "seconds": 600}
        assert httpx.post(f"{apollo.url}/_fake/faults", json=down).status_code == 201
        rows = "".join(f"{e},Gap{i}\n" for i, e in enumerate(emails))
        api.wait_job(api.import_csv(f"Email,First Name\n{rows}".encode(), "gaps.csv")["job_id"], timeout=30)
        first = wait_until(
            lambda: [api.contact(e) for e in emails],
            lambda cs: all(c["status"] in ("enriched", "synced") and c["enrichment_meta"] for c in cs),
            timeout=120,
            what="the contacts enriched without Apollo",
        )
        rt.wait_until_idle(60)
        for contact in first:
            meta = contact["enrichment_meta"]
            assert {(g["provider"], g["reason"]) for g in meta["gaps"]} == {("apollo", "server_error")}, meta
            assert meta["gap_retries"] == 1
            assert contact["enrichment"]["company_name"]["provider"] == "sample"  # the other provider answered
            assert "last_name" not in contact["enrichment"]  # only Apollo knows it
        assert sorted(str(i["email"]["S"]) for i in gap_entries(rt)) == sorted(emails)  # type: ignore[index]
        asked_while_down = len(apollo.calls("bulk_match"))
        assert asked_while_down >= 1

        assert httpx.delete(f"{apollo.url}/_fake/faults").status_code == 200  # Apollo is back
        queued = rt.fire_schedule("EnrichFunction", "RetryDue")  # the retry schedule, when the gap is due
        assert queued is not None
        filled = wait_until(
            lambda: [api.contact(e) for e in emails],
            lambda cs: all(c["enrichment_meta"]["gap_retries"] == 0 for c in cs),
            timeout=120,
            what="the contacts enriched again with Apollo",
        )
        rt.wait_until_idle(60)
        for i, contact in enumerate(filled):
            assert contact["enrichment_meta"]["gaps"] == []
            assert contact["enrichment_meta"]["request_id"].startswith("retry-")
            assert contact["enrichment"]["last_name"] == contact["enrichment"]["last_name"] | {
                "value": f"Surname{i}",
                "provider": "apollo",
            }
            assert contact["enrichment"]["company_name"]["provider"] == "sample"
        assert len(apollo.calls("bulk_match")) > asked_while_down
        assert gap_entries(rt) == []  # collected; nothing left to retry
        assert {q["approximate_depth"] for q in api.dlq()["queues"]} == {0}  # nothing went to a DLQ
        rt.fire_schedule("EnrichFunction", "RetryDue")
        rt.wait_until_idle(30)
        again = [api.contact(e)["enrichment_meta"]["request_id"] for e in emails]
        assert again == [c["enrichment_meta"]["request_id"] for c in filled]  # nothing was due the second time
