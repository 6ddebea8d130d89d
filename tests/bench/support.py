"""What several benchmarks share beyond the test suite's own support."""

from __future__ import annotations

import shutil
from pathlib import Path


def keep_logs_only(folder: Path) -> str:
    """Removes what a run left in ``folder`` besides its services' logs (state folders, the
    thousands of emails an end-to-end run writes); the folder, for the report."""
    for path in folder.iterdir():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
    return str(folder)
