"""SCRAM-SHA-256 (RFC 5802/7677) as mongod speaks it over saslStart/saslContinue: server and client sides."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from dataclasses import dataclass
from typing import Any

MECHANISM = "SCRAM-SHA-256"
# Accepted by name only (see commands.cmd_sasl_start): no SCRAM-SHA-1 credentials are kept.
LEGACY_MECHANISM = "SCRAM-SHA-1"
DEFAULT_ITERATIONS = 15000  # mongod's scramSHA256IterationCount default
_SALT_BYTES = 28  # what mongod generates for SCRAM-SHA-256


_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,
)


class ScramError(Exception):
    """The exchange failed; the message is safe to log (it never holds a password or proof)."""


@dataclass(frozen=True)
class ScramCredentials:
    iteration_count: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def to_document(self) -> dict[str, Any]:
        return {
            "iterationCount": self.iteration_count,
            "salt": base64.b64encode(self.salt).decode(),
            "storedKey": base64.b64encode(self.stored_key).decode(),
            "serverKey": base64.b64encode(self.server_key).decode(),
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ScramCredentials:
        return cls(
            int(doc["iterationCount"]),
            base64.b64decode(doc["salt"]),
            base64.b64decode(doc["storedKey"]),
            base64.b64decode(doc["serverKey"]),
        )


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep for stored strings, as drivers apply it to SCRAM-SHA-256 passwords.

    Written here rather than imported from pymongo so the server does not import the whole driver.
    """
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c))
    normalized = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    if not normalized:
        return normalized
    prohibited: tuple[Any, ...] = _PROHIBITED
    if stringprep.in_table_d1(normalized[0]):
        if not stringprep.in_table_d1(normalized[-1]):
            raise ValueError("SASLprep: failed bidirectional check")
        prohibited = (*prohibited, stringprep.in_table_d2)
    else:
        prohibited = (*prohibited, stringprep.in_table_d1)
    if any(check(c) for c in normalized for check in prohibited):
        raise ValueError("SASLprep: failed prohibited character check")
    return normalized


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, iterations)


def derive_credentials(
    password: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> ScramCredentials:
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    salted = _salted_password(password, salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return ScramCredentials(iterations, salt, hashlib.sha256(client_key).digest(), _hmac(salted, b"Server Key"))


def _parse_attributes(message: str) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for part in message.split(","):
        if len(part) >= 2 and part[1] == "=":
            attributes[part[0]] = part[2:]
    return attributes


def decode_username(encoded: str) -> str:
    return encoded.replace("=2C", ",").replace("=3D", "=")


def encode_username(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


class ScramServerConversation:
    """One saslStart/saslContinue exchange on the server side."""

    def __init__(self, client_first: bytes) -> None:
        text = client_first.decode()
        if not text.startswith(("n,", "y,")):
            raise ScramError("channel binding is not supported")
        self._client_first_bare = text.split(",", 2)[2]
        attributes = _parse_attributes(self._client_first_bare)
        if "n" not in attributes or "r" not in attributes:
            raise ScramError("malformed SCRAM client-first message")
        self.username = decode_username(attributes["n"])
        self._nonce = attributes["r"] + base64.b64encode(secrets.token_bytes(24)).decode()
        self._server_first = ""
        self._credentials: ScramCredentials | None = None

    def server_first(self, credentials: ScramCredentials) -> bytes:
        self._credentials = credentials
        salt = base64.b64encode(credentials.salt).decode()
        self._server_first = f"r={self._nonce},s={salt},i={credentials.iteration_count}"
        return self._server_first.encode()

    def server_final(self, client_final: bytes) -> bytes:
        """Checks the client's proof; returns the server signature message."""
        if self._credentials is None:
            raise ScramError("SCRAM conversation out of order")
        text = client_final.decode()
        attributes = _parse_attributes(text)
        if attributes.get("r") != self._nonce:
            raise ScramError("SCRAM nonce mismatch")
        without_proof = text.rsplit(",p=", 1)[0]
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        client_signature = _hmac(self._credentials.stored_key, auth_message)
        proof = base64.b64decode(attributes.get("p", ""))
        if len(proof) != len(client_signature):
            raise ScramError("SCRAM proof has the wrong length")
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), self._credentials.stored_key):
            raise ScramError("SCRAM proof does not match")
        server_signature = base64.b64encode(_hmac(self._credentials.server_key, auth_message)).decode()
        return f"v={server_signature}".encode()


class ScramClientConversation:
    """The client side, for member-to-member connections (the server's own peer client)."""

    def __init__(self, username: str, password: str) -> None:
        self._password = password
        self._nonce = base64.b64encode(secrets.token_bytes(24)).decode()
        self._client_first_bare = f"n={encode_username(username)},r={self._nonce}"
        self._server_signature = b""

    def client_first(self) -> bytes:
        return f"n,,{self._client_first_bare}".encode()

    def client_final(self, server_first: bytes) -> bytes:
        text = server_first.decode()
        attributes = _parse_attributes(text)
        if not attributes.get("r", "").startswith(self._nonce):
            raise ScramError("server nonce does not extend the client nonce")
        salted = _salted_password(self._password, base64.b64decode(attributes["s"]), int(attributes["i"]))
        client_key = _hmac(salted, b"Client Key")
        without_proof = f"c=biws,r={attributes['r']}"
        auth_message = f"{self._client_first_bare},{text},{without_proof}".encode()
        signature = _hmac(hashlib.sha256(client_key).digest(), auth_message)
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True))).decode()
        self._server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        return f"{without_proof},p={proof}".encode()

    def verify_server_final(self, server_final: bytes) -> None:
        attributes = _parse_attributes(server_final.decode())
        if not hmac.compare_digest(base64.b64decode(attributes.get("v", "")), self._server_signature):
            raise ScramError("server signature mismatch")
