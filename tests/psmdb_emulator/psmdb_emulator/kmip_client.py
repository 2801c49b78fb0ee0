"""PSMDB's KMIP client: KMIP 1.0 TTLV over its own TLS socket, with PSMDB's failover and timers.

What it reproduces (psmdb-kmip.md sections 2 and 6):

- one batch item per request, header with ProtocolVersion 1.0, MaximumResponseSize, TimeStamp;
- Register of a locally generated AES-256 key (Raw, usage mask Encrypt|Decrypt, no Name),
  Activate, GetAttributes("State"), Get with PSMDB's response checks;
- a new TLS 1.2+ connection per operation sequence, peer chain checked against serverCAFile
  plus the system CAs, hostname checked against the serverName entry, SNI only for names,
  the first resolved address only;
- one timer covering resolve + connect + handshake + first exchange, re-armed per exchange;
- failover in serverName order, warning 29117 per failure, 29118 between passes.

PyKMIP supplies the message classes only; sockets, TLS and checks are ours because PyKMIP's
client checks no hostname and has its own timeout semantics.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kmip.core import enums, misc, objects
from kmip.core import primitives as kmip_primitives
from kmip.core import secrets as kmip_secrets
from kmip.core.attributes import CryptographicAlgorithm, CryptographicLength, UniqueIdentifier
from kmip.core.factories.attributes import AttributeFactory
from kmip.core.messages import contents, messages, payloads
from kmip.core.utils import BytearrayStream

from psmdb_emulator.logv2 import Logger
from psmdb_emulator.options import KmipOptions

KEY_BYTES = 32
MAXIMUM_RESPONSE_SIZE = 1_000_000
_TTLV_HEADER = 8
KMIP_VERSION = enums.KMIPVersion.KMIP_1_0

T = TypeVar("T")

# KMIP 1.0 State enumeration as spelled in the specification (used for the keyState attribute)
STATE_NAMES = {
    enums.State.PRE_ACTIVE: "Pre-Active",
    enums.State.ACTIVE: "Active",
    enums.State.DEACTIVATED: "Deactivated",
    enums.State.COMPROMISED: "Compromised",
    enums.State.DESTROYED: "Destroyed",
    enums.State.DESTROYED_COMPROMISED: "Destroyed Compromised",
}


class KmipSessionError(RuntimeError):
    """Any failure inside one session (network, TLS, timeout, KMIP error status): try the next host."""


class KmipUnreachableError(RuntimeError):
    """Every host failed in every pass."""

    def __init__(self) -> None:
        super().__init__("KMIP sessions failed for all the server hosts. No more remaining attempts.")


@dataclass(frozen=True)
class KeyState:
    """Result of GetAttributes(State); ``state`` is None when the key is absent."""

    state: enums.State | None

    @property
    def absent(self) -> bool:
        return self.state is None

    @property
    def active(self) -> bool:
        return self.state == enums.State.ACTIVE

    @property
    def name(self) -> str:
        return "absent" if self.state is None else STATE_NAMES.get(self.state, self.state.name)


def _words(enum_value: Any) -> str:
    return " ".join(part.capitalize() for part in enum_value.name.split("_"))


class KmipSession:
    """One TLS connection to one KMIP server; closed by the caller after its operations."""

    def __init__(self, tls_socket: ssl.SSLSocket, first_deadline: float, timeout_s: float) -> None:
        self._socket = tls_socket
        self._deadline = first_deadline
        self._timeout_s = timeout_s
        self._exchanges = 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.close()

    # -- transport ---------------------------------------------------------------------------

    def _remaining(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise KmipSessionError("KMIP session timed out")
        return remaining

    def _exchange(self, operation: enums.Operation, payload: Any) -> messages.ResponseBatchItem:
        if self._exchanges:  # the first exchange shares the connect timer; later ones get a fresh one
            self._deadline = time.monotonic() + self._timeout_s
        self._exchanges += 1
        header = messages.RequestHeader(
            protocol_version=contents.ProtocolVersion(1, 0),
            maximum_response_size=contents.MaximumResponseSize(MAXIMUM_RESPONSE_SIZE),
            time_stamp=contents.TimeStamp(int(time.time())),
            batch_count=contents.BatchCount(1),
        )
        request = messages.RequestMessage(
            request_header=header,
            batch_items=[messages.RequestBatchItem(operation=contents.Operation(operation), request_payload=payload)],
        )
        stream = BytearrayStream()
        request.write(stream, KMIP_VERSION)
        try:
            self._socket.settimeout(self._remaining())
            self._socket.sendall(bytes(stream.buffer))
            header_bytes = self._receive(_TTLV_HEADER)
            length = struct.unpack("!I", header_bytes[4:8])[0]
            if length > MAXIMUM_RESPONSE_SIZE:
                raise KmipSessionError(f"KMIP response too large ({length} bytes)")
            body = self._receive(length)
        except TimeoutError as exc:
            raise KmipSessionError("KMIP session timed out") from exc
        except ssl.SSLError as exc:
            raise KmipSessionError(f"TLS error: {exc.reason or exc}") from exc
        except OSError as exc:
            raise KmipSessionError(f"KMIP session failed: {exc.strerror or exc}") from exc
        response = messages.ResponseMessage()
        try:
            response.read(BytearrayStream(header_bytes + body), KMIP_VERSION)
        except Exception as exc:
            raise KmipSessionError(f"invalid KMIP response: {type(exc).__name__}") from exc
        if len(response.batch_items) != 1:
            raise KmipSessionError(f"expected one batch item in the response, got {len(response.batch_items)}")
        item: messages.ResponseBatchItem = response.batch_items[0]
        if item.operation is not None and item.operation.value != operation:
            raise KmipSessionError(f"response to {operation.name} carries operation {item.operation.value.name}")
        return item

    def _receive(self, size: int) -> bytes:
        chunks: list[bytes] = []
        received = 0
        while received < size:
            self._socket.settimeout(self._remaining())
            chunk = self._socket.recv(size - received)
            if not chunk:
                raise KmipSessionError("the KMIP server closed the connection")
            chunks.append(chunk)
            received += len(chunk)
        return b"".join(chunks)

    @staticmethod
    def _is_item_not_found(item: messages.ResponseBatchItem) -> bool:
        return (
            item.result_status.value == enums.ResultStatus.OPERATION_FAILED
            and item.result_reason is not None
            and item.result_reason.value == enums.ResultReason.ITEM_NOT_FOUND
        )

    @staticmethod
    def _check_success(item: messages.ResponseBatchItem) -> None:
        if item.result_status.value == enums.ResultStatus.SUCCESS:
            return
        status = item.result_status.value.name.lower().replace("_", " ")
        reason = _words(item.result_reason.value) if item.result_reason is not None else "unknown"
        message = item.result_message.value if item.result_message is not None else ""
        raise KmipSessionError(f"the KMIP server returned the '{status}' status; reason: {reason}; message: {message}")

    # -- operations --------------------------------------------------------------------------

    def execute(self, operation: enums.Operation, payload: Any) -> messages.ResponseBatchItem:
        """Any other operation (tests use it for Revoke/Destroy, which mongod never sends)."""
        item = self._exchange(operation, payload)
        self._check_success(item)
        return item

    def register_symmetric_key(self, key: bytes) -> str:
        payload = build_register_payload(key)
        item = self._exchange(enums.Operation.REGISTER, payload)
        self._check_success(item)
        uid = item.response_payload.unique_identifier if item.response_payload else None
        if not uid:
            raise KmipSessionError("the Register response carries no unique identifier")
        return str(uid)

    def activate(self, uid: str) -> None:
        item = self._exchange(
            enums.Operation.ACTIVATE, payloads.ActivateRequestPayload(unique_identifier=UniqueIdentifier(uid))
        )
        self._check_success(item)
        answered = item.response_payload.unique_identifier if item.response_payload else None
        answered_uid = answered.value if answered is not None and hasattr(answered, "value") else answered
        if answered_uid != uid:
            raise KmipSessionError("the Activate response carries a different unique identifier")

    def get_state(self, uid: str) -> KeyState:
        item = self._exchange(
            enums.Operation.GET_ATTRIBUTES,
            payloads.GetAttributesRequestPayload(unique_identifier=uid, attribute_names=["State"]),
        )
        if self._is_item_not_found(item):
            return KeyState(None)
        self._check_success(item)
        for attribute in item.response_payload.attributes if item.response_payload else []:
            if attribute.attribute_name.value == "State":
                value = attribute.attribute_value
                state = value.value if isinstance(value, kmip_primitives.Enumeration) else value
                return KeyState(enums.State(state))
        raise KmipSessionError("the GetAttributes response carries no State attribute")

    def get_symmetric_key(self, uid: str) -> bytes | None:
        """Get with PSMDB's checks; None when the key is absent (ItemNotFound)."""
        item = self._exchange(enums.Operation.GET, payloads.GetRequestPayload(unique_identifier=uid))
        if self._is_item_not_found(item):
            return None
        self._check_success(item)
        payload = item.response_payload
        if payload is None or payload.object_type != enums.ObjectType.SYMMETRIC_KEY:
            raise KmipSessionError("the Get response does not carry a symmetric key")
        if payload.unique_identifier != uid:
            raise KmipSessionError("the Get response carries a different unique identifier")
        key_block = payload.secret.key_block
        if key_block.key_format_type.value != enums.KeyFormatType.RAW:
            raise KmipSessionError("the key in the Get response is not in the Raw format")
        if key_block.key_wrapping_data is not None:
            raise KmipSessionError("the key in the Get response is wrapped")
        material = key_block.key_value.key_material.value
        if len(material) != KEY_BYTES:
            raise KmipSessionError(f"the key in the Get response has {len(material) * 8} bits, not 256")
        return bytes(material)


