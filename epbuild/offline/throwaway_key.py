"""The offline example's throwaway signing key: an Ed25519 OpenPGP key derived from a fixed seed and creation
time, so the same key (and fingerprint) comes out on every machine and the example's matrix can pin it.

It is made at set-up as an OpenPGP secret key (RFC 4880 packets; EdDSA as GnuPG writes it, algorithm 22 on
curve Ed25519) that gpg imports and then signs the stand-in repository's Release with. It guards nothing: its
seed is in this file. It only lets the example exercise the same verification a real vendor key goes through.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SEED = hashlib.sha256(b"epbuild offline example: throwaway vendor repository key").digest()
CREATED = 1735689600  # 2025-01-01T00:00:00Z, like the stand-in repositories' commits
USER_ID = b"epbuild offline example vendor repository (throwaway) <vendor@epbuild.invalid>"
ED25519_OID = bytes.fromhex("2b06010401da470f01")  # 1.3.6.1.4.1.11591.15.1
EDDSA, SHA256, POSITIVE_CERTIFICATION = 22, 8, 0x13


def _mpi(data: bytes) -> bytes:
    data = data.lstrip(b"\0")
    bits = (len(data) - 1) * 8 + data[0].bit_length() if data else 0
    return struct.pack(">H", bits) + data


def _packet(tag: int, body: bytes) -> bytes:
    """A new-format packet header (RFC 4880 4.2.2) and its body."""
    n = len(body)
    if n < 192:
        length = bytes([n])
    elif n < 8384:
        length = bytes([((n - 192) >> 8) + 192, (n - 192) & 0xFF])
    else:
        length = b"\xff" + struct.pack(">I", n)
    return bytes([0xC0 | tag]) + length + body


def _subpacket(kind: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, kind]) + data


def _keys() -> tuple[Ed25519PrivateKey, bytes]:
    private = Ed25519PrivateKey.from_private_bytes(SEED)
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    body = struct.pack(">BIB", 4, CREATED, EDDSA) + bytes([len(ED25519_OID)]) + ED25519_OID + _mpi(b"\x40" + public)
    return private, body


def fingerprint() -> str:
    """The key's v4 fingerprint: SHA-1 over 0x99, the public key body's length and the body."""
    _, body = _keys()
    return hashlib.sha1(b"\x99" + struct.pack(">H", len(body)) + body).hexdigest().upper()  # noqa: S324 (v4 spec)


def secret_key() -> bytes:
    """The transferable secret key (unprotected): key packet, user ID and its self-signature."""
    private, public_body = _keys()
    fpr = bytes.fromhex(fingerprint())
    hashed = (_subpacket(2, struct.pack(">I", CREATED)) + _subpacket(27, b"\x03")  # certify + sign
              + _subpacket(33, b"\x04" + fpr))
    head = struct.pack(">BBBBH", 4, POSITIVE_CERTIFICATION, EDDSA, SHA256, len(hashed)) + hashed
    digest = hashlib.sha256(
        b"\x99" + struct.pack(">H", len(public_body)) + public_body
        + b"\xb4" + struct.pack(">I", len(USER_ID)) + USER_ID
        + head + b"\x04\xff" + struct.pack(">I", len(head))
    ).digest()
    signature = private.sign(digest)  # EdDSA signs the digest itself (RFC 4880bis, 5.2.4)
    unhashed = _subpacket(16, fpr[-8:])
    sig_body = head + struct.pack(">H", len(unhashed)) + unhashed + digest[:2] + _mpi(signature[:32]) + _mpi(
        signature[32:])
    secret = _mpi(SEED)
    checksum = struct.pack(">H", sum(secret) & 0xFFFF)
    return (_packet(5, public_body + b"\x00" + secret + checksum) + _packet(13, USER_ID)
            + _packet(2, sig_body))
