"""The topic list is declared once and expands per establishment."""

from pathlib import Path

import pytest

from services.common.establishments import load_establishments
from services.common.topics import DAY_MS, TopicDeclarationError, declared_topics
from services.notify.config import NotifyConfig

FIXED_TOPICS = {
    "practitioners",
    "stays.enriched",
    "stays.unroutable",
    "notifications.status",
    "covid.followups",
}


def test_every_fixed_topic_and_one_raw_topic_per_establishment_is_declared() -> None:
    names = {spec.name for spec in declared_topics()}
    codes = [item.code for item in load_establishments()]
    assert len(codes) == 11
    assert names >= FIXED_TOPICS
    assert {f"stays.raw.{code}" for code in codes} <= names
    assert any(name.startswith("analytics.") for name in names)


def test_analytics_practitioners_covid_and_dedup_claims_topics_are_compacted() -> None:
    for spec in declared_topics():
        expected = spec.name.startswith("analytics.") or spec.name in {
            "practitioners",
            "covid.followups",
            "dedup-claims",
        }
        assert spec.compacted == expected, spec.name
        assert spec.subject == f"{spec.name}-value"


def test_a_twelfth_establishment_is_one_line_of_data(tmp_path: Path) -> None:
    source = Path("deploy/establishments.csv").read_text(encoding="utf-8")
    csv = tmp_path / "establishments.csv"
    csv.write_text(source + "briey,Centre hospitalier de Briey,,CH_BRIEY,Briey\n", encoding="utf-8")
    establishments = load_establishments(csv)
    names = {spec.name for spec in declared_topics(establishments=establishments)}
    assert "stays.raw.briey" in names


def test_a_repeated_sending_facility_is_refused(tmp_path: Path) -> None:
    csv = tmp_path / "establishments.csv"
    csv.write_text("code,name,finess,sending_facility\na,A,,SAME\nb,B,,SAME\n", encoding="utf-8")
    with pytest.raises(ValueError, match="sending_facility repeated: SAME"):
        load_establishments(csv)


def test_every_topic_says_why_it_keeps_its_records_as_long_as_it_does() -> None:
    for spec in declared_topics():
        assert len(spec.retention_reason) > 40, spec.name
        if spec.compacted:
            reason = spec.retention_reason
            assert "tombstone" in reason or "no patient data" in reason, spec.name
        else:
            assert spec.retention_ms > 0, spec.name


def test_retentions_follow_their_purpose() -> None:
    days = {spec.name: spec.retention_ms // DAY_MS for spec in declared_topics()}
    assert days["hl7.archive"] == 90  # audit and replay of what the establishments sent
    # A dead letter is kept long enough to fix the cause and replay it, and the notify one, a
    # reference to the ledger, no longer than the ledger keeps the message it points to.
    assert all(days[name] == 30 for name in days if name.startswith("deadletter."))
    assert days["deadletter.notify"] == NotifyConfig().retention.days
    # Working copies of patient data: a fortnight to catch up or reprocess, no more.
    assert days["stays.enriched"] == days["stays.unique"] == 14


def _declare(tmp_path: Path, entry: str) -> Path:
    path = tmp_path / "topics.toml"
    path.write_text(f"[defaults]\npartitions = 1\n\n[[topic]]\nname = 'x'\n{entry}\n")
    return path


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ("retention_days = 14", "has no retention_reason"),
        ("retention_days = 14\nretention_reason = '  '", "has no retention_reason"),
        ("retention_reason = 'replay'", "has no retention_days"),
        ("compacted = true\nretention_days = 3\nretention_reason = 'r'", "is compacted"),
    ],
)
def test_a_topic_without_its_retention_and_reason_is_refused(
    tmp_path: Path, entry: str, complaint: str
) -> None:
    with pytest.raises(TopicDeclarationError, match=complaint):
        declared_topics(_declare(tmp_path, entry), establishments=[])
