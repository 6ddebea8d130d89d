"""The GPs whose personal mailbox bounces in a run: a practice mailbox behind it, real-time
notices, and patients in the day; the run lists their addresses for the SMTP server once."""

from __future__ import annotations

import collections
from pathlib import Path

from services.cli.run import list_bouncing_addresses
from services.directory.sample import practice_backed_gps
from services.simulator.app import day_config, parser, plan_day
from services.simulator.bounces import BOUNCING, bouncing_gps
from services.simulator.model import AdtMessage
from services.simulator.practitioners import directory_gps
from services.simulator.preferences import choice_groups
from services.stack.smtp_sink import BOUNCE_FILE

ARGS = ["--date", "2026-03-09", "--seed", "7"]


def day_messages() -> list[AdtMessage]:
    config, codes = day_config(parser().parse_args(ARGS))
    return plan_day(config, codes).day.all_messages()


def test_the_bouncing_gps_have_a_practice_mailbox_behind_and_patients_in_the_day() -> None:
    messages = day_messages()
    chosen = bouncing_gps(messages)
    assert len(chosen) == BOUNCING and chosen == bouncing_gps(messages)
    backed = {gp.rpps: gp for gp in practice_backed_gps()}
    assert len(backed) >= 10  # the sample's GPs with a CAB mailbox as well as a PER one
    with_choices = {rpps for group in choice_groups(directory_gps()) for rpps in group.rpps}
    named = collections.Counter(m.patient.gp.id for m in messages if m.patient.gp is not None)
    for gp in chosen:
        assert backed[gp.rpps] == gp and gp.personal != gp.practice
        assert gp.personal.split("@")[0] != gp.practice.split("@")[0]
        # Real-time notices: none of their events waits for a digest.
        assert gp.rpps not in with_choices
        assert named[gp.rpps] >= 2


def test_the_run_lists_the_bouncing_addresses_once(tmp_path: Path) -> None:
    mail = tmp_path / "mail"
    assert list_bouncing_addresses(mail, ARGS) == BOUNCING
    assert list_bouncing_addresses(mail, ARGS) == BOUNCING
    listed = (mail / BOUNCE_FILE).read_text(encoding="utf-8").split()
    assert sorted(listed) == sorted(gp.personal for gp in bouncing_gps(day_messages()))
