"""Dead-letter queues against moto: who a message belongs to, peeking, and redriving a workspace's messages only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from leadpipe.dlq import DeadLetters, _send_batches, dead_letter_queues, origin_of
from leadpipe.errors import ConfigurationError, NotFound, TransientError
from leadpipe.settings import Settings
from tests.conftest import Stack


def settings_of(stack: Stack) -> Settings:
    return Settings(
        import_queue_url=stack.ref("ImportQueue"),
        enrich_queue_url=stack.ref("EnrichQueue"),
        sync_queue_url=stack.ref("SyncQueue"),
        change_queue_url=stack.ref("ChangeQueue"),
        deal_queue_url=stack.ref("DealQueue"),
        activity_queue_url=stack.ref("ActivityQueue"),
        import_dlq_url=stack.ref("ImportDLQ"),
        enrich_dlq_url=stack.ref("EnrichDLQ"),
        sync_dlq_url=stack.ref("SyncDLQ"),
        change_dlq_url=stack.ref("ChangeDLQ"),
        deal_dlq_url=stack.ref("DealDLQ"),
        activity_dlq_url=stack.ref("ActivityDLQ"),
    )


def change(workspace: str, n: int = 1) -> str:
    changes = [{"object_id": str(100 + i), "occurred_at": 1_700_000_000_000} for i in range(n)]
    return json.dumps({"type": "change.batch", "workspace": workspace, "origin": "poll", "changes": changes})


def s3_event(key: str) -> str:
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "uploads"}, "object": {"key": key, "size": 10}},
    }
    return json.dumps({"Records": [record]})


class Queues:
    def __init__(self, stack: Stack, sqs: Any = None) -> None:
        self.sqs = stack.client("sqs")
        self.settings = settings_of(stack)
        self.dlq = DeadLetters(
            sqs or self.sqs, dead_letter_queues(self.settings), default_workspace="default", wait_seconds=0
        )

    def put(self, url: str, *bodies: str) -> None:
        for body in bodies:
            self.sqs.send_message(QueueUrl=url, MessageBody=body)

    def drain(self, url: str) -> list[str]:
        """Every visible message's body (received and deleted)."""
        out = []
        while got := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for m in got:
                out.append(m["Body"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return out

    def counts(self, url: str) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


# ------------------------------------------------------------------------------------------------ attribution


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '{"type": "import.run", "workspace": "acme", "job_id": "imp_1"}',
            {"workspace": "acme", "type": "import.run", "ref": "imp_1"},
        ),
        (
            json.dumps({"type": "enrich.request", "workspace": "acme", "request_id": "req-1", "emails": ["a@b.co"]}),
            {"workspace": "acme", "type": "enrich.request", "emails": 1, "ref": "req-1"},
        ),
        (
            json.dumps(
                {
                    "type": "enrich.poll",
                    "workspace": "acme",
                    "request_id": "req-2",
                    "provider": "dropcontact",
                    "provider_request_id": "x",
                    "emails": ["a@b.co", "c@d.co"],
                }
            ),
            {"workspace": "acme", "type": "enrich.poll", "emails": 2, "ref": "req-2"},
        ),
        (
            json.dumps({"type": "sync.request", "workspace": "acme", "request_id": "s-1", "emails": ["a@b.co"]}),
            {"workspace": "acme", "type": "sync.request", "emails": 1, "ref": "s-1"},
        ),
        (change("acme", 3), {"workspace": "acme", "type": "change.batch", "changes": 3}),
        (
            '{"type": "deals.run", "workspace": "acme", "run_id": "deal-1"}',
            {"workspace": "acme", "type": "deals.run", "ref": "deal-1"},
        ),
        (  # EventBridge events delivered by the bus's rules
            json.dumps(
                {
                    "id": "evt-9",
                    "detail-type": "contacts.imported",
                    "source": "leadpipe",
                    "detail": {"workspace": "acme", "source": "api", "job_id": "imp_2", "emails": ["a@b.co"]},
                }
            ),
            {"workspace": "acme", "type": "contacts.imported", "emails": 1, "ref": "imp_2"},
        ),
        (
            json.dumps(
                {
                    "id": "evt-10",
                    "detail-type": "contacts.enriched",
                    "detail": {"workspace": "acme", "request_id": "r-3", "emails": ["a@b.co", "b@b.co"]},
                }
            ),
            {"workspace": "acme", "type": "contacts.enriched", "emails": 2, "ref": "r-3"},
        ),
        (  # a presigned upload: the workspace is in the (URL-encoded) key; any other drop is the default workspace's
            s3_event("incoming/uploads/acme/imp_3/my+file%281%29.csv"),
            {"workspace": "acme", "type": "s3:ObjectCreated:Put", "ref": "incoming/uploads/acme/imp_3/my file(1).csv"},
        ),
        (s3_event("incoming/leads.csv"), {"workspace": "default", "type": "s3:ObjectCreated:Put"}),
        (s3_event("incoming/uploads/Not A Workspace/imp_4/f.csv"), {"workspace": "default"}),
        ("not json", {"workspace": None, "problem": "the body is not JSON"}),
        ("[1, 2]", {"workspace": None, "problem": "the body is not a JSON object"}),
        ('{"type": "enrich.request", "emails": []}', {"workspace": None, "type": "enrich.request"}),
        (
            '{"type": "x", "workspace": "../etc"}',
            {"workspace": None, "problem": "the message names no valid workspace"},
        ),
        ('{"detail-type": "contacts.imported", "detail": {}}', {"workspace": None, "type": "contacts.imported"}),
        (
            json.dumps(
                {
                    "Records": [
                        json.loads(s3_event("incoming/uploads/acme/imp_5/a.csv"))["Records"][0],
                        json.loads(s3_event("incoming/b.csv"))["Records"][0],
                    ]
                }
            ),
            {"workspace": None, "problem": "objects of several workspaces"},
        ),
        (
            '{"Records": [{"eventSource": "aws:s3"}]}',
            {"workspace": None, "problem": "an S3 notification without an object key"},
        ),
    ],
)
def test_each_queue_body_names_its_workspace(body: str, expected: dict[str, Any]) -> None:
    origin = origin_of(body, "default")
    assert {k: getattr(origin, k) for k in expected} == expected


