"""Fleet files: validated whole, refused whole with one line per bad row, upserted by code, round-tripped."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from monitor.errors import FleetFileError
from monitor.inventory.demo import generate_demo_rows
from monitor.inventory.fleetfile import read_fleet_file, write_fleet
from monitor.inventory.models import Commune, Device
from monitor.inventory.service import apply_fleet_rows, export_records, validate_fleet_rows

EXAMPLE = Path(__file__).parent.parent / "examples" / "fleet.csv"
HEADER = "code,name,kind,commune_code,parent_code,protocol,address,port,profile,interval_s,lat,lon,installed_on\n"
GOOD = "ST1,Station,station_controller,05971,,snmp,10.0.0.1,161,generic-mib2,60,21.8,106.7,2024-01-02\n"


def import_text(session: Session, tmp_path: Path, text: str | bytes, name: str = "fleet.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    rows = validate_fleet_rows(read_fleet_file(path), session=session, source=name)
    result = apply_fleet_rows(rows, session=session)
    session.commit()
    return result


def device_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Device)).one()


def refused(session: Session, tmp_path: Path, text: str | bytes, name: str = "fleet.csv") -> list[tuple]:
    with pytest.raises(FleetFileError) as caught:
        import_text(session, tmp_path, text, name)
    session.rollback()
    assert device_count(session) == 0, "a refused file must write nothing"
    return [(p.line, p.field) for p in caught.value.problems]


def test_the_example_file_imports_and_reimporting_it_changes_nothing(session: Session, tmp_path: Path) -> None:
    first = import_text(session, tmp_path, EXAMPLE.read_text(encoding="utf-8"))
    assert (first.created, first.updated) == (4, 0)
    again = import_text(session, tmp_path, EXAMPLE.read_text(encoding="utf-8"))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    cluster = session.exec(select(Device).where(Device.code == "06613-CL01")).one()
    station = session.exec(select(Device).where(Device.code == "06613-ST")).one()
    assert cluster.parent_id == station.id


def test_every_kind_of_bad_row_is_reported_with_its_line_and_field_and_nothing_is_written(
    session: Session, tmp_path: Path
) -> None:
    text = (
        HEADER
        + GOOD  # line 2
        + "C1,Cluster,radio_cluster,99999,,mqtt,t/c1,,p,60,,,\n"  # 3 unknown commune
        + "ST1,Again,gateway,05971,,snmp,10.0.0.2,,p,60,,,\n"  # 4 duplicate code
        + "C2,Cluster,toaster,05971,,mqtt,t/c2,,p,60,,,\n"  # 5 unknown kind
        + "C3,Cluster,radio_cluster,05971,,snmp,not a host!,,p,60,,,\n"  # 6 bad address
        + "C4,Cluster,radio_cluster,05971,,mqtt,t/c4,,p,0,,,\n"  # 7 bad interval
        + "C5,Cluster,radio_cluster,05974,ST1,mqtt,t/c5,,p,60,,,\n"  # 8 parent in another commune
        + "C6,Cluster,radio_cluster,05971,,http,ftp://x/status,,p,60,,,\n"  # 9 not http
        + "C7,Cluster,radio_cluster,05971,,mqtt,t/#,,p,abc,,,\n"  # 10 wildcard topic and bad interval
        + "C8,Cluster,radio_cluster,05971,NOPE,mqtt,t/c8,70000,p,60,91,,2099-01-01\n"  # 11 many
    )
    problems = refused(session, tmp_path, text)
    assert (3, "commune_code") in problems
    assert (4, "code") in problems
    assert (5, "kind") in problems
    assert (6, "address") in problems
    assert (7, "interval_s") in problems
    assert (8, "parent_code") in problems
    assert (9, "address") in problems
    assert {(10, "address"), (10, "interval_s")} <= set(problems)
    assert {(11, "port"), (11, "lat"), (11, "installed_on")} <= set(problems)
    assert 2 not in {line for line, _ in problems}


def test_a_file_that_is_not_utf8_is_refused_with_the_line_of_the_bad_byte(session: Session, tmp_path: Path) -> None:
    text = (HEADER + GOOD).encode() + "C1,Cụm loa,radio_cluster,05971,,mqtt,t/c1,,p,60,,,\n".encode("utf-16-le")
    assert refused(session, tmp_path, text) == [(3, "file")]


def test_a_parent_of_the_wrong_kind_or_a_cycle_is_refused(session: Session, tmp_path: Path) -> None:
    text = (
        HEADER
        + "A,A,gateway,05971,B,snmp,10.0.0.1,,p,60,,,\n"
        + "B,B,station_controller,05971,A,snmp,10.0.0.2,,p,60,,,\n"
        + "C,C,radio_cluster,05971,,mqtt,t/c,,p,60,,,\n"
        + "D,D,radio_cluster,05971,C,mqtt,t/d,,p,60,,,\n"
    )
    problems = refused(session, tmp_path, text)
    assert (2, "parent_code") in problems and (3, "parent_code") in problems
    assert (5, "parent_code") in problems


def test_unknown_and_missing_columns_are_refused_at_the_header(session: Session, tmp_path: Path) -> None:
    problems = refused(session, tmp_path, "code,name,colour\nX,Y,red\n")
    assert (1, "colour") in problems and (1, "kind") in problems


def test_a_row_with_more_values_than_columns_is_refused(session: Session, tmp_path: Path) -> None:
    assert refused(session, tmp_path, HEADER + GOOD.strip() + ",extra\n") == [(2, "row")]


def test_yaml_rows_are_reported_with_their_own_lines(session: Session, tmp_path: Path) -> None:
    text = """devices:
  - code: ST1
    name: Station
    kind: station_controller
    commune_code: "05971"
    protocol: snmp
    address: 10.0.0.1
    profile: generic-mib2
    interval_s: 60
  - code: C1
    name: Cluster
    kind: radio_cluster
    commune_code: "05971"
    parent_code: ST1
    protocol: mqtt
    address: t/c1
    profile: p
    interval_s: -5
