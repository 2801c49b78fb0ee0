# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Typed errors shared by every module of the collection.

Each failure is raised as one of these and turned into a single ``fail_json`` message in
one place (``KmipModule.fail_from``), so the wording of an error never depends on the
module that hit it. Messages must never contain secrets: callers pass option names and
reasons, never values of ``no_log`` options or key material.
"""

from __future__ import annotations

from typing import Any, ClassVar


class KmipOpsError(Exception):
    """Base class: ``str(error)`` is the message shown to the operator."""

    #: short machine-readable kind, returned as ``error_kind`` by the modules
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def details(self) -> dict[str, Any]:
        """Extra, secret-free facts returned next to ``msg`` when a module fails."""
        return {}


class InvalidOptionError(KmipOpsError):
    """An option value that mongod (or the module) would reject, found before any change."""

    kind = "invalid_option"

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}")
        self.option = option
        self.reason = reason

    def details(self) -> dict[str, Any]:
        return {"option": self.option}


class FileWriteError(KmipOpsError):
    """A file could not be written (read-only directory, immutable file, full disk): a refusal that
    names the file, the cause and what to do. The file was left as it was."""

    kind = "write_failed"

    _CAUSES: ClassVar[dict[int, str]] = {
        1: "operation not permitted (the file or its directory may be immutable or append-only, chattr +i/+a, "
        "or the file system refuses it)",
        13: "permission denied (this user may not write the file or create files in its directory)",
        28: "no space left on the device",
        30: "read-only file system",
        122: "disk quota exceeded",
    }

    def __init__(self, option: str, path: str, exc: OSError) -> None:
        cause = self._CAUSES.get(exc.errno or 0) or (exc.strerror or type(exc).__name__).lower()
        super().__init__(f"{option}: cannot write {path}: {cause}. The file was not changed")
        self.option = option
        self.path = path
        self.errno = exc.errno

    def details(self) -> dict[str, Any]:
        return {"option": self.option, "path": self.path}


class MissingDependencyError(KmipOpsError):
    """A Python library the module needs is not importable by the interpreter on the host.

    Modules report it with Ansible's own ``missing_required_lib`` wording plus ``HINT``
    (``KmipOpsModule.fail_from``); ``import_traceback`` goes to ``exception`` (shown with -vvv).
    """

    kind = "missing_dependency"
    #: how this collection gets its libraries onto a host
    HINT = (
        "Install it with the kmipops.psmdb.kmip_prereqs role and run the module with "
        "ansible_python_interpreter set to the fact kmipops_python_interpreter"
    )

    def __init__(self, library: str, import_error: str, import_traceback: str | None = None) -> None:
        super().__init__(f"the Python library {library} is required on the managed host: {import_error}. {self.HINT}")
        self.library = library
        self.import_error = import_error
        self.import_traceback = import_traceback


class PeerError(KmipOpsError):
    """Something went wrong with one peer (a KMIP server, a mongod): the message names it, says
    what failed and what to do, as ``<peer_label> <peer>: <what>: <cause>. <advice>``."""

    kind = "peer"
    #: how messages name the kind of peer, and the key of ``details`` that holds its address
    peer_label = "peer"
    peer_key = "peer"
    #: what failed, in the words of the problem (e.g. "TLS verification failed")
    what = "failed"
    #: what the operator should do about it
    advice = ""

    def __init__(self, peer: str, cause: str, advice: str | None = None) -> None:
        self.peer = peer
        self.cause = cause
        if advice is not None:
            self.advice = advice
        text = f"{self.peer_label} {peer}: {self.what}: {cause}"
        if self.advice:
            text += f". {self.advice}"
        super().__init__(text)

    def details(self) -> dict[str, Any]:
        return {self.peer_key: self.peer}


# -- session errors: one server could not be used -------------------------------------------


class KmipServerError(PeerError):
    """Something went wrong with one KMIP server."""

    kind = "kmip_server"
    peer_label = "KMIP server"
    peer_key = "server"
    what = "KMIP session failed"

    @property
    def server(self) -> str:
        return self.peer


class KmipConnectionError(KmipServerError):
    """The session could not be opened (network or TLS); mongod would try the next server."""

    kind = "connection"


class KmipDnsError(KmipConnectionError):
    kind = "dns"
    what = "name resolution failed"
    advice = "Check the server_name entry and the host's DNS or /etc/hosts"


class KmipConnectionRefusedError(KmipConnectionError):
    kind = "connection_refused"
    what = "connection refused"
    advice = "Check that the KMIP server runs and listens on this address and port, and the firewall"


class KmipTimeoutError(KmipConnectionError):
    kind = "timeout"
    what = "timed out"
    advice = (
        "The server did not complete name resolution, TCP connect, TLS handshake and the first KMIP "
        "exchange within connect_timeout_ms; check that this is the KMIP port and that the server answers"
    )


class KmipNetworkError(KmipConnectionError):
    kind = "network"
    what = "network error"
    advice = "Check routing and the firewall between this host and the KMIP server"


class KmipTlsVerifyError(KmipConnectionError):
    """This host refused the server's certificate (chain, host name, validity)."""

    kind = "tls_verify"
    what = "TLS verification of the server certificate failed"

    def __init__(self, server: str, cause: str, advice: str, reason: str) -> None:
        #: machine-readable cause: unknown_ca, hostname_mismatch, expired, not_yet_valid, other
        self.reason = reason
        super().__init__(server, cause, advice)

    def details(self) -> dict[str, Any]:
        return {"server": self.server, "tls_reason": self.reason}