def test_every_queue_and_dlq_must_be_configured() -> None:
    with pytest.raises(ConfigurationError) as caught:
        dead_letter_queues(Settings(import_queue_url="q", import_dlq_url="d"))
    assert "ENRICH_QUEUE_URL" in caught.value.message and "DEAL_DLQ_URL" in caught.value.message
    assert "IMPORT_QUEUE_URL" not in caught.value.message


def test_an_unknown_queue_is_not_found_with_the_list(stack: Stack) -> None:
    q = Queues(stack)
    with pytest.raises(NotFound) as caught:
        q.dlq.redrive("acme", "imports")
    assert caught.value.details == {"queues": ["import", "enrich", "sync", "change", "deal", "activity"]}
    assert "import, enrich, sync, change, deal" in caught.value.message
    with pytest.raises(NotFound):
        q.dlq.inspect("acme", ["nope"])


# ------------------------------------------------------------------------------------------------ peeking


def test_a_message_that_failed_too_often_reaches_the_dlq_and_is_shown_to_its_workspace_only(stack: Stack) -> None:
    q = Queues(stack)
    source, dead = stack.ref("DealQueue"), stack.ref("DealDLQ")
    q.put(source, '{"type": "deals.run", "workspace": "acme", "run_id": "deal-7"}')
    for _ in range(3):  # DealQueue's maxReceiveCount: 3 failed deliveries
        [m] = q.sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)["Messages"]
    assert q.sqs.receive_message(QueueUrl=source).get("Messages") is None  # moved to the DLQ on the 4th receive

    [report] = q.dlq.inspect("acme", ["deal"])
    assert (report.queue, report.dlq, report.approximate_depth) == ("deal", dead.rsplit("/", 1)[-1], 1)
    [letter] = report.messages
    assert letter.message_id == m["MessageId"] and letter.receive_count is not None and letter.receive_count >= 3
    assert letter.sent_at is not None
    assert (letter.origin.workspace, letter.origin.type, letter.origin.ref) == ("acme", "deals.run", "deal-7")
    assert (report.yours, report.others, report.scanned, report.complete) == (1, 0, 1, True)

    [other] = q.dlq.inspect("globex", ["deal"])
    assert (other.messages, other.yours, other.others, other.approximate_depth) == ([], 0, 1, 1)


def test_peeking_leaves_every_message_visible_and_shows_only_the_callers(stack: Stack) -> None:
    q = Queues(stack)
    dead = stack.ref("ChangeDLQ")
    q.put(dead, change("acme"), change("acme", 2), change("globex"), "garbage")

    reports = {r.queue: r for r in q.dlq.inspect("acme")}
    assert set(reports) == {"import", "enrich", "sync", "change", "deal", "activity"}
    peek = reports["change"]
    assert (peek.approximate_depth, peek.yours, peek.others, peek.unattributed, peek.scanned) == (4, 2, 1, 1, 4)
    assert sorted(m.origin.changes or 0 for m in peek.messages) == [1, 2]
    assert {m.origin.workspace for m in peek.messages} == {"acme"}
    assert reports["enrich"].approximate_depth == 0 and reports["enrich"].messages == []
    assert q.counts(dead) == (4, 0)  # all visible again at once

    [limited] = q.dlq.inspect("acme", ["change"], limit=1)
    assert len(limited.messages) == 1 and limited.yours == 2

    # the deployment's default workspace also sees the message no workspace could be determined for (no content)
    [default] = q.dlq.inspect("default", ["change"])
    [unknown] = default.messages
    assert (unknown.origin.workspace, unknown.origin.problem) == (None, "the body is not JSON")
    assert sorted(q.drain(dead)) == sorted([change("acme"), change("acme", 2), change("globex"), "garbage"])


