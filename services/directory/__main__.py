"""Command line of the directory: import a day's extracts, set preferences, publish.

    python -m services.directory import --personnes FILE --mssante FILE
    python -m services.directory import --sample
    python -m services.directory preferences RPPS --opt-out
    python -m services.directory preferences RPPS --preferred-address ADDRESS
    python -m services.directory preferences RPPS [RPPS...] --mode digest --digest-hour 18
    python -m services.directory preferences RPPS --kinds admission,discharge,transfer,correction
    python -m services.directory publish

Every command publishes what it changed (and anything left from an earlier run) on the
``practitioners`` topic before it returns. Exit status: 0 done, 1 refused or failed with
nothing changed, 2 changed but not yet published (the next run publishes it).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from services.common.logging import configure_logging
from services.common.preferences import DEFAULT_DIGEST_HOUR, EventChoice, Mode, parse_kinds
from services.common.settings import Settings
from services.directory.bootstrap import PRACTITIONERS_TOPIC, Directory, build
from services.directory.extracts import ExtractLayoutError
from services.directory.publisher import PublishError
from services.directory.sample import SAMPLE_MSSANTE, SAMPLE_PERSONNES
from services.directory.service import (
    DEFAULT_MAX_REMOVED_SHARE,
    FileReport,
    ImportSummary,
    import_extracts,
    passed_a_milestone,
    set_preferences,
)
from services.directory.store import DirectoryError

BAD_ROWS_SHOWN = 20
IMPORT_REFUSED = 3
"""The exit status of an import refused on its merits (a truncated file, a wrong layout), told
apart from a crash (1) by whoever runs the import, such as ``make run``."""


def _mode(text: str) -> Mode:
    word = text.strip().upper()
    try:
        return Mode.DISCHARGES_ONLY if word in ("DISCHARGES", "DISCHARGES_ONLY") else Mode(word)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: one of realtime, digest, discharges") from None


def _hour(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 23:
        raise argparse.ArgumentTypeError(f"{text} is not an hour of the day (0-23)")
    return int(text)


def _kinds(text: str) -> frozenset[EventChoice]:
    try:
        return parse_kinds(text.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _progress(label: str, count: int, share: float | None) -> None:
    _say(f"  {label}: {count:,}" + (f" ({share:.0%})" if share is not None else ""))


def _bad_rows(report: FileReport) -> list[str]:
    lines = [
        f"  {report.path.name} line {row.line}: {row.reason}"
        for row in report.bad_rows[:BAD_ROWS_SHOWN]
    ]
    if report.bad > BAD_ROWS_SHOWN:
        lines.append(
            f"  ... and {report.bad - BAD_ROWS_SHOWN:,} more bad rows in {report.path.name}"
        )
    return lines


def summary_lines(summary: ImportSummary) -> list[str]:
    changes = summary.changes
    lines = [
        f"Imported in {summary.seconds:.1f} s:",
        f"  rows read: {summary.personnes.rows:,} personnes, {summary.mssante.rows:,} MSSanté "
        f"({summary.personnes.out_of_scope:,} and {summary.mssante.out_of_scope:,} outside the "
        f"directory's scope)",
        f"  bad rows skipped: {summary.bad_rows:,}",
        f"  practitioners: {changes.added:,} added, {changes.changed:,} changed, "
        f"{changes.removed:,} removed; {changes.practitioners:,} in the directory, "
        f"{changes.without_mailbox:,} of them without a secure mailbox",
        f"  mailboxes: {changes.mailboxes_added:,} added, {changes.mailboxes_removed:,} removed; "
        f"{changes.mailboxes:,} in the directory; {changes.mailboxes_of_unknown_practitioners:,} "
        f"ignored (RPPS not in the personnes extract)",
    ]
    if summary.bad_rows:
        lines += ["Bad rows (skipped):", *_bad_rows(summary.personnes), *_bad_rows(summary.mssante)]
    return lines


def _publish(directory: Directory) -> int:
    publisher = directory.publisher
    pending = publisher.pending()
    if not pending:
        return 0
    _say(f"Publishing {pending:,} records to {publisher.topic}...")
    try:
        said = 0

        def report(sent: int) -> None:
            nonlocal said
            if passed_a_milestone(said, sent):
                _progress("published", sent, sent / pending)
                said = sent

        sent = publisher.publish_queued(progress=report)
    except PublishError as error:
        _say(
            f"Publishing stopped: {error}; `python -m services.directory publish` or the next "
            f"import sends them."
        )
        return 2
    print(f"Published {sent:,} practitioner records to {publisher.topic}.")
    return 0


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.directory", description=__doc__)
    parser.add_argument("--topic", default=PRACTITIONERS_TOPIC, help="the practitioners topic")
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("import", help="load or update the directory from the extracts")
    load.add_argument("--personnes", type=Path, help="PS_LibreAcces_Personne_activite file")
    load.add_argument("--mssante", type=Path, help="Extraction_Correspondance_MSSante file")
    load.add_argument("--sample", action="store_true", help="the synthetic sample shipped here")
    load.add_argument(
        "--max-removed-share",
        type=float,
        default=DEFAULT_MAX_REMOVED_SHARE,
        help="refuse an import removing more than this share of the practitioners "
        f"(default {DEFAULT_MAX_REMOVED_SHARE})",
    )
    preferences = commands.add_parser("preferences", help="set a practitioner's preferences")
    preferences.add_argument(
        "rpps", nargs="+", help="one practitioner, or several given the same choices"
    )
    choice = preferences.add_mutually_exclusive_group()
    choice.add_argument("--opt-out", dest="opted_out", action="store_true", default=None)
    choice.add_argument("--opt-in", dest="opted_out", action="store_false")
    address = preferences.add_mutually_exclusive_group()
    address.add_argument("--preferred-address", help="one of the practitioner's mailboxes")
    address.add_argument("--no-preferred-address", action="store_true")
    preferences.add_argument(
        "--mode",
        type=_mode,
        help="realtime (the default), digest (one email a day at --digest-hour) or discharges "
        "(discharges only); emergency admissions and discharges always go at once",
    )
    preferences.add_argument(
        "--digest-hour",
        type=_hour,
        help=f"the hour of the digest, 0-23, Europe/Paris (default {DEFAULT_DIGEST_HOUR})",
    )
    preferences.add_argument(
        "--kinds",
        type=_kinds,
        help="the events to be told of, comma-separated among admission, transfer, discharge, "
        "correction (corrections and retractions); default admission,discharge,correction",
    )
    commands.add_parser("publish", help="publish changes left unpublished by an earlier run")
    args = parser.parse_args(argv)

    log = configure_logging("directory")
    # The registry client logs every HTTP request at INFO: noise around the summary.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "import":
        if args.sample:
            args.personnes, args.mssante = SAMPLE_PERSONNES, SAMPLE_MSSANTE
        if not (args.personnes and args.mssante):
            parser.error("import needs --personnes and --mssante (or --sample)")
        for path in (args.personnes, args.mssante):
            if not path.exists():
                parser.error(f"{path}: no such file")
    if args.command == "preferences" and len(args.rpps) > 1 and args.preferred_address:
        parser.error("a preferred address is one practitioner's own: give one RPPS")
    directory = build(settings or Settings.from_env(principal="directory"), topic=args.topic)
    try:
        if args.command == "import":
            _say(f"Importing {args.personnes} and {args.mssante}...")
            try:
                summary = import_extracts(
                    directory.store,
                    directory.publisher,
                    args.personnes,
                    args.mssante,
                    max_removed_share=args.max_removed_share,
                    progress=_progress,
                )
            except (DirectoryError, ExtractLayoutError) as error:
                _say(f"Import refused: {error}")
                return IMPORT_REFUSED
            print("\n".join(summary_lines(summary)), flush=True)
            log.info(
                "directory.imported",
                rows_read=summary.rows_read,
                bad_rows=summary.bad_rows,
                added=summary.changes.added,
                changed=summary.changes.changed,
                removed=summary.changes.removed,
                practitioners=summary.changes.practitioners,
                mailboxes=summary.changes.mailboxes,
            )
        elif args.command == "preferences":
            changed = 0
            try:
                for rpps in args.rpps:
                    set_preferences(
                        directory.store,
                        directory.publisher,
                        rpps,
                        opted_out=args.opted_out,
                        preferred_address=args.preferred_address,
                        clear_preferred_address=args.no_preferred_address,
                        event_kinds=None
                        if args.kinds is None
                        else [kind.value for kind in args.kinds],
                        mode=None if args.mode is None else args.mode.value,
                        digest_hour=args.digest_hour,
                    )
                    log.info("directory.preferences_set", rpps=rpps)
                    changed += 1
            except DirectoryError as error:
                _say(f"Refused: {error}")
                if not changed:
                    return 1
                # Those set before it stay set: published now, as any change.
                _say(f"{changed} practitioner(s) before it were set")
                return max(_publish(directory), 1)
        return _publish(directory)
    finally:
        directory.close()


if __name__ == "__main__":
    sys.exit(main())
