"""The Avro schemas in ``schemas/``: loading, expansion, and the released history.

Schemas are authored one named type per file (``<namespace>.<Name>.avsc``) and refer to each other
by name, so a type is written once. What is registered and used is the *expanded* schema, with
every referenced type inlined, so a record on a topic is self-describing in the registry.

Each topic's value schema has a released history in ``schemas/history/<Name>/v<N>.avsc``. A new
version must be BACKWARD compatible with the history (the registry enforces it, and so does a
test); ``python -m services.common.schemas release`` records the current version once it is.
"""

from __future__ import annotations

import argparse
import json
from functools import cache
from pathlib import Path
from typing import Any

import fastavro.schema

from services.common.paths import SCHEMAS_DIR

HISTORY_DIR = SCHEMAS_DIR / "history"


def schema_path(fullname: str) -> Path:
    return SCHEMAS_DIR / f"{fullname}.avsc"


@cache
def expanded_schema_json(fullname: str) -> str:
    """The schema with every named type it uses inlined, as compact JSON (docs kept)."""
    expanded = fastavro.schema.load_schema(str(schema_path(fullname)), _write_hint=False)
    return json.dumps(expanded, ensure_ascii=False, separators=(",", ":"))


def parsed_schema(fullname: str) -> dict[str, Any]:
    """The expanded schema parsed by fastavro, for reading and writing records."""
    parsed = fastavro.schema.parse_schema(json.loads(expanded_schema_json(fullname)))
    assert isinstance(parsed, dict)  # a record schema parses to a dict
    return parsed


def short_name(fullname: str) -> str:
    return fullname.rsplit(".", 1)[-1]


def history(fullname: str) -> list[Path]:
    """Released versions, oldest first."""
    folder = HISTORY_DIR / short_name(fullname)
    return sorted(folder.glob("v*.avsc"), key=lambda path: int(path.stem[1:]))


def released_equals_current(fullname: str) -> bool:
    releases = history(fullname)
    if not releases:
        return False
    latest = json.loads(releases[-1].read_text(encoding="utf-8"))
    return bool(latest == json.loads(expanded_schema_json(fullname)))


def release(fullname: str) -> Path | None:
    """Record the current schema as the next version; None when it is already the latest."""
    if released_equals_current(fullname):
        return None
    folder = HISTORY_DIR / short_name(fullname)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"v{len(history(fullname)) + 1}.avsc"
    expanded = json.loads(expanded_schema_json(fullname))
    path.write_text(json.dumps(expanded, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def main() -> None:
    from services.common.topics import value_schemas

    parser = argparse.ArgumentParser(description="Release the topics' value schemas.")
    parser.add_argument("command", choices=["release", "check"])
    args = parser.parse_args()
    for fullname in value_schemas():
        if args.command == "release":
            path = release(fullname)
            print(f"{fullname}: {'released as ' + str(path) if path else 'unchanged'}")
        else:
            state = "released" if released_equals_current(fullname) else "changed, not released"
            print(f"{fullname}: {state}")


if __name__ == "__main__":
    main()