def build_register_payload(key: bytes) -> payloads.RegisterRequestPayload:
    """Register as PSMDB sends it: AES-256 SymmetricKey, Raw, usage mask Encrypt|Decrypt, no Name."""
    if len(key) != KEY_BYTES:
        raise ValueError("PSMDB registers 256-bit keys only")
    factory = AttributeFactory()
    template = objects.TemplateAttribute(
        attributes=[
            factory.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_ALGORITHM, enums.CryptographicAlgorithm.AES),
            factory.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_LENGTH, 256),
            factory.create_attribute(
                enums.AttributeType.CRYPTOGRAPHIC_USAGE_MASK,
                [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT],
            ),
        ]
    )
    key_block = objects.KeyBlock(
        key_format_type=misc.KeyFormatType(enums.KeyFormatType.RAW),
        key_value=objects.KeyValue(objects.KeyMaterial(key)),
        cryptographic_algorithm=CryptographicAlgorithm(enums.CryptographicAlgorithm.AES),
        cryptographic_length=CryptographicLength(256),
    )
    return payloads.RegisterRequestPayload(
        object_type=enums.ObjectType.SYMMETRIC_KEY,
        template_attribute=template,
        managed_object=kmip_secrets.SymmetricKey(key_block),
    )


def generate_master_key() -> bytes:
    """mongod generates the 256-bit master key itself and never asks the server to Create one."""
    return secrets.token_bytes(KEY_BYTES)