# ------------------------------------------------------------------------------------------------ redriving


def test_a_redrive_moves_only_the_callers_messages_back_to_their_queue(stack: Stack) -> None:
    q = Queues(stack)
    source, dead = stack.ref("ChangeQueue"), stack.ref("ChangeDLQ")
    mine = [change("acme", n) for n in (1, 2, 3)]
    theirs = [change("globex"), change("globex", 2)]
    q.put(dead, *mine, *theirs, "garbage")

    report = q.dlq.redrive("acme", "change")

    assert (report.moved, report.remaining, report.complete) == (3, 0, True)
    assert (report.others, report.unattributed, report.scanned, report.failures) == (2, 1, 6, [])
    assert sorted(q.drain(source)) == sorted(mine)  # the bodies as they were
    assert q.counts(dead) == (3, 0)  # the others' and the unknown one: visible again at once
    assert sorted(q.drain(dead)) == sorted([*theirs, "garbage"])


def test_a_redrive_is_bounded_and_says_what_is_left(stack: Stack) -> None:
    q = Queues(stack)
    source, dead = stack.ref("EnrichQueue"), stack.ref("EnrichDLQ")
    bodies = [
        json.dumps({"type": "enrich.request", "workspace": "acme", "request_id": f"r{i}", "emails": ["a@b.co"]})
        for i in range(5)
    ]
    q.put(dead, *bodies)

    first = q.dlq.redrive("acme", "enrich", max_messages=2)
    assert (first.moved, first.remaining, first.complete) == (2, 3, False)
    assert q.counts(dead) == (3, 0)
    second = q.dlq.redrive("acme", "enrich", max_messages=10)
    assert (second.moved, second.remaining, second.complete) == (3, 0, True)
    assert sorted(q.drain(source)) == sorted(bodies)
    assert q.counts(dead) == (0, 0)


def test_s3_notifications_go_back_to_the_import_queue_for_their_workspace(stack: Stack) -> None:
    q = Queues(stack)
    source, dead = stack.import_queue_url, stack.import_dlq_url
    upload, drop = s3_event("incoming/uploads/acme/imp_1/a.csv"), s3_event("incoming/b.csv")
    q.put(dead, upload, drop)
    assert q.dlq.redrive("acme", "import").moved == 1
    assert q.dlq.redrive("default", "import").moved == 1
    redriven = [b for b in q.drain(source) if "s3:TestEvent" not in b]  # S3's test event when the bucket was set up
    assert sorted(redriven) == sorted([upload, drop])


class FlakySqs:
    """The real client, except that the source refuses bodies containing ``refuse`` and the DLQ fails to delete
    those containing ``stuck`` (the batch calls' per-entry failures), or every send raises."""

    def __init__(self, real: Any, *, send_raises: bool = False) -> None:
        self.real = real
        self.send_raises = send_raises
        self.sends: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.sends.append(len(Entries))
        if self.send_raises:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessageBatch")
        refused = [e for e in Entries if "refuse" in e["MessageBody"]]
        accepted = [e for e in Entries if "refuse" not in e["MessageBody"]]
        response = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=accepted) if accepted else {}
        failed = [
            {"Id": e["Id"], "Code": "InternalError", "Message": "try again", "SenderFault": False} for e in refused
        ]
        return {"Successful": response.get("Successful", []), "Failed": failed}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.bodies = getattr(self, "bodies", {})
        stuck = [e for e in Entries if "stuck" in self.bodies.get(e["ReceiptHandle"], "")]
        rest = [e for e in Entries if e not in stuck]
        response = self.real.delete_message_batch(QueueUrl=QueueUrl, Entries=rest) if rest else {}
        failed = [
            {"Id": e["Id"], "Code": "ReceiptHandleIsInvalid", "Message": "expired", "SenderFault": True} for e in stuck
        ]
        return {"Successful": response.get("Successful", []), "Failed": failed}

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        response = self.real.receive_message(**kwargs)
        self.bodies = getattr(self, "bodies", {})
        for m in response.get("Messages", []):
            self.bodies[m["ReceiptHandle"]] = m["Body"]
        return response


