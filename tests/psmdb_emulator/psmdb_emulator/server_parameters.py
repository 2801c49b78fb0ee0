"""The replication server parameters (``--setParameter`` / ``setParameter:``) the emulator implements.

Names, types, defaults, bounds and when they may be set are MongoDB 7.0's
(src/mongo/db/repl/replication_coordinator_impl.idl, repl_server_parameters.idl). The core's option
parsing validates them at start-up (a bad value ends the process with exit code 2, like mongod); the
network half reads the typed values and serves getParameter/setParameter with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    kind: type  # int or bool
    default: int | bool
    minimum: int | None = None  # inclusive ("gte"); an IDL "gt: 0" is minimum 1
    maximum: int | None = None  # inclusive ("lte")
    runtime: bool = True  # set_at includes runtime


SPECS: dict[str, ParameterSpec] = {
    spec.name: spec
    for spec in (
        ParameterSpec("periodicNoopIntervalSecs", int, 10, minimum=1, maximum=10, runtime=False),
        ParameterSpec("writePeriodicNoops", bool, True),
        ParameterSpec("shutdownTimeoutMillisForSignaledShutdown", int, 15000, minimum=0),
        ParameterSpec("enableElectionHandoff", bool, True),
    )
}


class ParameterError(ValueError):
    """A value mongod would refuse for a known parameter."""


def convert(spec: ParameterSpec, raw: Any) -> int | bool:
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


def startup_values(raw: dict[str, str]) -> dict[str, int | bool]:
    """Every implemented parameter, typed: the given value or mongod's default. Raises ParameterError."""
    return {name: convert(spec, raw[name]) if name in raw else spec.default for name, spec in SPECS.items()}
