"""Value types shared by every domain: province and segment codes, validated and documented as enums."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

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
