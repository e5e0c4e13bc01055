"""ID checks without a database: thousands of generated IDs, every failure reason, every type."""

from __future__ import annotations

import random
from datetime import date

import pytest
from stdnum.cn import ric

from mvno_core.subscribers.idcheck import IdNumberInvalid, IdType, check, normalise
from tests.factories import NEWER_COUNTY_CODES, resident_id, uscc_code

TODAY = date(2026, 11, 29)


def _with_check_char(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")


def test_three_thousand_generated_resident_ids_pass() -> None:
    rng = random.Random(20261129)
    ids = [resident_id(rng) for _ in range(2600)]
    # People born around 1971 holding county codes created decades later.
    ids += [
        resident_id(rng, born=date(1971, 1, 1 + rng.randint(0, 27)), address=rng.choice(NEWER_COUNTY_CODES))
        for _ in range(400)
    ]
    assert len(ids) == 3000
    assert {check(IdType.RESIDENT_ID, n, today=TODAY) for n in ids} == set(ids)
    # Some end in X (check value 10): the generator covers that branch too.
    assert any(n.endswith("X") for n in ids)


def test_newer_county_codes_pass_although_stdnum_validate_refuses_them() -> None:
    for code in NEWER_COUNTY_CODES:
        number = resident_id(born=date(1971, 6, 15), address=code)
        assert not ric.is_valid(number)  # why the validator uses stdnum's pieces, not validate()
        assert check(IdType.RESIDENT_ID, number, today=TODAY) == number


def test_lower_case_x_spaces_and_hyphens_are_normalised() -> None:
    number = _with_check_char("11010519491231002")
    assert number.endswith("X")
    spaced = f"{number[:6]} {number[6:14]}-{number[14:].lower()}"
    assert check(IdType.RESIDENT_ID, spaced, today=TODAY) == number
    assert normalise(" e1234 5678 ") == "E12345678"


def _reason(id_type: IdType, number: str) -> str:
    with pytest.raises(IdNumberInvalid) as caught:
        check(id_type, number, today=TODAY)
    assert number not in str(caught.value)  # the reason never repeats the number
    return str(caught.value)


def test_wrong_check_character() -> None:
    good = resident_id(random.Random(1))
    wrong = next(c for c in "0123456789X" if c != good[-1])
    assert "check character" in _reason(IdType.RESIDENT_ID, good[:-1] + wrong)


@pytest.mark.parametrize("birth", ["19900230", "19901301", "19900000", "20230229"])
def test_impossible_birth_date(birth: str) -> None:
    assert "not a real date" in _reason(IdType.RESIDENT_ID, _with_check_char(f"110105{birth}123"))


def test_birth_date_in_the_future() -> None:
    assert "future" in _reason(IdType.RESIDENT_ID, _with_check_char("110105" + "20261130" + "123"))
    # Today itself is fine.
    assert check(IdType.RESIDENT_ID, _with_check_char("110105" + "20261129" + "123"), today=TODAY)


@pytest.mark.parametrize("length", [1, 15, 17, 19])
def test_wrong_length(length: int) -> None:
    number = (resident_id(random.Random(2)) * 2)[:length]
    assert "18 characters" in _reason(IdType.RESIDENT_ID, number)


def test_letters_inside_a_resident_id() -> None:
    assert "17 digits" in _reason(IdType.RESIDENT_ID, "11010519900101A23X")


def test_uscc_good_and_bad() -> None:
    rng = random.Random(3)
    for _ in range(500):
        code = uscc_code(rng)
        assert check(IdType.BUSINESS_LICENSE, code, today=TODAY) == code
    assert check(IdType.BUSINESS_LICENSE, "91110000600037341L", today=TODAY) == "91110000600037341L"
    assert "check character" in _reason(IdType.BUSINESS_LICENSE, "91110000600037341M")
    assert "18 characters" in _reason(IdType.BUSINESS_LICENSE, "9111000060003734")
    # I, O, S, V, Z are not in the code's alphabet.
    assert "Not a unified" in _reason(IdType.BUSINESS_LICENSE, "9111000060003734IL")


@pytest.mark.parametrize(
    ("id_type", "good", "bad"),
    [
        (IdType.PASSPORT, "E12345678", "E123"),
        (IdType.PASSPORT, "X12345678901", "E1234567!"),
        (IdType.HK_MACAU_PERMIT, "H12345678", "K12345678"),
        (IdType.HK_MACAU_PERMIT, "M1234567890", "H1234567"),
        (IdType.TAIWAN_PERMIT, "12345678", "1234567"),
        (IdType.TAIWAN_PERMIT, "1234567890B", "A2345678"),
        (IdType.FOREIGN_PERMANENT_RESIDENT, "USA123456789012", "US1234567890123"),
    ],
)
def test_format_checked_types(id_type: IdType, good: str, bad: str) -> None:
    assert check(id_type, good, today=TODAY) == good
    assert "Expected" in _reason(id_type, bad)


def test_new_foreign_permanent_resident_card_has_a_check_character() -> None:
    # 9, accepting province 11, nationality 840, birth date, sequence, check character.
    good = _with_check_char("911840" + "19800101" + "123")
    assert len(good) == 18
    assert check(IdType.FOREIGN_PERMANENT_RESIDENT, good, today=TODAY) == good
    wrong = next(c for c in "0123456789" if c != good[-1])
    assert "check character" in _reason(IdType.FOREIGN_PERMANENT_RESIDENT, good[:-1] + wrong)
