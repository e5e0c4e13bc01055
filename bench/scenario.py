"""What the benchmark runs: the segments and sizes of each phase, and the search cases.

Kept apart from the code that times and prints them so that the scenario can be read (and changed) in one
place; bench/README.md describes it in prose.
"""

from __future__ import annotations

from bench import database as db

ALLOCATION_GOAL = 2.0  # HTTP median / raw median
HTTP_SEGMENT, HTTP_PROVINCE = "171", "11"
RAW_SEGMENT, RAW_HOST, RAW_PROVINCE = "167", "CUCC", "11"
FILL_SEGMENT, FILL_HOST = "165", "CMCC"
PAGE_LIMIT = 50
RESERVE_TOTAL, RESERVE_CONCURRENCY = 200, 16
RESERVE_PATTERN, RESERVE_PATTERN_COUNT = "*66", 50
# The mature scenario: the bench MVNO's lowest 30% of fill numbers in use, the next 2,000 reserved.
MATURE_IN_USE_SHARE, MATURE_RESERVED = 0.30, 2_000
SLOW_MS = 10.0  # a search whose median is above this gets its plan printed

OPERATOR, PARTNER = "operator", "partner"

# Sent with the operator key: no MVNO scope, so they range over both MVNOs' numbers.
OPERATOR_CASES: list[tuple[str, dict[str, str]]] = [
    ("pattern=*8888", {"pattern": "*8888"}),
    ("pattern=1710005*", {"pattern": "1710005*"}),
    ("pattern=*520*", {"pattern": "*520*"}),
    ("pattern=*1234567*", {"pattern": "*1234567*"}),
    ("status=available&province=11", {"status": "available", "province": "11"}),
    ("grade=premium", {"grade": "premium"}),
    ("status=available&pattern=*66", {"status": "available", "pattern": "*66"}),
]
EXPLAINED_PATTERN = "*8888"


def partner_cases(block: db.BlockFacts) -> list[tuple[str, dict[str, str]]]:
    """Sent with the bench MVNO's partner key (the service scopes them to that MVNO). ``block`` is the
    bench block where its taken numbers end, so the province and prefix cases start in taken ground."""
    return [
        ("status=available", {"status": "available"}),
        (
            f"status=available&province={block.province}",
            {"status": "available", "province": block.province},
        ),
        ("pattern=*66&status=available", {"pattern": "*66", "status": "available"}),
        ("pattern=*8888", {"pattern": "*8888"}),
        ("pattern=*520*", {"pattern": "*520*"}),
        (f"pattern={block.prefix}*", {"pattern": f"{block.prefix}*"}),
        (f"pattern={block.prefix}?888", {"pattern": f"{block.prefix}?888"}),
        ("grade=premium", {"grade": "premium"}),
        ("status=reserved", {"status": "reserved"}),
        ("status=in_use", {"status": "in_use"}),
    ]
