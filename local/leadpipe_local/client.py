"""A client of leadpipe's HTTP API, used by the ``leadpipe`` command (local stack or a deployed one).

Every route but /openapi.json needs an API key. The client takes it from ``api_key``, else ``$LEADPIPE_API_KEY``,
else (for the local stack only) the development key that ``leadpipe up`` / ``leadpipe demo`` wrote to
``.leadpipe/dev-api-key.json`` for that stack's URL.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
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


def _api_error(response: httpx.Response) -> ApiError:
    """The API's JSON error ({"error": {code, message, details}}) as an exception; any other body as text."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    return ApiError(
        response.status_code,
        str(error.get("code") or "http_error"),
        str(error.get("message") or response.text[:300] or response.reason_phrase),
        error.get("details"),
    )


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
            raise _api_error(response)
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

    def erase(self, email: str, *, hubspot: bool = False) -> dict[str, Any]:
        """Erase a person (GDPR) from the workspace, and with ``hubspot`` from HubSpot too; the erasure report."""
        params = {"hubspot": "true"} if hubspot else None
        return self._request(  # type: ignore[no-any-return]
            "DELETE", f"/contacts/{quote(email, safe='')}", params=params
        )

    def update_contact(
        self,
        email: str,
        *,
        add_tags: list[str] | None = None,
        remove_tags: list[str] | None = None,
        set_custom: dict[str, str] | None = None,
        remove_custom: list[str] | None = None,
        do_not_enrich: bool | None = None,
        lifecycle: str | None = None,
    ) -> dict[str, Any]:
        """PATCH /contacts/{email}: only what is given changes. Returns the contact."""
        body: dict[str, Any] = {}
        if add_tags or remove_tags:
            body["tags"] = {"add": add_tags or [], "remove": remove_tags or []}
        if set_custom or remove_custom:
            body["custom"] = {"set": set_custom or {}, "remove": remove_custom or []}
        if do_not_enrich is not None:
            body["do_not_enrich"] = do_not_enrich
        if lifecycle is not None:
            body["lifecycle"] = lifecycle
        return self._request("PATCH", f"/contacts/{quote(email, safe='')}", json=body)  # type: ignore[no-any-return]

    def tag(self, email: str, *tags: str) -> dict[str, Any]:
        return self.update_contact(email, add_tags=list(tags))

    def untag(self, email: str, *tags: str) -> dict[str, Any]:
        return self.update_contact(email, remove_tags=list(tags))

    def tag_many(
        self, emails: list[str], add: list[str] | None = None, remove: list[str] | None = None
    ) -> dict[str, Any]:
        """POST /contacts/tags (at most 100 emails): {updated, unchanged, not_found, invalid, rejected}."""
        body = {"emails": emails, "add": add or [], "remove": remove or []}
        return self._request("POST", "/contacts/tags", json=body)  # type: ignore[no-any-return]

    def engage(
        self,
        email: str,
        type: str,
        *,
        at: str | None = None,
        details: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> dict[str, Any]:
        """Record an engagement; the answer has the lifecycle before and after."""
        body: dict[str, Any] = {"type": type}
        if at is not None:
            body["at"] = at
        if details:
            body["details"] = details
        if id is not None:
            body["id"] = id
        path = f"/contacts/{quote(email, safe='')}/engagements"
        return self._request("POST", path, json=body)  # type: ignore[no-any-return]

    def engagements(self, email: str, type: str | None = None, limit: int | None = None) -> dict[str, Any]:
        params = {k: v for k, v in (("type", type), ("limit", limit)) if v is not None}
        path = f"/contacts/{quote(email, safe='')}/engagements"
        return self._request("GET", path, params=params)  # type: ignore[no-any-return]

    def export_part(
        self, *, cursor: str | None = None, delivery: str = "auto", bom: bool = False, **filters: Any
    ) -> dict[str, Any]:
        """One request of GET /contacts/export (filters as for ``contacts``; custom may be a list of key:value):
        ``{"csv": bytes, "rows": n, "next_cursor": str | None, "link": the 303 body or None}``. A large export is
        answered with 303 and a presigned URL, downloaded here without the API key (the URL carries its own)."""
        params: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
        params.update(delivery=delivery, bom=str(bom).lower())
        if cursor:
            params["cursor"] = cursor
        try:
            response = self.http.get("/contacts/export", params=params, timeout=120)
        except httpx.HTTPError as exc:
            raise ApiError(0, "unreachable", f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code == 303:
            link = response.json()
            download = httpx.get(response.headers["location"], timeout=300)
            if download.status_code != 200:
                raise ApiError(download.status_code, "download_failed", download.text[:300])
            return {"csv": download.content, "rows": link["rows"], "next_cursor": link.get("next_cursor"), "link": link}
        if response.status_code != 200:
            raise _api_error(response)
        return {
            "csv": response.content,
            "rows": int(response.headers.get("x-leadpipe-rows", "0")),
            "next_cursor": response.headers.get("x-leadpipe-next-cursor"),
            "link": None,
        }

    def export(self, out: BinaryIO, **filters: Any) -> dict[str, Any]:
        """Every contact the filters select, as one CSV written to ``out``: the parts (``export_part``) are
        joined, and when their columns differ the file gets the union of them. Returns {rows, parts, columns}."""
        parts: list[bytes] = []
        rows = 0
        cursor: str | None = None
        while True:
            part = self.export_part(cursor=cursor, **filters)
            parts.append(part["csv"])
            rows += part["rows"]
            cursor = part["next_cursor"]
            if not cursor:
                break
        headers = [next(csv.reader(io.StringIO(p.decode("utf-8-sig").partition("\r\n")[0]))) for p in parts]
        columns = list(dict.fromkeys(c for header in headers for c in header))
        if len(parts) == 1:
            out.write(parts[0])
        else:
            text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
            writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\r\n", restval="")
            writer.writeheader()
            for data in parts:
                writer.writerows(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
            text.detach()
        return {"rows": rows, "parts": len(parts), "columns": columns}

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

    # -------------------------------------------------------------------------------------------- workspace settings

    def settings(self) -> dict[str, Any]:
        """The workspace's settings; secrets only as {set, source, updated_at}."""
        return self._request("GET", "/settings")  # type: ignore[no-any-return]

    def put_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """A partial update: keys left out are unchanged, None resets a key to its default."""
        return self._request("PUT", "/settings", json=changes)  # type: ignore[no-any-return]

    def put_hubspot_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Some of token, client_secret, portal_id, app_id, webhooks, polling (secrets go to SSM, never shown)."""
        return self._request("PUT", "/settings/hubspot", json=changes)  # type: ignore[no-any-return]

    def put_provider_key(self, provider: str, api_key: str) -> dict[str, Any]:
        path = f"/settings/providers/{quote(provider, safe='')}"
        return self._request("PUT", path, json={"api_key": api_key})  # type: ignore[no-any-return]

    def delete_provider_key(self, provider: str) -> dict[str, Any]:
        return self._request("DELETE", f"/settings/providers/{quote(provider, safe='')}")  # type: ignore[no-any-return]

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

    def summary(self, top: int | None = None) -> dict[str, Any]:
        """Top industries and countries (``top`` of each), company sizes, coverage by provider, quality buckets."""
        params = {"top": top} if top is not None else None
        return self._request("GET", "/summary", params=params)  # type: ignore[no-any-return]

    def activity(self, limit: int | None = None, since: str | None = None, cursor: str | None = None) -> dict[str, Any]:
        """The automation events newest first (``since``: ISO 8601 time); ``next_cursor`` pages on."""
        params = {k: v for k, v in {"limit": limit, "since": since, "cursor": cursor}.items() if v is not None}
        return self._request("GET", "/activity", params=params or None)  # type: ignore[no-any-return]

    def dlq(self, queue: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """The dead-letter queues: each one's depth and a sample of this workspace's messages."""
        params = {k: v for k, v in {"queue": queue, "limit": limit}.items() if v is not None}
        return self._request("GET", "/dlq", params=params or None)  # type: ignore[no-any-return]

    def redrive(self, queue: str, max: int | None = None) -> dict[str, Any]:
        """Move this workspace's messages from ``queue``'s DLQ back to the queue (at most ``max`` in this call)."""
        body = {"max": max} if max is not None else {}
        return self._request("POST", f"/dlq/{quote(queue, safe='')}/redrive", json=body)  # type: ignore[no-any-return]

    def keys(self) -> list[dict[str, Any]]:
        return self._request("GET", "/keys")["items"]  # type: ignore[no-any-return]

    def create_key(self, name: str = "") -> dict[str, Any]:
        return self._request("POST", "/keys", json={"name": name})  # type: ignore[no-any-return]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/keys/{quote(key_id, safe='')}")  # type: ignore[no-any-return]

    def openapi(self) -> dict[str, Any]:
        return self._request("GET", "/openapi.json")  # type: ignore[no-any-return]
