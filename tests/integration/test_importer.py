"""CSV import through the import service against moto (tables, bucket, queue and bus from template.yaml)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from leadpipe.contacts import ContactRepository
from leadpipe.errors import ImportFileError, PayloadTooLarge
from leadpipe.events import EventPublisher
from leadpipe.importer import ImportService
from leadpipe.jobs import JobRepository
from leadpipe.models import ImportSource, Job, JobStatus, PipelineStatus
from leadpipe.settings import Settings
from tests.conftest import Stack

FOREVER: Callable[[], int] = lambda: 10**9  # noqa: E731 - an invocation that never runs out of time

HEADER = "Email,First Name,Last Name,Company,Job Title,Phone,Tags\n"


def service(stack: Stack, **overrides: Any) -> ImportService:
    settings = Settings(
        contacts_table=stack.contacts_table,
        state_table=stack.state_table,
        uploads_bucket=stack.bucket,
        import_queue_url=stack.import_queue_url,
        event_bus_name=stack.bus,
        **overrides,
    )
    ddb = stack.client("dynamodb")
    queued(stack)  # S3 sent an s3:TestEvent when the notification was configured
    return ImportService(
        s3=stack.client("s3"),
        sqs=stack.client("sqs"),
        contacts=ContactRepository(ddb, stack.contacts_table),
        jobs=JobRepository(ddb, stack.state_table),
        publisher=EventPublisher(stack.client("events"), stack.bus),
        settings=settings,
    )


def queued(stack: Stack) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=stack.import_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=stack.import_queue_url, ReceiptHandle=m["ReceiptHandle"])


def run_queue(svc: ImportService, stack: Stack, remaining: Callable[[], int] = FOREVER) -> int:
    """Process ImportQueue until it is empty (what the import function does); returns messages handled."""
    handled = 0
    while True:
        messages = queued(stack)
        if not messages:
            return handled
        for body in messages:
            svc.handle_message(json.dumps(body), remaining_ms=remaining)
            handled += 1


def import_text(svc: ImportService, stack: Stack, text: str | bytes, name: str = "c.csv") -> Job:
    data = text.encode() if isinstance(text, str) else text
    job = svc.start_from_body("default", data, name)
    run_queue(svc, stack)
    final = svc.jobs.get("default", job.job_id)
    assert final is not None
    return final


def contact_rows(n: int, start: int = 0) -> str:
    return "".join(
        f"person{i}@company{i % 7}.com,First{i},Last{i},Company {i % 7},Title {i},+1 555 010 {i:04d},t{i % 3}\n"
        for i in range(start, start + n)
    )


# ------------------------------------------------------------------------------------------------ happy paths


def test_body_import_creates_contacts_counts_and_events(stack: Stack, bus_tap: Any) -> None:
    svc = service(stack)
    text = HEADER + contact_rows(30) + "not-an-email,X,Y,Z,T,,\n\n"
    job = import_text(svc, stack, text)

    assert job.status is JobStatus.COMPLETED_WITH_ERRORS
    assert job.counts.rows_read == 31
    assert job.counts.valid == 30
    assert job.counts.invalid == 1
    assert job.counts.imported == 30
    assert job.counts.merged == 0
    assert job.counts.blank == 1
    assert [(e.row, e.field, e.code) for e in job.errors] == [(32, "email", "invalid_email")]
    assert job.checkpoint is not None and job.checkpoint.offset == len(text.encode())

    c = svc.contacts.get("default", "person7@company0.com")
    assert c is not None
    assert (c.first_name, c.last_name, c.company, c.title) == ("First7", "Last7", "Company 0", "Title 7")
    assert c.domain == "company0.com"
    assert list(c.tags) == ["t1"]
    assert c.status is PipelineStatus.IMPORTED
    assert c.sources[0].job_id == job.job_id and c.sources[0].row == 9

    assert svc.contacts.counts("default")["imported"] == 30
    events = bus_tap.drain()
    emails = sorted(e for ev in events for e in ev["detail"]["emails"])
    assert {ev["detail-type"] for ev in events} == {"contacts.imported"}
    assert {ev["detail"]["job_id"] for ev in events} == {job.job_id}
    assert emails == sorted(f"person{i}@company{i % 7}.com" for i in range(30))


def test_duplicates_in_file_and_against_existing_are_merged_first_value_wins(stack: Stack, bus_tap: Any) -> None:
    svc = service(stack)
    first = import_text(
        svc,
        stack,
        HEADER
        + "ann@acme.com,Ann,,Acme,CTO,,webinar\n"
        + " ANN@Acme.com ,Annie,Lee,Acme Corp,CEO,+44 20 7946 0000,vip\n",
    )
    assert (first.counts.imported, first.counts.merged) == (1, 1)
    ann = svc.contacts.get("default", "ann@acme.com")
    assert ann is not None
    # first non-empty value wins; empty fields are filled by later rows; tags are united
    assert (ann.first_name, ann.last_name, ann.company, ann.title, ann.phone) == (
        "Ann",
        "Lee",
        "Acme",
        "CTO",
        "+44 20 7946 0000",
    )
    assert sorted(ann.tags) == ["vip", "webinar"]
    assert [(s.row, s.effect) for s in ann.sources] == [(2, "created"), (3, "updated")]

    bus_tap.drain()
    second = import_text(svc, stack, HEADER + "ann@acme.com,Zed,,Other,,,\nnew@acme.com,New,,Acme,,,\n")
    assert (second.counts.imported, second.counts.merged) == (1, 1)
    ann = svc.contacts.get("default", "ann@acme.com")
    assert ann is not None and ann.first_name == "Ann" and ann.company == "Acme"
    assert len(ann.sources) == 3 and ann.sources[-1].effect == "unchanged"
    assert svc.contacts.counts("default")["imported"] == 2
    # an unchanged merge publishes nothing; the new contact is published
    assert [e for ev in bus_tap.drain() for e in ev["detail"]["emails"]] == ["new@acme.com"]


def test_semicolon_bom_and_windows_1252_files(stack: Stack) -> None:
    svc = service(stack)
    text = "\ufeffE-mail Address;Prénom;Organisation\r\nzoe@büro.de;Zoë;Café, GmbH\r\n"
    job = import_text(svc, stack, text.encode("utf-8"))
    assert job.status is JobStatus.COMPLETED
    assert job.layout is not None and job.layout.delimiter == ";" and job.layout.bom
    zoe = svc.contacts.get("default", "zoe@xn--bro-hoa.de")
    assert zoe is not None and zoe.first_name == "Zoë" and zoe.company == "Café, GmbH"

    legacy = "Email,Company\nrene@acme.fr,Société Générale\n".encode("cp1252")
    job = import_text(svc, stack, legacy)
    assert job.status is JobStatus.COMPLETED and job.layout is not None and job.layout.encoding == "cp1252"
    rene = svc.contacts.get("default", "rene@acme.fr")
    assert rene is not None and rene.company == "Société Générale"


def test_quoted_newlines_and_delimiters_inside_fields(stack: Stack) -> None:
    svc = service(stack)
    text = 'Email,Company,Notes\na@x.com,"Acme, Inc.","line one\nline two"\nb@x.com,Beta,"say ""hi"""\n'
    job = import_text(svc, stack, text)
    assert (job.status, job.counts.valid) == (JobStatus.COMPLETED, 2)
    a = svc.contacts.get("default", "a@x.com")
    b = svc.contacts.get("default", "b@x.com")
    assert a is not None and b is not None
    assert a.company == "Acme, Inc." and a.custom == {"notes": "line one line two"}
    assert b.custom == {"notes": 'say "hi"'}


