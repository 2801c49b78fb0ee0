# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The KMIP client every module uses: mongod's server selection on top of PyKMIP.

``KmipClient.session`` tries the servers of ``server_name`` in order, ``connect_retries``
extra passes over the whole list, each attempt bounded by ``connect_timeout_ms`` from name
resolution to the end of the first KMIP exchange (mongod's semantics). The TLS socket is built
by ``_kmip.transport`` and handed to PyKMIP's ``ProxyKmipClient``, whose message encoding is
used for every operation. One session serves a whole module run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import PYKMIP
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    InvalidOptionError,
    KmipAllServersFailedError,
    KmipConnectionError,
    KmipItemNotFoundError,
    KmipOperationError,
    KmipOperationNotSupportedError,
    KmipOpsError,
    KmipPermissionDeniedError,
    KmipProtocolError,
    KmipServerError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.settings import (
    KMIP_VERSIONS,
    KmipSettings,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.transport import (
    ConnectInfo,
    Deadline,
    DeadlineSocket,
    Endpoint,
    TlsSettings,
    classify,
    open_tls,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._tls.certificates import (
    ClientIdentity,
    load_ca_file,
    load_client_identity,
)

with PYKMIP.importing():
    from kmip.core import enums
    from kmip.core.messages import messages, payloads
    from kmip.core.messages.contents import Operation
    from kmip.pie import client as pie_client
    from kmip.pie import exceptions as pie_exceptions
    from kmip.pie import objects as pie_objects
    from kmip.services.kmip_protocol import KMIPProtocol

T = TypeVar("T")

DEFAULT_KMIP_VERSION = "1.0"  # PSMDB speaks KMIP 1.0 only
#: The operations PSMDB sends (kmip_exchange.cpp), as named by Query.
PSMDB_OPERATIONS = ("Register", "Activate", "Get", "Get Attributes")


def require_pykmip() -> None:
    PYKMIP.require()
    # PyKMIP logs connection errors and, at DEBUG, raw messages: keep all of that out of the
    # module's output; errors reach the operator through the typed errors only.
    kmip_logger = logging.getLogger("kmip")
    kmip_logger.addHandler(logging.NullHandler())
    kmip_logger.propagate = False
    kmip_logger.setLevel(logging.CRITICAL)


def kmip_version_enum(version: str) -> Any:
    if version not in KMIP_VERSIONS:
        raise InvalidOptionError("kmip_version", f"must be one of {', '.join(KMIP_VERSIONS)}, got {version!r}")
    return getattr(enums.KMIPVersion, "KMIP_" + version.replace(".", "_"))


_ACRONYMS = {"AES", "DES", "RSA", "DSA", "ECDSA", "HMAC", "SHA", "PKCS", "X509", "PGP", "EC", "ECDH", "MAC"}


def enum_title(value: Any) -> str:
    """``CryptographicAlgorithm.AES`` -> ``AES``, ``Operation.GET_ATTRIBUTES`` -> ``Get Attributes``."""
    value = getattr(value, "value", value) if not hasattr(value, "name") else value
    name = getattr(value, "name", str(value))
    return " ".join(part if part in _ACRONYMS else part.capitalize() for part in name.split("_"))


@dataclasses.dataclass
class KeyMaterialFacts:
    """What Get returned, as mongod checks it; the key bytes themselves are not kept."""

    unique_identifier: str | None
    object_type: str
    key_format_type: str | None
    algorithm: str | None
    length: int | None
    material_bytes: int | None
    wrapped: bool


class KmipSession:
    """One TLS session with one KMIP server; every call maps failures to typed errors."""

    def __init__(
        self, endpoint: Endpoint, sock: DeadlineSocket, kmip_version: str, timeout_ms: int, info: ConnectInfo
    ) -> None:
        self.endpoint = endpoint
        self.info = info
        self.kmip_version = kmip_version
        self._sock = sock
        self._timeout_ms = timeout_ms
        self._first_exchange = True
        self._client = pie_client.ProxyKmipClient(config_file=os.devnull, kmip_version=kmip_version_enum(kmip_version))
        proxy = self._client.proxy
        proxy.socket = sock
        proxy.protocol = KMIPProtocol(sock)
        self._client._is_open = True  # the socket is open: PyKMIP's own open() is not used
        #: operations sent, in order, for tests and for the operator's audit trail
        self.operations: list[str] = []

    @property
    def server(self) -> str:
        return self.endpoint.label

    def close(self) -> None:
        self._client._is_open = False
        self._client.proxy.socket = None
        self._sock.close()

    # -- one exchange ---------------------------------------------------------------------

    def call(self, operation: str, func: Callable[[], T]) -> T:
        """Run one request/response under mongod's timer; raise typed errors."""
        if not self._first_exchange:
            self._sock.deadline.rearm()
        phase = "exchange" if self._first_exchange else "operation"
        self.operations.append(operation)
        try:
            result = func()
        except pie_exceptions.KmipOperationFailure as failure:
            raise self._operation_error(operation, failure.reason, failure.message) from None
        except (OSError, EOFError, ssl.SSLError) as exc:
            raise classify(exc, self.server, phase, self._timeout_ms) from None
        except KmipOpsError:
            raise
        except Exception as exc:
            # Decoding failures of PyKMIP (wrong version, truncated TTLV...). The exception text
            # describes structure, never values, so it is safe to show.
            raise KmipProtocolError(self.server, f"{operation}: {type(exc).__name__}: {exc}") from None
        finally:
            self._first_exchange = False
        return result

    def _check_status(self, operation: str, result: Any) -> Any:
        if result.result_status.value != enums.ResultStatus.SUCCESS:
            reason = result.result_reason.value if result.result_reason else None
            message = result.result_message.value if result.result_message else ""
            raise pie_exceptions.KmipOperationFailure(result.result_status.value, reason, message)
        return result

    def _operation_error(self, operation: str, reason: Any, message: str | None) -> KmipOperationError:
        name = enum_title(reason) if reason is not None else "failure"
        error_class = {
            enums.ResultReason.PERMISSION_DENIED: KmipPermissionDeniedError,
            enums.ResultReason.ITEM_NOT_FOUND: KmipItemNotFoundError,
            enums.ResultReason.OPERATION_NOT_SUPPORTED: KmipOperationNotSupportedError,
        }.get(reason, KmipOperationError)
        return error_class(self.server, operation, name, message or "")

    # -- operations -----------------------------------------------------------------------

    def _exchange(self, operation: str, request_payload: Any) -> Any:
        """Send one batch item and return its response payload (status checked).

        Used for Discover Versions and Query, whose PyKMIP helpers crash on a failure
        status without payload instead of reporting it.
        """
        proxy = self._client.proxy
        operation_enum = getattr(enums.Operation, operation.upper().replace(" ", "_"))
        item = messages.RequestBatchItem(operation=Operation(operation_enum), request_payload=request_payload)
        response = proxy._send_and_receive_message(proxy._build_request_message(None, [item]))
        batch_item = response.batch_items[0]
        self._check_status(operation, batch_item)
        return batch_item.response_payload

    def discover_versions(self) -> list[str]:
        def run() -> list[str]:
            payload = self._exchange("Discover Versions", payloads.DiscoverVersionsRequestPayload())
            return [f"{v.major}.{v.minor}" for v in (payload.protocol_versions if payload else None) or []]

        return self.call("Discover Versions", run)

    def query_operations(self) -> list[str]:
        def run() -> list[str]:
            request = payloads.QueryRequestPayload(query_functions=[enums.QueryFunction.QUERY_OPERATIONS])
            payload = self._exchange("Query", request)
            return [enum_title(op) for op in (payload.operations if payload else None) or []]

        return self.call("Query", run)

    def get_attributes(self, uid: str, names: list[str]) -> list[Any]:
        """The raw PyKMIP attributes (parse them with ``_kmip.keys.parse_attributes``)."""

        def run() -> list[Any]:
            _uid, attributes = self._client.get_attributes(uid, names)
            return list(attributes)

        return self.call("Get Attributes", run)

    def get_key_facts(self, uid: str) -> KeyMaterialFacts:
        """Get, as mongod does at start, keeping only the facts mongod checks."""

        def run() -> KeyMaterialFacts:
            result = self._check_status("Get", self._client.proxy.get(uid))
            secret = result.secret
            block = getattr(secret, "key_block", None)
            facts = KeyMaterialFacts(
                unique_identifier=result.uuid.value if hasattr(result.uuid, "value") else result.uuid,
                object_type=enum_title(result.object_type),
                key_format_type=None,
                algorithm=None,
                length=None,
                material_bytes=None,
                wrapped=False,
            )
            if block is not None:
                facts.key_format_type = enum_title(block.key_format_type.value)
                if block.cryptographic_algorithm is not None:
                    facts.algorithm = enum_title(block.cryptographic_algorithm.value)
                if block.cryptographic_length is not None:
                    facts.length = block.cryptographic_length.value
                facts.wrapped = block.key_wrapping_data is not None
                material = getattr(getattr(block.key_value, "key_material", None), "value", None)
                facts.material_bytes = len(material) if isinstance(material, bytes | bytearray) else None
            # Drop every reference to the key bytes before returning.
            del secret, block, result
            return facts

        return self.call("Get", run)

    def locate_by_name(self, name: str) -> list[str]:
        def run() -> list[str]:
            factory = self._client.attribute_factory
            attribute = factory.create_attribute(enums.AttributeType.NAME, name)
            return list(self._client.locate(attributes=[attribute]))

        return self.call("Locate", run)

    def register_master_key(self, name: str | None) -> str:
        """Register a new AES-256 key generated here, as PSMDB does (plus the Name)."""

        def run() -> str:
            masks = [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]
            key = pie_objects.SymmetricKey(
                enums.CryptographicAlgorithm.AES, 256, os.urandom(32), masks=masks, name=name or "Symmetric Key"
            )
            if name is None:
                key.names = []
            try:
                return str(self._client.register(key))
            finally:
                del key

        return self.call("Register", run)

    def activate(self, uid: str) -> None:
        self.call("Activate", lambda: self._client.activate(uid))

    def revoke(self, uid: str) -> None:
        self.call("Revoke", lambda: self._client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid))

    def destroy(self, uid: str) -> None:
        self.call("Destroy", lambda: self._client.destroy(uid))


class KmipClient:
    """Opens sessions exactly as mongod would, from validated settings."""

    def __init__(
        self,
        settings: KmipSettings,
        kmip_version: str = DEFAULT_KMIP_VERSION,
        connector: Callable[..., DeadlineSocket] = open_tls,
    ) -> None:
        require_pykmip()
        settings.validate(require_connection=True)
        kmip_version_enum(kmip_version)
        # Local files are checked before any connection, against the option that names them.
        if settings.server_ca_file:
            load_ca_file("server_ca_file", settings.server_ca_file)
        self.identity: ClientIdentity = load_client_identity(
            settings.client_certificate_file or "", settings.client_certificate_password
        )
        self.settings = settings
        self.kmip_version = kmip_version
        self.endpoints = [Endpoint(host, settings.effective_port) for host in settings.server_name or []]
        self.timeout_ms = settings.effective_connect_timeout_ms
        self.passes = settings.effective_connect_retries + 1
        self._connector = connector
        self._context: ssl.SSLContext | None = None

    @property
    def context(self) -> ssl.SSLContext:
        if self._context is None:
            tls = TlsSettings(
                server_ca_file=self.settings.server_ca_file,
                client_certificate_file=self.settings.client_certificate_file or "",
                client_certificate_password=self.settings.client_certificate_password,
            )
            try:
                self._context = tls.build_context()
            except ssl.SSLError as exc:
                # load_cert_chain/load_verify_locations: say which file, never the password.
                raise InvalidOptionError(
                    "client_certificate_file" if "PEM" in str(exc) or "KEY" in str(exc) else "server_ca_file",
                    f"OpenSSL cannot use it ({exc.reason or exc})",
                ) from None
            except OSError as exc:
                raise InvalidOptionError("client_certificate_file", f"cannot be read ({exc.strerror})") from None
        return self._context

    def open(self, endpoint: Endpoint, info: ConnectInfo | None = None) -> KmipSession:
        """One connection attempt to one server; the first exchange is still under its timer."""
        info = info if info is not None else ConnectInfo()
        context = self.context  # loading CA stores is local work, not part of mongod's timer
        deadline = Deadline(self.timeout_ms / 1000.0)
        try:
            sock = self._connector(endpoint, context, deadline, info)
        except KmipConnectionError:
            raise
        except (OSError, ssl.SSLError, EOFError) as exc:
            raise classify(exc, endpoint.label, info.phase, self.timeout_ms) from None
        return KmipSession(endpoint, sock, self.kmip_version, self.timeout_ms, info)

    def session(self, first: Callable[[KmipSession], T]) -> tuple[KmipSession, T]:
        """mongod's failover: the first server, in order and over the passes, whose session works.

        ``first`` is the first exchange, run under the connection timer; connection-level
        failures (including a KMIP answer that cannot be decoded) move on to the next server,
        while a KMIP error status is a real answer and is raised as is.
        """
        errors: list[KmipServerError] = []
        for _pass in range(self.passes):
            for endpoint in self.endpoints:
                try:
                    session = self.open(endpoint)
                except KmipConnectionError as error:
                    errors.append(error)
                    continue
                try:
                    return session, first(session)
                except (KmipConnectionError, KmipProtocolError) as error:
                    session.close()
                    errors.append(error)
                except BaseException:
                    session.close()
                    raise
        raise KmipAllServersFailedError(errors, self.passes)
