"""The HTTP API client: SigV4 signing for a deployed (IAM-authorized) API, none locally, typed errors."""

from __future__ import annotations

import httpx
import pytest

from leadpipe_local.client import ApiClient, ApiError


def recorder(seen: list[httpx.Request], status: int = 200, body: object = None) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body if body is not None else {"total": 0})

    return httpx.MockTransport(handle)


def test_requests_to_a_deployed_api_are_signed_for_its_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    seen: list[httpx.Request] = []
    url = "https://a1b2c3.execute-api.eu-west-1.amazonaws.com"
    with ApiClient(url, transport=recorder(seen)) as api:
        api.status()
        api.import_csv(b"Email\na@b.co\n", "x.csv")
    for request in seen:
        auth = request.headers["authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/eu-west-1/execute-api/aws4_request" in auth
        assert "x-amz-date" in request.headers


def test_local_requests_are_not_signed() -> None:
    seen: list[httpx.Request] = []
    with ApiClient("http://127.0.0.1:3000", transport=recorder(seen)) as api:
        api.status()
    assert "authorization" not in seen[0].headers


def test_errors_become_typed_exceptions() -> None:
    body = {"error": {"code": "contact_not_found", "message": "no contact a@b.co", "details": None}}
    with ApiClient("http://127.0.0.1:3000", transport=recorder([], 404, body)) as api, pytest.raises(ApiError) as err:
        api.contact("a+b@b.co")
    assert (err.value.status, err.value.code, err.value.message) == (404, "contact_not_found", "no contact a@b.co")


def test_emails_are_fully_escaped_in_paths() -> None:
    seen: list[httpx.Request] = []
    with ApiClient("http://127.0.0.1:3000", transport=recorder(seen, body={"email": "x"})) as api:
        api.contact("a+b/c@b.co")
    assert seen[0].url.raw_path == b"/contacts/a%2Bb%2Fc%40b.co"