# ------------------------------------------------------------------------------------------------ S3 events


def s3_event(bucket: str, key: str, etag: str, size: int, encode: bool = True) -> str:
    from urllib.parse import quote_plus

    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "eventTime": "2026-11-24T10:00:00.000Z",
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {"key": quote_plus(key) if encode else key, "size": size, "eTag": etag},
                    },
                }
            ]
        }
    )


def test_s3_drop_with_spaces_and_unicode_in_the_key_and_redelivery(stack: Stack) -> None:
    svc = service(stack)
    s3 = stack.client("s3")
    key = "incoming/Leads Q4 — Müller & Co+.csv"
    body = (HEADER + contact_rows(5)).encode()
    etag = s3.put_object(Bucket=stack.bucket, Key=key, Body=body)["ETag"]
    queued(stack)  # drop moto's own notification; we deliver the event ourselves, twice

    event = s3_event(stack.bucket, key, etag, len(body))
    [first] = svc.handle_message(event, remaining_ms=FOREVER)
    assert first.job is not None and first.outcome == "completed"
    assert first.job.filename == "Leads Q4 — Müller & Co+.csv" and first.job.source is ImportSource.S3
    assert first.job.counts.imported == 5

    [again] = svc.handle_message(event, remaining_ms=FOREVER)  # SQS delivered the same message again
    assert again.job is not None and again.job.job_id == first.job.job_id
    assert again.outcome == "skipped"
    final = svc.jobs.get("default", first.job.job_id)
    assert final is not None and final.counts.imported == 5 and final.counts.rows_read == 5
    assert len(svc.jobs.recent("default")) == 1


