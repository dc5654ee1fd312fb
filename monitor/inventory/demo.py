"""The demo fleet: a plausible Lạng Sơn fleet generated from a seed, on loopback addresses.

Per commune: one station controller and 3-12 radio clusters depending on it; bulletin boards in the
district centres (thị trấn, phường) and about a third of the other communes. Every device gets its
own 127.1.x.y address, which the simulator answers. The same seed always gives the same fleet, and
seeding twice changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import Session, col, func, select

from monitor.inventory.choices import BroadcastTechnology, DeviceKind, Protocol, SystemCondition, UnitStructure
from monitor.inventory.fleetfile import FleetRow
from monitor.inventory.models import BroadcastSystem, Commune, Device
from monitor.inventory.service import ImportResult, apply_fleet_rows
from monitor.inventory.tokens import hash_token
from monitor.inventory.units import init_province, load_units

DEMO_HTTP_PORT = 18080
DEMO_SNMP_PORT = 16161
DEMO_SNMP_V3_PORT = 16162
DEMO_MQTT_PORT = 18830


@dataclass(frozen=True, slots=True)
class DemoPorts:
    """Where the demo's simulated fleet answers (every device shares one port per protocol) and its broker."""

    http: int = DEMO_HTTP_PORT
    snmp: int = DEMO_SNMP_PORT
    snmp_v3: int = DEMO_SNMP_V3_PORT
    mqtt: int = DEMO_MQTT_PORT


DEMO_SNMP_V3_CREDENTIALS = "v3:monitor:demo-auth-pass:demo-priv-pass"  # SHA / AES-128 (docs/vendor-formats.md)
DISTRICT_CENTRE_TYPES = frozenset({"Thị trấn", "Phường"})


@dataclass(frozen=True, slots=True)
class Vendor:
    vendor: str
    model: str
    profile: str


# Fictional vendors whose formats the simulator speaks; profiles of the same names map them.
CLUSTER_MQTT = Vendor("VietLoa", "IP-200 4G", "vietloa-ip200-mqtt")
CLUSTER_HTTP = Vendor("VietLoa", "IP-200", "vietloa-ip200-http")
CLUSTER_SNMP = Vendor("Đại Việt", "DV-RX8", "daiviet-rx-snmp")
CLUSTER_PUSH = Vendor("TruyềnThanh số", "TTS-1", "tts-heartbeat")
BOARD_HTTP = Vendor("Sao Bắc", "SB-55 LED", "saobac-board-http")
BOARD_PUSH = Vendor("Sao Bắc", "SB-43 LCD", "saobac-board-heartbeat")
CONTROLLER_SNMP = Vendor("Generic", "PC + phần mềm đài", "generic-mib2")


def _address(index: int) -> str:
    """The index-th loopback address of the fleet: 127.1.0.1, 127.1.0.2, ... 127.1.0.250, 127.1.1.1, ..."""
    return f"127.1.{index // 250}.{index % 250 + 1}"


