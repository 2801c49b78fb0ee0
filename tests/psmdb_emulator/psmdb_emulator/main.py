"""The ``mongod`` entry point: options, logging, dbPath lock, encryption start-up, serve, exit code.

Exit codes (mongod's ``ExitCode``): 0 clean (also after a master key rotation), 2 bad options,
14 storage engine failure, 48 the port cannot be bound (checked first, before the dbPath and the
storage engine, as mongod_main.cpp does), 100 dbPath problem, 1001 data-at-rest encryption error
(the shell sees 1001 & 0xFF = 233).
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from psmdb_emulator import options as options_module
from psmdb_emulator.contracts import DataStore, ShutdownController
from psmdb_emulator.encryption import (
    EXIT_ENCRYPTION_ERROR,
    EncryptionError,
    KeyStateMonitor,
    MasterKeyRotationCompleted,
    StorageEngineError,
    start_storage,
)
from psmdb_emulator.kmip_client import KmipConnector
from psmdb_emulator.logv2 import Logger, rename_existing_log
from psmdb_emulator.netbind import EXIT_NET_ERROR, bind_sockets, close_all, listen_addresses, listener_error
from psmdb_emulator.options import Options, OptionsError

EXIT_CLEAN = 0
EXIT_BAD_OPTIONS = 2
EXIT_ABRUPT = 14
EXIT_DB_PATH = 100
READY_FD_ENV = "PSMDB_EMULATOR_READY_FD"

BUILD_INFO: dict[str, Any] = {
    "version": options_module.VERSION,
    "gitVersion": "0000000000000000000000000000000000000000",
    "modules": [],
    "allocator": "tcmalloc",
    "environment": {"distarch": "x86_64", "target_arch": "x86_64"},
    "psmdbEmulator": True,
}

ServeFunction = Callable[[Options, DataStore, Logger, ShutdownController, list[socket.socket]], None]


def version_text() -> str:
    return f"db version v{options_module.VERSION}\nBuild Info: {json.dumps(BUILD_INFO, indent=4)}\n"


USAGE = """Options:
  -f [ --config ] arg          configuration file specifying additional options
  --port arg                   specify port number - 27017 by default
  --bind_ip arg                comma separated list of ip addresses to listen on
  --dbpath arg                 directory for datafiles
  --replSet arg                arg is <setname>[/<optionalseedhostlist>]
  --enableEncryption           enable data-at-rest encryption
  --encryptionCipherMode arg   cipher mode: AES256-CBC or AES256-GCM
  --kmipServerName arg         KMIP server host name(s), comma separated
  --kmipPort arg               KMIP server port (5696)
  --kmipServerCAFile arg       CA file for the KMIP server certificate
  --kmipClientCertificateFile arg  client PEM (key and certificate chain)
  --kmipClientCertificatePassword arg  password of the client private key
  --kmipConnectRetries arg     retries when no KMIP server is reachable (0)
  --kmipConnectTimeoutMS arg   KMIP connection timeout in milliseconds (5000)
  --kmipKeyIdentifier arg      KMIP master key identifier
  --kmipRotateMasterKey        rotate the master key and exit
  --kmipActivateKeys arg       activate new keys and require active keys (true)
  --kmipKeyStatePollingSeconds arg  key state polling period (900)
