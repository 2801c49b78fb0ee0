"""Test-only fault injection: make ``mongod`` pause or die at a named step of a master key rotation.

``PSMDB_EMULATOR_TEST_HOOK=<step>:<action>`` (never set it outside tests). Steps, in rotation order:

- ``rotation-clone``: in the middle of cloning the keystore into ``key.db.rotation`` (half written);
- ``rotation-register``: the clone is complete, the new key is not registered yet;
- ``rotation-swap``: between ``key.db`` -> ``key.db.rotated`` and ``key.db.rotation`` -> ``key.db``;
- ``rotation-metadata``: both renames done, ``storage.bson`` still names the old key.

Actions: ``crash`` (SIGKILL itself: no cleanup, no further log line) or ``pause`` (block until
killed, so a test can SIGKILL it from outside). Either way the step is first logged as id 99000
"PSMDB emulator test hook" so the test knows where the process stopped; PSMDB has no such line.
"""

from __future__ import annotations

import os
import signal
import threading

from psmdb_emulator.logv2 import Logger

TEST_HOOK_ENV = "PSMDB_EMULATOR_TEST_HOOK"
TEST_HOOK_LOG_ID = 99000
STEPS = ("rotation-clone", "rotation-register", "rotation-swap", "rotation-metadata")
ACTIONS = ("crash", "pause")


def reached(step: str, logger: Logger) -> None:
    """Called by the emulator at ``step``; acts only when the environment names this step."""
    if step not in STEPS:
        raise ValueError(f"unknown test hook step {step!r}")
    wanted, _, action = os.environ.get(TEST_HOOK_ENV, "").partition(":")
    if wanted != step:
        return
    if action not in ACTIONS:
        raise ValueError(f"{TEST_HOOK_ENV}: action must be one of {', '.join(ACTIONS)}, got {action!r}")
    logger.log("W", "CONTROL", TEST_HOOK_LOG_ID, "PSMDB emulator test hook", {"step": step, "action": action})
    if action == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Event().wait()  # pause: until the test kills the process
