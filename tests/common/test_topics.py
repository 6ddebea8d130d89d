"""The topic list is declared once and expands per establishment."""

from pathlib import Path

import pytest

from services.common.establishments import load_establishments
from services.common.topics import declared_topics

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


def test_analytics_practitioners_and_covid_topics_are_compacted() -> None:
    for spec in declared_topics():
        expected = spec.name.startswith("analytics.") or spec.name in {
            "practitioners",
            "covid.followups",
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