def test_moto_notification_for_an_incoming_object_is_imported(stack: Stack) -> None:
    svc = service(stack)
    stack.client("s3").put_object(Bucket=stack.bucket, Key="incoming/a b.csv", Body=HEADER + contact_rows(3))
    stack.client("s3").put_object(Bucket=stack.bucket, Key="elsewhere/x.csv", Body=HEADER + contact_rows(3))
    assert run_queue(svc, stack) >= 1  # includes the S3 test event
    [job] = svc.jobs.recent("default")
    assert job.key == "incoming/a b.csv" and job.status is JobStatus.COMPLETED and job.counts.imported == 3


def test_presigned_upload_starts_its_own_job(stack: Stack) -> None:
    svc = service(stack)
    job, target = svc.create_upload("default", "../../etc/big file.csv", "text/csv")
    assert job.status is JobStatus.AWAITING_UPLOAD
    assert target["key"] == f"incoming/uploads/default/{job.job_id}/big file.csv"
    assert target["headers"] == {"Content-Type": "text/csv"} and target["method"] == "PUT"
    # a message for a job whose file has not arrived does nothing
    assert svc.run("default", job.job_id, FOREVER).outcome == "skipped"
    stack.client("s3").put_object(Bucket=stack.bucket, Key=target["key"], Body=HEADER + contact_rows(4))
    run_queue(svc, stack)
    done = svc.jobs.get("default", job.job_id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.counts.imported == 4
    assert done.source is ImportSource.UPLOAD
    assert len(svc.jobs.recent("default")) == 1  # the S3 event joined the waiting job, no second job


# ------------------------------------------------------------------------------------------------ checkpoints


def test_tiny_time_budget_continues_from_checkpoints_and_imports_every_row_once(stack: Stack) -> None:
    svc = service(stack, import_chunk_rows=7, import_time_margin_ms=1000)
    rows = contact_rows(100) + contact_rows(10)  # 10 duplicates of earlier rows
    text = HEADER + rows
    job = svc.start_from_body("default", text.encode(), "big.csv")
    messages = run_queue(svc, stack, remaining=lambda: 500)  # always "nearly out of time"
    assert messages == 16  # 110 rows / 7 per chunk = 16 chunks, one invocation each
    final = svc.jobs.get("default", job.job_id)
    assert final is not None
    assert final.status is JobStatus.COMPLETED
    assert final.invocations == 16
    assert (final.counts.rows_read, final.counts.imported, final.counts.merged) == (110, 100, 10)
    assert svc.contacts.counts("default")["imported"] == 100
    page = svc.contacts.find("default", limit=100)
    assert len({c.email for c in page.items}) == 100


def test_replaying_a_chunk_after_a_crash_counts_each_row_once(stack: Stack, bus_tap: Any) -> None:
    svc = service(stack, import_chunk_rows=10)
    job = svc.start_from_body("default", (HEADER + contact_rows(25)).encode(), "crash.csv")
    queued(stack)
    real_update = svc.jobs.update
    calls = {"n": 0}

    def crash_after_writing_contacts(job: Job, **kwargs: Any) -> Job:
        if kwargs.get("counts") is not None:
            calls["n"] += 1
            if calls["n"] == 2:  # the second chunk's contacts are written, its progress is not
                raise RuntimeError("the container died")
        return real_update(job, **kwargs)

    svc.jobs.update = crash_after_writing_contacts  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        svc.run("default", job.job_id, FOREVER)
    svc.jobs.update = real_update  # type: ignore[method-assign]
    # SQS redelivers the message: the job resumes from its last checkpoint and replays the second chunk
    result = svc.run("default", job.job_id, FOREVER, receive_count=2)
    assert result.outcome == "completed"
    final = svc.jobs.get("default", job.job_id)
    assert final is not None
    assert (final.counts.rows_read, final.counts.imported, final.counts.merged) == (25, 25, 0)
    assert svc.contacts.counts("default")["imported"] == 25
    published = [e for ev in bus_tap.drain() for e in ev["detail"]["emails"]]
    assert set(published) == {f"person{i}@company{i % 7}.com" for i in range(25)}


def test_a_stale_duplicate_continuation_stops_without_double_counting(stack: Stack) -> None:
    svc = service(stack, import_chunk_rows=5)
    job = svc.start_from_body("default", (HEADER + contact_rows(12)).encode(), "dup.csv")
    queued(stack)
    stale_copy = svc.jobs.get("default", job.job_id)
    assert svc.run("default", job.job_id, FOREVER).outcome == "completed"
    # a second processor holding an old copy of the job cannot advance it
    from leadpipe.jobs import StaleJob

    assert stale_copy is not None
    with pytest.raises(StaleJob):
        svc.jobs.update(stale_copy, checkpoint=stale_copy.checkpoint)
    final = svc.jobs.get("default", job.job_id)
    assert final is not None and final.counts.imported == 12 and final.counts.rows_read == 12


def test_last_attempt_marks_the_job_and_a_redrive_resumes_it(stack: Stack) -> None:
    svc = service(stack, import_chunk_rows=5, import_max_receives=3)
    job = svc.start_from_body("default", (HEADER + contact_rows(12)).encode(), "flaky.csv")
    queued(stack)
    real_upsert = svc.contacts.upsert
    svc.contacts.upsert = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("DynamoDB is down"))  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        svc.run("default", job.job_id, FOREVER, receive_count=3)
    failed = svc.jobs.get("default", job.job_id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error.code == "retries_exhausted"
    assert "DynamoDB is down" in failed.error.message
    svc.contacts.upsert = real_upsert  # type: ignore[method-assign]
    assert svc.run("default", job.job_id, FOREVER).outcome == "completed"  # redriven from the DLQ
    final = svc.jobs.get("default", job.job_id)
    assert final is not None and final.status is JobStatus.COMPLETED and final.error is None
    assert final.counts.imported == 12


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("body", "code", "phrase"),
    [
        (b"", "empty_file", "empty"),
        (b"   \n\n", "empty_file", "empty"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not_csv", "PDF"),
        (b"PK\x03\x04\x14\x00\x06\x00", "not_csv", "xlsx"),
        (b"\x00\x01\x02binary\x00\x00", "not_csv", "binary"),
        (b"\xff\xfeE\x00m\x00a\x00", "unsupported_encoding", "UTF-16"),
        (b"Name,Company\nAnn,Acme\n", "no_email_column", "no email column"),
        (b"ann@acme.com,Ann\nbob@beta.io,Bob\n", "no_header", "looks like data"),
    ],
)
def test_files_that_cannot_be_imported_are_refused_with_a_reason(
    stack: Stack, body: bytes, code: str, phrase: str
) -> None:
    svc = service(stack)
    with pytest.raises(ImportFileError) as refused:
        svc.start_from_body("default", body, "x.csv")
    assert refused.value.code == code
    assert phrase.lower() in refused.value.message.lower()
    assert svc.jobs.recent("default") == []  # refused before any job or file was created

    # The same file dropped into S3 gives a failed job with the same reason.
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.bucket, Key="incoming/x.csv", Body=body)
    run_queue(svc, stack)
    [job] = svc.jobs.recent("default")
    assert job.status is JobStatus.FAILED and job.error is not None and job.error.code == code


