"""Identity document numbers: normalisation and checks, per ``id_type``.

Check characters are computed by python-stdnum, never by hand:

- ``resident_id`` (GB 11643): 18 characters, 17 digits + a digit or ``X``; a real birth date that is not
  in the future; the MOD 11-2 check character (``X`` = 10) — stdnum's ``cn.ric`` *pieces*
  (``get_birth_date``, ``calc_check_digit``). Not ``cn.ric.validate``: it also requires the 6-digit
  address code to have existed in the birth year, and real IDs break that rule (the code is the county
  that issued the card, which may be newer than the holder: people born in 1971 hold codes from 1990).
- ``business_license``: the 18-character unified social credit code (GB 32100), check character by
  ``stdnum.cn.uscc.calc_check_digit``. The registering-authority character may be a digit or ``A``/``N``/
  ``Y`` (GB 32100 allows those letters; ``cn.uscc.validate`` accepts digits only).
- ``foreign_permanent_resident``: the 2017+ card, 18 digits starting ``9`` whose last character is the
  GB 11643 MOD 11-2 check character (same stdnum piece); or the 2004 card, 3 letters + 12 digits.
- ``passport``, ``hk_macau_permit``, ``taiwan_permit``: format only (their numbers carry no public check
  character); patterns in ``PATTERNS``.

A failure raises ``IdNumberInvalid`` naming the reason; the message never repeats the number.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum

from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumValidationError


class IdType(StrEnum):
    RESIDENT_ID = "resident_id"
    PASSPORT = "passport"
    HK_MACAU_PERMIT = "hk_macau_permit"
    TAIWAN_PERMIT = "taiwan_permit"
    FOREIGN_PERMANENT_RESIDENT = "foreign_permanent_resident"
    BUSINESS_LICENSE = "business_license"


# What each type looks like after normalisation (upper case, no spaces or hyphens).
PATTERNS: dict[IdType, str] = {
    IdType.RESIDENT_ID: r"^[0-9]{17}[0-9X]$",
    # Chinese (E/G + 8 digits, E + letter + 7 digits) and foreign passports: 5–17 letters/digits.
    IdType.PASSPORT: r"^[A-Z0-9]{5,17}$",
    # 港澳居民来往内地通行证: H (Hong Kong) or M (Macau) + 8 digits (+ 2 digits on the 2013+ card).
    IdType.HK_MACAU_PERMIT: r"^[HM][0-9]{8}([0-9]{2})?$",
    # 台湾居民来往大陆通行证: 8 digits (2015+ card) or the older 10 digits, optionally + 1 letter.
    IdType.TAIWAN_PERMIT: r"^([0-9]{8}|[0-9]{10}[A-Z]?)$",
    # 外国人永久居留身份证: 2017+ (9 + 17 characters, MOD 11-2) or 2004 (3 letters + 12 digits).
    IdType.FOREIGN_PERMANENT_RESIDENT: r"^(9[0-9]{16}[0-9X]|[A-Z]{3}[0-9]{12})$",
    # 统一社会信用代码: authority, type, 6-digit region, 9-character organisation code, check.
    IdType.BUSINESS_LICENSE: r"^[0-9ANY][0-9A-HJ-NP-RTUW-Y][0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}$",
}
_COMPILED = {id_type: re.compile(pattern) for id_type, pattern in PATTERNS.items()}
_SEPARATORS = re.compile(r"[\s-]+")

DESCRIPTIONS: dict[IdType, str] = {
    IdType.RESIDENT_ID: "18 characters: 17 digits + digit or X; real birth date not in the future; "
    "GB 11643 MOD 11-2 check character",
    IdType.PASSPORT: "5–17 letters or digits",
    IdType.HK_MACAU_PERMIT: "H or M + 8 or 10 digits",
    IdType.TAIWAN_PERMIT: "8 digits, or 10 digits + optional letter",
    IdType.FOREIGN_PERMANENT_RESIDENT: "9 + 16 digits + check character (MOD 11-2), or 3 letters + 12 digits",
    IdType.BUSINESS_LICENSE: "18-character unified social credit code with its check character",
}


class IdNumberInvalid(ValueError):
    """The number does not pass its type's check; ``str()`` is the reason (never the number)."""


def normalise(id_number: str) -> str:
    """Upper case, no spaces or hyphens: the form that is checked, hashed and encrypted."""
    return _SEPARATORS.sub("", id_number).upper()


def _check_resident_id(number: str, today: date) -> None:
    if len(number) != 18:
        raise IdNumberInvalid(f"A resident ID has 18 characters, not {len(number)}.")
    if not _COMPILED[IdType.RESIDENT_ID].match(number):
        raise IdNumberInvalid("A resident ID is 17 digits followed by a digit or X.")
    _check_birth_date(number, today)
    if number[-1] != ric.calc_check_digit(number):
        raise IdNumberInvalid("The check character (MOD 11-2) does not match.")


def _check_birth_date(number: str, today: date) -> None:
    try:
        born = ric.get_birth_date(number)
    except StdnumValidationError as exc:
        raise IdNumberInvalid("The birth date is not a real date.") from exc
    if born > today:
        raise IdNumberInvalid("The birth date is in the future.")
    if born.year < 1850:
        raise IdNumberInvalid("The birth date is not plausible.")


def _check_uscc(number: str) -> None:
    if len(number) != 18:
        raise IdNumberInvalid(f"A unified social credit code has 18 characters, not {len(number)}.")
    if not _COMPILED[IdType.BUSINESS_LICENSE].match(number):
        raise IdNumberInvalid("Not a unified social credit code (characters or region code).")
    if number[-1] != uscc.calc_check_digit(number):
        raise IdNumberInvalid("The check character (GB 32100) does not match.")


def _check_foreign_permanent_resident(number: str, today: date) -> None:
    if not _COMPILED[IdType.FOREIGN_PERMANENT_RESIDENT].match(number):
        raise IdNumberInvalid(f"Expected {DESCRIPTIONS[IdType.FOREIGN_PERMANENT_RESIDENT]}.")
    if number[0] == "9":
        _check_birth_date(number, today)
        if number[-1] != ric.calc_check_digit(number):
            raise IdNumberInvalid("The check character (MOD 11-2) does not match.")


def check(id_type: IdType, id_number: str, *, today: date) -> str:
    """Normalise and check ``id_number``; return the normalised form or raise ``IdNumberInvalid``.

    ``today`` is the caller's date (China time) from the injectable clock: a birth date after it is
    refused."""
    number = normalise(id_number)
    if id_type is IdType.RESIDENT_ID:
        _check_resident_id(number, today)
    elif id_type is IdType.BUSINESS_LICENSE:
        _check_uscc(number)
    elif id_type is IdType.FOREIGN_PERMANENT_RESIDENT:
        _check_foreign_permanent_resident(number, today)
    elif not _COMPILED[id_type].match(number):
        raise IdNumberInvalid(f"Expected {DESCRIPTIONS[id_type]}.")
    return number
