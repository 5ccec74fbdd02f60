"""Unit tests of leadpipe_local.apigw: HTTP API route selection, payload format 2.0 events and responses."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import datetime
from typing import Any

import pytest

from leadpipe_local.apigw import (
    MAX_EVENT_BYTES,
    MAX_REQUEST_BYTES,
    HttpResponse,
    Route,
    build_event,
    gateway_error,
    select_route,
    translate_response,
)

# The routes of template.yaml's ApiFunction, in template order.
APP_ROUTES = [
    Route("POST", "/imports", "ApiFunction", "CreateImport"),
    Route("POST", "/imports/uploads", "ApiFunction", "CreateUpload"),
    Route("GET", "/imports", "ApiFunction", "ListImports"),
    Route("GET", "/imports/{job_id}", "ApiFunction", "GetImport"),
    Route("GET", "/contacts", "ApiFunction", "ListContacts"),
    Route("GET", "/contacts/{email}", "ApiFunction", "GetContact"),
    Route("GET", "/status", "ApiFunction", "GetStatus"),
    Route("GET", "/openapi.json", "ApiFunction", "GetOpenApi"),
]


def _select(routes: list[Route], method: str, path: str) -> tuple[str, dict[str, str]] | None:
    selected = select_route(routes, method, path)
    return None if selected is None else (selected[0].event_name, selected[1])


# -------------------------------------------------------------------------------------------- Route


def test_route_key() -> None:
    assert Route("GET", "/contacts/{email}", "Fn", "E").route_key == "GET /contacts/{email}"
    assert Route("ANY", "/{proxy+}", "Fn", "E").route_key == "ANY /{proxy+}"
    assert Route("ANY", "$default", "Fn", "E").route_key == "$default"


def test_exact_route_matches_only_its_path() -> None:
    route = Route("GET", "/contacts", "Fn", "E")
    assert route.match("GET", "/contacts") == {}
    assert route.match("GET", "/contacts/") == {}
    assert route.match("GET", "/contacts/x") is None
    assert route.match("GET", "/contact") is None
    assert route.match("GET", "/contactsx") is None
    assert route.match("GET", "/api/contacts") is None
    assert route.match("GET", "/Contacts") is None


def test_literal_segments_are_not_regular_expressions() -> None:
    route = Route("GET", "/openapi.json", "Fn", "E")
    assert route.match("GET", "/openapi.json") == {}
    assert route.match("GET", "/openapiXjson") is None


def test_method_must_match_unless_any() -> None:
    route = Route("POST", "/imports", "Fn", "E")
    assert route.match("POST", "/imports") == {}
    assert route.match("GET", "/imports") is None
    assert route.match("PUT", "/imports") is None
    any_route = Route("ANY", "/imports", "Fn", "E")
    assert [any_route.match(m, "/imports") for m in ("GET", "POST", "DELETE", "PATCH", "OPTIONS")] == [{}] * 5


def test_path_parameters() -> None:
    route = Route("GET", "/contacts/{email}", "Fn", "E")
    assert route.match("GET", "/contacts/ann@example.com") == {"email": "ann@example.com"}
    assert route.match("GET", "/contacts/ann@example.com/") == {"email": "ann@example.com"}
    assert route.match("GET", "/contacts/a/b") is None
    assert route.match("GET", "/contacts/") is None
    assert route.match("GET", "/contacts") is None


def test_several_path_parameters() -> None:
    route = Route("GET", "/jobs/{job_id}/rows/{row}", "Fn", "E")
    assert route.match("GET", "/jobs/j-1/rows/42") == {"job_id": "j-1", "row": "42"}
    assert route.match("GET", "/jobs/j-1/cols/42") is None


def test_greedy_path_parameter() -> None:
    route = Route("GET", "/files/{proxy+}", "Fn", "E")
    assert route.match("GET", "/files/a") == {"proxy": "a"}
    assert route.match("GET", "/files/a/b/c.csv") == {"proxy": "a/b/c.csv"}
    assert route.match("GET", "/files") is None
    assert route.match("GET", "/files/") is None
    assert route.match("GET", "/other/a") is None


def test_default_route_matches_everything_if_any() -> None:
    route = Route("ANY", "$default", "Fn", "E")
    assert route.match("GET", "/") == {}
    assert route.match("DELETE", "/a/b/c") == {}


def test_root_route() -> None:
    route = Route("GET", "/", "Fn", "E")
    assert route.match("GET", "/") == {}
    assert route.match("GET", "") == {}
    assert route.match("GET", "/x") is None


# ------------------------------------------------------------------------------------- select_route


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/imports", ("CreateImport", {})),
        ("GET", "/imports", ("ListImports", {})),
        ("GET", "/imports/", ("ListImports", {})),
        ("POST", "/imports/uploads", ("CreateUpload", {})),
        ("GET", "/imports/uploads", ("GetImport", {"job_id": "uploads"})),
        ("GET", "/imports/job-123", ("GetImport", {"job_id": "job-123"})),
        ("GET", "/contacts", ("ListContacts", {})),
        ("GET", "/contacts/ann@example.com", ("GetContact", {"email": "ann@example.com"})),
        ("GET", "/status", ("GetStatus", {})),
        ("GET", "/openapi.json", ("GetOpenApi", {})),
        ("DELETE", "/contacts/ann@example.com", None),
        ("POST", "/imports/job-123", None),
        ("GET", "/", None),
        ("GET", "/unknown", None),
    ],
)
def test_select_route_on_the_app_routes(method: str, path: str, expected: Any) -> None:
    assert _select(APP_ROUTES, method, path) == expected


@pytest.mark.parametrize("reverse", [False, True])
def test_exact_path_beats_path_parameter(reverse: bool) -> None:
    routes = [
        Route("GET", "/contacts/{email}", "Fn", "param"),
        Route("GET", "/contacts/export", "Fn", "exact"),
    ]
    routes = routes[::-1] if reverse else routes
    assert _select(routes, "GET", "/contacts/export") == ("exact", {})
    assert _select(routes, "GET", "/contacts/ann") == ("param", {"email": "ann"})


@pytest.mark.parametrize("reverse", [False, True])
def test_more_literal_segments_win(reverse: bool) -> None:
    routes = [Route("GET", "/a/{x}/{y}", "Fn", "one"), Route("GET", "/a/b/{y}", "Fn", "two")]
    routes = routes[::-1] if reverse else routes
    assert _select(routes, "GET", "/a/b/c") == ("two", {"y": "c"})
    assert _select(routes, "GET", "/a/z/c") == ("one", {"x": "z", "y": "c"})


@pytest.mark.parametrize("reverse", [False, True])
def test_path_parameter_beats_greedy_and_greedy_beats_default(reverse: bool) -> None:
    routes = [
        Route("ANY", "$default", "Fn", "default"),
        Route("GET", "/files/{proxy+}", "Fn", "greedy"),
        Route("GET", "/files/{name}", "Fn", "param"),
    ]
    routes = routes[::-1] if reverse else routes
    assert _select(routes, "GET", "/files/a.csv") == ("param", {"name": "a.csv"})
    assert _select(routes, "GET", "/files/dir/a.csv") == ("greedy", {"proxy": "dir/a.csv"})
    assert _select(routes, "POST", "/files/a.csv") == ("default", {})
    assert _select(routes, "GET", "/elsewhere") == ("default", {})


@pytest.mark.parametrize("reverse", [False, True])
def test_any_greedy_root_route_beats_default(reverse: bool) -> None:
    routes = [Route("ANY", "$default", "Fn", "default"), Route("ANY", "/{proxy+}", "Fn", "greedy")]
    routes = routes[::-1] if reverse else routes
    assert _select(routes, "GET", "/a/b") == ("greedy", {"proxy": "a/b"})
    assert _select(routes, "POST", "/x") == ("greedy", {"proxy": "x"})
    assert _select(routes, "GET", "/") == ("default", {})


@pytest.mark.parametrize("reverse", [False, True])
def test_explicit_method_beats_any_on_the_same_path(reverse: bool) -> None:
    routes = [Route("ANY", "/pets/{id}", "Fn", "any"), Route("GET", "/pets/{id}", "Fn", "get")]
    routes = routes[::-1] if reverse else routes
    assert _select(routes, "GET", "/pets/1") == ("get", {"id": "1"})
    assert _select(routes, "POST", "/pets/1") == ("any", {"id": "1"})


def test_aws_documentation_routing_example() -> None:
    # modelled on the "Routing API requests" example of the API Gateway developer guide (HTTP APIs)
    routes = [
        Route("ANY", "$default", "Fn", "$default"),
        Route("ANY", "/{proxy+}", "Fn", "ANY /{proxy+}"),
        Route("GET", "/pets/{proxy+}", "Fn", "GET /pets/{proxy+}"),
        Route("GET", "/pets/dog/{id}", "Fn", "GET /pets/dog/{id}"),
        Route("GET", "/pets/dog/1", "Fn", "GET /pets/dog/1"),
    ]
    assert _select(routes, "GET", "/pets/dog/1") == ("GET /pets/dog/1", {})
    assert _select(routes, "GET", "/pets/dog/2") == ("GET /pets/dog/{id}", {"id": "2"})
    assert _select(routes, "GET", "/pets/cat/1") == ("GET /pets/{proxy+}", {"proxy": "cat/1"})
    assert _select(routes, "POST", "/pets/dog/1") == ("ANY /{proxy+}", {"proxy": "pets/dog/1"})


def test_no_route_and_no_default_selects_nothing() -> None:
    assert select_route([], "GET", "/") is None
    assert select_route([Route("GET", "/a", "Fn", "a")], "GET", "/b") is None


def test_default_only() -> None:
    routes = [Route("ANY", "$default", "Fn", "default")]
    assert _select(routes, "PATCH", "/whatever/it/is") == ("default", {})


# -------------------------------------------------------------------------------------- build_event

ROUTE = Route("GET", "/contacts/{email}", "ApiFunction", "GetContact")


def _event(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "method": "GET",
        "raw_path": "/contacts/ann%40example.com",
        "raw_query": "",
        "headers": [],
        "body": b"",
        "source_ip": "10.0.0.7",
        "account": "123456789012",
    }
    route = overrides.pop("route", ROUTE)
    params = overrides.pop("params", {"email": "ann@example.com"})
    kwargs.update(overrides)
    return build_event(route, params, **kwargs)


# API Gateway adds these to every request: the scheme the client used and its address.
FORWARDED = {"x-forwarded-proto": "http", "x-forwarded-for": "10.0.0.7"}


def test_event_shape() -> None:
    event = _event(
        raw_query="limit=10&tag=a&tag=b",
        headers=[("Host", "127.0.0.1:3000"), ("User-Agent", "curl/8.5"), ("Accept", "*/*")],
        domain="127.0.0.1:3000",
        api_id="myapi",
    )
    context = event.pop("requestContext")
    assert event == {
        "version": "2.0",
        "routeKey": "GET /contacts/{email}",
        "rawPath": "/contacts/ann%40example.com",
        "rawQueryString": "limit=10&tag=a&tag=b",
        "headers": {
            "host": "127.0.0.1:3000",
            "user-agent": "curl/8.5",
            "accept": "*/*",
            "x-forwarded-proto": "http",  # as API Gateway adds them: the scheme the client used, its address
            "x-forwarded-for": "10.0.0.7",
        },
        "queryStringParameters": {"limit": "10", "tag": "a,b"},
        "pathParameters": {"email": "ann@example.com"},
        "isBase64Encoded": False,
    }
    request_id, time_text, epoch = context.pop("requestId"), context.pop("time"), context.pop("timeEpoch")
    assert context == {
        "accountId": "123456789012",
        "apiId": "myapi",
        "domainName": "127.0.0.1:3000",
        "domainPrefix": "127",
        "http": {
            "method": "GET",
            "path": "/contacts/ann%40example.com",
            "protocol": "HTTP/1.1",
            "sourceIp": "10.0.0.7",
            "userAgent": "curl/8.5",
        },
        "routeKey": "GET /contacts/{email}",
        "stage": "$default",
    }
    assert str(uuid.UUID(request_id)) == request_id
    stamp = datetime.strptime(time_text, "%d/%b/%Y:%H:%M:%S %z")
    assert stamp.tzinfo is not None
    assert stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs(stamp.timestamp() - time.time()) < 5
    assert isinstance(epoch, int)
    assert abs(epoch - time.time() * 1000) < 5000


def test_event_defaults_for_api_id_and_domain() -> None:
    context = _event()["requestContext"]
    assert (context["apiId"], context["domainName"], context["domainPrefix"]) == (
        "localapi",
        "127.0.0.1",
        "127",
    )


def test_domain_prefix_is_the_first_label() -> None:
    context = _event(domain="abc123.execute-api.us-east-1.amazonaws.com")["requestContext"]
    assert context["domainPrefix"] == "abc123"


def test_each_event_has_its_own_request_id() -> None:
    assert _event()["requestContext"]["requestId"] != _event()["requestContext"]["requestId"]


def test_optional_keys_are_left_out_when_empty() -> None:
    event = _event(route=Route("GET", "/status", "Fn", "E"), params={}, raw_path="/status")
    assert set(event) == {
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "headers",
        "requestContext",
        "isBase64Encoded",
    }
    assert event["headers"] == FORWARDED
    assert event["rawQueryString"] == ""
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["userAgent"] == ""


def test_default_route_key_in_the_event() -> None:
    event = _event(route=Route("ANY", "$default", "Fn", "E"), params={}, raw_path="/x/y", method="DELETE")
    assert (event["routeKey"], event["requestContext"]["routeKey"]) == ("$default", "$default")
    assert event["requestContext"]["http"]["method"] == "DELETE"
    assert "pathParameters" not in event


def test_headers_are_lower_cased_and_repeated_headers_joined_with_commas() -> None:
    event = _event(
        headers=[
            ("X-Tag", "a"),
            ("x-tag", "b"),
            ("X-TAG", "c d"),
            ("Content-Type", "text/csv"),
            ("X-Empty", ""),
        ]
    )
    assert event["headers"] == {"x-tag": "a,b,c d", "content-type": "text/csv", "x-empty": "", **FORWARDED}


def test_cookies_are_split_out_of_the_cookie_header() -> None:
    event = _event(headers=[("Cookie", "session=abc; theme=dark;"), ("X-A", "1"), ("cookie", " lang=en ")])
    assert event["cookies"] == ["session=abc", "theme=dark", "lang=en"]
    assert event["headers"] == {"x-a": "1", **FORWARDED}


def test_empty_cookie_header_gives_no_cookies() -> None:
    event = _event(headers=[("Cookie", " ; ")])
    assert "cookies" not in event
    assert event["headers"] == FORWARDED


def test_query_string_parameters() -> None:
    event = _event(raw_query="q=a%20b&email=a%2Bb%40c.com&plus=x+y&flag&empty=&k=1&k=2&k=3")
    assert event["rawQueryString"] == "q=a%20b&email=a%2Bb%40c.com&plus=x+y&flag&empty=&k=1&k=2&k=3"
    assert event["queryStringParameters"] == {
        "q": "a b",
        "email": "a+b@c.com",
        "plus": "x y",
        "flag": "",
        "empty": "",
        "k": "1,2,3",
    }


def test_raw_path_is_kept_percent_encoded() -> None:
    event = _event(raw_path="/contacts/a%2Bb%40c.com")
    assert event["rawPath"] == "/contacts/a%2Bb%40c.com"
    assert event["requestContext"]["http"]["path"] == "/contacts/a%2Bb%40c.com"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/csv",
        "text/plain; charset=utf-8",
        "text/html",
        "application/json",
        "application/json; charset=utf-8",
        "application/csv",
        "application/xml",
        "application/javascript",
        "application/x-www-form-urlencoded",
    ],
)
def test_text_bodies_are_passed_as_text(content_type: str) -> None:
    body = "email,name\nann@example.com,Ann Émile\n".encode()
    event = _event(method="POST", headers=[("Content-Type", content_type)], body=body)
    assert event["body"] == "email,name\nann@example.com,Ann Émile\n"
    assert event["isBase64Encoded"] is False


def test_body_without_content_type_is_text_when_utf8() -> None:
    event = _event(method="POST", body=b'{"a": 1}')
    assert event["body"] == '{"a": 1}'
    assert event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    "content_type",
    ["application/octet-stream", "image/png", "application/zip", "multipart/form-data; boundary=x"],
)
def test_binary_content_types_are_base64_encoded(content_type: str) -> None:
    body = b"\x89PNG\r\n\x1a\n\x00\x01"
    event = _event(method="POST", headers=[("Content-Type", content_type)], body=body)
    assert event["body"] == base64.b64encode(body).decode()
    assert event["body"] == "iVBORw0KGgoAAQ=="
    assert event["isBase64Encoded"] is True


def test_binary_content_type_with_ascii_body_is_still_base64_encoded() -> None:
    event = _event(method="POST", headers=[("Content-Type", "application/octet-stream")], body=b"abc")
    assert (event["body"], event["isBase64Encoded"]) == ("YWJj", True)


@pytest.mark.parametrize("headers", [[("Content-Type", "text/csv")], []])
def test_non_utf8_bodies_are_base64_encoded(headers: list[tuple[str, str]]) -> None:
    body = "name\nRené\n".encode("latin-1")
    event = _event(method="POST", headers=headers, body=body)
    assert event["body"] == base64.b64encode(body).decode()
    assert base64.b64decode(event["body"]) == body
    assert event["isBase64Encoded"] is True


def test_empty_body_of_a_binary_type_is_absent_and_not_base64() -> None:
    event = _event(method="POST", headers=[("Content-Type", "application/octet-stream")], body=b"")
    assert "body" not in event
    assert event["isBase64Encoded"] is False


# ------------------------------------------------------------------------------- translate_response


def test_full_response() -> None:
    response = translate_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain; charset=utf-8", "X-Count": 5},
            "multiValueHeaders": {"X-Multi": ["a", "b"], "Vary": ["Origin"]},
            "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
            "body": "héllo",
        }
    )
    assert response == HttpResponse(
        201,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Count", "5"),
            ("X-Multi", "a"),
            ("X-Multi", "b"),
            ("Vary", "Origin"),
            ("set-cookie", "a=1; Path=/"),
            ("set-cookie", "b=2; HttpOnly"),
        ],
        "héllo".encode(),
    )


def test_base64_body_is_decoded() -> None:
    response = translate_response(
        {
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": base64.b64encode(b"\x00\xff\x10").decode(),
            "isBase64Encoded": True,
        }
    )
    assert response.body == b"\x00\xff\x10"
    assert response.headers == [("content-type", "application/octet-stream")]


def test_body_is_not_decoded_when_not_flagged() -> None:
    assert translate_response({"statusCode": 200, "body": "aGk=", "isBase64Encoded": False}).body == b"aGk="


def test_missing_content_type_defaults_to_json_when_there_is_a_body() -> None:
    response = translate_response({"statusCode": 200, "body": '{"a": 1}'})
    assert response == HttpResponse(200, [("content-type", "application/json")], b'{"a": 1}')


def test_content_type_is_detected_case_insensitively() -> None:
    response = translate_response({"statusCode": 200, "headers": {"CONTENT-TYPE": "text/csv"}, "body": "a,b"})
    assert response.headers == [("CONTENT-TYPE", "text/csv")]
    multi = translate_response({"statusCode": 200, "multiValueHeaders": {"Content-Type": ["text/csv"]}, "body": "x"})
    assert multi.headers == [("Content-Type", "text/csv")]


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": 204},
        {"statusCode": 204, "body": None},
        {"statusCode": 204, "body": ""},
        {"statusCode": 204, "headers": None},
    ],
)
def test_response_without_body(result: dict[str, Any]) -> None:
    assert translate_response(result) == HttpResponse(204, [], b"")


def test_status_code_given_as_text() -> None:
    assert translate_response({"statusCode": "404", "body": "{}"}).status == 404


def test_non_string_body_is_converted_to_text() -> None:
    assert translate_response({"statusCode": 200, "body": 42}).body == b"42"


@pytest.mark.parametrize(
    ("result", "body"),
    [
        ({"message": "hi", "items": [1, 2]}, b'{"message": "hi", "items": [1, 2]}'),
        ({"status": 200}, b'{"status": 200}'),
        ({}, b"{}"),
        ([1, "two"], b'[1, "two"]'),
        ("hello", b'"hello"'),
        (7, b"7"),
        (True, b"true"),
        (None, b"null"),
    ],
)
def test_result_without_status_code_is_inferred_as_200_json(result: Any, body: bytes) -> None:
    assert translate_response(result) == HttpResponse(200, [("content-type", "application/json")], body)


# ------------------------------------------------------------------------------------ gateway_error


def test_gateway_error() -> None:
    assert gateway_error(404, "Not Found") == HttpResponse(
        404, [("content-type", "application/json")], b'{"message": "Not Found"}'
    )
    assert gateway_error(413, "Request Entity Too Large").body == b'{"message": "Request Entity Too Large"}'
    assert gateway_error(500, "Internal Server Error").status == 500


def test_payload_limits() -> None:
    assert MAX_REQUEST_BYTES == 10 * 1024 * 1024
    assert MAX_EVENT_BYTES == 6 * 1024 * 1024
