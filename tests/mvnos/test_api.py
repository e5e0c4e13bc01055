"""MVNO registry: validation, uniqueness, patch rules, restrict/reinstate, and every role on every route."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mvno_core.kernel.db import Database
from tests import factories
from tests.factories import assert_problem, mvno_body


async def test_create_returns_contract_shape(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    body = mvno_body(hosts=["CUCC", "CMCC", "CUCC"], licensed_provinces=["44", "11"])
    response = await client.post("/v1/mvnos", json=body, headers=operator)
    assert response.status_code == 201
    created = response.json()
    assert created["id"].startswith("mvno_")
    assert created["code"] == body["code"]
    assert created["status"] == "active"
    assert created["hosts"] == ["CMCC", "CUCC"]  # de-duplicated, sorted
    assert created["licensed_provinces"] == ["11", "44"]
    assert created["licensed_province_names"] == ["北京市", "广东省"]
    assert response.headers["location"] == f"/v1/mvnos/{created['id']}"
    fetched = await client.get(f"/v1/mvnos/{created['id']}", headers=operator)
    assert fetched.json() == created


async def test_duplicate_code_is_409_with_existing_id(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    first = await factories.create_mvno(client, operator)
    again = await client.post("/v1/mvnos", json=mvno_body(code=first["code"]), headers=operator)
    problem = assert_problem(again, 409, "conflict")
    assert problem["existing_id"] == first["id"]


@pytest.mark.parametrize(
    "override",
    [
        {"code": "A-upper"},
        {"code": "x"},
        {"code": "a" * 33},
        {"code": "has space"},
        {"hosts": []},
        {"hosts": ["CMCC", "VODAFONE"]},
        {"licensed_provinces": []},
        {"licensed_provinces": ["99"]},
        {"licensed_provinces": ["71"]},  # Taiwan: no MVNO blocks are homed there
        {"name": ""},
        {"name": "   "},
    ],
)
async def test_invalid_mvno_bodies_are_422(
    client: httpx.AsyncClient, operator: dict[str, str], override: dict[str, Any]
) -> None:
    response = await client.post("/v1/mvnos", json=mvno_body(**override), headers=operator)
    assert_problem(response, 422, "validation_error")


async def test_patch_names_provinces_and_add_hosts(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    mvno = await factories.create_mvno(client, operator, hosts=["CMCC"], licensed_provinces=["11"])
    response = await client.patch(
        f"/v1/mvnos/{mvno['id']}",
        json={"name": "新名字", "hosts": ["CMCC", "CTCC"], "licensed_provinces": ["11", "51"]},
        headers=operator,
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "新名字"
    assert patched["hosts"] == ["CMCC", "CTCC"]
    assert patched["licensed_provinces"] == ["11", "51"]
    assert patched["code"] == mvno["code"]


async def test_patch_cannot_remove_hosts(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    mvno = await factories.create_mvno(client, operator, hosts=["CMCC", "CUCC"])
    response = await client.patch(f"/v1/mvnos/{mvno['id']}", json={"hosts": ["CMCC"]}, headers=operator)
    assert_problem(response, 422, "validation_error")


async def test_patch_cannot_unlicense_a_province_holding_blocks(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    mvno = await factories.create_mvno(client, operator, licensed_provinces=["11", "31"])
    await factories.allocate(client, operator, mvno["id"], segment="165", province="31")
    response = await client.patch(
        f"/v1/mvnos/{mvno['id']}", json={"licensed_provinces": ["11"]}, headers=operator
    )
    assert_problem(response, 409, "conflict")


async def test_patch_rejects_unknown_fields_and_status(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    mvno = await factories.create_mvno(client, operator)
    for body in ({"status": "terminated"}, {"code": "new-code"}, {"id": "mvno_x"}):
        assert_problem(
            await client.patch(f"/v1/mvnos/{mvno['id']}", json=body, headers=operator),
            422,
            "validation_error",
        )


async def test_restrict_and_reinstate(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    mvno = await factories.create_mvno(client, operator)
    url = f"/v1/mvnos/{mvno['id']}"
    restricted = await client.post(
        f"{url}/restrict", json={"reason": "MIIT rectification order 2026-17"}, headers=operator
    )
    assert restricted.status_code == 200
    assert restricted.json()["status"] == "restricted"
    assert restricted.json()["status_reason"] == "MIIT rectification order 2026-17"
    again = await client.post(f"{url}/restrict", json={"reason": "again"}, headers=operator)
    assert assert_problem(again, 409, "illegal_transition")["current_status"] == "restricted"
    reinstated = await client.post(f"{url}/reinstate", headers=operator)
    assert reinstated.json()["status"] == "active"
    assert reinstated.json()["status_reason"] is None
    twice = await client.post(f"{url}/reinstate", headers=operator)
    assert assert_problem(twice, 409, "illegal_transition")["current_status"] == "active"
    assert_problem(await client.post(f"{url}/restrict", json={}, headers=operator), 422, "validation_error")


async def test_list_paginates_and_partner_sees_only_its_own(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database
) -> None:
    created = [await factories.create_mvno(client, operator) for _ in range(3)]
    items, _ = await factories.walk_pages(client, "/v1/mvnos", {"limit": "2"}, operator)
    seen = [m["id"] for m in items]
    assert {m["id"] for m in created} <= set(seen)
    assert len(seen) == len(set(seen))

    partner = factories.bearer(await factories.create_key(db, role="partner", mvno_id=created[0]["id"]))
    listed = (await client.get("/v1/mvnos", headers=partner)).json()
    assert [m["id"] for m in listed["items"]] == [created[0]["id"]]


# Every role on every MVNO route. "own" = the partner's MVNO, "other" = someone else's.
ROUTES = [
    ("POST", "/v1/mvnos", "new"),
    ("GET", "/v1/mvnos", None),
    ("GET", "/v1/mvnos/{id}", "own"),
    ("GET", "/v1/mvnos/{id}", "other"),
    ("PATCH", "/v1/mvnos/{id}", "own"),
    ("PATCH", "/v1/mvnos/{id}", "other"),
    ("POST", "/v1/mvnos/{id}/restrict", "own"),
    ("POST", "/v1/mvnos/{id}/restrict", "other"),
    ("POST", "/v1/mvnos/{id}/reinstate", "own"),
    ("POST", "/v1/mvnos/{id}/reinstate", "other"),
    ("POST", "/v1/mvnos/{id}/blocks", "own"),
    ("POST", "/v1/mvnos/{id}/blocks", "other"),
]

EXPECTED = {
    # (method, path, target): {role: status}
    ("POST", "/v1/mvnos", "new"): {"operator": 201, "partner": 403, "regulator": 403, "anonymous": 401},
    ("GET", "/v1/mvnos", None): {"operator": 200, "partner": 200, "regulator": 200, "anonymous": 401},
    ("GET", "/v1/mvnos/{id}", "own"): {"operator": 200, "partner": 200, "regulator": 200, "anonymous": 401},
    ("GET", "/v1/mvnos/{id}", "other"): {"operator": 200, "partner": 404, "regulator": 200, "anonymous": 401},
    ("PATCH", "/v1/mvnos/{id}", "own"): {"operator": 200, "partner": 403, "regulator": 403, "anonymous": 401},
    ("PATCH", "/v1/mvnos/{id}", "other"): {
        "operator": 200,
        "partner": 404,
        "regulator": 403,
        "anonymous": 401,
    },
    ("POST", "/v1/mvnos/{id}/restrict", "own"): {
        "operator": 200,
        "partner": 403,
        "regulator": 403,
        "anonymous": 401,
    },
    ("POST", "/v1/mvnos/{id}/restrict", "other"): {
        "operator": 200,
        "partner": 404,
        "regulator": 403,
        "anonymous": 401,
    },
    ("POST", "/v1/mvnos/{id}/reinstate", "own"): {
        "operator": 409,
        "partner": 403,
        "regulator": 403,
        "anonymous": 401,
    },
    ("POST", "/v1/mvnos/{id}/reinstate", "other"): {
        "operator": 409,
        "partner": 404,
        "regulator": 403,
        "anonymous": 401,
    },
    ("POST", "/v1/mvnos/{id}/blocks", "own"): {
        "operator": 201,
        "partner": 403,
        "regulator": 403,
        "anonymous": 401,
    },
    ("POST", "/v1/mvnos/{id}/blocks", "other"): {
        "operator": 201,
        "partner": 404,
        "regulator": 403,
        "anonymous": 401,
    },
}

BODIES = {
    "/v1/mvnos": mvno_body,
    "/v1/mvnos/{id}": lambda: {"name": "改名"},
    "/v1/mvnos/{id}/restrict": lambda: {"reason": "rectification"},
    "/v1/mvnos/{id}/reinstate": lambda: None,
    "/v1/mvnos/{id}/blocks": lambda: {"segment": "165", "province": "11"},
}


@pytest.mark.parametrize("role", ["operator", "partner", "regulator", "anonymous"])
@pytest.mark.parametrize(("method", "path", "target"), ROUTES)
async def test_every_role_on_every_mvno_route(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    regulator: dict[str, str],
    db: Database,
    role: str,
    method: str,
    path: str,
    target: str | None,
) -> None:
    own = await factories.create_mvno(client, operator)
    other = await factories.create_mvno(client, operator)
    headers = {
        "operator": operator,
        "regulator": regulator,
        "partner": factories.bearer(await factories.create_key(db, role="partner", mvno_id=own["id"])),
        "anonymous": {},
    }[role]
    mvno_id = own["id"] if target == "own" else other["id"]
    url = path.replace("{id}", mvno_id)
    body = BODIES[path]()
    response = await client.request(method, url, json=body, headers=headers)
    expected = EXPECTED[(method, path, target)][role]
    assert response.status_code == expected, response.text
    if expected >= 400:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "illegal_transition"}[expected]
        assert_problem(response, expected, code)
    if role == "partner" and method == "GET" and target is None:
        assert [m["id"] for m in response.json()["items"]] == [own["id"]]


async def test_partner_sees_nothing_of_other_mvnos_in_blocks_list(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database
) -> None:
    own = await factories.create_mvno(client, operator)
    other = await factories.create_mvno(client, operator)
    await factories.allocate(client, operator, other["id"], segment="165")
    partner = factories.bearer(await factories.create_key(db, role="partner", mvno_id=own["id"]))
    listed = await client.get("/v1/blocks", params={"mvno_id": other["id"]}, headers=partner)
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    every = (await client.get("/v1/blocks", params={"limit": 500}, headers=partner)).json()["items"]
    assert all(b["mvno_id"] == own["id"] for b in every)


async def test_empty_patch_changes_and_audits_nothing(
    client: httpx.AsyncClient, operator: dict[str, str], raw: Any
) -> None:
    mvno = await factories.create_mvno(client, operator)
    response = await client.patch(f"/v1/mvnos/{mvno['id']}", json={}, headers=operator)
    assert response.status_code == 200
    assert response.json() == mvno
    count = raw.execute("SELECT count(*) FROM audit_entries WHERE subject_id = %s", (mvno["id"],)).fetchone()
    assert count == (1,)
