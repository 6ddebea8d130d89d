"""The audit log of revealed records: appended, private, saying who, what and why."""

from __future__ import annotations

import getpass
import json
import stat
from pathlib import Path

from services.cli.audit import audit_log_path, record_reveal


def test_each_reveal_appends_one_private_line(tmp_path: Path) -> None:
    path = audit_log_path({"HARPICOOP_AUDIT_LOG": str(tmp_path / "audit" / "audit.log")})
    record_reveal(path, topic="hl7.archive", offsets={0: (4, 9)}, reason="ticket 42")
    record_reveal(path, topic="stays.unique", offsets={2: (7, None)}, reason="incident 7")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["topic"] for line in lines] == ["hl7.archive", "stays.unique"]
    assert lines[0]["offsets"] == {"0": {"first": 4, "last": 9}}
    assert lines[1]["offsets"] == {"2": {"first": 7, "last": None}}
    assert lines[0]["reason"] == "ticket 42" and lines[0]["operator"] == getpass.getuser()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
