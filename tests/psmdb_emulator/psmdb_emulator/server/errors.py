"""Command errors with mongod's numeric codes, code names and error labels (src/mongo/base/error_codes.yml,
src/mongo/db/error_labels.cpp)."""

from __future__ import annotations

from typing import Any

# Every code the emulator answers with, named as in MongoDB 7.0's error_codes.yml.
CODE_NAMES: dict[int, str] = {
    1: "InternalError",
    2: "BadValue",
    6: "HostUnreachable",
    8: "UnknownError",
    9: "FailedToParse",
    11: "UserNotFound",
    13: "Unauthorized",
    14: "TypeMismatch",
    17: "ProtocolError",
    18: "AuthenticationFailed",
    20: "IllegalOperation",
    23: "AlreadyInitialized",
    26: "NamespaceNotFound",
    31: "RoleNotFound",
    43: "CursorNotFound",
    47: "NoMatchingDocument",
    48: "NamespaceExists",
    50: "MaxTimeMSExpired",
    51: "UserAlreadyExists",
    59: "CommandNotFound",
    64: "WriteConcernFailed",
    66: "ImmutableField",
    72: "InvalidOptions",
    73: "InvalidNamespace",
    74: "NodeNotFound",
    76: "NoReplicationEnabled",
    79: "UnknownReplWriteConcern",
    83: "RemoteResultsUnavailable",
    89: "NetworkTimeout",
    90: "CallbackCanceled",
    91: "ShutdownInProgress",
    93: "InvalidReplicaSetConfig",
    94: "NotYetInitialized",
    95: "NotSecondary",
    96: "OperationFailed",
    100: "UnsatisfiableWriteConcern",
    103: "NewReplicaSetConfigurationIncompatible",
    113: "InitialSyncFailure",
    114: "InitialSyncOplogSourceMissing",
    117: "ConflictingOperationInProgress",
    120: "OplogStartMissing",
    125: "CommandFailed",
    127: "UnrecoverableRollbackError",
    152: "OplogOutOfOrder",
    189: "PrimarySteppedDown",
    204: "TimeProofMismatch",
    211: "KeyNotFound",
    225: "TransactionTooOld",
    262: "ExceededTimeLimit",
    315: "TooStaleToSyncFromSource",
    334: "MechanismUnavailable",
    9001: "SocketException",
    10107: "NotWritablePrimary",
    11000: "DuplicateKey",
    11600: "InterruptedAtShutdown",
    11602: "InterruptedDueToReplStateChange",
    13435: "NotPrimaryNoSecondaryOk",
    13436: "NotPrimaryOrSecondary",
    40414: "IDLFailedToParse",
    40415: "IDLUnknownField",
}
# error_codes.yml category RetriableError (the codes the emulator can produce).
RETRIABLE_CODES = frozenset({6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
SHUTDOWN_CODES = frozenset({91, 11600})  # category ShutdownError
# category NotPrimaryError: these and the shutdown codes carry the server's topologyVersion in the reply.
NOT_PRIMARY_CODES = frozenset({189, 10107, 11602, 13435, 13436})


def code_name(code: int) -> str:
    """mongod names codes outside error_codes.yml (uassert locations) ``Location<code>``."""
    return CODE_NAMES.get(code, f"Location{code}")


class CommandError(Exception):
    """Turns into ``{ok: 0, errmsg, code, codeName}`` in the reply."""

    def __init__(self, code: int, errmsg: str, **extra: Any) -> None:
        super().__init__(errmsg)
        self.code = code
        self.errmsg = errmsg
        self.extra = extra

    def to_reply(self) -> dict[str, Any]:
        reply: dict[str, Any] = {"ok": 0.0, "errmsg": self.errmsg, "code": self.code, "codeName": code_name(self.code)}
        reply.update(self.extra)
        return reply


def bad_value(message: str) -> CommandError:
    return CommandError(2, message)


def retryable_write_label(code: int | None, wc_code: int | None) -> bool:
    """ErrorLabelBuilder::isRetryableWriteError for a retryable write (txnNumber, no autocommit): a
    RetriableError code, as the command's error or as its writeConcernError."""
    return any(candidate in RETRIABLE_CODES for candidate in (code, wc_code) if candidate is not None)