def _is_ip_address(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            continue
    return False


class KmipConnector:
    """Opens sessions like PSMDB and runs operation sequences with its failover/retry loop."""

    def __init__(self, options: KmipOptions, logger: Logger) -> None:
        self._options = options
        self._logger = logger

    @property
    def hosts(self) -> list[str]:
        return list(self._options.server_name)

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        context.load_default_certs()  # PSMDB loads the system CA stores as well
        try:
            if self._options.server_ca_file:
                context.load_verify_locations(cafile=self._options.server_ca_file)
            if self._options.client_certificate_file:
                context.load_cert_chain(
                    certfile=self._options.client_certificate_file,
                    password=self._options.client_certificate_password or None,
                )
        except (OSError, ssl.SSLError) as exc:
            # the password never reaches the text: only the file names and the library's reason
            raise KmipSessionError(f"cannot load the TLS certificates: {getattr(exc, 'reason', None) or exc}") from exc
        return context

    def open_session(self, host: str) -> KmipSession:
        timeout_s = self._options.connect_timeout_ms / 1000.0
        deadline = time.monotonic() + timeout_s
        try:
            addresses = socket.getaddrinfo(host, self._options.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise KmipSessionError(f"cannot resolve {host}: {exc.strerror}") from exc
        except (UnicodeError, ValueError) as exc:
            raise KmipSessionError(f"invalid host name {host!r}: {exc}") from exc
        if not addresses:
            raise KmipSessionError(f"cannot resolve {host}")
        family, sock_type, proto, _, address = addresses[0]  # PSMDB uses the first address only
        context = self._tls_context()
        raw = socket.socket(family, sock_type, proto)
        try:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KmipSessionError("KMIP session timed out")
            raw.settimeout(remaining)
            raw.connect(address)
            raw.settimeout(max(deadline - time.monotonic(), 0.001))
            # server_hostname drives both SNI (not sent for IP addresses) and the hostname check
            tls_socket = context.wrap_socket(raw, server_hostname=host)
        except TimeoutError as exc:
            raw.close()
            raise KmipSessionError("KMIP session timed out") from exc
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            raise KmipSessionError(f"TLS handshake failed: {exc.verify_message or exc.reason}") from exc
        except ssl.SSLError as exc:
            raw.close()
            raise KmipSessionError(f"TLS handshake failed: {exc.reason or exc}") from exc
        except KmipSessionError:
            raw.close()
            raise
        except (UnicodeError, ValueError) as exc:  # a host name ssl cannot use (e.g. with spaces)
            raw.close()
            raise KmipSessionError(f"invalid host name {host!r}: {exc}") from exc
        except OSError as exc:
            raw.close()
            raise KmipSessionError(f"connect failed: {exc.strerror or exc}") from exc
        return KmipSession(tls_socket, deadline, timeout_s)

    def run(self, operation: Callable[[KmipSession], T]) -> T:
        """PSMDB's retryKmipOperation: each host in order, (connectRetries + 1) passes, no sleep."""
        passes = self._options.connect_retries + 1
        for pass_number in range(passes):
            for host in self._options.server_name:
                server_host = f"{host}:{self._options.port}"
                try:
                    session = self.open_session(host)
                    try:
                        return operation(session)
                    finally:
                        session.close()
                except KmipSessionError as exc:
                    self._logger.log(
                        "W", "STORAGE", 29117, "KMIP session failed", {"serverHost": server_host, "reason": str(exc)}
                    )
            remaining = passes - pass_number - 1
            if remaining > 0:
                self._logger.log(
                    "W",
                    "STORAGE",
                    29118,
                    "KMIP sessions failed for all the server hosts. Trying each host again.",
                    {"remainingAttempCount": remaining},
                )
        raise KmipUnreachableError()