def sync_request(request_id: str) -> str:
    return json.dumps({"type": "sync.request", "workspace": "acme", "request_id": request_id, "emails": ["a@b.co"]})


def test_a_partial_batch_failure_keeps_the_refused_message_in_the_dlq(stack: Stack) -> None:
    flaky = FlakySqs(stack.client("sqs"))
    q = Queues(stack, flaky)
    source, dead = stack.ref("SyncQueue"), stack.ref("SyncDLQ")
    q.put(dead, sync_request("ok-1"), sync_request("refuse-1"), sync_request("stuck-1"), sync_request("ok-2"))

    report = q.dlq.redrive("acme", "sync")

    assert report.moved == 3  # ok-1, ok-2 and stuck-1 are back on the queue
    assert sorted((f.stage, f.code) for f in report.failures) == [
        ("delete", "ReceiptHandleIsInvalid"),
        ("send", "InternalError"),
    ]
    assert report.remaining == 1  # the refused one, still in the DLQ and visible: a later call retries it
    assert sorted(json.loads(b)["request_id"] for b in q.drain(source)) == ["ok-1", "ok-2", "stuck-1"]
    visible, hidden = q.counts(dead)
    # refused: visible again at once; sent but not deleted: back after its visibility timeout (a later redrive
    # would deliver it twice, which the consumers tolerate)
    assert (visible, hidden) == (1, 1)
    assert [json.loads(b)["request_id"] for b in q.drain(dead)] == ["refuse-1"]


def test_a_source_that_refuses_every_send_fails_the_call_and_hides_nothing(stack: Stack) -> None:
    q = Queues(stack, FlakySqs(stack.client("sqs"), send_raises=True))
    dead = stack.ref("SyncDLQ")
    q.put(dead, sync_request("a"), json.dumps({"type": "sync.request", "workspace": "globex", "request_id": "b"}))
    with pytest.raises(TransientError) as caught:
        q.dlq.redrive("acme", "sync")
    assert "could not send to the sync queue: AccessDenied" in caught.value.message
    assert q.counts(dead) == (2, 0)


def test_send_batches_stay_under_ten_messages_and_the_payload_limit() -> None:
    small = [{"Body": "x"} for _ in range(23)]
    assert [len(b) for b in _send_batches(small)] == [10, 10, 3]
    big = [{"Body": "y" * 100_000} for _ in range(5)]
    assert [len(b) for b in _send_batches(big)] == [2, 2, 1]


class Bouncing(FlakySqs):
    """A queue whose consumer fails at once: whatever is sent to it is back in the DLQ straight away."""

    def __init__(self, real: Any, dlq_url: str) -> None:
        super().__init__(real)
        self.dlq_url = dlq_url

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        response = super().send_message_batch(QueueUrl=QueueUrl, Entries=Entries)
        for entry in Entries:
            self.real.send_message(QueueUrl=self.dlq_url, MessageBody=entry["MessageBody"])
        return response


def test_a_message_that_fails_again_at_once_is_moved_once_per_call(stack: Stack) -> None:
    dead = stack.ref("SyncDLQ")
    q = Queues(stack, Bouncing(stack.client("sqs"), dead))
    q.put(dead, sync_request("again"))
    report = q.dlq.redrive("acme", "sync")
    assert (report.moved, report.remaining, report.complete) == (1, 1, True)
    assert q.counts(dead) == (1, 0)  # back, visible, for a later call once its cause is fixed


def test_the_activity_dlq_is_inspected_and_redriven_per_workspace(stack: Stack) -> None:
    q = Queues(stack)
    source, dead = stack.ref("ActivityQueue"), stack.ref("ActivityDLQ")

    def event(ws: str, n: int) -> str:  # what ActivityRule delivers: the bus event, workspace in its detail
        detail = {"workspace": ws, "request_id": f"req-{n}", "at": "2026-11-24T10:00:00Z", "counts": {"contacts": 3}}
        return json.dumps(
            {"id": f"ev-{n}", "detail-type": "enrichment.completed", "source": "leadpipe", "detail": detail}
        )

    q.put(dead, event("acme", 1), event("globex", 2))
    [report] = q.dlq.inspect("acme", ["activity"])
    assert (report.yours, report.others) == (1, 1)
    assert report.messages[0].origin.workspace == "acme"
    moved = q.dlq.redrive("acme", "activity")
    assert (moved.moved, moved.others) == (1, 1)
    assert q.drain(source) == [event("acme", 1)]
    assert q.drain(dead) == [event("globex", 2)]