"""


def _load_serve() -> ServeFunction | None:
    """The network half, when present; the core must work without it.

    PSMDB_EMULATOR_NO_SERVER=1 skips it (the core's own tests, or a KMIP-only check).
    """
    if os.environ.get("PSMDB_EMULATOR_NO_SERVER") == "1":
        return None
    try:
        from psmdb_emulator import server  # optional at run time
    except ImportError:
        return None
    serve = getattr(server, "serve", None)
    return serve if callable(serve) else None


def _wait_without_server(
    options: Options, logger: Logger, shutdown: ShutdownController, sockets: list[socket.socket]
) -> None:
    for sock in sockets:  # the port is held (connections queue, unanswered) as long as the process runs
        sock.listen(128)
    logger.log("I", "NETWORK", 23016, "Waiting for connections", {"port": options.net.port, "ssl": "off"})
    while not shutdown.wait(0.5):
        pass


class _DbPathLock:
    """mongod.lock: one mongod per dbPath, like mongod's storage engine lock file."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path / "mongod.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # an empty lock file means a clean shutdown
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _fork_and_wait_for_child() -> int | None:
    """processManagement.fork: the parent waits for the child's verdict and exits with it, as mongod.

    Returns None in the child (which continues), or the parent's exit code. The child reports
    readiness once it waits for connections; a child that exits first (a rotation run, exit 0,
    or a failure) is judged by its exit status: 0 is success, N is "exited with error number N".
    """
    read_fd, write_fd = os.pipe()
    print("about to fork child process, waiting until server is ready for connections.", flush=True)
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.setsid()
        os.environ[READY_FD_ENV] = str(write_fd)
        return None
    os.close(write_fd)
    print(f"forked process: {pid}", flush=True)
    with os.fdopen(read_fd, "rb") as pipe:
        ready = pipe.read(1) == b"1"
    code = EXIT_CLEAN
    if not ready:
        _, status = os.waitpid(pid, 0)
        # mongod's parent exits with WEXITSTATUS (1001 -> 233); a child killed by a signal: abrupt [I]
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else EXIT_ABRUPT
    if code == EXIT_CLEAN:
        print("child process started successfully, parent exiting", flush=True)
    else:
        print(f"ERROR: child process failed, exited with error number {code}", flush=True)
        print('To see additional information in this output, start without the "--fork" option.', flush=True)
    return code


def _notify_parent_when_listening(log_id: int) -> None:
    """The forking parent waits for "ready": mongod signals it once it waits for connections."""
    if log_id == 23016:
        _notify_parent_ready()


def _notify_parent_ready() -> None:
    ready_fd = os.environ.pop(READY_FD_ENV, None)
    if ready_fd is None:
        return
    fd = int(ready_fd)
    os.write(fd, b"1")
    os.close(fd)
    # the parent has gone: detach from the terminal like a daemon
    devnull = os.open(os.devnull, os.O_RDWR)
    for std_fd in (0, 1, 2):
        os.dup2(devnull, std_fd)
    os.close(devnull)


def main(argv: Sequence[str] | None = None, serve: ServeFunction | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        options = options_module.parse_args(args)
    except options_module.VersionRequested:
        sys.stdout.write(version_text())
        return EXIT_CLEAN
    except options_module.HelpRequested:
        sys.stdout.write(USAGE)
        return EXIT_CLEAN
    except OptionsError as exc:
        sys.stderr.write(exc.message + "\n")
        if exc.hint:
            sys.stderr.write("try 'mongod --help' for more information\n")
        return EXIT_BAD_OPTIONS

    # ServerLogRedirection runs before the fork: an existing log is renamed, never truncated (logAppend false)
    rename_existing_log(options.system_log.path, options.system_log.log_append)
    if options.process_management.fork:
        parent_exit = _fork_and_wait_for_child()
        if parent_exit is not None:
            return parent_exit
    if options.system_log.destination == "syslog":
        sys.stderr.write("systemLog.destination syslog is not supported by the PSMDB emulator\n")
        return EXIT_BAD_OPTIONS
    logger = Logger(
        options.system_log.path,
        append=options.system_log.log_append,
        after_log=_notify_parent_when_listening if options.process_management.fork else None,
    )
    try:
        return _run(options, logger, serve)
    finally:
        logger.close()


def _install_signal_handlers(logger: Logger, shutdown: ShutdownController) -> None:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.log(
            "I", "CONTROL", 23377, "Received signal", {"signal": signum, "error": signal.strsignal(signum) or ""}
        )
        shutdown.request(EXIT_CLEAN, f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _log_shutdown(logger: Logger, exit_code: int) -> None:
    logger.log("I", "CONTROL", 20565, "Now exiting")
    logger.log("I", "CONTROL", 23138, "Shutting down", {"exitCode": exit_code})


def _run(options: Options, logger: Logger, serve: ServeFunction | None) -> int:
    shutdown = ShutdownController()
    _install_signal_handlers(logger, shutdown)
    db_path = Path(options.storage.db_path)
    logger.log(
        "I",
        "CONTROL",
        4615611,
        "MongoDB starting",
        {
            "pid": os.getpid(),
            "port": options.net.port,
            "dbPath": str(db_path),
            "architecture": "64-bit",
            "host": socket.gethostname(),
        },
    )
    logger.log("I", "CONTROL", 23403, "Build Info", {"buildInfo": BUILD_INFO})
    logger.log(
        "I", "CONTROL", 51765, "Operating System", {"os": {"name": platform.system(), "version": platform.release()}}
    )
    logger.log("I", "CONTROL", 21951, "Options set by command line", {"options": options.censored_parsed()})

    # mongod_main.cpp _initAndListen: the transport layer is set up (bound) before the storage engine starts
    try:
        sockets = bind_sockets(listen_addresses(options.net.bind_ip, options.net.bind_ip_all), options.net.port)
    except OSError as exc:
        logger.log("E", "CONTROL", 20568, "Error setting up listener", {"error": listener_error(exc)})
        _log_shutdown(logger, EXIT_NET_ERROR)
        return EXIT_NET_ERROR
    try:
        lock = _lock_db_path(db_path, logger)
        if not isinstance(lock, _DbPathLock):
            return lock
        pid_file = options.process_management.pid_file_path
        try:
            if pid_file:
                Path(pid_file).write_text(f"{os.getpid()}\n", encoding="utf-8")
            return _run_locked(options, logger, serve, shutdown, sockets)
        finally:
            lock.release()
    finally:
        close_all(sockets)


def _lock_db_path(db_path: Path, logger: Logger) -> _DbPathLock | int:
    """The storage engine's first steps: the dbPath must exist and be free (mongod.lock); else exit 100."""
    if not db_path.is_dir():
        logger.log(
            "F",
            "CONTROL",
            20557,
            "DBException in initAndListen, terminating",
            {
                "error": f"NonExistentPath: Data directory {db_path} not found. Create the missing directory "
                "or specify another path using (1) the --dbpath command line option, or (2) by adding the "
                "'storage.dbPath' option in the configuration file."
            },
        )
        _log_shutdown(logger, EXIT_DB_PATH)
        return EXIT_DB_PATH
    lock = _DbPathLock(db_path)
    try:
        lock.acquire()
    except OSError:
        logger.log(
            "F",
            "CONTROL",
            20557,
            "DBException in initAndListen, terminating",
            {
                "error": f"DBPathInUse: Unable to lock the lock file: {lock.path} (Resource temporarily unavailable). "
                "Another mongod instance is already running on the " + str(db_path) + " directory"
            },
        )
        _log_shutdown(logger, EXIT_DB_PATH)
        return EXIT_DB_PATH
    return lock


def _run_locked(
    options: Options,
    logger: Logger,
    serve: ServeFunction | None,
    shutdown: ShutdownController,
    sockets: list[socket.socket],
) -> int:
    logger.log(
        "I",
        "STORAGE",
        22315,
        "Opening WiredTiger",
        {
            "config": "create,encryption=(name="
            + (options.security.encryption_cipher_mode if options.security.enable_encryption else "none")
            + ")"
        },
    )
    try:
        started = start_storage(options, logger)
    except EncryptionError as exc:
        logger.log("F", "STORAGE", 29120, "Data-at-Rest Encryption Error", {"error": exc.to_document()})
        _log_shutdown(logger, EXIT_ENCRYPTION_ERROR)
        return EXIT_ENCRYPTION_ERROR
    except MasterKeyRotationCompleted:
        _log_shutdown(logger, EXIT_CLEAN)
        return EXIT_CLEAN
    except StorageEngineError as exc:
        logger.log("E", "STORAGE", 22435, "WiredTiger error", {"error": -31802, "message": str(exc)})
        logger.log("F", "STORAGE", 28595, "Terminating.", {"reason": str(exc)})
        logger.log(
            "F",
            "ASSERT",
            23091,
            "Fatal assertion",
            {"msgid": 28595, "file": "src/mongo/db/storage/wiredtiger/wiredtiger_kv_engine.cpp"},
        )
        return EXIT_ABRUPT

    monitor: KeyStateMonitor | None = None
    kmip = options.security.kmip
    if started.poll_key_state and started.key_id is not None and not kmip.rotate_master_key:
        monitor = KeyStateMonitor(
            KmipConnector(kmip, logger), started.key_id, kmip.key_state_polling_seconds, logger, shutdown
        )
        monitor.start()
    serve_function = serve or _load_serve()
    try:
        if serve_function is None:
            _wait_without_server(options, logger, shutdown, sockets)
        else:
            serve_function(options, started.store, logger, shutdown, sockets)
    finally:
        if monitor is not None:
            monitor.stop()
    exit_code = shutdown.exit_code if shutdown.requested else EXIT_CLEAN
    _log_shutdown(logger, exit_code)
    return exit_code


def entry_point() -> None:
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit would skip flushing; sys.exit(1001) gives the shell 233, exactly like mongod
    sys.exit(code)
