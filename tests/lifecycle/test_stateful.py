"""A hypothesis state machine over the whole line lifecycle, against a real server process.

Rules: reserve, release, activate (with or without the reservation), place and lift holds, end a line
as fraudulent (dispute → resolve), cancel a line (home or another province), reclaim a quarantined number
(its previous holder, or someone else), replay a POST with its Idempotency-Key. A model predicts every
answer; after every step the invariants hold: no number has two live lines, the API's numbers equal
the model's, the block's inventory adds up to 10,000, each subscriber's live-lines counter equals its
live lines. At the end the audit chain verifies and the event feed holds every change exactly once.
"""

from __future__ import annotations

import collections
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mvno_core.auth.keys import generate_secret, hash_secret, hint_of
from mvno_core.numbers.grading import Grade, grade_of
from tests.lines.conftest import iccid, imsi
from tests.live_server import LiveServer

POOL = 12  # numbers of the block the machine plays with
PEOPLE = 2  # subscribers (the card cap of 5 is reachable)
HOLD_REASONS = ("user_request", "loss_report", "arrears")


@dataclass
class Line:
    msisdn: str
    subscriber: int
    holds: dict[str, str] = field(default_factory=dict)  # reason -> hold id
    live: bool = True


class Lifecycle(RuleBasedStateMachine):
    server: LiveServer
    owner_conninfo: str

    def __init__(self) -> None:
        super().__init__()
        self.http = httpx.Client(base_url=self.server.url, timeout=30, trust_env=False)
        self.numbers: dict[str, str] = {}  # msisdn -> model status
        self.reservations: dict[str, str] = {}  # reservation id -> msisdn (active ones)
        self.lines: dict[str, Line] = {}
        self.live_count = collections.Counter[int]()
        self.previous_holder: dict[str, int] = {}  # quarantined msisdn -> the person whose line ended
        self.effects = collections.Counter[str]()  # event type -> expected count
        self.last_post: tuple[str, dict[str, Any], str, httpx.Response] | None = None

    # --- set-up -------------------------------------------------------------------------------------

    @initialize()
    def scene(self) -> None:
        self.operator = {"Authorization": f"Bearer {self._key('operator', None)}"}
        suffix = uuid.uuid4().hex[:8]
        mvno = self._ok(
            self.http.post(
                "/v1/mvnos",
                json={
                    "code": f"sm-{suffix}",
                    "name": "State machine",
                    "legal_name": "State Machine Co.",
                    "license_no": f"SM-{suffix}",
                    "hosts": ["CMCC"],
                    "licensed_provinces": ["11"],
                },
                headers=self.operator,
            )
        )
        self.mvno_id = mvno["id"]
        block = self._ok(
            self.http.post(
                f"/v1/mvnos/{self.mvno_id}/blocks",
                json={"segment": "165", "province": "11"},
                headers=self.operator,
            )
        )
        self.block_id, self.prefix = block["id"], block["prefix"]
        self.partner = {"Authorization": f"Bearer {self._key('partner', self.mvno_id)}"}
        standard = (f"{self.prefix}{n:04d}" for n in range(3000, 10_000))
        picks = [m for m in standard if grade_of(m) is Grade.STANDARD][:POOL]
        self.numbers = dict.fromkeys(picks, "available")
        self.people = []
        for _ in range(PEOPLE):
            person = self._ok(
                self.http.post(
                    "/v1/subscribers",
                    json={
                        "kind": "individual",
                        "name": "测试",
                        "id_type": "passport",
                        "id_number": f"E{uuid.uuid4().int % 10**8:08d}",
                    },
                    headers=self.partner,
                )
            )
            self._ok(
                self.http.post(
                    f"/v1/subscribers/{person['id']}/verifications",
                    json={"method": "in_person_face_match", "result": "passed", "channel": "store"},
                    headers=self.partner,
                )
            )
            self.people.append(person["id"])

    def _key(self, role: str, mvno_id: str | None) -> str:
        secret = generate_secret()
        with psycopg.connect(self.owner_conninfo, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO api_keys (id, secret_hash, hint, role, mvno_id, name, created_at) "
                "VALUES (%s, %s, %s, %s, %s, 'stateful', now())",
                (f"key_sm{uuid.uuid4().hex[:20]}", hash_secret(secret), hint_of(secret), role, mvno_id),
            )
        return secret

    @staticmethod
    def _ok(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        return body

    def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        key = uuid.uuid4().hex
        response = self.http.post(path, json=body, headers={**headers, "Idempotency-Key": key})
        if 200 <= response.status_code < 300:
            self.last_post = (path, body, key, response)
        return response

    # --- rules --------------------------------------------------------------------------------------

    @rule(n=st.integers(0, POOL - 1))
    def reserve(self, n: int) -> None:
        msisdn = list(self.numbers)[n]
        response = self._post("/v1/reservations", {"msisdn": msisdn}, self.partner)
        if self.numbers[msisdn] == "available":
            assert response.status_code == 201, response.text
            self.reservations[response.json()["id"]] = msisdn
            self.numbers[msisdn] = "reserved"
            self.effects["number.reserved"] += 1
        else:
            assert response.json()["code"] == "number_unavailable"

    @precondition(lambda self: bool(self.reservations))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        reservation = data.draw(st.sampled_from(sorted(self.reservations)))
        response = self.http.delete(f"/v1/reservations/{reservation}", headers=self.partner)
        assert response.status_code == 204
        self.numbers[self.reservations.pop(reservation)] = "available"
        self.effects["reservation.released"] += 1

    @rule(n=st.integers(0, POOL - 1), person=st.integers(0, PEOPLE - 1), with_reservation=st.booleans())
    def activate(self, n: int, person: int, with_reservation: bool) -> None:
        msisdn = list(self.numbers)[n]
        held_by = next((rid for rid, m in self.reservations.items() if m == msisdn), None)
        body: dict[str, Any] = {
            "subscriber_id": self.people[person],
            "msisdn": msisdn,
            "iccid": iccid(),
            "imsi": imsi("00"),
        }
        if with_reservation and held_by is not None:
            body["reservation_id"] = held_by
        response = self._post("/v1/lines", body, self.partner)
        if self.live_count[person] >= 5:
            assert response.json()["code"] == "card_limit_reached", response.text
        elif self.numbers[msisdn] in ("available", "reserved"):
            assert response.status_code == 201, response.text
            self.lines[response.json()["id"]] = Line(msisdn=msisdn, subscriber=person)
            self.numbers[msisdn] = "in_use"
            self.live_count[person] += 1
            if held_by is not None:
                self.reservations.pop(held_by)
            self.effects["line.activated"] += 1
        else:
            assert response.json()["code"] == "number_unavailable", response.text

    def _live_lines(self) -> list[str]:
        return sorted(line_id for line_id, line in self.lines.items() if line.live)

    @precondition(lambda self: bool(self._live_lines()))
    @rule(data=st.data(), reason=st.sampled_from(HOLD_REASONS))
    def place_hold(self, data: st.DataObject, reason: str) -> None:
        line_id = data.draw(st.sampled_from(self._live_lines()))
        line = self.lines[line_id]
        response = self._post(f"/v1/lines/{line_id}/holds", {"reason": reason}, self.partner)
        if reason in line.holds:
            assert response.json()["code"] == "conflict"
            return
        assert response.status_code == 201, response.text
        if not line.holds:
            self.effects["line.suspended"] += 1
        line.holds[reason] = response.json()["id"]
        self.effects["hold.placed"] += 1

    @precondition(lambda self: any(self.lines[i].holds for i in self._live_lines()))
    @rule(data=st.data())
    def lift_hold(self, data: st.DataObject) -> None:
        line_id = data.draw(st.sampled_from([i for i in self._live_lines() if self.lines[i].holds]))
        line = self.lines[line_id]
        reason = data.draw(st.sampled_from(sorted(line.holds)))
        response = self.http.post(
            f"/v1/lines/{line_id}/holds/{line.holds.pop(reason)}/lift", headers=self.partner
        )
        assert response.status_code == 200, response.text
        self.effects["hold.lifted"] += 1
        if not line.holds:
            self.effects["line.resumed"] += 1

    @precondition(lambda self: bool(self._live_lines()))
    @rule(data=st.data())
    def end_as_fraudulent(self, data: st.DataObject) -> None:
        line_id = data.draw(st.sampled_from(self._live_lines()))
        line = self.lines[line_id]
        dispute = self._ok(self._post(f"/v1/lines/{line_id}/disputes", {}, self.operator))
        if "risk_control" not in line.holds:
            self.effects["hold.placed"] += 1
            if not line.holds:
                self.effects["line.suspended"] += 1
        self._ok(
            self._post(f"/v1/disputes/{dispute['id']}/resolve", {"outcome": "fraudulent"}, self.operator)
        )
        self._ended(line)
        self.effects["dispute.opened"] += 1
        self.effects["dispute.resolved"] += 1
        self.effects["line.cancelled"] += 1

    def _ended(self, line: Line) -> None:
        line.live = False
        line.holds.clear()
        self.numbers[line.msisdn] = "quarantined"
        self.previous_holder[line.msisdn] = line.subscriber
        self.live_count[line.subscriber] -= 1

    @precondition(lambda self: bool(self._live_lines()))
    @rule(data=st.data(), province=st.sampled_from(["11", "31"]))
    def cancel(self, data: st.DataObject, province: str) -> None:
        """From the home province (11) or another (31): the same outcome either way."""
        line_id = data.draw(st.sampled_from(self._live_lines()))
        body = {
            "requested_province": province,
            "identity_check": {"method": "in_person_face_match", "result": "passed"},
        }
        cancelled = self._ok(self._post(f"/v1/lines/{line_id}/cancellations", body, self.partner))
        assert cancelled["cross_province"] is (province != "11")
        self._ended(self.lines[line_id])
        self.effects["line.cancelled"] += 1
        self.effects["cancellation.completed"] += 1

    @precondition(lambda self: any(s == "quarantined" for s in self.numbers.values()))
    @rule(data=st.data(), person=st.integers(0, PEOPLE - 1))
    def reclaim(self, data: st.DataObject, person: int) -> None:
        msisdn = data.draw(st.sampled_from(sorted(m for m, s in self.numbers.items() if s == "quarantined")))
        body = {"subscriber_id": self.people[person], "iccid": iccid(), "imsi": imsi("00")}
        response = self._post(f"/v1/numbers/{msisdn}/reclaims", body, self.partner)
        if self.previous_holder[msisdn] != person:
            assert response.json()["code"] == "number_unavailable", response.text
        elif self.live_count[person] >= 5:
            assert response.json()["code"] == "card_limit_reached", response.text
        else:
            assert response.status_code == 201, response.text
            self.lines[response.json()["id"]] = Line(msisdn=msisdn, subscriber=person)
            self.numbers[msisdn] = "in_use"
            self.live_count[person] += 1
            self.effects["line.activated"] += 1

    @precondition(lambda self: self.last_post is not None)
    @rule()
    def replay(self) -> None:
        assert self.last_post is not None
        path, body, key, first = self.last_post
        headers = self.operator if "/disputes" in path else self.partner
        again = self.http.post(path, json=body, headers={**headers, "Idempotency-Key": key})
        assert again.status_code == first.status_code
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content  # the stored answer, no second effect (invariants check)

    # --- invariants ---------------------------------------------------------------------------------

    @invariant()
    def database_agrees(self) -> None:
        if not self.numbers:
            return
        with psycopg.connect(self.owner_conninfo, autocommit=True) as conn:
            doubled = conn.execute(
                "SELECT msisdn FROM lines WHERE status <> 'cancelled' GROUP BY msisdn HAVING count(*) > 1"
            ).fetchall()
            assert doubled == []
            counters = conn.execute(
                "SELECT s.id, s.live_lines, (SELECT count(*) FROM lines l WHERE l.subscriber_id = s.id "
                "AND l.status <> 'cancelled') FROM subscribers s WHERE s.id = ANY(%s)",
                (self.people,),
            ).fetchall()
            assert all(counter == live for _, counter, live in counters)
        page = self._ok(
            self.http.get(
                f"/v1/numbers?pattern={self.prefix}*&status=available&limit=500", headers=self.partner
            )
        )
        block = self._ok(self.http.get(f"/v1/blocks/{self.block_id}", headers=self.partner))
        assert sum(block["counts"].values()) == 10_000
        for status in ("reserved", "in_use", "quarantined"):
            expected = sum(1 for s in self.numbers.values() if s == status)
            assert block["counts"][status] == expected, (status, block["counts"])
        statuses = {n["msisdn"]: n["status"] for n in page["items"]}
        for msisdn, status in self.numbers.items():
            if status == "available":
                assert msisdn in statuses or msisdn > page["items"][-1]["msisdn"]

    def teardown(self) -> None:
        if self.numbers:
            verified = self._ok(self.http.get("/v1/audit/verify", headers=self.operator))
            assert verified["ok"] is True, verified
            with psycopg.connect(self.owner_conninfo, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT type, count(*), count(DISTINCT id) FROM events WHERE mvno_id = %s GROUP BY type",
                    (self.mvno_id,),
                ).fetchall()
            seen = {event_type: (count, distinct) for event_type, count, distinct in rows}
            for event_type, expected in self.effects.items():
                assert seen.get(event_type, (0, 0)) == (expected, expected), (
                    event_type,
                    seen.get(event_type),
                )
        self.http.close()


def test_line_lifecycle_state_machine(live_server: LiveServer, conninfo: str) -> None:
    Lifecycle.server = live_server
    Lifecycle.owner_conninfo = conninfo
    run_state_machine_as_test(
        Lifecycle,
        settings=settings(
            max_examples=10,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