def test_header_only_and_all_invalid_files_fail_the_job(stack: Stack) -> None:
    svc = service(stack)
    header_only = import_text(svc, stack, "Email,Name\n")
    assert header_only.status is JobStatus.FAILED and header_only.error is not None
    assert header_only.error.code == "no_data_rows"
    all_bad = import_text(svc, stack, "Email,Name\nnope,A\nalso nope,B\n")
    assert all_bad.status is JobStatus.FAILED and all_bad.error is not None
    assert all_bad.error.code == "all_rows_invalid"
    assert [e.row for e in all_bad.errors] == [2, 3]
    assert svc.contacts.counts("default")["imported"] == 0


def test_a_row_over_the_size_limit_is_reported_and_no_valid_row_is_lost(stack: Stack) -> None:
    svc = service(stack, max_row_bytes=4096)
    huge = "x" * 10_000
    text = (
        "Email,Company,Notes\n"
        "a@x.com,A,ok\n"
        f"big@x.com,B,{huge}\n"  # unquoted, no newline for 10 KB
        f'quoted@x.com,C,"{huge}\n{huge}"\n'  # quoted, spanning lines
        "z@x.com,Z,ok\n"
    )
    job = import_text(svc, stack, text)
    assert job.status is JobStatus.COMPLETED_WITH_ERRORS
    assert [(e.row, e.code) for e in job.errors] == [(3, "row_too_large"), (4, "row_too_large")]
    assert "4 KB row limit" in job.errors[0].message
    assert (job.counts.valid, job.counts.invalid) == (2, 2)
    assert svc.contacts.get("default", "z@x.com") is not None
    assert svc.contacts.get("default", "a@x.com") is not None


