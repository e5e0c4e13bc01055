"""Subscribers' rules as data: which documents fit which kind, which checks fit which kind, and how
verifications move ``real_name_status``.

先实名后开通: a line needs a ``verified`` subscriber. A ``passed`` verification makes a subscriber
``verified``; a ``failed`` one is recorded (history) but never takes a verified status away — an
abnormal card is handled by re-verification and holds on the line (a later stage), not by forgetting
a check that passed.
"""

from __future__ import annotations

from enum import StrEnum

from mvno_core.subscribers.idcheck import IdType


class SubscriberKind(StrEnum):
    INDIVIDUAL = "individual"
    ENTERPRISE = "enterprise"


class RealNameStatus(StrEnum):
    UNVERIFIED = "unverified"
    VERIFIED = "verified"


class VerificationMethod(StrEnum):
    IN_PERSON_FACE_MATCH = "in_person_face_match"
    ONLINE_LIVENESS = "online_liveness"
    ENTERPRISE_REGISTRATION = "enterprise_registration"


class VerificationResult(StrEnum):
    PASSED = "passed"
    FAILED = "failed"


# An enterprise registers with its business licence; a person with a personal document.
ID_TYPES_BY_KIND: dict[SubscriberKind, frozenset[IdType]] = {
    SubscriberKind.INDIVIDUAL: frozenset(IdType) - {IdType.BUSINESS_LICENSE},
    SubscriberKind.ENTERPRISE: frozenset({IdType.BUSINESS_LICENSE}),
}

# A person is checked by face; an enterprise by its registration, and its agent (经办人) by face.
METHODS_BY_KIND: dict[SubscriberKind, frozenset[VerificationMethod]] = {
    SubscriberKind.INDIVIDUAL: frozenset(
        {VerificationMethod.IN_PERSON_FACE_MATCH, VerificationMethod.ONLINE_LIVENESS}
    ),
    SubscriberKind.ENTERPRISE: frozenset(VerificationMethod),
}

# (current status, result) -> next status.
NEXT_STATUS: dict[tuple[RealNameStatus, VerificationResult], RealNameStatus] = {
    (RealNameStatus.UNVERIFIED, VerificationResult.PASSED): RealNameStatus.VERIFIED,
    (RealNameStatus.UNVERIFIED, VerificationResult.FAILED): RealNameStatus.UNVERIFIED,
    (RealNameStatus.VERIFIED, VerificationResult.PASSED): RealNameStatus.VERIFIED,
    (RealNameStatus.VERIFIED, VerificationResult.FAILED): RealNameStatus.VERIFIED,
}


def id_type_fits(kind: SubscriberKind, id_type: IdType) -> bool:
    return id_type in ID_TYPES_BY_KIND[kind]


def method_fits(kind: SubscriberKind, method: VerificationMethod) -> bool:
    return method in METHODS_BY_KIND[kind]


def status_after(current: RealNameStatus, result: VerificationResult) -> RealNameStatus:
    return NEXT_STATUS[(current, result)]
