"""A small hand-made fleet covering every profile, for tests and examples.

Two communes of two districts: 06613 (district 180) with one device of each profile, and 06700
(district 181) with an HTTP cluster and a station controller. Push devices speak every second.
"""

from __future__ import annotations

from monitor.inventory.demo import DEMO_SNMP_V3_CREDENTIALS
from monitor.simulator.fleet import SimDevice

_DISTRICT = {"06613": "180", "06700": "181"}

# code, kind, protocol, address, profile, parent, credentials
_SAMPLES = [
    ("06613-ST", "station_controller", "snmp", "127.1.0.5", "generic-mib2", None, "public"),
    ("06613-CL01", "radio_cluster", "http", "http://127.1.0.2:18080/status", "vietloa-ip200-http", "06613-ST", None),
    ("06613-CL02", "radio_cluster", "snmp", "127.1.0.6", "daiviet-rx-snmp", "06613-ST", "public"),
    ("06613-CL03", "radio_cluster", "snmp", "127.1.0.7", "daiviet-rx-snmp", "06613-ST", DEMO_SNMP_V3_CREDENTIALS),
    (
        "06613-CL04",
        "radio_cluster",
        "mqtt",
        "lang-son/06613/06613-CL04/heartbeat",
        "vietloa-ip200-mqtt",
        "06613-ST",
        None,
    ),
    ("06613-CL05", "radio_cluster", "heartbeat", "", "tts-heartbeat", "06613-ST", None),
    ("06613-BB1", "bulletin_board", "http", "http://127.1.0.3:18080/status", "saobac-board-http", None, None),
    ("06613-BB2", "bulletin_board", "heartbeat", "", "saobac-board-heartbeat", None, None),
    ("06700-ST", "station_controller", "snmp", "127.1.0.11", "generic-mib2", None, "public"),
    ("06700-CL01", "radio_cluster", "http", "http://127.1.0.10:18080/status", "vietloa-ip200-http", "06700-ST", None),
]


def sample_devices(push_interval_s: int = 1) -> list[SimDevice]:
    """One device of each profile in commune 06613 (district 180), two more in 06700 (district 181)."""
    devices = []
    for code, kind, protocol, address, profile, parent, credentials in _SAMPLES:
        port = (16162 if credentials and credentials.startswith("v3:") else 16161) if protocol == "snmp" else None
        commune = code.split("-")[0]
        devices.append(
            SimDevice(
                code=code,
                kind=kind,
                protocol=protocol,
                address=address,
                port=port,
                profile=profile,
                interval_s=push_interval_s if protocol in ("mqtt", "heartbeat") else 60,
                parent_code=parent,
                commune_code=commune,
                district_code=_DISTRICT[commune],
                credentials=credentials,
            )
        )
    return devices
