"""Demo data for a first start: two MVNOs over all three hosts, four blocks, and one key per role."""

from __future__ import annotations

from dataclasses import dataclass

from mvno_core.auth import service as keys
from mvno_core.blocks import service as blocks
from mvno_core.blocks.schemas import BlockCreate
from mvno_core.kernel.clock import SystemClock
from mvno_core.kernel.config import Settings
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.db import Database
from mvno_core.kernel.principal import Principal, Role
from mvno_core.mvnos import repository as mvno_repository
from mvno_core.mvnos import service as mvnos
from mvno_core.mvnos.schemas import MvnoCreate
from mvno_core.reference.data import Host

CLI = Principal(key_id="cli", role=Role.OPERATOR, mvno_id=None)

DEMO_MVNOS = (
    (
        MvnoCreate(
            code="lianyi-mobile",
            name="联意移动",
            legal_name="联意移动通信技术有限公司",
            license_no="A2.B1-20260001",
            hosts=[Host.CMCC, Host.CUCC],
            licensed_provinces=["11", "31", "44"],
        ),
        (
            BlockCreate(segment="1703", province="11", city="北京"),
            BlockCreate(segment="171", province="44", city="广州"),
        ),
    ),
    (
        MvnoCreate(
            code="tianyuan-telecom",
            name="天元通信",
            legal_name="天元通信服务有限公司",
            license_no="A2.B1-20260002",
            hosts=[Host.CTCC],
            licensed_provinces=["50", "51"],
        ),
        (
            BlockCreate(segment="1700", province="51", city="成都"),
            BlockCreate(segment="162", province="50", city="重庆"),
        ),
    ),
)


@dataclass(slots=True)
class DemoKey:
    role: str
    mvno_code: str | None
    secret: str


def export_lines(created: list[DemoKey]) -> list[str]:
    """Shell lines that put the demo keys in the variables the README's examples use: paste them once.

    The first partner key is ``PARTNER_KEY``, the next ``PARTNER2_KEY``; a comment names the MVNO."""
    lines: list[str] = []
    partners = 0
    for key in created:
        if key.role == Role.PARTNER.value:
            partners += 1
            variable = "PARTNER_KEY" if partners == 1 else f"PARTNER{partners}_KEY"
        else:
            variable = f"{key.role.upper()}_KEY"
        scope = f"  # {key.mvno_code}" if key.mvno_code else ""
        lines.append(f"export {variable}={key.secret}{scope}")
    return lines


async def seed(db: Database, settings: Settings) -> list[DemoKey] | None:
    """Create the demo data once; None if it already exists. Returns the keys (shown once)."""
    clock = SystemClock()
    async with db.transaction() as session:
        if await mvno_repository.id_by_code(session, DEMO_MVNOS[0][0].code) is not None:
            return None
        ctx = RequestContext(
            session=session,
            principal=CLI,
            request_id="demo-seed",
            now=clock.now(),
            settings=settings,
        )
        created: list[DemoKey] = []
        for role in (Role.OPERATOR, Role.REGULATOR):
            key = await keys.create_key(ctx, role=role, mvno_id=None, name=f"demo {role}")
            created.append(DemoKey(role.value, None, key.key))
        for mvno_data, block_requests in DEMO_MVNOS:
            mvno = await mvnos.create(ctx, mvno_data)
            for block in block_requests:
                await blocks.allocate(ctx, mvno.id, block)
            key = await keys.create_key(
                ctx, role=Role.PARTNER, mvno_id=mvno.id, name=f"demo partner {mvno.code}"
            )
            created.append(DemoKey(Role.PARTNER.value, mvno.code, key.key))
        return created
