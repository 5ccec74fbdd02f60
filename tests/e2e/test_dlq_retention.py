"""Dead-letter queues and the retention purge end to end: a message failing into a DLQ, seen and redriven by its
workspace only (HTTP API and the ``leadpipe`` command), and the retention function purging a workspace's enrichment."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadpipe.enrichment.merge import quality
from leadpipe.models import FieldValue, iso
from leadpipe_local.cli import main
from leadpipe_local.client import ApiClient, ApiError
from leadpipe_local.fakes.base import Fault
from leadpipe_local.runtime import LocalRuntime
from tests.e2e.conftest import wait_until


def change_dlq(api: ApiClient) -> dict[str, Any]:
    [queue] = api.dlq(queue="change")["queues"]
    return queue  # type: ignore[no-any-return]


def contact_or_none(api: ApiClient, email: str) -> dict[str, Any] | None:
    try:
        return api.contact(email)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def test_a_failing_change_lands_in_the_dlq_and_its_workspace_alone_sees_and_redrives_it(
    runtime: LocalRuntime, domain: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws_a, ws_b = f"dlq-a-{uuid.uuid4().hex[:8]}", f"dlq-b-{uuid.uuid4().hex[:8]}"
    email = f"dee@{domain}"
    record_id = runtime.hubspot.add_record("contacts", {"email": email, "firstname": "Dee", "lastname": "Queue"})
    # workspace A has its own HubSpot token (a workspace's token is never the deployment's), stored where
    # PUT /settings/hubspot puts it
    keys_path = runtime.pools["ImportFunction"].spec.environment["PROVIDER_KEYS_PATH"]
    runtime.client("ssm").put_parameter(
        Name=f"{keys_path}/{ws_a}/hubspot/token", Value=runtime.hubspot.token, Type="SecureString"
    )
    # HubSpot refuses the token while this record is read back: every delivery fails (a 401 is not retried by the
    # client), then the message is dead. Five times, the record named in the body: ChangeQueue's maxReceiveCount is
    # 5, so a sixth delivery would succeed (and the message never reach the DLQ), a fifth missing would leave one
    # refusal for the redrive below; and no other workspace's read can take one of them.
    runtime.wait_until_idle(timeout=60)
    fake = runtime.hubspot
    changes = next(
        s for s in runtime.sqs_sources if s.function == "ImportFunction" and s.event_name == "ChangeQueueMessages"
    )
    failed_before = changes.stats["failed"]
    first = len(fake.requests)
    fault = Fault(
        status=401,
        body={
            "status": "error",
            "message": "Authentication credentials not found.",
            "category": "INVALID_AUTHENTICATION",
        },
        path=r"^/crm/v3/objects/contacts/batch/read$",
        body_match=rf'"id":\s*"{record_id}"',
        times=5,
    )
    fake.inject(fault)

    def reads() -> list[int | None]:
        """The statuses of the batch reads of this record since the fault was added."""
        return [
            r.status
            for r in fake.requests[first:]
            if r.path == "/crm/v3/objects/contacts/batch/read"
            and record_id in {str(i.get("id")) for i in r.json().get("inputs", [])}
        ]

    change = {
        "type": "change.batch",
        "workspace": ws_a,
        "origin": "poll",
        "changes": [{"object_id": record_id, "occurred_at": int(time.time() * 1000)}],
    }
    sqs = runtime.client("sqs")
    sent = sqs.send_message(QueueUrl=runtime.provisioned.ref("ChangeQueue"), MessageBody=json.dumps(change))  # type: ignore[union-attr]
    message_id = sent["MessageId"]

    with runtime.api_client(ws_a) as api_a, runtime.api_client(ws_b) as api_b:
        try:
            queue = wait_until(
                lambda: change_dlq(api_a),
                lambda q: any(m["message_id"] == message_id for m in q["messages"]),
                what="the change message in the change DLQ",
            )
        finally:
            with fake.lock:  # whatever happened, this fault (and no other) is gone
                fake.faults = [f for f in fake.faults if f is not fault]
        # delivered exactly maxReceiveCount times, each one refused, before it was moved to the DLQ
        assert reads() == [401] * 5
        assert fault.times == 0
        assert changes.stats["failed"] - failed_before == 5
        [letter] = [m for m in queue["messages"] if m["message_id"] == message_id]
        assert (letter["workspace"], letter["type"], letter["changes"], letter["emails"]) == (
            ws_a,
            "change.batch",
            1,
            None,
        )
        # (moto counts the receive that moved it to the DLQ too: the five deliveries are counted exactly above)
        assert letter["receive_count"] >= 5 and letter["sent_at"]
        assert queue["approximate_depth"] >= 1 and queue["yours"] >= 1
        assert "body" not in letter and "changes" in letter  # a summary, never the body

        # another workspace's key neither sees it nor moves it
        theirs = change_dlq(api_b)
        assert all(m["workspace"] == ws_b for m in theirs["messages"]) and theirs["others"] >= 1
        refused = api_b.redrive("change")
        assert refused["moved"] == 0 and refused["others"] >= 1
        assert any(m["message_id"] == message_id for m in change_dlq(api_a)["messages"])

        # an unknown queue, a bad body: clear 4xx answers
        with pytest.raises(ApiError) as caught:
            api_a.redrive("imports")
        assert (caught.value.status, caught.value.code) == (404, "queue_not_found")
        assert caught.value.details == {"queues": ["import", "enrich", "sync", "change", "deal", "activity"]}
        with pytest.raises(ApiError) as caught:
            api_a.dlq(queue="nope")
        assert caught.value.status == 404
        with pytest.raises(ApiError) as caught:
            api_a.redrive("change", max=0)
        assert (caught.value.status, caught.value.code) == (400, "validation_error")
        assert contact_or_none(api_a, email) is None  # nothing happened yet

        # the cause is fixed (the fault is gone): the workspace's owner looks, then redrives, with the command
        monkeypatch.setenv("LEADPIPE_API_KEY", runtime.api_key(ws_a))
        url = ["--api-url", runtime.api_url]
        assert main(["dlq", "--queue", "change", *url]) == 0
        out = capsys.readouterr().out
        assert message_id in out and "change.batch" in out and "leadpipe redrive QUEUE" in out
        assert main(["redrive", "change", *url, "--json"]) == 0
        redriven = json.loads(capsys.readouterr().out)
        assert redriven["moved"] == 1 and redriven["last"]["remaining"] == 0 and redriven["failures"] == []

        # processed this time: the contact is read from HubSpot into workspace A, and only A
        created = wait_until(lambda: contact_or_none(api_a, email), lambda c: c is not None, what="the contact")
        assert created["first_name"] == "Dee" and created["hubspot"]["contact_id"] == record_id
        assert contact_or_none(api_b, email) is None
        runtime.wait_until_idle(60)
        assert reads() == [401] * 5 + [200]  # read once more, by the redriven message, and not again
        assert changes.stats["failed"] - failed_before == 5
        final = api_a.contact(email)
        assert final["status"] == "enriched", final["status"]  # taken in from HubSpot, then enriched
        assert [(s["source"], s["effect"], s["ref"]) for s in final["sources"]] == [("hubspot", "created", record_id)]
        after = change_dlq(api_a)
        assert after["yours"] == 0 and after["messages"] == [], after  # nothing of A's left in the DLQ


def enriched_contact(api: ApiClient, email: str) -> dict[str, Any]:
    return wait_until(  # type: ignore[no-any-return]
        lambda: contact_or_none(api, email),
        lambda c: c is not None and c["status"] == "enriched",
        what=f"{email} enriched",
    )


def test_the_retention_function_purges_a_workspaces_old_enrichment(runtime: LocalRuntime, domain: str) -> None:
    ws_r, ws_s = f"ret-r-{uuid.uuid4().hex[:8]}", f"ret-s-{uuid.uuid4().hex[:8]}"
    rows = "Email,First Name,Last Name,Job Title\n" + "".join(
        f"{p}@{domain},{p.title()},Tester,Head of Sales\n" for p in ("ann", "bo")
    )
    with runtime.api_client(ws_r) as api_r, runtime.api_client(ws_s) as api_s:
        for api in (api_r, api_s):
            job = api.import_csv(rows.encode(), "retention.csv")
            api.wait_job(job["job_id"], timeout=30)
        before = {e: enriched_contact(api_r, f"{e}@{domain}") for e in ("ann", "bo")}
        control = enriched_contact(api_s, f"ann@{domain}")
        ann = before["ann"]
        providers = {v["provider"] for v in ann["enrichment"].values()} - {"import"}
        assert providers, ann["enrichment"]  # the offline providers answered something

        # The daily schedule (365 days) finds nothing that old on this stack
        daily = runtime.fire_schedule("RetentionFunction")
        assert daily["disabled"] is False and daily["contacts_purged"] == 0
        assert abs(datetime.fromisoformat(daily["cutoff"]) - (datetime.now(UTC) - timedelta(days=365))) < timedelta(
            minutes=5
        )

        # An operator's invocation with a cutoff of now makes all of it old, for one workspace
        cutoff = datetime.now(UTC)
        result = runtime.invoke("RetentionFunction", {"cutoff": iso(cutoff), "workspace": ws_r})
        assert (result["workspace"], result["contacts_purged"], result["more"]) == (ws_r, 2, False)
        assert result["values_purged"] >= len(providers)

        after = api_r.contact(f"ann@{domain}")
        assert after["enrichment"], "the contact's own values stay"
        for name, value in after["enrichment"].items():
            assert (value["provider"], value["agreed_by"], value["conflicts"]) == ("import", [], []), name
        own = {name: FieldValue.model_validate(v) for name, v in after["enrichment"].items()}
        assert after["quality"] == quality(own) and after["quality"] < ann["quality"]
        assert after["status"] == "enriched" and after["first_name"] == "Ann" and after["title"] == "Head of Sales"
        assert after["intelligence"] is None

        # the other workspace's contact, enriched just as long ago, is untouched
        assert api_s.contact(f"ann@{domain}")["enrichment"] == control["enrichment"]
        # and a second run finds nothing left for the workspace
        again = runtime.invoke("RetentionFunction", {"cutoff": iso(cutoff), "workspace": ws_r})
        assert (again["contacts_checked"], again["contacts_purged"]) == (0, 0)
        with pytest.raises(Exception, match="cutoff is in the future"):
            runtime.invoke("RetentionFunction", {"cutoff": iso(datetime.now(UTC) + timedelta(days=1))})
