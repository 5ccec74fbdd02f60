"""The HTTP API through the local runtime: real HTTP, API Gateway events, the real handlers, moto as AWS."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from leadpipe_local.cfn import load_template
from leadpipe_local.client import ApiClient, ApiError
from leadpipe_local.runtime import LocalRuntime
from tests.conftest import TEMPLATE
from tests.e2e.conftest import csv_for


def test_csv_body_import_then_list_and_get(api: ApiClient, runtime: LocalRuntime, domain: str) -> None:
    data = csv_for(domain, 12) + f"broken@{domain}@x,Bad,,,\n".encode()
    job = api.import_csv(data, "people.csv")
    assert job["status"] == "queued" and job["filename"] == "people.csv"
    done = api.wait_job(job["job_id"], timeout=30)
    assert done["status"] == "completed_with_errors"
    assert done["counts"] | {"blank": 0} == {
        "rows_read": 13,
        "valid": 12,
        "invalid": 1,
        "imported": 12,
        "merged": 0,
        "blank": 0,
    }
    assert done["errors"] == [
        {
            "row": 14,
            "field": "email",
            "code": "invalid_email",
            "message": "the email has more than one '@'",
            "value": f"broken@{domain}@x",
        }
    ]
    assert done["progress"]["percent"] == 100.0
    assert {c["column"]: c["field"] for c in done["columns"]} == {
        "Email": "email",
        "First Name": "first_name",
        "Company": "company",
        "Job Title": "title",
        "Tags": "tags",
    }

    listed = api.contacts(domain=domain, limit=100)["items"]
    assert sorted(c["email"] for c in listed) == sorted(f"p{i}@{domain}" for i in range(12))
    one = api.contact(f"P3@{domain.upper()}")  # emails are normalised on the way in
    assert one["email"] == f"p3@{domain}" and one["title"] == "Title 3" and one["tags"] == ["t1"]
    assert one["sources"][0]["job_id"] == job["job_id"] and one["sources"][0]["row"] == 5


def test_pagination_filters_and_status(api: ApiClient, domain: str) -> None:
    job = api.import_csv(csv_for(domain, 23), "page.csv")
    api.wait_job(job["job_id"], timeout=30)
    seen: list[str] = []
    cursor = None
    while True:
        page = api.contacts(domain=domain, limit=5, cursor=cursor)
        assert len(page["items"]) <= 5
        seen += [c["email"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 23 and len(set(seen)) == 23
    tagged = api.contacts(domain=domain, tag="t1", limit=100)["items"]
    assert sorted(c["email"] for c in tagged) == sorted(f"p{i}@{domain}" for i in range(1, 23, 2))
    status = api.status()
    assert status["total"] == sum(status["counts"].values()) >= 23
    assert status["config"]["auto_enrich_on_import"] is True
    assert status["config"]["auto_enrich_on_import"] is True and status["config"]["min_quality"] == 0.7


def test_presigned_upload(api: ApiClient, tmp_path: Any, domain: str) -> None:
    path = tmp_path / "big upload.csv"
    path.write_bytes(csv_for(domain, 40))
    job = api.upload_csv(path)
    assert job["source"] == "upload" and job["status"] == "awaiting_upload"
    done = api.wait_job(job["job_id"], timeout=30)
    assert done["status"] == "completed" and done["counts"]["imported"] == 40
    assert done["filename"] == "big upload.csv"


def test_s3_drop_with_spaces_and_unicode(api: ApiClient, runtime: LocalRuntime, domain: str) -> None:
    bucket = runtime.provisioned.ref("UploadsBucket")  # type: ignore[union-attr]
    key = f"incoming/Q4 leads — {domain} é+ü.csv"
    runtime.client("s3").put_object(Bucket=bucket, Key=key, Body=csv_for(domain, 7))
    deadline = time.monotonic() + 30
    job = None
    while job is None and time.monotonic() < deadline:
        job = next((j for j in api.jobs(limit=50) if j["filename"] == key.rsplit("/", 1)[1]), None)
        time.sleep(0.1)
    assert job is not None and job["source"] == "s3"
    done = api.wait_job(job["job_id"], timeout=30)
    assert done["status"] == "completed" and done["counts"]["imported"] == 7


def raw(runtime: LocalRuntime, method: str, path: str, **kwargs: Any) -> httpx.Response:
    kwargs["headers"] = runtime.auth_headers() | kwargs.get("headers", {})
    return httpx.request(method, runtime.api_url + path, timeout=30, **kwargs)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("POST", "/imports", {"json": {"source": "salesforce"}}, 400, "invalid_request"),
        (
            "POST",
            "/imports",
            {"content": b"x", "headers": {"content-type": "application/pdf"}},
            415,
            "unsupported_media_type",
        ),
        ("POST", "/imports", {"content": b"", "headers": {"content-type": "text/csv"}}, 400, "empty_file"),
        (
            "POST",
            "/imports",
            {"content": b"%PDF-1.4 \x00\x01", "headers": {"content-type": "text/csv"}},
            400,
            "not_csv",
        ),
        (
            "POST",
            "/imports",
            {"content": b"name,company\nA,B\n", "headers": {"content-type": "text/csv"}},
            400,
            "no_email_column",
        ),
        ("POST", "/imports/uploads", {"json": {"filename": ""}}, 400, "validation_error"),
        (
            "POST",
            "/imports/uploads",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "validation_error",
        ),
        ("GET", "/imports/imp_00000000000000000000000000", {}, 404, "job_not_found"),
        ("GET", "/contacts/not-an-email", {}, 400, "invalid_email"),
        ("GET", "/contacts/nobody%40nowhere.example", {}, 404, "contact_not_found"),
        ("GET", "/contacts?limit=0", {}, 400, "validation_error"),
        ("GET", "/contacts?limit=1000", {}, 400, "validation_error"),
        ("GET", "/contacts?status=bogus", {}, 400, "validation_error"),
        ("GET", "/contacts?cursor=garbage!", {}, 400, "invalid_cursor"),
        ("GET", "/contacts?domain=not_a_domain", {}, 400, "invalid_domain"),
        ("GET", "/no/such/route", {}, 404, "route_not_found"),
        ("DELETE", "/imports", {}, 404, "route_not_found"),
    ],
)
def test_errors_are_json_with_a_code_and_message(
    runtime: LocalRuntime, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    response = raw(runtime, method, path, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]


def test_too_large_body_points_to_uploads(runtime: LocalRuntime) -> None:
    body = b"Email\n" + b"someone@example.com\n" * 280_000  # 5.6 MB
    response = raw(runtime, "POST", "/imports", content=body, headers={"content-type": "text/csv"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert "/imports/uploads" in response.json()["error"]["message"]


def test_validation_errors_say_which_field(runtime: LocalRuntime) -> None:
    response = raw(runtime, "GET", "/contacts?limit=0")
    assert response.json()["error"]["details"][0]["location"] == "query.limit"


def template_routes() -> set[str]:
    routes = set()
    for resource in load_template(TEMPLATE)["Resources"].values():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event["Type"] == "HttpApi" and "{proxy+}" not in event["Properties"]["Path"]:
                routes.add(f"{event['Properties']['Method'].upper()} {event['Properties']['Path']}")
    return routes


def test_openapi_document_matches_the_template_routes(api: ApiClient) -> None:
    document = api.openapi()
    assert document["openapi"].startswith("3.")
    documented = {f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops}
    assert documented == template_routes()
    csv_body = document["paths"]["/imports"]["post"]["requestBody"]["content"]
    assert "text/csv" in csv_body


def test_error_from_a_client_is_typed(api: ApiClient) -> None:
    with pytest.raises(ApiError) as missing:
        api.job("imp_00000000000000000000000000")
    assert (missing.value.status, missing.value.code) == (404, "job_not_found")
