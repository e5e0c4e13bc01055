"""Reference data: MVNO number segments (MIIT 2023 table) and GB/T 2260 provinces."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Host(StrEnum):
    CMCC = "CMCC"  # China Mobile
    CUCC = "CUCC"  # China Unicom
    CTCC = "CTCC"  # China Telecom


HOST_NAMES = {Host.CMCC: "China Mobile", Host.CUCC: "China Unicom", Host.CTCC: "China Telecom"}


@dataclass(frozen=True, slots=True)
class Segment:
    code: str
    host: Host

    @property
    def block_count(self) -> int:
        # A block is a 7-digit H-code: 170x segments leave 3 digits (1,000 blocks), 3-digit ones 4.
        return int(10 ** (7 - len(self.code)))

    @property
    def first_prefix(self) -> int:
        return int(self.code) * self.block_count

    @property
    def last_prefix(self) -> int:
        return self.first_prefix + self.block_count - 1


SEGMENTS: dict[str, Segment] = {
    s.code: s
    for s in (
        Segment("1700", Host.CTCC),
        Segment("1701", Host.CTCC),
        Segment("1702", Host.CTCC),
        Segment("162", Host.CTCC),
        Segment("1703", Host.CMCC),
        Segment("1705", Host.CMCC),
        Segment("1706", Host.CMCC),
        Segment("165", Host.CMCC),
        Segment("1704", Host.CUCC),
        Segment("1707", Host.CUCC),
        Segment("1708", Host.CUCC),
        Segment("1709", Host.CUCC),
        Segment("171", Host.CUCC),
        Segment("167", Host.CUCC),
    )
}

BLOCK_SIZE = 10_000

# GB/T 2260 province-level codes of mainland China (where MVNO blocks can be homed).
PROVINCES: dict[str, tuple[str, str]] = {
    "11": ("北京市", "Beijing"),
    "12": ("天津市", "Tianjin"),
    "13": ("河北省", "Hebei"),
    "14": ("山西省", "Shanxi"),
    "15": ("内蒙古自治区", "Inner Mongolia"),
    "21": ("辽宁省", "Liaoning"),
    "22": ("吉林省", "Jilin"),
    "23": ("黑龙江省", "Heilongjiang"),
    "31": ("上海市", "Shanghai"),
    "32": ("江苏省", "Jiangsu"),
    "33": ("浙江省", "Zhejiang"),
    "34": ("安徽省", "Anhui"),
    "35": ("福建省", "Fujian"),
    "36": ("江西省", "Jiangxi"),
    "37": ("山东省", "Shandong"),
    "41": ("河南省", "Henan"),
    "42": ("湖北省", "Hubei"),
    "43": ("湖南省", "Hunan"),
    "44": ("广东省", "Guangdong"),
    "45": ("广西壮族自治区", "Guangxi"),
    "46": ("海南省", "Hainan"),
    "50": ("重庆市", "Chongqing"),
    "51": ("四川省", "Sichuan"),
    "52": ("贵州省", "Guizhou"),
    "53": ("云南省", "Yunnan"),
    "54": ("西藏自治区", "Tibet"),
    "61": ("陕西省", "Shaanxi"),
    "62": ("甘肃省", "Gansu"),
    "63": ("青海省", "Qinghai"),
    "64": ("宁夏回族自治区", "Ningxia"),
    "65": ("新疆维吾尔自治区", "Xinjiang"),
}


def segment_of_msisdn(msisdn: str) -> Segment | None:
    return SEGMENTS.get(msisdn[:4]) or SEGMENTS.get(msisdn[:3])


def province_name(code: str) -> str:
    return PROVINCES[code][0]
