"""Subscribers' rules, every pair, without a database."""

from __future__ import annotations

import itertools

import pytest

from mvno_core.subscribers.idcheck import IdType
from mvno_core.subscribers.lifecycle import (
    RealNameStatus,
    SubscriberKind,
    VerificationMethod,
    VerificationResult,
    id_type_fits,
    method_fits,
    status_after,
)


@pytest.mark.parametrize(("current", "result"), list(itertools.product(RealNameStatus, VerificationResult)))
def test_status_after_every_verification(current: RealNameStatus, result: VerificationResult) -> None:
    expected = (
        RealNameStatus.VERIFIED
        if result is VerificationResult.PASSED or current is RealNameStatus.VERIFIED
        else RealNameStatus.UNVERIFIED
    )
    assert status_after(current, result) is expected


@pytest.mark.parametrize(("kind", "id_type"), list(itertools.product(SubscriberKind, IdType)))
def test_documents_fit_kinds(kind: SubscriberKind, id_type: IdType) -> None:
    business = id_type is IdType.BUSINESS_LICENSE
    assert id_type_fits(kind, id_type) is (business == (kind is SubscriberKind.ENTERPRISE))


@pytest.mark.parametrize(("kind", "method"), list(itertools.product(SubscriberKind, VerificationMethod)))
def test_methods_fit_kinds(kind: SubscriberKind, method: VerificationMethod) -> None:
    expected = kind is SubscriberKind.ENTERPRISE or method is not VerificationMethod.ENTERPRISE_REGISTRATION
    assert method_fits(kind, method) is expected
