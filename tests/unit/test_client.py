"""The HTTP API client: the API key (explicit, $LEADPIPE_API_KEY, or the local development key), typed errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from leadpipe_local.client import DEV_KEY_FILE, ApiClient, ApiError, write_dev_key


def recorder(seen: list[httpx.Request], status: int = 200, body: object = None) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body if body is not None else {"total": 0})

    return httpx.MockTransport(handle)


def test_the_api_key_is_sent_as_a_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADPIPE_API_KEY", raising=False)
    seen: list[httpx.Request] = []
    url = "https://a1b2c3.execute-api.eu-west-1.amazonaws.com"
    with ApiClient(url, api_key="lp_explicit", transport=recorder(seen)) as api:
        api.status()
        api.import_csv(b"Email\na@b.co\n", "x.csv")
    assert [r.headers["authorization"] for r in seen] == ["Bearer lp_explicit"] * 2
    monkeypatch.setenv("LEADPIPE_API_KEY", "lp_from_env")
    with ApiClient(url, transport=recorder(seen)) as api:
        api.status()
    assert seen[-1].headers["authorization"] == "Bearer lp_from_env"


def test_the_local_development_key_is_found_for_its_own_url_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LEADPIPE_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    write_dev_key(tmp_path / DEV_KEY_FILE, "http://127.0.0.1:3000", "lp_dev", "default")
    assert (tmp_path / DEV_KEY_FILE).stat().st_mode & 0o077 == 0
    seen: list[httpx.Request] = []
    with ApiClient("http://127.0.0.1:3000", transport=recorder(seen)) as api:
        api.status()
    assert seen[0].headers["authorization"] == "Bearer lp_dev"
    with ApiClient("http://127.0.0.1:4000", transport=recorder(seen)) as api:  # another local stack
        api.status()
    assert "authorization" not in seen[1].headers
    with ApiClient("https://a1b2c3.execute-api.eu-west-1.amazonaws.com", transport=recorder(seen)) as api:
        api.status()
    assert "authorization" not in seen[2].headers  # a development key never goes to a deployed API


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
