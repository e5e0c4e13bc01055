"""A response decided inside the use case, so it can be stored for idempotent replay in the same
statement as the effect (``idempotency.record_piece``) and sent byte for byte as stored."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Response
from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status_code=status_code, body=model.model_dump_json().encode(), headers=headers or {})

    def response(self) -> Response:
        return Response(
            content=self.body,
            status_code=self.status_code,
            headers=self.headers,
            media_type="application/json",
        )
