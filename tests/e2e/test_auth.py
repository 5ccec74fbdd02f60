"""API keys through the local runtime: every route but /openapi.json and the webhook needs one."""

from __future__ import annotations

import httpx
import pytest

from leadpipe_local.client import ApiClient, ApiError
from leadpipe_local.runtime import LocalRuntime


def test_requests_without_a_key_are_refused(runtime: LocalRuntime) -> None:
    for method, path in [("GET", "/contacts"), ("GET", "/status"), ("POST", "/imports"), ("GET", "/nowhere")]:
        response = httpx.request(method, runtime.api_url + path, content=b"email\na@b.co\n")
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "missing_api_key"
        assert "Bearer" in response.headers["www-authenticate"]
        assert "x-api-key" in response.json()["error"]["message"]


def test_wrong_and_malformed_keys_are_refused(runtime: LocalRuntime) -> None:
    for headers in (
        {"Authorization": "Bearer lp_" + "x" * 43},
        {"x-api-key": "lp_short"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"x-api-key": "' OR 1=1 --"},
    ):
        response = httpx.get(runtime.api_url + "/contacts", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] in {"invalid_api_key", "missing_api_key"}


def test_public_routes_need_no_key(runtime: LocalRuntime) -> None:
    assert httpx.get(runtime.api_url + "/openapi.json").status_code == 200
    # the webhook is HubSpot's: it answers on the signature, not an API key
    hook = httpx.post(runtime.api_url + "/webhooks/hubspot", json=[])
    assert hook.status_code == 401 and hook.json()["error"]["code"] != "missing_api_key"


def test_both_header_forms_work(runtime: LocalRuntime) -> None:
    key = runtime.api_key("default")
    for headers in ({"Authorization": f"Bearer {key}"}, {"x-api-key": key}, {"authorization": f"bearer {key}"}):
        response = httpx.get(runtime.api_url + "/status", headers=headers)
        assert response.status_code == 200 and response.json()["workspace"] == "default"


def test_keys_routes_create_list_and_revoke(runtime: LocalRuntime) -> None:
    with runtime.api_client("keys-ws") as admin:
        created = admin.create_key("ci pipeline")
        new_key = created["api_key"]
        assert created["workspace"] == "keys-ws" and created["hint"] == new_key[:7] + "…"
        listing = admin.keys()
        assert created["key_id"] in [k["key_id"] for k in listing]
        assert new_key not in str(listing)  # listings never show keys
        with ApiClient(runtime.api_url, api_key=new_key) as fresh:
            assert fresh.status()["workspace"] == "keys-ws"
            revoked = admin.revoke_key(created["key_id"])
            assert revoked["revoked_at"]
            with pytest.raises(ApiError) as refused:
                fresh.status()
            assert refused.value.status == 401 and refused.value.code == "invalid_api_key"
        with runtime.api_client("other-ws") as other, pytest.raises(ApiError) as foreign:
            other.revoke_key(listing[-1]["key_id"])  # another workspace's key id: not found there
        assert foreign.value.status == 404
