"""The web console: static files (``functions/api/console/``) served by this function on public routes.

``GET /`` is the page, ``GET /console/{file}`` its scripts, styles and icon. Both are public (the page asks for an API
key and sends it on every API call, from the same origin); everything else still needs a key (``api_handler.gate``).

A file is served only if its name is one of the files in the console directory (listed once, on first use): a name
is looked up, never joined to a path, so ``..`` or an encoded slash cannot reach anything else. Files are read on
first request and kept for the container's life, so the function's cold start does not grow. Every answer carries
a strict Content-Security-Policy: scripts and styles from this origin only, no inline code, no ``eval``, Trusted
Types required (so no string can ever become HTML), API calls to this origin and uploads to the uploads bucket only.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

router = APIGatewayHttpRouter()

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
INDEX = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class StaticFile:
    body: str
    content_type: str
    etag: str


_files: dict[str, StaticFile] = {}
_names: frozenset[str] | None = None


def names() -> frozenset[str]:
    """The files the console may serve: regular files directly in its directory with a known type."""
    global _names  # noqa: PLW0603 - a per-container cache, filled on first use
    if _names is None:
        found = set()
        if CONSOLE_DIR.is_dir():
            for entry in CONSOLE_DIR.iterdir():
                if entry.is_file() and not entry.name.startswith(".") and entry.suffix in CONTENT_TYPES:
                    found.add(entry.name)
        _names = frozenset(found)
    return _names


def load(name: str) -> StaticFile | None:
    """The file called ``name`` (a bare file name from the allow-list), or None."""
    if name not in names():
        return None
    cached = _files.get(name)
    if cached is None:
        raw = (CONSOLE_DIR / name).read_bytes()
        etag = '"' + hashlib.sha256(raw).hexdigest()[:20] + '"'
        cached = StaticFile(raw.decode("utf-8"), CONTENT_TYPES[Path(name).suffix], etag)
        _files[name] = cached
    return cached


def upload_origins() -> list[str]:
    """Where the browser PUTs a presigned upload: the uploads bucket (or the local AWS endpoint)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        scheme, _, rest = endpoint.partition("://")
        return [f"{scheme}://{rest.split('/', 1)[0]}"]
    bucket = os.environ.get("UPLOADS_BUCKET", "")
    region = os.environ.get("AWS_REGION", "us-east-1")
    if not bucket:
        return []
    return [f"https://{bucket}.s3.{region}.amazonaws.com", f"https://{bucket}.s3.amazonaws.com"]


def content_security_policy() -> str:
    connect = " ".join(["'self'", *upload_origins()])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "require-trusted-types-for 'script'",
            "trusted-types 'none'",
        ]
    )


def security_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }


def serve(name: str) -> Response[str]:
    found = load(name)
    headers = security_headers()
    if found is None:
        headers["Cache-Control"] = "no-store"
        body = '{"error": {"code": "not_found", "message": "no such console file"}}'
        return Response(404, "application/json", body, headers, compress=False)
    # Revalidate every time (a deploy changes the files under the same names); an unchanged file costs a 304.
    headers.update({"Cache-Control": "no-cache", "ETag": found.etag, "Vary": "Accept-Encoding"})
    request_headers = {k.lower(): v for k, v in (router.current_event.get("headers") or {}).items()}
    known = {tag.strip().removeprefix("W/") for tag in (request_headers.get("if-none-match") or "").split(",")}
    if found.etag in known:
        return Response(304, None, "", headers, compress=False)
    return Response(status_code=200, content_type=found.content_type, body=found.body, headers=headers)


@router.get(
    "/",
    summary="The web console (HTML; public: it asks for an API key, kept in the browser's session)",
    description=(
        "A single-page console over this API: contacts with their enriched fields and sources, bulk import with "
        "live progress, enrichment and sync of a selection, status and summary charts, the activity feed. Its "
        "files are under /console/. See docs/console.md."
    ),
    responses={200: {"description": "The console page", "content": {"text/html": {"schema": {"type": "string"}}}}},
    tags=["console"],
    compress=True,
)
def console_page() -> Response[str]:
    return serve(INDEX)


@router.get("/console/<name>", include_in_schema=False, compress=True)
def console_file(name: Annotated[str, PathParam(max_length=100)]) -> Response[str]:
    return serve(name)
