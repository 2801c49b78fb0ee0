"""The server parameters (``--setParameter`` / ``setParameter:``) the emulator implements.

Names, types, defaults, bounds and when they may be set are MongoDB 7.0's
(src/mongo/db/repl/replication_coordinator_impl.idl, repl_server_parameters.idl). The core's option
parsing validates them at start-up (a bad value ends the process with exit code 2, like mongod); the
network half reads the typed values and serves getParameter/setParameter with them.

Parameters named ``psmdbEmulator*`` exist only in the emulator (test knobs, README "Test-only switches"):
a real mongod refuses them at start-up ("Unknown --setParameter"), so they never belong in a real
configuration. Their default can also come from an environment variable, so that test images can set
them without touching mongod.conf.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}
READ_PREFERENCE_MODES = ("primary", "primaryPreferred", "secondary", "secondaryPreferred", "nearest")
ParameterValue = int | bool | str


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    kind: type  # int, bool or str
    default: ParameterValue
    minimum: int | None = None  # inclusive ("gte"); an IDL "gt: 0" is minimum 1
    maximum: int | None = None  # inclusive ("lte")
    runtime: bool = True  # set_at includes runtime
    choices: tuple[str, ...] = ()  # allowed values of a string parameter ("" always allowed: the default)
    env: str | None = None  # emulator-only: an environment variable that replaces the default


INITIAL_SYNC_BYTES_PER_SEC_ENV = "PSMDB_EMULATOR_INITIAL_SYNC_BYTES_PER_SEC"
OPLOG_MAX_BYTES_ENV = "PSMDB_EMULATOR_OPLOG_MAX_BYTES"

SPECS: dict[str, ParameterSpec] = {
    spec.name: spec
    for spec in (
        ParameterSpec("periodicNoopIntervalSecs", int, 10, minimum=1, maximum=10, runtime=False),
        ParameterSpec("writePeriodicNoops", bool, True),
        ParameterSpec("shutdownTimeoutMillisForSignaledShutdown", int, 15000, minimum=0),
        ParameterSpec("enableElectionHandoff", bool, True),
        # initial sync (repl_server_parameters.idl; numInitialSyncAttempts: replication_coordinator_impl.idl)
        ParameterSpec("numInitialSyncAttempts", int, 10, minimum=1),
        ParameterSpec("numInitialSyncConnectAttempts", int, 10, minimum=1),
        ParameterSpec("initialSyncTransientErrorRetryPeriodSeconds", int, 24 * 60 * 60, minimum=0),
        ParameterSpec("collectionClonerBatchSize", int, 0, minimum=0, runtime=False),
        ParameterSpec("initialSyncSourceReadPreference", str, "", runtime=False, choices=READ_PREFERENCE_MODES),
        # emulator-only knobs
        ParameterSpec(
            "psmdbEmulatorInitialSyncBytesPerSec", int, 32 * 1024 * 1024, minimum=1, env=INITIAL_SYNC_BYTES_PER_SEC_ENV
        ),
        ParameterSpec("psmdbEmulatorOplogMaxBytes", int, 0, minimum=0, runtime=False, env=OPLOG_MAX_BYTES_ENV),
    )
}


class ParameterError(ValueError):
    """A value mongod would refuse for a known parameter."""


def convert(spec: ParameterSpec, raw: Any) -> ParameterValue:
    """Typed value of ``raw`` (a string from the command line or YAML, or a BSON value)."""
    if spec.kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ParameterError(f"Invalid value for parameter {spec.name}: '{raw}' is not a boolean")
    if spec.kind is str:
        if not isinstance(raw, str):
            raise ParameterError(f"Invalid value for parameter {spec.name}: '{raw}' is not a string")
        if raw and spec.choices and raw not in spec.choices:
            raise ParameterError(
                f"Invalid value for parameter {spec.name}: '{raw}' is not one of {', '.join(spec.choices)}"
            )
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ParameterError(f"Invalid value for parameter {spec.name}: '{raw}' is not an integer")
    try:
        value = int(str(raw).strip()) if isinstance(raw, str) else int(raw)
    except ValueError:
        raise ParameterError(f"Invalid value for parameter {spec.name}: '{raw}' is not an integer") from None
    if spec.minimum is not None and value < spec.minimum:
        raise ParameterError(
            f"Invalid value for parameter {spec.name}: {value} is not greater than or equal to {spec.minimum}"
        )
    if spec.maximum is not None and value > spec.maximum:
        raise ParameterError(
            f"Invalid value for parameter {spec.name}: {value} is not less than or equal to {spec.maximum}"
        )
    return value


def default_value(spec: ParameterSpec) -> ParameterValue:
    """mongod's default, or for an emulator-only knob the value of its environment variable when set."""
    if spec.env and os.environ.get(spec.env):
        return convert(spec, os.environ[spec.env])
    return spec.default


def startup_values(raw: dict[str, str]) -> dict[str, ParameterValue]:
    """Every implemented parameter, typed: the given value or the default. Raises ParameterError."""
    return {name: convert(spec, raw[name]) if name in raw else default_value(spec) for name, spec in SPECS.items()}