def test_first_100_row_errors_are_kept_and_the_rest_counted(stack: Stack) -> None:
    svc = service(stack, import_chunk_rows=40)
    text = "Email\n" + "".join(f"bad{i}\n" for i in range(150)) + "good@x.com\n"
    job = import_text(svc, stack, text)
    assert job.status is JobStatus.COMPLETED_WITH_ERRORS
    assert job.counts.invalid == 150 and len(job.errors) == 100
    assert job.errors[0].row == 2 and job.errors[-1].row == 101


def test_body_over_the_limit_is_refused(stack: Stack) -> None:
    svc = service(stack, max_body_bytes=2048)
    with pytest.raises(PayloadTooLarge) as refused:
        svc.start_from_body("default", b"Email\n" + b"a@b.co\n" * 400, "x.csv")
    assert "/imports/uploads" in refused.value.message


def test_a_file_replaced_during_its_import_fails_clearly(stack: Stack) -> None:
    svc = service(stack, import_chunk_rows=5)
    job = svc.start_from_body("default", (HEADER + contact_rows(20)).encode(), "v1.csv")
    queued(stack)
    svc.run("default", job.job_id, lambda: 500)  # one chunk, then "out of time"
    queued(stack)
    assert job.key is not None
    stack.client("s3").put_object(Bucket=stack.bucket, Key=job.key, Body=HEADER + contact_rows(3, start=500))
    result = svc.run("default", job.job_id, FOREVER)
    assert result.outcome == "failed"
    assert result.job is not None and result.job.error is not None and result.job.error.code == "file_changed"


def test_unknown_messages_are_errors_so_they_reach_the_dlq(stack: Stack) -> None:
    from leadpipe.errors import BadRequest

    svc = service(stack)
    with pytest.raises(BadRequest):
        svc.handle_message("not json", remaining_ms=FOREVER)
    with pytest.raises(BadRequest):
        svc.handle_message('{"hello": "world"}', remaining_ms=FOREVER)
    assert svc.handle_message('{"Service":"Amazon S3","Event":"s3:TestEvent"}', remaining_ms=FOREVER) == []
    missing = svc.handle_message(
        '{"type":"import.run","workspace":"default","job_id":"imp_01m85wkrqx90eh5tvhs26bjzvg"}',
        remaining_ms=FOREVER,
    )
    assert [r.outcome for r in missing] == ["missing"]


def test_a_job_that_could_not_be_queued_says_so(stack: Stack) -> None:
    svc = service(stack)

    class DownSqs:
        def send_message(self, **_: Any) -> None:
            raise RuntimeError("SQS is unavailable")

    svc.sqs = DownSqs()
    with pytest.raises(RuntimeError):
        svc.start_from_body("default", (HEADER + contact_rows(2)).encode(), "x.csv")
    [job] = svc.jobs.recent("default")
    assert job.status is JobStatus.FAILED and job.error is not None
    assert job.error.code == "not_queued" and "SQS is unavailable" in job.error.message
