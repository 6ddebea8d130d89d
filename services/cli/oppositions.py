"""``harpicoop opposition``: the opposition register, as establishments ask the operator to keep it.

    harpicoop opposition add --establishment CODE (--ins INS | --ipp IPP)
    harpicoop opposition remove ID
    harpicoop opposition list

An objection keyed by the patient's qualified INS applies in every establishment of the GHT; one
keyed by an IPP only in the establishment that gave it. Each change is written to the audit log
(who, when, which opposition id: never the patient's identifiers) before it is committed. The
output shows ids only, never a name.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from services.cli.audit import audit_log_path, record_change
from services.common.db import connect
from services.common.establishments import load_establishments
from services.common.settings import Settings
from services.notify import privacy

# The INS is the NIR (or NIA): 15 characters, Corsica's departments written 2A and 2B.
_INS = re.compile(r"[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{8}")


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    register = commands.add_parser("opposition", help="the patients' objections to being notified")
    actions = register.add_subparsers(dest="opposition_command", required=True)
    add = actions.add_parser("add", help="record a patient's objection")
    add.add_argument("--establishment", required=True, help="the establishment recording it")
    key = add.add_mutually_exclusive_group(required=True)
    key.add_argument("--ins", help="the patient's qualified INS: applies in every establishment")
    key.add_argument("--ipp", help="the establishment's patient id, when the INS is not qualified")
    remove = actions.add_parser("remove", help="lift an objection the patient withdrew")
    remove.add_argument("opposition_id", type=int)
    actions.add_parser("list", help="the objections in force (ids only)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.opposition_command == "list":
        return _list(settings)
    if args.opposition_command == "add":
        return _add(settings, args.establishment, args.ins, args.ipp)
    return _remove(settings, args.opposition_id)


def _add(settings: Settings, establishment: str, ins: str | None, ipp: str | None) -> int:
    if establishment not in {item.code for item in load_establishments()}:
        print(f"error: {establishment!r} is not an establishment code", file=sys.stderr)
        return 2
    if ins is not None and not _INS.fullmatch(ins.strip()):
        print("error: --ins is not an INS (15 characters)", file=sys.stderr)
        return 2
    if ipp is not None and not ipp.strip():
        print("error: --ipp is empty", file=sys.stderr)
        return 2
    try:
        with connect(settings) as conn, conn.transaction():
            recorded = privacy.record_opposition(
                conn, establishment, ins.strip() if ins else None, ipp.strip() if ipp else None
            )
            if recorded.created:
                _audit(
                    "opposition add",
                    {
                        "opposition_id": recorded.opposition_id,
                        "establishment": establishment,
                        "key": "ins" if ins else "ipp",
                    },
                )
    except _NotAudited:
        return 1
    state = "recorded" if recorded.created else "already recorded"
    print(
        f"opposition {recorded.opposition_id} {state}; {recorded.held} waiting notice(s) held, "
        "withdrawn by notify"
    )
    return 0


def _remove(settings: Settings, opposition_id: int) -> int:
    try:
        with connect(settings) as conn, conn.transaction():
            lifted = privacy.lift_opposition(conn, opposition_id)
            if lifted:
                _audit("opposition remove", {"opposition_id": opposition_id})
    except _NotAudited:
        return 1
    print(f"opposition {opposition_id} {'lifted' if lifted else 'not in force; nothing done'}")
    return 0 if lifted else 1


def _list(settings: Settings) -> int:
    with connect(settings) as conn:
        oppositions = privacy.list_oppositions(conn)
    print("id\testablishment\tkey\tid_value\trecorded_at")
    for item in oppositions:
        key, value = ("INS", item.ins) if item.ins else ("IPP", item.ipp)
        recorded = item.recorded_at.isoformat(timespec="seconds")
        print(f"{item.opposition_id}\t{item.establishment}\t{key}\t{value}\t{recorded}")
    return 0


class _NotAudited(Exception):
    """Raised inside the change's transaction, so that it rolls back."""


def _audit(action: str, details: dict[str, object]) -> None:
    """The change's line is on disk before the change is committed: no unaudited change."""
    path = audit_log_path()
    try:
        record_change(path, action, details)
    except OSError as error:
        say = f"error: cannot write the audit log {path} ({error}); nothing changed"
        print(say, file=sys.stderr)
        raise _NotAudited from error


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harpicoop")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(Settings.from_env(principal="operator"), parser.parse_args(argv))
