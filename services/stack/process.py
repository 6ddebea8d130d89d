"""Starting, finding and stopping the stack's background processes through pid files."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class StackError(RuntimeError):
    """A component could not be installed, started or stopped; the message says what to do."""


def read_pid(pidfile: Path) -> int | None:
    """The pid in the file when that process is still alive, else None."""
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    pidfile: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start a detached process (its own session, so it outlives us), logging to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    pidfile.write_text(f"{process.pid}\n")
    return process.pid


def stop_pid(pid: int, *, grace_seconds: float = 30.0) -> None:
    """SIGTERM the process group, wait for it to go, SIGKILL what is left after the grace time."""
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not pid_alive(pid):
                return
            time.sleep(0.2)
    raise StackError(f"process {pid} survived SIGKILL")


def kill_pid(pid: int, *, timeout: float = 10.0) -> None:
    """SIGKILL the process group at once, as a crash or a power cut would end it, and wait until
    it is gone (so that its ports are free for a restart)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    raise StackError(f"process {pid} survived SIGKILL")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    log: Path | None = None,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.5,
) -> None:
    """Poll a health check until it passes; fail early, naming the log, if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise StackError(
                f"{what} exited during start-up; read {log}" if log else f"{what} exited"
            )
        time.sleep(interval)
    where = f"; read {log}" if log else ""
    raise StackError(f"{what} was not healthy after {timeout:.0f} s{where}")


def run(argv: Sequence[str], *, what: str, log: Path | None = None, **kwargs: object) -> str:
    """Run a short command; on failure raise with its output (and the log to read)."""
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if log is not None:
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        hint = f" (full output in {log})" if log else ""
        raise StackError(f"{what} failed{hint}:\n  " + "\n  ".join(detail))
    return str(result.stdout)


def apt_install(packages: Sequence[str], missing: str, log: Path | None = None) -> None:
    """Install Debian's ``packages`` with apt-get when we are root; else say what to install."""
    names = " ".join(packages)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise StackError(
            f"{missing}: install Debian's {names} (sudo apt-get install {names}) and run again"
        )
    print(f"  installing Debian's {names} (apt-get)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], what="apt-get update", log=log, env=env)
    run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        what=f"apt-get install {names}",
        log=log,
        env=env,
    )