class KmipTlsRejectedError(KmipConnectionError):
    """The server refused this host's TLS handshake, usually because of the client certificate."""

    kind = "tls_rejected"
    what = "the server rejected the TLS handshake"


class KmipNotKmipServerError(KmipConnectionError):
    """The peer does not speak TLS or KMIP (e.g. a plain TCP port)."""

    kind = "not_kmip"
    what = "the peer does not speak KMIP over TLS"
    advice = "Check that port points at the KMIP (TLS) port of the server"


# -- operation errors: the server answered, but not with success ------------------------------


class KmipOperationError(KmipServerError):
    """A KMIP operation returned a failure status."""

    kind = "kmip_operation"
    what = "KMIP operation failed"

    def __init__(
        self,
        server: str,
        operation: str,
        reason: str,
        server_message: str = "",
        advice: str | None = None,
    ) -> None:
        self.operation = operation
        self.reason = reason
        self.server_message = server_message
        cause = f"{operation} returned {reason}"
        if server_message:
            cause += f" ({server_message})"
        super().__init__(server, cause, advice)

    def details(self) -> dict[str, Any]:
        return {"server": self.server, "operation": self.operation, "kmip_reason": self.reason}


class KmipPermissionDeniedError(KmipOperationError):
    kind = "permission_denied"
    advice = (
        "The client certificate may not use this object. On PyKMIP and many other servers only the "
        "identity that registered a key may use it: run the module on the mongod host with mongod's "
        "own client certificate, or grant access in the server's policy"
    )


class KmipItemNotFoundError(KmipOperationError):
    kind = "not_found"
    advice = "Check key_identifier / name, and that the key was registered with this client certificate"


class KmipOperationNotSupportedError(KmipOperationError):
    kind = "not_supported"
    advice = "The server does not offer this operation with this kmip_version"


class KmipProtocolError(KmipServerError):
    """The server's answer could not be understood (wrong KMIP version, truncated message...)."""

    kind = "kmip_protocol"
    what = "unexpected KMIP response"
    advice = "Check kmip_version (PSMDB speaks KMIP 1.0) and the server's KMIP support"


# -- key errors: the key exists but mongod could not use it ----------------------------------


class KmipKeyError(KmipOpsError):
    """A key that exists but cannot be used as a PSMDB master key."""

    kind = "key"

    def __init__(self, server: str, key_identifier: str, problem: str, advice: str) -> None:
        self.server = server
        self.key_identifier = key_identifier
        self.problem = problem
        super().__init__(f"KMIP server {server}: key {key_identifier}: {problem}. {advice}")

    def details(self) -> dict[str, Any]:
        return {"server": self.server, "key_identifier": self.key_identifier}


class KmipWrongKeyTypeError(KmipKeyError):
    """Not a 256-bit AES symmetric key in Raw format."""

    kind = "wrong_key_type"


class KmipKeyStateError(KmipKeyError):
    """The key is not in the state the operation needs (e.g. not Active)."""

    kind = "wrong_key_state"


class KmipAmbiguousNameError(KmipOpsError):
    kind = "ambiguous_name"

    def __init__(self, server: str, name: str, uids: list[str]) -> None:
        self.server = server
        super().__init__(
            f"KMIP server {server}: {len(uids)} objects are named {name!r} ({', '.join(uids)}); "
            "give key_identifier to say which one"
        )


# -- all servers failed ---------------------------------------------------------------------


class KmipAllServersFailedError(KmipOpsError):
    """No server in server_name could be used in any pass, as mongod would report at start."""

    kind = "all_servers_failed"

    def __init__(self, errors: list[KmipServerError], passes: int) -> None:
        self.errors = errors
        self.passes = passes
        # One line per distinct failure: the same server failing the same way on every pass
        # is said once.
        seen: list[str] = []
        for error in errors:
            if str(error) not in seen:
                seen.append(str(error))
        super().__init__(
            f"KMIP sessions failed for all the server hosts ({passes} pass(es) over server_name), "
            "as mongod would fail at start: " + "; ".join(seen)
        )

    def details(self) -> dict[str, Any]:
        return {"attempts": [{"server": e.server, "error_kind": e.kind, "msg": str(e)} for e in self.errors]}


# -- mongod errors: one replica-set member could not be used ----------------------------------


class MongodError(PeerError):
    """Something went wrong with one mongod (a replica-set member)."""

    kind = "mongod"
    peer_label = "mongod"
    peer_key = "member"
    what = "mongod failed"

    @property
    def member(self) -> str:
        return self.peer


class MongodUnreachableError(MongodError):
    """No connection (refused, timed out, TLS refused): the member may be down or the address wrong."""

    kind = "unreachable"
    what = "unreachable"
    advice = "Check that mongod runs there and the host, port and TLS options of the connection"


class MongodAuthError(MongodError):
    kind = "auth_failed"
    what = "authentication failed"
    advice = "Check the user, its password and the database it is defined in"


class MongodCommandError(MongodError):
    """mongod answered a command with an error."""

    kind = "command_failed"

    def __init__(self, member: str, command: str, message: str, code: int | None = None, code_name: str = "") -> None:
        self.command = command
        self.code = code
        self.code_name = code_name
        self.what = f"{command} failed"
        label = f" ({code_name or 'code'} {code})" if code is not None else ""
        super().__init__(member, f"{message}{label}")

    def details(self) -> dict[str, Any]:
        return {**super().details(), "command": self.command, "code": self.code, "code_name": self.code_name}


class MongodNotReplicaSetError(MongodError):
    kind = "not_replica_set"
    what = "not a replica set member"
    advice = "This mongod runs without a replica set configuration (standalone, or the set is not initiated yet)"
