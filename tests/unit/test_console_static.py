"""The API function serves the web console's static files: public, typed, cached by ETag, under a strict CSP, and
nothing but the console's own files."""

from __future__ import annotations

import base64
import gzip
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT

CONSOLE = ROOT / "functions" / "api" / "console"
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@dataclass
class Context:
    function_name: str = "ApiFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    aws_request_id: str = "req-console"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(ROOT / "functions" / "api"))
    monkeypatch.setenv("UPLOADS_BUCKET", "leadpipe-dev-uploads-123456789012-eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    import api_handler

    from leadpipe.observability import metrics

    # metrics other tests of this process left behind would be flushed by the handler (and need a namespace)
    metrics.clear_metrics()
    yield api_handler
    sys.modules["api_routes.console"]._files.clear()  # type: ignore[attr-defined]


def get(handler: ModuleType, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    event = {
        "version": "2.0",
        "routeKey": "GET /",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers or {},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "req-console",
            "routeKey": "GET /",
            "stage": "$default",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }
    return handler.handler(event, Context())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/", "text/html; charset=utf-8", "<!doctype html>"),
        ("/console/app.js", "text/javascript; charset=utf-8", "import "),
        ("/console/style.css", "text/css; charset=utf-8", ":root"),
        ("/console/icon.svg", "image/svg+xml", "<svg"),
    ],
)
def test_console_files_are_served_without_a_key_with_their_type(
    handler: ModuleType, path: str, content_type: str, marker: str
) -> None:
    answer = get(handler, path)
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == content_type
    assert marker in answer["body"]
    assert answer["headers"]["Cache-Control"] == "no-cache" and answer["headers"]["ETag"].startswith('"')
    assert answer["headers"]["X-Content-Type-Options"] == "nosniff"


def test_every_answer_carries_a_strict_content_security_policy(handler: ModuleType) -> None:
    policy = get(handler, "/")["headers"]["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'none'"
    assert directives["require-trusted-types-for"] == "'script'" and directives["trusted-types"] == "'none'"
    # API calls to this origin; uploads straight to the uploads bucket (presigned PUT), nowhere else
    bucket = "leadpipe-dev-uploads-123456789012-eu-west-1"
    assert directives["connect-src"].split() == [
        "'self'",
        f"https://{bucket}.s3.eu-west-1.amazonaws.com",
        f"https://{bucket}.s3.amazonaws.com",
    ]
    assert "unsafe" not in policy
    assert get(handler, "/console/nothing.js")["headers"]["Content-Security-Policy"] == policy


def test_the_local_stack_lets_uploads_go_to_its_aws_endpoint(
    handler: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:3001")
    policy = get(handler, "/")["headers"]["Content-Security-Policy"]
    assert "connect-src 'self' http://127.0.0.1:3001;" in policy


@pytest.mark.parametrize(
    "path",
    [
        "/console/nothing.js",
        "/console/..%2Fapi_handler.py",
        "/console/%2e%2e%2fapi_handler.py",
        "/console/../api_handler.py",
        "/console/..%2F..%2Ftemplate.yaml",
        "/console/api_handler.py",
        "/console/index.html%00.js",
        "/console/" + "a" * 101 + ".js",
        "/console/",
        "/console/a/b.js",
    ],
)
def test_anything_but_a_console_file_is_not_found(handler: ModuleType, path: str) -> None:
    answer = get(handler, path)
    assert answer["statusCode"] in {400, 404}, path
    assert "import " not in (answer.get("body") or "") and "def handler" not in (answer.get("body") or "")


def test_the_allow_list_is_the_console_directory_only(handler: ModuleType) -> None:
    console = sys.modules["api_routes.console"]
    names = console.names()
    assert names == {p.name for p in CONSOLE.iterdir() if p.suffix in {".html", ".js", ".css", ".svg"}}
    assert all("/" not in n and not n.startswith(".") for n in names)
    assert console.load("api_handler.py") is None and console.load("../api_handler.py") is None


def test_an_unchanged_file_costs_a_304(handler: ModuleType) -> None:
    first = get(handler, "/console/app.js")
    etag = first["headers"]["ETag"]
    again = get(handler, "/console/app.js", {"if-none-match": etag})
    assert again["statusCode"] == 304 and not again["body"] and again["headers"]["ETag"] == etag
    weak = get(handler, "/console/app.js", {"if-none-match": f'"other", W/{etag}'})
    assert weak["statusCode"] == 304
    assert get(handler, "/console/app.js", {"if-none-match": '"other"'})["statusCode"] == 200


def test_files_are_gzipped_for_browsers_that_accept_it(handler: ModuleType) -> None:
    answer = get(handler, "/console/app.js", {"accept-encoding": "gzip, deflate, br"})
    assert answer["statusCode"] == 200 and answer["isBase64Encoded"]
    assert answer["headers"]["Content-Encoding"] == "gzip"
    assert gzip.decompress(base64.b64decode(answer["body"])) == (CONSOLE / "app.js").read_bytes()


def test_files_are_read_on_first_use_not_at_import(handler: ModuleType) -> None:
    console = sys.modules["api_routes.console"]
    console._files.clear()
    assert console._files == {}
    get(handler, "/")
    assert set(console._files) == {"index.html"}


def test_only_reading_the_console_is_public(handler: ModuleType) -> None:
    public = handler.is_public
    assert public("GET", "/") and public("GET", "/console/app.js") and public("GET", "/openapi.json")
    assert not public("POST", "/") and not public("DELETE", "/console/app.js")
    assert not public("GET", "/contacts") and not public("GET", "/consoles") and not public("GET", "/console")


def test_the_console_never_writes_html_from_strings() -> None:
    """Data reaches the DOM as text: no innerHTML/outerHTML/insertAdjacentHTML/document.write/eval anywhere."""
    sinks = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function")
    for script in CONSOLE.glob("*.js"):
        text = script.read_text(encoding="utf-8")
        assert not [s for s in sinks if s in text], script.name
    page = (CONSOLE / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script\b[^>]*>", page) == ['<script type="module" src="console/app.js">']  # no inline code
    assert not re.search(r"\son[a-z]+\s*=", page) and "style=" not in page  # no inline handlers or styles
