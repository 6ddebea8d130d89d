"""What the stack's relay reports, and to whom, from the envelope's DSN parameters (RFC 3461)."""

from __future__ import annotations

from services.stack.dsn import RecipientDsn
from services.stack.smtp_sink import take_dsn_parameters


def test_dsn_parameters_are_taken_out_of_the_command_with_their_case_kept() -> None:
    arguments, found = take_dsn_parameters(
        "<a@x.fr> SIZE=1200 RET=HDRS ENVID=3f2c5a1e-AbC notify=SUCCESS,FAILURE"
    )
    assert arguments == "<a@x.fr> SIZE=1200"
    assert found == {"RET": "HDRS", "ENVID": "3f2c5a1e-AbC", "NOTIFY": "SUCCESS,FAILURE"}


def test_each_outcome_is_reported_as_notify_asks() -> None:
    def wants(notify: set[str], delivered: bool) -> bool:
        return RecipientDsn("dr@m.mssante.fr", frozenset(notify)).wants(delivered)

    assert wants({"SUCCESS", "FAILURE"}, True) and wants({"SUCCESS", "FAILURE"}, False)
    assert not wants({"FAILURE"}, True) and wants({"FAILURE"}, False)
    assert not wants({"NEVER"}, False)
    # Without NOTIFY, a relay reports failures only, never deliveries.
    assert wants(set(), False) and not wants(set(), True)
