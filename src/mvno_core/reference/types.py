"""Value types shared by every domain: province and segment codes, validated and documented as enums."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from mvno_core.reference.data import PROVINCES, SEGMENTS


def _valid_province(code: str) -> str:
    if code not in PROVINCES:
        raise ValueError(f"unknown GB/T 2260 province code {code!r}")
    return code


def _valid_segment(code: str) -> str:
    if code not in SEGMENTS:
        raise ValueError(f"unknown MVNO segment {code!r}; see GET /v1/segments")
    return code


# The schema lists every accepted value, so what the OpenAPI allows is exactly what the server takes.
ProvinceCode = Annotated[
    str,
    AfterValidator(_valid_province),
    WithJsonSchema({"type": "string", "enum": sorted(PROVINCES), "description": "GB/T 2260 province code"}),
]
SegmentCode = Annotated[
    str,
    AfterValidator(_valid_segment),
    WithJsonSchema({"type": "string", "enum": sorted(SEGMENTS), "description": "MVNO segment"}),
]


def _whole_number(value: object) -> object:
    """JSON has one number type: ``243.0`` is the integer 243 (JSON Schema agrees), ``243.5`` is not an
    integer, and neither ``"243"`` nor ``true`` is a number. Strict ``int`` validation follows."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Put after ``Field(strict=True, ge=…, le=…)`` in an ``Annotated`` integer: the bounds stay on the
# integer (the schema shows them) and a float with nothing after the point is accepted as one.
WHOLE_NUMBER = BeforeValidator(_whole_number)

# An amount in fen (integer, 0 … 10^12).
Fen = Annotated[int, Field(strict=True, ge=0, le=10**12), WHOLE_NUMBER]
