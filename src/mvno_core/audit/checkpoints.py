"""Signed checkpoints of the audit chain, anchored outside the database.

A chain verified only against itself cannot show a missing tail, a wiped table or a chain re-linked
from scratch. So the sequencer signs ``(length, head hash, time)`` with an Ed25519 key the database
does not hold, stores the checkpoint in ``audit_checkpoints`` *and* keeps the latest in a file next to
the key. Verification then checks the chain against that file (and against any checkpoint a caller
kept), and the sequencer refuses to extend a chain that no longer reaches the latest checkpoint.
The last state a verification proved intact is kept next to them, so the next one starts from there.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mvno_core.audit.hashing import canonical_time


@dataclass(frozen=True, slots=True)
class Anchor:
    """A chain state someone vouches for: position ``length`` has chain hash ``head_hash``."""

    length: int
    head_hash: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    length: int
    head_hash: str
    signed_at: datetime
    key_id: str
    signature: str  # base64 of the Ed25519 signature over ``message()``

    def message(self) -> bytes:
        return checkpoint_message(self.length, self.head_hash, self.signed_at)

    def anchor(self) -> Anchor:
        return Anchor(self.length, self.head_hash)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "signed_at": canonical_time(self.signed_at)}

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> Checkpoint:
        return cls(
            length=int(str(doc["length"])),
            head_hash=str(doc["head_hash"]),
            signed_at=datetime.fromisoformat(str(doc["signed_at"])),
            key_id=str(doc["key_id"]),
            signature=str(doc["signature"]),
        )


def checkpoint_message(length: int, head_hash: str, signed_at: datetime) -> bytes:
    """What is signed; documented in the README so anyone can check a checkpoint offline."""
    return f"mvno-core audit checkpoint v1\n{length}\n{head_hash}\n{canonical_time(signed_at)}".encode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _write_atomically(path: Path, content: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class AuditKeyring:
    """The signing key and the two files kept beside it (latest checkpoint, last verified state)."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self.checkpoint_file = key_file.with_name("audit-checkpoint.json")
        self.verified_file = key_file.with_name("audit-verified.json")
        self._lock_file = key_file.with_name(".audit-files.lock")
        self._private = self._load_or_create(key_file)
        self.public_key: Ed25519PublicKey = self._private.public_key()
        raw_public = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_key_b64 = _b64(raw_public)
        self.key_id = hashlib.sha256(raw_public).hexdigest()[:16]

    @staticmethod
    def _load_or_create(key_file: Path) -> Ed25519PrivateKey:
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            try:
                # O_EXCL: two processes starting together must not each write a different key.
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(pem)
        loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ValueError(f"{key_file} is not an Ed25519 private key")
        return loaded

    def sign(self, length: int, head_hash: str, signed_at: datetime) -> Checkpoint:
        signature = self._private.sign(checkpoint_message(length, head_hash, signed_at))
        return Checkpoint(length, head_hash, signed_at, self.key_id, _b64(signature))

    def is_genuine(self, checkpoint: Checkpoint) -> bool:
        try:
            self.public_key.verify(base64.b64decode(checkpoint.signature), checkpoint.message())
        except (InvalidSignature, ValueError):
            return False
        return checkpoint.key_id == self.key_id

    @contextlib.contextmanager
    def _files_locked(self) -> Iterator[None]:
        with open(self._lock_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def latest(self) -> Checkpoint | None:
        """The latest checkpoint kept outside the database (None before the first one)."""
        if not self.checkpoint_file.exists():
            return None
        try:
            checkpoint = Checkpoint.from_json(json.loads(self.checkpoint_file.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.checkpoint_file} is not a checkpoint") from exc
        if not self.is_genuine(checkpoint):
            raise ValueError(f"{self.checkpoint_file} does not carry a valid signature of this key")
        return checkpoint

    def keep_latest(self, checkpoint: Checkpoint) -> None:
        """Keep ``checkpoint`` as the latest unless a longer one is already kept (sequencers in
        several processes may finish in any order)."""
        with self._files_locked():
            current = self.latest()
            if current is None or checkpoint.length > current.length:
                _write_atomically(self.checkpoint_file, json.dumps(checkpoint.to_json()).encode(), 0o644)

    def verified(self) -> Anchor | None:
        if not self.verified_file.exists():
            return None
        doc = json.loads(self.verified_file.read_text())
        return Anchor(int(doc["length"]), str(doc["head_hash"]))

    def keep_verified(self, anchor: Anchor) -> None:
        with self._files_locked():
            _write_atomically(self.verified_file, json.dumps(asdict(anchor)).encode(), 0o600)
