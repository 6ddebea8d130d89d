"""``harpicoop`` (or ``python -m services.cli``): run and repair the platform.

    harpicoop status                         the stack, each service's health, consumer lag
    harpicoop tail TOPIC [-n N] [--follow]   records of a topic, decoded from Avro
    harpicoop replay-dead-letters TOPIC      put dead-lettered records back where they came from
                                             (a notice's: resent from the ledger while kept)
    harpicoop reenrich                       run unroutable events through enrichment again
    harpicoop import --personnes F --mssante F   load a day's directory extracts
    harpicoop run [--speed N | --fast]       the whole platform fed a simulated day
    harpicoop opposition add|remove|list     the patients' objections to being notified

``tail`` hides patient data (``services.common.patient_data``) on every topic, the raw HL7
archive included (its MSH and EVN segments and the names of the others). ``--reveal --reason
TEXT`` shows everything, once a line saying who, when, which records and why is in the audit log
(``HARPICOOP_AUDIT_LOG``, by default the stack's ``logs/audit.log``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from confluent_kafka import Message

from services.cli import oppositions
from services.cli.audit import audit_log_path, record_reveal
from services.cli.lag import consumer_lag
from services.common.db import connect
from services.common.deadletter import HEADER_PREFIX, header_list, read_error_headers
from services.common.kafka import make_consumer, make_producer
from services.common.observability import DEFAULT_PORTS
from services.common.patient_data import hide_dead_letter_headers, hide_patient_data
from services.common.records import StayEvent, UnroutableStayEvent
from services.common.serde import AvroSerde, RecordSerde, make_registry_client
from services.common.settings import Settings
from services.common.topics import topic_spec
from services.notify.delivery import REFERENCE_HEADER
from services.notify.ledger import ResendOutcome, request_resend


def _say(text: str = "") -> None:
    print(text, flush=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(type(value).__name__)


def status(settings: Settings) -> int:
    from services.stack.__main__ import status as stack_status
    from services.stack.layout import StackLayout

    _say("Stack:")
    problems = stack_status(StackLayout.default())
    _say("Services:")
    for service, port in DEFAULT_PORTS.items():
        try:
            health = httpx.get(f"http://localhost:{port}/health", timeout=2).json()
            state = "healthy" if health["healthy"] else f"UNHEALTHY {health['checks']}"
        except httpx.HTTPError:
            state = "not running"
        _say(f"  {service:10} :{port}  {state}")
    _say("Consumer lag (records still to read):")
    for group in consumer_lag(settings):
        if not group.partitions:
            continue  # a group that never committed (a one-off reader) has no lag to show
        _say(f"  {group.group:40} {group.lag:>8,} over {group.partitions} partitions")
    return problems


def _until_end(consumer: Any, follow: bool, idle_polls: int = 3) -> Any:
    """Messages until the topic has been read to its end (or forever with ``follow``)."""
    idle = 0
    while follow or idle < idle_polls:
        message = consumer.poll(1.0)
        if message is None:
            idle += 1
            continue
        idle = 0
        if message.error() is None:
            yield message


def tail(
    settings: Settings,
    topic: str,
    count: int,
    follow: bool,
    reveal_reason: str | None = None,
    schema: str | None = None,
) -> int:
    """The last ``count`` records (or every record, following), patient data hidden unless a
    reason to reveal it is given; that reason is audited before any record is shown."""
    schema = schema or topic_spec(topic).value_schema
    serde = AvroSerde(make_registry_client(settings), schema) if schema else None
    consumer = make_consumer(
        settings, "harpicoop-cli-tail", f"harpicoop-tail-{uuid.uuid4().hex[:8]}"
    )
    consumer.subscribe([topic])
    reveal = reveal_reason is not None
    audited: set[int] = set()  # partitions whose reading is in the audit log, when following
    shown: list[tuple[int, int, str]] = []
    try:
        for message in _until_end(consumer, follow):
            partition, offset = int(message.partition() or 0), int(message.offset() or 0)
            line = _describe(message, serde, schema, reveal)
            if not follow:
                shown = (
                    [*shown[-(count - 1) :], (partition, offset, line)]
                    if count > 1
                    else [(partition, offset, line)]
                )
                continue
            if reveal and partition not in audited:
                if not _audit(topic, {partition: (offset, None)}, reveal_reason):
                    return 1
                audited.add(partition)
            _say(line)
    finally:
        consumer.close()
    if reveal and shown:
        ranges: dict[int, tuple[int, int | None]] = {}
        for partition, offset, _line in shown:
            first, _last = ranges.get(partition, (offset, offset))
            ranges[partition] = (min(first, offset), offset)
        if not _audit(topic, ranges, reveal_reason):
            return 1
    for _partition, _offset, line in shown:
        _say(line)
    return 0


def _audit(topic: str, offsets: dict[int, tuple[int, int | None]], reason: str | None) -> bool:
    path = audit_log_path()
    try:
        record_reveal(path, topic=topic, offsets=offsets, reason=reason or "")
    except OSError as error:
        print(f"error: cannot write the audit log {path} ({error}); nothing shown", file=sys.stderr)
        return False
    return True


def _describe(message: Message, serde: AvroSerde | None, schema: str | None, reveal: bool) -> str:
    value: Any
    raw = message.value()
    if raw is None:
        value = None
    elif serde is None or schema is None:
        errors = read_error_headers(message.headers())
        value = {
            "bytes": len(raw),
            "errors": errors if reveal else hide_dead_letter_headers(errors),
        }
    else:
        value = serde.deserialize(str(message.topic()), raw)
        if not reveal:
            value = hide_patient_data(schema, value)
    record = {
        "partition": message.partition(),
        "offset": message.offset(),
        "key": (message.key() or b"").decode("utf-8", "replace"),
        "value": value,
    }
    return json.dumps(record, default=_jsonable, ensure_ascii=False)


def replay_dead_letters(settings: Settings, topic: str, target: str | None, dry_run: bool) -> int:
    """Each dead letter once (the replay's own consumer group remembers), back to its source.

    A notice's dead letter is a reference to notify's ledger (a notification id): it is resent
    from the ledger while the ledger keeps its message, and said to be purged once it does not.
    """
    consumer = make_consumer(settings, "harpicoop-cli-replay", f"harpicoop-replay.{topic}")
    consumer.subscribe([topic])
    producer = make_producer(settings, "harpicoop-cli-replay")
    notices = _NoticeResends(settings, dry_run)
    replayed = skipped = 0
    try:
        for message in _until_end(consumer, follow=False):
            errors = read_error_headers(message.headers())
            reference = _notice_reference(message, errors)
            if reference is not None:
                notices.resend(reference)
                continue
            destination = target or errors.get("topic")
            if not destination:
                skipped += 1
                _say(f"  offset {message.offset()}: no source topic in its headers; use --to")
                continue
            headers = [
                (k, v) for k, v in message.headers() or [] if not k.startswith(HEADER_PREFIX)
            ]
            if not dry_run:
                producer.produce(
                    destination, key=message.key(), value=message.value(), headers=headers
                )
                producer.poll(0)
            replayed += 1
        if not dry_run:
            if producer.flush(30):
                _say("error: Kafka did not confirm every replayed record; run again")
                return 1
            if replayed or skipped or notices.seen:
                consumer.commit(asynchronous=False)
    finally:
        consumer.close()
        notices.close()
    verb = "would replay" if dry_run else "replayed"
    _say(f"{verb} {replayed} record(s) from {topic}; {skipped} without a source")
    if notices.seen:
        _say(notices.summary())
    return 0 if not skipped and not notices.lost else 1


def _notice_reference(message: Message, errors: dict[str, str]) -> str | None:
    """The notification id a notify dead letter refers to (None for a record kept as received,
    which names its source topic)."""
    if errors.get("topic") or errors.get("service") != "notify":
        return None
    for name, value in header_list(message.headers()):
        if name == REFERENCE_HEADER and value:
            return value.decode("ascii", "replace") if isinstance(value, bytes) else value
    return None


class _NoticeResends:
    """Resends from notify's ledger, through its ``request_resend`` function only."""

    def __init__(self, settings: Settings, dry_run: bool) -> None:
        self.settings = settings
        self.dry_run = dry_run
        self.conn: Any = None
        self.outcomes: dict[ResendOutcome, int] = {}

    @property
    def seen(self) -> int:
        return sum(self.outcomes.values())

    @property
    def lost(self) -> int:
        """Notices that cannot be resent: purged, or unknown to the ledger."""
        return self.outcomes.get(ResendOutcome.PURGED, 0) + self.outcomes.get(
            ResendOutcome.UNKNOWN, 0
        )

    def resend(self, notification_id: str) -> None:
        if self.conn is None:
            self.conn = connect(self.settings, autocommit=True)
        result = request_resend(self.conn, notification_id, dry_run=self.dry_run)
        self.outcomes[result.outcome] = self.outcomes.get(result.outcome, 0) + 1
        if result.outcome is ResendOutcome.PURGED:
            purged = result.purged_at.date().isoformat() if result.purged_at else "?"
            _say(
                f"  notice {notification_id}: not resent: its message was purged on {purged}, "
                "NOTIFY_RETENTION_DAYS after its final status; only its status trail is kept"
            )
        elif result.outcome is ResendOutcome.UNKNOWN:
            _say(f"  notice {notification_id}: not in the notification ledger; not resent")
        elif result.outcome is ResendOutcome.NOT_FAILED:
            _say(f"  notice {notification_id}: {result.state} now; nothing to resend")

    def summary(self) -> str:
        verb = "would resend" if self.dry_run else "resent"
        count = self.outcomes.get
        return (
            f"{verb} {count(ResendOutcome.RESENDING, 0)} notice(s) from the ledger; "
            f"{count(ResendOutcome.PURGED, 0)} purged, {count(ResendOutcome.UNKNOWN, 0)} unknown, "
            f"{count(ResendOutcome.NOT_FAILED, 0)} not failed"
        )

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def reenrich(settings: Settings, source: str, target: str) -> int:
    """Unroutable events go back to enrichment's input: a directory update may route them now."""
    registry = make_registry_client(settings)
    unroutable = RecordSerde(registry, UnroutableStayEvent)
    events = RecordSerde(registry, StayEvent)
    consumer = make_consumer(settings, "harpicoop-cli-reenrich", "harpicoop-reenrich")
    consumer.subscribe([source])
    producer = make_producer(settings, "harpicoop-cli-reenrich")
    reasons: dict[str, int] = {}
    try:
        for message in _until_end(consumer, follow=False):
            record = unroutable.deserialize(source, message.value() or b"")
            reasons[record.reason] = reasons.get(record.reason, 0) + 1
            producer.produce(
                target, key=message.key(), value=events.serialize(target, record.event)
            )
            producer.poll(0)
        if producer.flush(30):
            _say("error: Kafka did not confirm every record; nothing marked done, run again")
            return 1
        if reasons:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    total = sum(reasons.values())
    detail = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items())) or "none"
    _say(f"sent {total} unroutable event(s) back to {target} ({detail})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harpicoop", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="the stack, the services' health, consumer lag")
    tail_cmd = commands.add_parser("tail", help="records of a topic, decoded")
    tail_cmd.add_argument("topic")
    tail_cmd.add_argument("-n", type=int, default=10, help="how many of the last records")
    tail_cmd.add_argument("--follow", action="store_true", help="keep printing new records")
    tail_cmd.add_argument(
        "--reveal",
        action="store_true",
        help="show patient data too (needs --reason; the reading is written to the audit log)",
    )
    tail_cmd.add_argument("--reason", help="why patient data must be seen (with --reveal)")
    tail_cmd.add_argument("--schema", help="value schema of an undeclared topic (harpicoop.X)")
    replay = commands.add_parser("replay-dead-letters", help="back to where they came from")
    replay.add_argument("topic", help="a dead-letter topic, e.g. deadletter.enrich")
    replay.add_argument("--to", help="send them here rather than to their source topic")
    replay.add_argument("--dry-run", action="store_true")
    again = commands.add_parser("reenrich", help="run unroutable events through enrichment again")
    again.add_argument("--from", dest="source", default="stays.unroutable")
    again.add_argument("--to", dest="target", default="stays.unique")
    commands.add_parser("import", help="load directory extracts", add_help=False)
    oppositions.add_parser(commands)
    run_cmd = commands.add_parser("run", help="the whole platform fed a simulated day (make run)")
    pace = run_cmd.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=float,
        default=float(os.environ.get("HARPICOOP_SPEED", "360")),
        help="simulated seconds per second (default 360: a day in 4 minutes)",
    )
    pace.add_argument("--fast", action="store_true", help="as fast as the gateway acknowledges")
    run_cmd.add_argument("--date", help="simulated date, YYYY-MM-DD (default today)")
    run_cmd.add_argument(
        "--seed",
        help="same seed and date, same messages (default: a new seed each run, shown; the same "
        "messages sent again are dropped as resends)",
    )
    run_cmd.add_argument("--rate", default="1.0", help="volume factor (1.0 is a typical day)")
    run_cmd.add_argument(
        "--keep-running",
        action=argparse.BooleanOptionalAction,
        default=sys.stdin.isatty(),
        help="after the summary, keep the services up for the dashboard until Ctrl-C "
        "(default when run from a terminal)",
    )
    run_cmd.add_argument(
        "--replace-directory",
        action="store_true",
        help="let the directory sample replace practitioners loaded from other extracts",
    )
    args, rest = parser.parse_known_args(argv)
    settings = Settings.from_env(principal="operator")
    try:
        if args.command == "status":
            return status(settings)
        if args.command == "tail":
            if args.reveal and not (args.reason or "").strip():
                parser.error("--reveal needs --reason TEXT: why patient data must be seen")
            reason = args.reason.strip() if args.reveal else None
            return tail(settings, args.topic, args.n, args.follow, reason, args.schema)
        if args.command == "replay-dead-letters":
            return replay_dead_letters(settings, args.topic, args.to, args.dry_run)
        if args.command == "reenrich":
            return reenrich(settings, args.source, args.target)
        if args.command == "opposition":
            return oppositions.run(settings, args)
        if args.command == "run":
            from services.cli.run import run

            speed = ["--fast"] if args.fast else ["--speed", str(args.speed)]
            seed = args.seed or secrets.token_hex(4)
            day = ["--seed", seed, "--rate", args.rate]
            day += ["--date", args.date] if args.date else []
            return run(
                settings,
                [*speed, *day],
                args.keep_running,
                replace_directory=args.replace_directory,
            )
        from services.directory.__main__ import main as directory_main

        # An import changes the directory: it runs as the directory, not as the operator.
        return directory_main(["import", *rest])
    except KeyError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
