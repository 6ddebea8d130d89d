"""The establishments file: each establishment's MLLP client certificate is bound by its CN."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.establishments import establishments_by_client_cn, load_establishments

HEADER = "code,name,finess,sending_facility,city,tls_client_cn\n"


def write(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "establishments.csv"
    path.write_text(HEADER + rows, encoding="utf-8")
    return path


def test_every_establishment_of_the_ght_has_its_own_client_certificate_cn() -> None:
    establishments = load_establishments()
    by_cn = establishments_by_client_cn(establishments)
    assert len(by_cn) == len(establishments) == 11
    assert by_cn["mllp.chrunancy.ght-sud-lorraine.fr"].sending_facility == "CHRU_NANCY"


def test_a_cn_is_bound_exactly_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, "toul,CH de Toul,,CH_TOUL,Toul, mllp.toul.example \n")
    by_cn = establishments_by_client_cn(load_establishments(path))
    assert set(by_cn) == {"mllp.toul.example"}
    assert "MLLP.TOUL.EXAMPLE" not in by_cn


def test_an_establishment_without_a_cn_has_no_mllp_access(tmp_path: Path) -> None:
    path = write(tmp_path, "toul,CH de Toul,,CH_TOUL,Toul,\n")
    assert establishments_by_client_cn(load_establishments(path)) == {}


def test_one_cn_for_two_establishments_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "toul,CH de Toul,,CH_TOUL,Toul,mllp.shared.example\n"
        "pam,CH de Pont-à-Mousson,,CH_PAM,Pont-à-Mousson,mllp.shared.example\n",
    )
    with pytest.raises(ValueError, match=r"tls_client_cn repeated: mllp\.shared\.example"):
        load_establishments(path)
