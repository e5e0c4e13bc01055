"""MSISDN input normalisation: ``+86``/``86`` prefixes, spaces and hyphens are accepted on input."""

from __future__ import annotations

import re

from mvno_core.kernel.problems import ValidationFailed

_SEPARATORS = re.compile(r"[\s\-]")
_MSISDN = re.compile(r"^1[0-9]{10}$")


def normalise(raw: str, *, loc: tuple[str, ...] = ("path", "msisdn")) -> str:
    """Return the 11-digit national number, or raise 422 ``validation_error``."""
    digits = _SEPARATORS.sub("", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _MSISDN.fullmatch(digits):
        raise ValidationFailed(
            "An MSISDN is 11 digits starting with 1 (optionally +86/86, spaces, hyphens).", loc=loc
        )
    return digits
