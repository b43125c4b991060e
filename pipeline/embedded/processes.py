"""Small process helpers shared by the embedded servers: free ports, liveness, stopping,
and private files (state that may name a server must not be readable by other users)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

STOP_WAIT_S_MAX = 10.0
PRIVATE_FILE_MODE = 0o600


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers signal 0: reap it if it is our child, else ask /proc, because
    # the sandbox's init may take its time to reap daemons' exited children.
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not _is_zombie(pid)
    return reaped == 0


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # the state letter follows the parenthesised command name, which may contain spaces
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def process_arguments(pid: int) -> tuple[str, ...] | None:
    """The command line of a live process, or None where the system does not say (no /proc).

    A stored pid alone proves nothing: once its process has gone the kernel hands the number
    to another one, so callers check that the process is still the one they started."""
    if not Path("/proc/self/cmdline").exists():
        return None
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()  # gone (a zombie's command line is empty too)
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def stop_process(pid: int, wait_s: float = STOP_WAIT_S_MAX) -> None:
    """SIGTERM, then SIGKILL if it has not gone after `wait_s`."""
    if not is_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return
        time.sleep(0.05)
    if is_alive(pid):
        os.kill(pid, signal.SIGKILL)


def port_accepts(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def open_private(path: Path, flags: int = os.O_RDWR | os.O_CREAT) -> int:
    """A file descriptor on `path`, created with mode 0600; an existing file's mode is fixed."""
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, mode 0600 from the first byte."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_private(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(temporary, path)