def generate_demo_rows(
    communes: list[Commune], seed: int, today: date, ports: DemoPorts = DemoPorts()
) -> list[FleetRow]:
    """The demo fleet's devices for `communes`, deterministic by `seed`, answering on `ports`."""
    rng = random.Random(seed)
    rows: list[FleetRow] = []

    def add(
        code: str,
        name: str,
        kind: DeviceKind,
        commune: Commune,
        vendor: Vendor,
        protocol: Protocol,
        parent: str | None,
        interval: int,
        snmp_v3: bool = False,
    ) -> None:
        index = len(rows)
        credentials = None
        if protocol is Protocol.HTTP:
            address, port = f"http://{_address(index)}:{ports.http}/status", None
        elif protocol is Protocol.SNMP:
            address, port = _address(index), ports.snmp_v3 if snmp_v3 else ports.snmp
            credentials = DEMO_SNMP_V3_CREDENTIALS if snmp_v3 else "public"
        elif protocol is Protocol.MQTT:
            address, port = f"lang-son/{commune.code}/{code}/heartbeat", None
        else:
            address, port = "", None
        lat = lon = None
        if commune.lat is not None and commune.lon is not None:
            lat = round(commune.lat + rng.uniform(-0.02, 0.02), 5)
            lon = round(commune.lon + rng.uniform(-0.02, 0.02), 5)
        rows.append(
            FleetRow(
                line=index + 2,
                code=code,
                name=name,
                kind=kind,
                commune_code=commune.code,
                parent_code=parent,
                protocol=protocol,
                address=address,
                port=port,
                profile=vendor.profile,
                interval_s=interval,
                lat=lat,
                lon=lon,
                installed_on=today - timedelta(days=rng.randint(180, 5 * 365)),
                vendor=vendor.vendor,
                model=vendor.model,
                credentials=credentials,
            )
        )

    for commune in communes:
        station = f"{commune.code}-ST"
        add(
            station,
            f"Máy điều khiển đài {commune.name}",
            DeviceKind.STATION_CONTROLLER,
            commune,
            CONTROLLER_SNMP,
            Protocol.SNMP,
            None,
            60,
        )
        for n in range(1, rng.randint(3, 12) + 1):
            roll = rng.random()
            if roll < 0.55:
                vendor, protocol = CLUSTER_MQTT, Protocol.MQTT  # 4G, behind carrier NAT: it pushes
            elif roll < 0.8:
                vendor, protocol = CLUSTER_HTTP, Protocol.HTTP
            elif roll < 0.95:
                vendor, protocol = CLUSTER_SNMP, Protocol.SNMP
            else:
                vendor, protocol = CLUSTER_PUSH, Protocol.HEARTBEAT
            add(
                f"{commune.code}-CL{n:02d}",
                f"Cụm loa số {n} {commune.name}",
                DeviceKind.RADIO_CLUSTER,
                commune,
                vendor,
                protocol,
                station,
                60,
                snmp_v3=protocol is Protocol.SNMP and rng.random() < 0.1,
            )
        boards = rng.randint(1, 2) if commune.type in DISTRICT_CENTRE_TYPES else int(rng.random() < 1 / 3)
        for n in range(1, boards + 1):
            vendor, protocol = (BOARD_HTTP, Protocol.HTTP) if rng.random() < 0.7 else (BOARD_PUSH, Protocol.HEARTBEAT)
            add(
                f"{commune.code}-BB{n}",
                f"Bảng tin điện tử {n} {commune.name}",
                DeviceKind.BULLETIN_BOARD,
                commune,
                vendor,
                protocol,
                None,
                120,
            )
    return rows


def _seed_broadcast_systems(communes: list[Commune], rng: random.Random, session: Session) -> None:
    for commune in communes:
        session.add(
            BroadcastSystem(
                commune_code=commune.code,
                technology=BroadcastTechnology.IP.value,
                condition=SystemCondition.GOOD.value if rng.random() < 0.9 else SystemCondition.DEGRADED.value,
                installed_year=rng.randint(2020, 2025),
                note="Đài truyền thanh ứng dụng CNTT - viễn thông",
            )
        )
        if rng.random() < 0.3:  # a legacy system still standing, which the plan replaces
            session.add(
                BroadcastSystem(
                    commune_code=commune.code,
                    technology=rng.choice([BroadcastTechnology.WIRED, BroadcastTechnology.FM]).value,
                    condition=rng.choice([SystemCondition.DEGRADED, SystemCondition.BROKEN]).value,
                    installed_year=rng.randint(1998, 2012),
                    note="Đài cũ, chờ thay thế",
                )
            )


def demo_token(seed: int, code: str) -> str:
    """The heartbeat token of a demo device: an HMAC that the service and the simulator both derive.

    Only for the demo fleet; real devices get random tokens issued by the operator.
    """
    return hmac.new(f"demo-fleet-{seed}".encode(), code.encode(), hashlib.sha256).hexdigest()[:32]


def seed_demo(
    *,
    session: Session,
    seed: int,
    structure: UnitStructure = UnitStructure.Y2020,
    today: date | None = None,
    ports: DemoPorts = DemoPorts(),
) -> ImportResult:
    """Load the province's units and the generated fleet; a second run with the same seed and ports changes
    nothing."""
    init_province(session, load_units("lang-son", structure))
    communes = list(session.exec(select(Commune).order_by(col(Commune.code))))
    rows = generate_demo_rows(communes, seed, today or date(2026, 1, 1), ports)
    result = apply_fleet_rows(rows, session=session)
    pushed = [row.code for row in rows if row.protocol is Protocol.HEARTBEAT]
    for device in session.exec(select(Device).where(col(Device.code).in_(pushed), col(Device.token_hash).is_(None))):
        device.token_hash = hash_token(demo_token(seed, device.code))
    session.flush()
    if session.exec(select(func.count()).select_from(BroadcastSystem)).one() == 0:
        _seed_broadcast_systems(communes, random.Random(seed), session)
        session.flush()
    return result
