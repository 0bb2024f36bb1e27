"""Every cryptographic primitive dotMage uses, and nothing else.

AES-256-GCM seals values in the format of DESIGN.md section 2:
``0x01 | nonce (12) | ciphertext | tag (16)``, sent as unpadded base64url.
HKDF-SHA256 splits the master key; Argon2id derives it from the password.
Every failed decryption raises the one opaque ``DecryptError``.
"""

import base64
import hashlib
import hmac
import os
import sys
from dataclasses import dataclass


def _import_pycryptodome():
    # pycryptodome binds its C code through cffi whenever cffi can be imported,
    # and cffi's parser costs ~45 ms at start; ctypes binds the same code in
    # ~5 ms. A None entry in sys.modules makes `import cffi` fail just for this
    # import, so `dmage exec` stays fast; argon2 still gets the real cffi later.
    blocked = "cffi" not in sys.modules
    if blocked:
        sys.modules["cffi"] = None
    try:
        from Crypto.Cipher import AES
    finally:
        if blocked:
            del sys.modules["cffi"]
    return AES


AES = _import_pycryptodome()

SEAL_VERSION = 1
KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
SALT_SIZE = 16


class DecryptError(Exception):
    """A sealed value failed authentication: wrong key, wrong AAD or tampered."""


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost parameters; memory is in KiB, as RFC 9106 counts it."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4

    def at_least(self, floor: "KdfParams") -> bool:
        return (
            self.time_cost >= floor.time_cost
            and self.memory_kib >= floor.memory_kib
            and self.parallelism >= floor.parallelism
        )


# RFC 9106, section 4, second recommended option.
KDF_FLOOR = KdfParams()
# Only for tests, behind DOTMAGE_INSECURE_FAST_KDF: never a default.
KDF_INSECURE = KdfParams(time_cost=1, memory_kib=1024, parallelism=1)


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64url text")
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except ValueError as error:
        raise ValueError("invalid base64url text") from error


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def new_key() -> bytes:
    return random_bytes(KEY_SIZE)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def same(a: bytes | str, b: bytes | str) -> bool:
    """Constant-time equality for secrets, hashes and proofs."""
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)


def hkdf(key: bytes, info: str, size: int = KEY_SIZE) -> bytes:
    """HKDF-SHA256 (RFC 5869) with an empty salt.

    Written out on hmac rather than taken from Crypto.Protocol.KDF, whose
    import costs ~20 ms on every start; tests/vectors/crypto.json pins it.
    """
    if not isinstance(key, bytes) or not key:
        raise ValueError("HKDF needs key material")
    if not 0 < size <= 255 * 32:
        raise ValueError("HKDF output size out of range")
    pseudo_random_key = hmac.new(bytes(32), key, hashlib.sha256).digest()
    output, block, counter = b"", b"", 1
    while len(output) < size:
        message = block + info.encode() + bytes([counter])
        block = hmac.new(pseudo_random_key, message, hashlib.sha256).digest()
        output += block
        counter += 1
    return output[:size]


def derive_master_key(password: str, salt: bytes, params: KdfParams) -> bytes:
    """Argon2id(password, salt) -> the 32-byte master key."""
    from argon2.low_level import Type, hash_secret_raw

    if len(salt) < SALT_SIZE:
        raise ValueError("the KDF salt must be at least 16 bytes")
    return hash_secret_raw(
        password.encode("utf-8"),
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=KEY_SIZE,
        type=Type.ID,
    )


def split_master_key(master_key: bytes) -> tuple[bytes, bytes]:
    """MK -> (KEK that seals the account key, AUTH that proves the password)."""
    return hkdf(master_key, "dotmage/kek"), hkdf(master_key, "dotmage/auth")


def seal(key: bytes, plaintext: bytes, aad: bytes, nonce: bytes | None = None) -> str:
    _check_key(key)
    nonce = random_bytes(NONCE_SIZE) if nonce is None else nonce
    if len(nonce) != NONCE_SIZE:
        raise ValueError("the nonce must be 12 bytes")
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
    cipher.update(aad)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    return b64encode(bytes([SEAL_VERSION]) + nonce + ciphertext + tag)


def unseal(key: bytes, sealed: str, aad: bytes) -> bytes:
    """Open a sealed value; any failure at all is one DecryptError."""
    _check_key(key)
    try:
        raw = b64decode(sealed)
    except ValueError as error:
        raise DecryptError("not a sealed value") from error
    if len(raw) < 1 + NONCE_SIZE + TAG_SIZE or raw[0] != SEAL_VERSION:
        raise DecryptError("not a sealed value")

    nonce = raw[1 : 1 + NONCE_SIZE]
    ciphertext, tag = raw[1 + NONCE_SIZE : -TAG_SIZE], raw[-TAG_SIZE:]
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
    cipher.update(aad)
    try:
        return cipher.decrypt_and_verify(ciphertext, tag)
    except ValueError as error:
        raise DecryptError("authentication failed") from error


def aad_account_key() -> bytes:
    return b"dotmage/account-key"


def aad_env_key(app: str, env: str) -> bytes:
    return _aad("dotmage/env-key", app, env)


def aad_revision(app: str, env: str) -> bytes:
    return _aad("dotmage/revision", app, env)


def aad_enroll(token_id: str) -> bytes:
    return _aad("dotmage/enroll", token_id)


def enrollment_keys(secret: bytes) -> tuple[bytes, bytes]:
    """Enrollment secret T -> (key that seals the account key, proof)."""
    return hkdf(secret, "dotmage/enroll-kek"), hkdf(secret, "dotmage/enroll-auth")


def _aad(*fields: str) -> bytes:
    return "\0".join(fields).encode("utf-8")


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        raise ValueError("keys are 32 bytes")
