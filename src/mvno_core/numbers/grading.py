"""Number grades.

A number is ``premium`` (靓号, sold with a minimum-spend contract) when its last four digits d1 d2 d3 d4

- are all equal (AAAA, e.g. 8888);
- run up or down by one (ABCD: 1234, 6789, 4321, 9876, ...);
- form AABB (d1 = d2 and d3 = d4, e.g. 1122) or ABAB (d1 = d3 and d2 = d4, e.g. 1212);
- or the number ends in 888, 666 or 520, or in 1314 ("一生一世").

Everything else is ``standard``. ``grade_of`` is the rule; ``GRADE_SQL`` is the same rule as a SQL
expression over the integer suffix (0–9999) that block allocation uses to grade 10,000 numbers in one
statement. A test checks the two agree on every suffix.
"""

from __future__ import annotations

from enum import StrEnum


class Grade(StrEnum):
    STANDARD = "standard"
    PREMIUM = "premium"


LUCKY_ENDINGS_3 = ("888", "666", "520")
LUCKY_ENDINGS_4 = ("1314",)


def grade_of(msisdn: str) -> Grade:
    d1, d2, d3, d4 = (int(ch) for ch in msisdn[-4:])
    if msisdn.endswith(LUCKY_ENDINGS_3) or msisdn.endswith(LUCKY_ENDINGS_4):
        return Grade.PREMIUM
    steps = (d2 - d1, d3 - d2, d4 - d3)
    if steps in ((0, 0, 0), (1, 1, 1), (-1, -1, -1)):
        return Grade.PREMIUM
    if (d1 == d2 and d3 == d4) or (d1 == d3 and d2 == d4):
        return Grade.PREMIUM
    return Grade.STANDARD


def grade_sql(suffix: str) -> str:
    """SQL for the grade of the number whose last four digits are the integer expression ``suffix``."""
    d1, d2, d3, d4 = (
        f"({suffix} / 1000)",
        f"({suffix} / 100 % 10)",
        f"({suffix} / 10 % 10)",
        f"({suffix} % 10)",
    )
    lucky3 = ", ".join(str(int(e)) for e in LUCKY_ENDINGS_3)
    lucky4 = ", ".join(str(int(e)) for e in LUCKY_ENDINGS_4)
    premium = " OR ".join(
        (
            f"{suffix} % 1000 IN ({lucky3})",
            f"{suffix} IN ({lucky4})",
            f"({d2} - {d1} = {d3} - {d2} AND {d3} - {d2} = {d4} - {d3} AND {d2} - {d1} IN (-1, 0, 1))",
            f"({d1} = {d2} AND {d3} = {d4})",
            f"({d1} = {d3} AND {d2} = {d4})",
        )
    )
    return f"CASE WHEN {premium} THEN 'premium' ELSE 'standard' END"


GRADE_SQL = grade_sql("s")
