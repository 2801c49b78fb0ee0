"""Test-only entry: ``python -m psmdb_emulator.server <mongod options>`` serves unencrypted data without the core.

The network suites use it to start members quickly (the full launcher, bin/mongod, also loads the KMIP
client, which is slow to import on a busy machine). Set PSMDB_EMULATOR_USE_LAUNCHER=1 to run the suites
through bin/mongod instead. Encryption options are not supported here.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from ..contracts import ShutdownController
from ..logv2 import Logger, rename_existing_log
from ..netbind import EXIT_NET_ERROR, close_all
from ..options import OptionsError, parse_args
from ..storage import PlainDataStore
from . import bind_or_log, serve


def main(argv: list[str]) -> int:
    try:
        options = parse_args(argv)
    except OptionsError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    if options.security.enable_encryption:
        print("the test entry does not support encryption: use bin/mongod", file=sys.stderr)
        return 2
    rename_existing_log(options.system_log.path, options.system_log.log_append)
    logger = Logger(options.system_log.path, append=options.system_log.log_append)
    shutdown = ShutdownController()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.log("I", "CONTROL", 23377, "Received signal", {"signal": signum})
        shutdown.request(0, f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sockets = bind_or_log(options, logger)  # before the storage engine, as mongod
    if sockets is None:
        logger.log("I", "CONTROL", 23138, "Shutting down", {"exitCode": EXIT_NET_ERROR})
        logger.close()
        return EXIT_NET_ERROR
    try:
        serve(options, PlainDataStore(options.storage.db_path), logger, shutdown, sockets)
    finally:
        close_all(sockets)
        logger.log("I", "CONTROL", 23138, "Shutting down", {"exitCode": shutdown.exit_code})
        logger.close()
    return shutdown.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
