"""crypto.py against published and pinned vectors (tests/vectors/crypto.json)."""

import json
from pathlib import Path

import pytest

from dotmage import crypto

VECTORS = json.loads((Path(__file__).parent / "vectors" / "crypto.json").read_text())


@pytest.mark.parametrize("case", VECTORS["aes_gcm"], ids=lambda c: c["source"][:30])
def test_aes_gcm_matches_the_published_vector(case):
    sealed = crypto.seal(
        bytes.fromhex(case["key"]),
        bytes.fromhex(case["plaintext"]),
        bytes.fromhex(case["aad"]),
        nonce=bytes.fromhex(case["nonce"]),
    )
    raw = crypto.b64decode(sealed)
    assert raw[0] == crypto.SEAL_VERSION
    assert raw[1:13].hex() == case["nonce"]
    assert raw[13:-16].hex() == case["ciphertext"]
    assert raw[-16:].hex() == case["tag"]


@pytest.mark.parametrize("case", VECTORS["hkdf_sha256"], ids=lambda c: c["source"][:30])
def test_hkdf_matches_rfc_5869(case):
    okm = crypto.hkdf(bytes.fromhex(case["ikm"]), case["info"], case["length"])
    assert okm.hex() == case["okm"]


def test_master_and_enrollment_key_derivations_are_pinned():
    pinned = VECTORS["derivations"]
    kek, auth = crypto.split_master_key(bytes.fromhex(pinned["master_key"]))
    assert (kek.hex(), auth.hex()) == (pinned["kek"], pinned["auth"])
    seal_key, proof = crypto.enrollment_keys(bytes.fromhex(pinned["enrollment_secret"]))
    assert (seal_key.hex(), proof.hex()) == (
        pinned["enroll_kek"],
        pinned["enroll_auth"],
    )


@pytest.mark.parametrize("case", VECTORS["argon2id"], ids=lambda c: str(c["time_cost"]))
def test_argon2id_master_key_is_pinned(case):
    params = crypto.KdfParams(
        case["time_cost"], case["memory_kib"], case["parallelism"]
    )
    master_key = crypto.derive_master_key(
        case["password"], bytes.fromhex(case["salt"]), params
    )
    assert master_key.hex() == case["master_key"]


@pytest.mark.parametrize("case", VECTORS["sealed"], ids=lambda c: c["aad_text"][:30])
def test_sealed_values_have_the_documented_format(case):
    key, aad = bytes.fromhex(case["key"]), bytes.fromhex(case["aad"])
    again = crypto.seal(
        key, bytes.fromhex(case["plaintext"]), aad, nonce=bytes.fromhex(case["nonce"])
    )
    assert again == case["sealed"]
    assert crypto.unseal(key, case["sealed"], aad).hex() == case["plaintext"]


def test_unseal_with_another_aad_fails_with_the_one_opaque_error():
    key = crypto.new_key()
    sealed = crypto.seal(key, b"value", crypto.aad_revision("app", "dev"))
    with pytest.raises(crypto.DecryptError):
        crypto.unseal(key, sealed, crypto.aad_revision("app", "prod"))


@pytest.mark.parametrize("position", [0, 1, 13, -1])
def test_any_flipped_byte_fails_authentication(position):
    key = crypto.new_key()
    raw = bytearray(crypto.b64decode(crypto.seal(key, b"secret", b"aad")))
    raw[position] ^= 0x01
    with pytest.raises(crypto.DecryptError):
        crypto.unseal(key, crypto.b64encode(bytes(raw)), b"aad")


@pytest.mark.parametrize("garbage", ["", "!!!", "AQ", crypto.b64encode(b"\x02" * 40)])
def test_garbage_is_a_decrypt_error_not_a_crash(garbage):
    with pytest.raises(crypto.DecryptError):
        crypto.unseal(crypto.new_key(), garbage, b"aad")


def test_every_seal_uses_a_fresh_nonce():
    key = crypto.new_key()
    assert crypto.seal(key, b"same", b"aad") != crypto.seal(key, b"same", b"aad")


def test_the_kdf_floor_is_rfc_9106_second_recommendation():
    assert crypto.KdfParams(3, 65536, 4) == crypto.KDF_FLOOR
    assert not crypto.KDF_INSECURE.at_least(crypto.KDF_FLOOR)
    assert not crypto.KdfParams(3, 65536, 1).at_least(crypto.KDF_FLOOR)


def test_keys_of_the_wrong_size_are_refused():
    with pytest.raises(ValueError):
        crypto.seal(b"short", b"x", b"aad")
