"""Peak resident memory of groups of processes (each with its descendants), sampled from /proc.

A group's figure is the largest sum of its processes' RSS seen in one sample; the total is the
largest sum of all groups seen in one sample, not the sum of each group's peak. RSS counts a page
shared by several processes (PostgreSQL's shared buffers, the JVMs' mapped jars) once in each, so
the sums are an upper bound of what the machine gave them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from services.stack.components import Postgres
from services.stack.layout import StackLayout

PROC = Path("/proc")


def parse_rss_bytes(status: str) -> int:
    """The ``VmRSS`` line of ``/proc/<pid>/status`` in bytes (0 for a kernel thread or zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def parse_parent(stat: str) -> int:
    """The parent pid from ``/proc/<pid>/stat``; the command name may hold spaces and ')'."""
    return int(stat.rsplit(")", 1)[1].split()[1])


def with_descendants(roots: Iterable[int], parents: Mapping[int, int]) -> set[int]:
    """The roots and every process below them, from a pid → parent pid map."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    todo = [pid for pid in roots if pid]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:  # the process ended between the listing and the read
        return None


def _parents() -> dict[int, int]:
    parents = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _read(entry / "stat")
            if stat:
                parents[int(entry.name)] = parse_parent(stat)
    return parents


def stack_pids(layout: StackLayout | None = None) -> list[int]:
    """The local stack's processes: Kafka (each node), the registry, SMTP and IMAP from their pid
    files, and PostgreSQL's postmaster (its backends are its children)."""
    layout = layout or StackLayout.default()
    pids = []
    for pidfile in sorted(layout.run.glob("*.pid")):
        text = _read(pidfile)
        if text and text.strip().isdigit():
            pids.append(int(text.strip()))
    postmaster = Postgres(layout).pid()
    if postmaster:
        pids.append(postmaster)
    return pids


class PeakMemory:
    """Samples every ``interval`` seconds in a thread, from ``start`` to ``stop``."""

    def __init__(self, groups: Mapping[str, Callable[[], Iterable[int]]], interval: float = 1.0):
        self.groups = groups
        self.interval = interval
        self.peaks = dict.fromkeys(groups, 0)
        self.peak_total = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def sample(self) -> None:
        parents = _parents()
        total = 0
        for name, roots in self.groups.items():
            pids = with_descendants(roots(), parents)
            rss = sum(parse_rss_bytes(_read(PROC / str(pid) / "status") or "") for pid in pids)
            self.peaks[name] = max(self.peaks[name], rss)
            total += rss
        self.peak_total = max(self.peak_total, total)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self) -> PeakMemory:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
