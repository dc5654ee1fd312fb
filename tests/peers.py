"""Real peers for the tests: Debian's snmpd and Mosquitto, on free loopback ports, stopped by their pid.

    with start_snmpd(tmp_path) as agent:      # agent.port; v2c community `public`, v3 user `monitor`
        ...
    broker = start_mosquitto(tmp_path)         # broker.port; broker.stop(); start_mosquitto(tmp_path, port=...)

Both refuse to start (RuntimeError with the peer's log) rather than leave a test waiting. Debian ships no
MIB files: snmpd and the net-snmp tools run with MIB loading off and numeric OIDs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

SNMP_COMMUNITY = "public"
SNMP_V3_USER = "monitor"
SNMP_V3_AUTH = "authpass123"
SNMP_V3_PRIV = "privpass123"
SNMP_V3_CREDENTIALS = f"v3:{SNMP_V3_USER}:{SNMP_V3_AUTH}:{SNMP_V3_PRIV}"
SYS_DESCR = "Lang Son test agent"
# Net-SNMP tools without MIB files: no "Cannot find module" noise, numeric OIDs only.
NET_SNMP_ENV = {**os.environ, "MIBS": "", "MIBDIRS": "/nonexistent"}


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 for `kind` (TCP by default) at the time of asking."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], grace_s: float = 10) -> None:
    """End a process we started, by its pid only: SIGTERM, then SIGKILL if it is still there after `grace_s`."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@dataclass
class Peer:
    """A peer process: its port, its folder and log; `stop()` ends it by its pid."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    folder: Path
    log: Path
    config: Path = field(default_factory=Path)

    def stop(self) -> None:
        """SIGTERM the process (its pid only), SIGKILL it after 5 s."""
        stop_process(self.process, grace_s=5)

    def log_text(self) -> str:
        """What the peer wrote to its log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _spawn(name: str, command: list[str], folder: Path, port: int, config: Path) -> Peer:
    log = folder / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=NET_SNMP_ENV)
    return Peer(name, process, port, folder, log, config)


def _fail(peer: Peer, why: str) -> RuntimeError:
    peer.stop()
    return RuntimeError(f"{peer.name} did not start ({why}); its log:\n{peer.log_text()}")


def snmp_get_packet(oid: str = "1.3.6.1.2.1.1.3.0", community: str = SNMP_COMMUNITY) -> bytes:
    """A minimal v2c GetRequest (request-id 1) for readiness checks."""
    arcs = [int(a) for a in oid.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.insert(0, 0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(chunk)
    varbind = b"\x30" + bytes([len(body) + 4]) + b"\x06" + bytes([len(body)]) + body + b"\x05\x00"
    varbinds = b"\x30" + bytes([len(varbind)]) + varbind
    pdu = b"\x02\x01\x01\x02\x01\x00\x02\x01\x00" + varbinds
    message = b"\x02\x01\x01\x04" + bytes([len(community)]) + community.encode() + b"\xa0" + bytes([len(pdu)]) + pdu
    return b"\x30" + bytes([len(message)]) + message


def start_snmpd(folder: Path, *, port: int | None = None, extra_config: str = "", timeout_s: float = 10.0) -> Peer:
    """Debian's snmpd on 127.0.0.1:`port` (a free one by default): v2c `public`, v3 authPriv user
    `monitor` (SHA `authpass123`, AES `privpass123`), sysDescr `SYS_DESCR`, 4 MiB receive buffer."""
    if shutil.which("snmpd") is None:
        raise RuntimeError("snmpd is not installed: apt-get install snmpd snmp")
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port(socket.SOCK_DGRAM)
    persistent = folder / "snmpd-state"
    persistent.mkdir(exist_ok=True)
    config = folder / "snmpd.conf"
    config.write_text(
        f"agentAddress udp:127.0.0.1:{port}\n"
        f"rocommunity {SNMP_COMMUNITY} 127.0.0.1\n"
        f"createUser {SNMP_V3_USER} SHA {SNMP_V3_AUTH} AES {SNMP_V3_PRIV}\n"
        f"rouser {SNMP_V3_USER} priv\n"
        f"sysDescr {SYS_DESCR}\n"
        "[snmp] serverRecvBuf 4194304\n"
        f"[snmp] persistentDir {persistent}\n"
        f"{extra_config}"
    )
    peer = _spawn("snmpd", ["snmpd", "-f", "-Lo", "-C", "-c", str(config)], folder, port, config)
    deadline = time.monotonic() + timeout_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.2)
        while time.monotonic() < deadline:
            if peer.process.poll() is not None:
                raise _fail(peer, f"exited with {peer.process.returncode}")
            probe.sendto(snmp_get_packet(), ("127.0.0.1", port))
            try:
                probe.recvfrom(4096)
                return peer
            except TimeoutError:
                continue
    raise _fail(peer, f"no answer on udp 127.0.0.1:{port} within {timeout_s:g} s")


def start_mosquitto(folder: Path, *, port: int | None = None, timeout_s: float = 10.0) -> Peer:
    """Mosquitto on 127.0.0.1:`port` (a free one by default), anonymous, no persistence."""
    if shutil.which("mosquitto") is None:
        raise RuntimeError("mosquitto is not installed: apt-get install mosquitto")
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = folder / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stdout\n")
    config.chmod(0o644)
    peer = _spawn("mosquitto", ["mosquitto", "-c", str(config)], folder, port, config)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            raise _fail(peer, f"exited with {peer.process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return peer
        except OSError:
            time.sleep(0.05)
    raise _fail(peer, f"not listening on 127.0.0.1:{port} within {timeout_s:g} s")


def snmpget(port: int, *oids: str, community: str = SNMP_COMMUNITY) -> dict[str, str]:
    """What net-snmp's `snmpget -v2c -On -Oq -Ot` says, as {oid without leading dot: value text}
    (TimeTicks as raw hundredths, strings without quotes)."""
    result = subprocess.run(
        ["snmpget", "-v2c", "-c", community, "-On", "-Oq", "-Ot", f"127.0.0.1:{port}", *oids],
        capture_output=True,
        text=True,
        timeout=10,
        env=NET_SNMP_ENV,
        check=True,
    )
    values = {}
    for line in result.stdout.splitlines():
        oid, _, value = line.partition(" ")
        values[oid.lstrip(".")] = value.strip().strip('"')
    return values