"""
    assert refused(session, tmp_path, text, "fleet.yaml") == [(10, "interval_s")]
    result = import_text(session, tmp_path, text.replace("-5", "60"), "fleet.yaml")
    assert result.created == 2


def test_invalid_yaml_is_a_clear_error(session: Session, tmp_path: Path) -> None:
    assert refused(session, tmp_path, "devices: [\n  {code: x\n", "fleet.yaml")[0][1] == "file"


def test_an_update_changes_only_what_changed_and_keeps_credentials(session: Session, tmp_path: Path) -> None:
    import_text(session, tmp_path, HEADER.strip() + ",credentials\n" + GOOD.strip() + ",s3cret\n")
    result = import_text(session, tmp_path, HEADER + GOOD.replace("Station", "Trạm"))
    assert (result.created, result.updated) == (0, 1)
    device = session.exec(select(Device).where(Device.code == "ST1")).one()
    assert device.name == "Trạm" and device.credentials == "s3cret"


@pytest.mark.parametrize("file_format", ["csv", "yaml"])
def test_export_then_import_round_trips_the_inventory(session: Session, tmp_path: Path, file_format: str) -> None:
    communes = list(session.exec(select(Commune).order_by(Commune.code).limit(15)))
    apply_fleet_rows(generate_demo_rows(communes, seed=7, today=date(2026, 1, 1)), session=session)
    session.commit()
    before = export_records(session=session)
    text = write_fleet(before, file_format)  # type: ignore[arg-type]
    again = import_text(session, tmp_path, text, f"export.{file_format}")
    assert again.created == again.updated == 0 and again.unchanged == len(before)
    assert export_records(session=session) == before
    assert "public" not in text, "credentials are never exported"
    # and into an empty inventory, the same devices come back
    for device in session.exec(select(Device)):
        session.delete(device)
    session.commit()
    restored = import_text(session, tmp_path, text, f"export.{file_format}")
    assert restored.created == len(before)
    assert export_records(session=session) == before
