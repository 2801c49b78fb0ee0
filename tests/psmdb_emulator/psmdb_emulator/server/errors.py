"""Command errors with mongod's numeric codes and code names (src/mongo/base/error_codes.yml)."""

from __future__ import annotations

from typing import Any

CODE_NAMES: dict[int, str] = {
    2: "BadValue",
    8: "UnknownError",
    11: "UserNotFound",
    13: "Unauthorized",
    14: "TypeMismatch",
    18: "AuthenticationFailed",
    26: "NamespaceNotFound",
    43: "CursorNotFound",
    48: "NamespaceExists",
    50: "MaxTimeMSExpired",
    51: "UserAlreadyExists",
    59: "CommandNotFound",
    64: "WriteConcernFailed",
    74: "NodeNotFound",
    76: "NoReplicationEnabled",
    93: "InvalidReplicaSetConfig",
    94: "NotYetInitialized",
    95: "NotSecondary",
    103: "NewReplicaSetConfigurationIncompatible",
    66: "ImmutableField",
    189: "PrimarySteppedDown",
    225: "TransactionTooOld",
    326: "OplogStartMissing",
    262: "ExceededTimeLimit",
    11000: "DuplicateKey",
    10107: "NotWritablePrimary",
    11600: "InterruptedAtShutdown",
    11602: "InterruptedDueToReplStateChange",
    13435: "NotPrimaryNoSecondaryOk",
    9: "FailedToParse",
    20: "IllegalOperation",
    23: "AlreadyInitialized",
}


class CommandError(Exception):
    """Turns into ``{ok: 0, errmsg, code, codeName}`` in the reply."""

    def __init__(self, code: int, errmsg: str, **extra: Any) -> None:
        super().__init__(errmsg)
        self.code = code
        self.errmsg = errmsg
        self.extra = extra

    def to_reply(self) -> dict[str, Any]:
        reply: dict[str, Any] = {"ok": 0.0, "errmsg": self.errmsg, "code": self.code}
        reply["codeName"] = CODE_NAMES.get(self.code, "UnknownError")
        reply.update(self.extra)
        return reply


def bad_value(message: str) -> CommandError:
    return CommandError(2, message)
