"""Request shape rules of every route: unknown query parameters, Allow on OPTIONS and 405, declared
bounds on request strings, offline /docs, and metrics labels for the app's own pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from mvno_core.kernel.pagination import CURSOR_MAX_LENGTH, CURSOR_PATTERN, encode_cursor
from tests import factories
from tests.factories import assert_problem


@pytest.mark.parametrize(
    ("method", "url", "unknown"),
    [
        ("GET", "/v1/numbers?after=WyIxNzAwMDAwMDAwMCJd", ["after"]),
        ("GET", "/v1/mvnos?limit=5&statuss=active", ["statuss"]),
        ("GET", "/v1/events?after=WzAsMF0&cursr=x&typo=1", ["cursr", "typo"]),
        ("GET", "/v1/segments?host=CMCC", ["host"]),
        ("GET", "/v1/audit/verify?deep=1", ["deep"]),
        ("GET", "/v1/reservations/res_nope?expand=number", ["expand"]),
        ("POST", "/v1/mvnos?dry_run=true", ["dry_run"]),
    ],
)
async def test_unknown_query_parameters_are_422(
    client: httpx.AsyncClient, operator: dict[str, str], method: str, url: str, unknown: list[str]
) -> None:
    body = factories.mvno_body() if method == "POST" else None
    problem = assert_problem(
        await client.request(method, url, headers=operator, json=body), 422, "validation_error"
    )
    assert [error["loc"] for error in problem["errors"]] == [["query", name] for name in unknown]


async def test_declared_query_parameters_still_work(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    response = await client.get("/v1/events?after=WzBd&types=mvno.created&limit=1", headers=operator)
    assert response.status_code == 200, response.text
    response = await client.get("/v1/numbers?status=available&limit=1", headers=operator)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/v1/api-keys", "GET, POST, OPTIONS"),
        ("/v1/mvnos", "GET, POST, OPTIONS"),
        ("/v1/mvnos/mvno_x", "GET, PATCH, OPTIONS"),
        ("/v1/reservations/res_x", "DELETE, GET, OPTIONS"),
        ("/healthz", "GET, OPTIONS"),
    ],
)
async def test_options_answers_204_with_allow(client: httpx.AsyncClient, path: str, allow: str) -> None:
    response = await client.options(path)
    assert response.status_code == 204
    assert response.headers["allow"] == allow
    assert response.content == b""


async def test_options_on_an_unknown_path_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.options("/v1/nothing-here"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/mvnos/mvno_x", "GET, PATCH, OPTIONS"),
        ("DELETE", "/v1/mvnos/mvno_x", "GET, PATCH, OPTIONS"),
        ("DELETE", "/v1/api-keys", "GET, POST, OPTIONS"),
        ("PATCH", "/v1/reservations/res_x", "DELETE, GET, OPTIONS"),
    ],
)
async def test_405_lists_every_method_of_the_path(
    client: httpx.AsyncClient, operator: dict[str, str], method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path, headers=operator)
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow


def test_cursor_pattern_admits_every_cursor_the_server_issues() -> None:
    for values in ((0, 0), ("17000000000",), ("key_01JXYZ", "2026-11-29T00:00:00+00:00"), (2**62, 7)):
        cursor = encode_cursor(*values)
        assert re.fullmatch(CURSOR_PATTERN, cursor), cursor
        assert len(cursor) <= CURSOR_MAX_LENGTH


async def test_a_cursor_of_the_declared_shape_that_was_never_issued_is_422(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    spec = (await client.get("/openapi.json")).json()
    cursor = next(p for p in spec["paths"]["/v1/mvnos"]["get"]["parameters"] if p["name"] == "cursor")
    declared = next(s for s in cursor["schema"]["anyOf"] if s.get("type") == "string")
    assert (declared["pattern"], declared["maxLength"]) == (CURSOR_PATTERN, CURSOR_MAX_LENGTH)
    forged = "0" * 300  # matches the pattern; not base64 of a cursor
    assert re.fullmatch(declared["pattern"], forged)
    response = await client.get(f"/v1/mvnos?cursor={forged}", headers=operator)
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["query", "cursor"]
    too_long = "A" * (CURSOR_MAX_LENGTH + 1)
    response = await client.get(f"/v1/mvnos?cursor={too_long}", headers=operator)
    assert_problem(response, 422, "validation_error")


def _unbounded_strings(schema: dict[str, Any], components: dict[str, Any], where: str) -> list[str]:
    if "$ref" in schema:
        return _unbounded_strings(components[schema["$ref"].rsplit("/", 1)[-1]], components, where)
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            found += _unbounded_strings(sub, components, where)
    bounded = {"enum", "const", "pattern", "maxLength"} & schema.keys()
    if schema.get("type") == "string" and not bounded and schema.get("format") not in ("date", "date-time"):
        found.append(where)
    if schema.get("type") == "array":
        found += _unbounded_strings(schema.get("items", {}), components, f"{where}[]")
    for name, sub in schema.get("properties", {}).items():
        found += _unbounded_strings(sub, components, f"{where}.{name}")
    return found


async def test_every_request_string_in_bodies_queries_and_headers_is_bounded(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    components = spec["components"]["schemas"]
    unbounded: list[str] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                # Path ids are looked up, never stored: an unknown one of any length is a plain 404.
                if parameter["in"] != "path":
                    where = f"{method.upper()} {path} {parameter['in']}:{parameter['name']}"
                    unbounded += _unbounded_strings(parameter["schema"], components, where)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                unbounded += _unbounded_strings(body["schema"], components, f"{method.upper()} {path} body")
    assert unbounded == []


class _AssetLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


async def test_docs_load_only_same_origin_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    links = _AssetLinks()
    links.feed(page.text)
    assert len(links.urls) >= 3  # stylesheet, icon, script
    for url in links.urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
    assert "cdn" not in page.text.lower()


async def test_metrics_label_docs_and_openapi_by_path(client: httpx.AsyncClient) -> None:
    await client.get("/docs")
    await client.get("/openapi.json")
    await client.get("/no-such-page")
    metrics = (await client.get("/metrics")).text
    assert 'mvno_http_requests_total{method="GET",route="/docs",status="200"}' in metrics
    assert 'mvno_http_requests_total{method="GET",route="/openapi.json",status="200"}' in metrics
    assert 'mvno_http_requests_total{method="GET",route="unmatched",status="404"}' in metrics


async def test_a_literal_path_allows_only_its_own_methods(client: httpx.AsyncClient) -> None:
    """``/v1/subscribers/search`` is a POST route; the template ``/v1/subscribers/{id}`` (GET) also
    matches the path, but ``Allow`` names only what the literal route serves."""
    response = await client.options("/v1/subscribers/search")
    assert response.status_code == 204
    assert response.headers["allow"] == "POST, OPTIONS"
    templated = await client.options("/v1/subscribers/sub_x")
    assert templated.headers["allow"] == "GET, OPTIONS"
