"""Encryption, blind indexes, masking and key loading, without a database."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from mvno_core.kernel.config import Settings
from mvno_core.subscribers import pii


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _document(active: str = "k1", **keys: str) -> str:
    return json.dumps({"active": active, "keys": keys or {"k1": _key()}, "blind_index_key": _key()})


def test_round_trip_hides_the_plaintext_and_names_the_key() -> None:
    ring = pii.parse_keyring(_document())
    blob = ring.encrypt("张三丰", context="subscriber:sub_1:name")
    assert "张三丰".encode() not in blob
    assert pii.key_id_of(blob) == "k1"
    assert ring.decrypt(blob, context="subscriber:sub_1:name") == "张三丰"
    # Random nonces: the same plaintext never gives the same ciphertext.
    assert ring.encrypt("张三丰", context="subscriber:sub_1:name") != blob


def test_a_ciphertext_moved_to_another_row_does_not_decrypt() -> None:
    ring = pii.parse_keyring(_document())
    blob = ring.encrypt("110105194912310021", context="subscriber:sub_1:id_number")
    with pytest.raises(pii.PiiKeyError):
        ring.decrypt(blob, context="subscriber:sub_2:id_number")


def test_rotation_keeps_old_rows_readable() -> None:
    old, new, blind = _key(), _key(), _key()
    before = pii.parse_keyring(json.dumps({"active": "k1", "keys": {"k1": old}, "blind_index_key": blind}))
    blob = before.encrypt("李四", context="c")
    after = pii.parse_keyring(
        json.dumps({"active": "k2", "keys": {"k1": old, "k2": new}, "blind_index_key": blind})
    )
    assert after.decrypt(blob, context="c") == "李四"
    assert pii.key_id_of(after.encrypt("李四", context="c")) == "k2"
    # Same blind-index key: look-ups keep working across the rotation.
    assert before.blind_index("resident_id", "X") == after.blind_index("resident_id", "X")
    without_old = pii.parse_keyring(
        json.dumps({"active": "k2", "keys": {"k2": new}, "blind_index_key": blind})
    )
    with pytest.raises(pii.PiiKeyError, match="unknown key"):
        without_old.decrypt(blob, context="c")


def test_blind_index_is_keyed_and_separates_id_types() -> None:
    ring, other = pii.parse_keyring(_document()), pii.parse_keyring(_document())
    index = ring.blind_index("resident_id", "110105194912310021")
    assert len(index) == 32
    assert index == ring.blind_index("resident_id", "110105194912310021")
    assert index != ring.blind_index("passport", "110105194912310021")
    assert index != other.blind_index("resident_id", "110105194912310021")


@pytest.mark.parametrize(
    ("name", "masked"), [("张三", "张*"), ("欧阳娜娜", "欧***"), ("JOHN SMITH", "J*********")]
)
def test_mask_name(name: str, masked: str) -> None:
    assert pii.mask_name(name) == masked


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("11010519491231002X", "110***********002X"),
        ("91110000600037341L", "911***********341L"),
        ("E12345678", "E******78"),
        ("H12345678", "H******78"),
    ],
)
def test_mask_id_number(number: str, masked: str) -> None:
    assert pii.mask_id_number(number) == masked
    assert len(masked) == len(number)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"keys": {}}', "need"),
        (json.dumps({"active": "k9", "keys": {"k1": _key()}, "blind_index_key": _key()}), "active key"),
        (json.dumps({"active": "k1", "keys": {"k1": "c2hvcnQ="}, "blind_index_key": _key()}), "32 bytes"),
        (json.dumps({"active": "k1", "keys": {"k1": "@@@"}, "blind_index_key": _key()}), "base64"),
        (json.dumps({"active": "k 1", "keys": {"k 1": _key()}, "blind_index_key": _key()}), "key id"),
    ],
)
def test_malformed_keys_are_refused(document: str, message: str) -> None:
    with pytest.raises(pii.PiiKeyError, match=message):
        pii.parse_keyring(document)


def test_same_key_for_both_purposes_is_refused() -> None:
    key = _key()
    with pytest.raises(pii.PiiKeyError, match="differ"):
        pii.parse_keyring(json.dumps({"active": "k1", "keys": {"k1": key}, "blind_index_key": key}))


def test_first_start_creates_a_private_key_file_and_reuses_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    ring = pii.keyring(settings)
    path = tmp_path / "data" / pii.KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pii._loaded.clear()  # a restart: the file, not the cache, must give the same keys
    assert pii.keyring(settings) == ring


def test_keys_from_the_environment_as_json_or_as_a_file(tmp_path: Path) -> None:
    document = _document()
    from_json = pii.keyring(Settings(data_dir=tmp_path, pii_keys=SecretStr(document)))
    key_file = tmp_path / "keys.json"
    key_file.write_text(document)
    from_file = pii.keyring(Settings(data_dir=tmp_path, pii_keys=SecretStr(str(key_file))))
    assert from_json == from_file
    assert not (tmp_path / pii.KEY_FILE_NAME).exists()  # configured keys: no file is generated
    with pytest.raises(pii.PiiKeyError, match="cannot read"):
        pii.keyring(Settings(data_dir=tmp_path, pii_keys=SecretStr(str(tmp_path / "missing.json"))))


def test_the_app_refuses_to_start_with_malformed_keys(tmp_path: Path) -> None:
    from mvno_core.main import create_app

    settings = Settings(
        database_url="postgresql://nobody@127.0.0.1:1/none", data_dir=tmp_path, pii_keys=SecretStr("{oops")
    )
    with pytest.raises(pii.PiiKeyError, match="not valid JSON"):
        create_app(settings, run_sweeper=False)


def test_a_data_folder_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(pii.PiiKeyError, match=r"MVNO_PII_KEYS|cannot read"):
        pii.keyring(Settings(data_dir=blocker / "data"))


def test_a_key_ring_never_shows_its_keys() -> None:
    key, index_key = bytes(range(32)), bytes(range(32, 64))
    ring = pii.KeyRing("k_2026", {"k_2026": key, "k_old": bytes(32)}, index_key)
    for shown in (repr(ring), str(ring), f"{ring}", repr([ring])):
        assert "k_2026" in shown
        for secret in (key, index_key):
            assert repr(secret)[2:12] not in shown
            assert secret.hex()[:16] not in shown
