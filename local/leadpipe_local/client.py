"""A client of leadpipe's HTTP API, used by the ``leadpipe`` command (local stack or a deployed one).

Every route but /openapi.json needs an API key. The client takes it from ``api_key``, else ``$LEADPIPE_API_KEY``,
else (for the local stack only) the development key that ``leadpipe up`` / ``leadpipe demo`` wrote to
``.leadpipe/dev-api-key.json`` for that stack's URL.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

DEFAULT_API_URL = "http://127.0.0.1:3000"
BODY_LIMIT = 4 * 1024 * 1024  # above this, files go through a presigned upload
DEV_KEY_FILE = Path(".leadpipe") / "dev-api-key.json"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def _is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in {"127.0.0.1", "localhost", "::1"}


def write_dev_key(path: Path, api_url: str, api_key: str, workspace: str) -> None:
    """Remember the local stack's development key, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"api_url": api_url, "api_key": api_key, "workspace": workspace}) + "\n")
    path.chmod(0o600)


def read_dev_key(api_url: str, path: Path = DEV_KEY_FILE) -> str | None:
    """The development key written for this local URL, if any."""
    if not _is_local(api_url):
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or str(data.get("api_url", "")).rstrip("/") != api_url.rstrip("/"):
        return None
    key = data.get("api_key")
    return key if isinstance(key, str) else None


class ApiClient:
    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("LEADPIPE_API_URL") or DEFAULT_API_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("LEADPIPE_API_KEY") or read_dev_key(self.base_url)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, "unreachable", f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                error = response.json().get("error") or {}
            except ValueError:
                error = {}
            raise ApiError(
                response.status_code,
                str(error.get("code") or "http_error"),
                str(error.get("message") or response.text[:300] or response.reason_phrase),
                error.get("details"),
            )
        return response.json() if response.content else None

    # -------------------------------------------------------------------------------------------- imports

    def import_csv(self, data: bytes, filename: str | None = None) -> dict[str, Any]:
        params = {"filename": filename} if filename else None
        return self._request(  # type: ignore[no-any-return]
            "POST", "/imports", content=data, params=params, headers={"content-type": "text/csv"}
        )

    def import_from(self, source: str, campaign_id: str | None = None) -> dict[str, Any]:
        """An import from an API source: ``hubspot`` (the workspace's portal) or ``lemlist`` (one campaign)."""
        body: dict[str, Any] = {"source": source}
        if campaign_id:
            body["campaign_id"] = campaign_id
        return self._request("POST", "/imports", json=body)  # type: ignore[no-any-return]

    def upload_csv(self, path: Path) -> dict[str, Any]:
        """Large files: ask for a presigned URL, PUT the file there; the import starts when the upload lands."""
        created = self._request("POST", "/imports/uploads", json={"filename": path.name, "content_type": "text/csv"})
        target = created["upload"]
        with path.open("rb") as fh:
            response = httpx.put(target["url"], content=fh, headers=target["headers"], timeout=300)
        if response.status_code >= 300:
            raise ApiError(response.status_code, "upload_failed", response.text[:300])
        return created["job"]  # type: ignore[no-any-return]

    def import_file(self, path: Path, *, upload: bool | None = None) -> dict[str, Any]:
        if upload is None:
            upload = path.stat().st_size > BODY_LIMIT
        if upload:
            return self.upload_csv(path)
        return self.import_csv(path.read_bytes(), path.name)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/imports/{quote(job_id)}")  # type: ignore[no-any-return]

    def jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._request("GET", "/imports", params={"limit": limit})["items"]  # type: ignore[no-any-return]

    def wait_job(
        self,
        job_id: str,
        *,
        timeout: float = 600,
        interval: float = 0.25,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if on_progress:
                on_progress(job)
            if job["status"] in {"completed", "completed_with_errors", "failed"}:
                return job
            if time.monotonic() > deadline:
                raise ApiError(0, "timeout", f"job {job_id} still {job['status']} after {timeout:.0f}s")
            time.sleep(interval)

    # -------------------------------------------------------------------------------------------- contacts

    def contacts(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return self._request("GET", "/contacts", params=params)  # type: ignore[no-any-return]

    def contact(self, email: str) -> dict[str, Any]:
        return self._request("GET", f"/contacts/{quote(email, safe='')}")  # type: ignore[no-any-return]

    def enrich(
        self,
        emails: list[str] | None = None,
        *,
        filter: dict[str, Any] | None = None,
        limit: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"options": options or {}}
        if emails is not None:
            body["emails"] = emails
        if filter is not None:
            body["filter"] = filter
        if limit is not None:
            body["limit"] = limit
        return self._request("POST", "/enrich", json=body)  # type: ignore[no-any-return]

    def sync(
        self,
        emails: list[str] | None = None,
        *,
        filter: dict[str, Any] | None = None,
        limit: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if emails is not None:
            body["emails"] = emails
        if filter is not None:
            body["filter"] = filter
        if limit is not None:
            body["limit"] = limit
        if options is not None:
            body["options"] = options
        return self._request("POST", "/sync", json=body)  # type: ignore[no-any-return]

    def sync_log(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._request("GET", "/sync/log", params={"limit": limit})["items"]  # type: ignore[no-any-return]

    def sync_settings(self) -> dict[str, Any]:
        return self._request("GET", "/settings/sync")  # type: ignore[no-any-return]

    def put_sync_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        return self._request("PUT", "/settings/sync", json=settings)  # type: ignore[no-any-return]

    def start_deal_enrichment(self, lookback_months: int = 6, limit: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"lookbackMonths": lookback_months}
        if limit is not None:
            body["limit"] = limit
        return self._request("POST", "/deals/enrichment", json=body)  # type: ignore[no-any-return]

    def deal_status(self) -> dict[str, Any]:
        return self._request("GET", "/deals/enrichment/status")  # type: ignore[no-any-return]

    def deal_summary(self) -> dict[str, Any]:
        return self._request("GET", "/deals/enrichment/summary")  # type: ignore[no-any-return]

    def wait_deal_run(self, run_id: str, timeout: float = 180) -> dict[str, Any]:
        """Until the run ``run_id`` has finished (completed or failed); its record."""
        deadline = time.monotonic() + timeout
        while True:
            last = self.deal_status().get("last_run") or {}
            if last.get("run_id") == run_id and last.get("status") in ("completed", "failed"):
                return last
            if time.monotonic() > deadline:
                raise TimeoutError(f"deal run {run_id} did not finish within {timeout:.0f}s: {last.get('status')}")
            time.sleep(0.3)

    def status(self) -> dict[str, Any]:
        return self._request("GET", "/status")  # type: ignore[no-any-return]

    def keys(self) -> list[dict[str, Any]]:
        return self._request("GET", "/keys")["items"]  # type: ignore[no-any-return]

    def create_key(self, name: str = "") -> dict[str, Any]:
        return self._request("POST", "/keys", json={"name": name})  # type: ignore[no-any-return]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/keys/{quote(key_id, safe='')}")  # type: ignore[no-any-return]

    def openapi(self) -> dict[str, Any]:
        return self._request("GET", "/openapi.json")  # type: ignore[no-any-return]
