"""How many requests a second the simulator answers on one core: a bounded load check on loopback.

    python -m monitor.simulator.loadcheck http --seconds 5
    python -m monitor.simulator.loadcheck snmp --seconds 5 --loop uvloop

The simulator runs in a child process pinned to CPU 0, the load generator (raw asyncio sockets, the
cheapest client there is) in this process pinned to CPU 1; the figure is answers per second and the
child's CPU seconds per 1,000 answers, read from /proc. Every loop is bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

from monitor.simulator.fleet import Fleet, SimDevice

_TICKS = os.sysconf("SC_CLK_TCK")


def _address(index: int) -> str:
    return f"127.1.{index // 250}.{index % 250 + 1}"


def synthetic_devices(count: int, protocol: str) -> list[SimDevice]:
    """`count` devices of one protocol on 127.1.x.y, half of each of the protocol's two vendors."""
    devices = []
    for index in range(count):
        host = _address(index)
        if protocol == "http":
            profile = "vietloa-ip200-http" if index % 2 else "saobac-board-http"
            kind = "radio_cluster" if index % 2 else "bulletin_board"
            devices.append(SimDevice(f"D{index:05d}", kind, "http", f"http://{host}:18080/status", None, profile))
        else:
            profile = "daiviet-rx-snmp" if index % 2 else "generic-mib2"
            kind = "radio_cluster" if index % 2 else "station_controller"
            devices.append(SimDevice(f"D{index:05d}", kind, "snmp", host, 16161, profile, credentials="public"))
    return devices


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


async def _serve(protocol: str, devices: int, variant: str) -> None:
    from aiohttp import web

    from monitor.simulator.http import StatusServer
    from monitor.simulator.snmp import SnmpAgent

    fleet = Fleet(synthetic_devices(devices, protocol), seed=1)
    server: Any
    if protocol == "http":
        server = StatusServer(fleet, port=0)
        await server.start()
        if variant == "app":  # the same handler behind web.Application, for the comparison
            await server.stop()
            app = web.Application()
            app.router.add_get("/{tail:.*}", server._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "0.0.0.0", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        else:
            port = server.port
    else:
        server = SnmpAgent(fleet, port=0)
        await server.start()
        port = server.port
    print(f"READY {port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), 300)  # never outlives a forgotten parent for long


async def _http_load(port: int, devices: int, seconds: float, workers: int) -> tuple[int, int]:
    done = failed = 0
    deadline = time.monotonic() + seconds

    async def worker(offset: int) -> None:
        nonlocal done, failed
        index = offset
        while time.monotonic() < deadline:
            host = _address(index % devices)
            index += workers
            try:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(f"GET /status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                data = await asyncio.wait_for(reader.read(-1), 5)
                writer.close()
                if data.startswith(b"HTTP/1.1 200"):
                    done += 1
                else:
                    failed += 1
            except (OSError, TimeoutError):
                failed += 1

    await asyncio.gather(*(worker(n) for n in range(workers)))
    return done, failed


async def _snmp_load(port: int, devices: int, seconds: float, window: int) -> tuple[int, int]:
    from monitor.simulator.ber import GET_REQUEST, encode_message, varbind

    oids = ["1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.2.2.1.8.1"]
    packets = [
        encode_message(b"public", GET_REQUEST, 1 + n, [varbind(oid, 0x05, None) for oid in oids])
        for n in range(min(devices, 1000))
    ]
    loop = asyncio.get_running_loop()
    answered = 0
    sent = 0
    free = asyncio.Semaphore(window)

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            nonlocal answered
            answered += 1
            free.release()

    transport, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            await asyncio.wait_for(free.acquire(), 1.0)
        except TimeoutError:  # a lost datagram: give its slot back
            free.release()
            continue
        transport.sendto(packets[sent % len(packets)], (_address(sent % devices), port))
        sent += 1
    await asyncio.sleep(0.5)
    transport.close()
    return answered, sent - answered


def main(argv: list[str] | None = None) -> None:
    """Run the load check (or, with `serve`, the child that it measures)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("protocol", choices=["http", "snmp", "serve-http", "serve-snmp"])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio", help="event loop of the server")
    parser.add_argument("--variant", choices=["lowlevel", "app"], default="lowlevel", help="aiohttp server flavour")
    args = parser.parse_args(argv)
    seconds = min(max(args.seconds, 1.0), 60.0)
    if args.protocol.startswith("serve-"):
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(_serve(args.protocol[6:], args.devices, args.variant))
        else:
            asyncio.run(_serve(args.protocol[6:], args.devices, args.variant))
        return
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {1})
    command = [sys.executable, "-m", "monitor.simulator.loadcheck", f"serve-{args.protocol}"]
    command += ["--devices", str(args.devices), "--loop", args.loop, "--variant", args.variant]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(child.pid, {0})
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith("READY"):
            raise SystemExit(f"the simulator did not start: {line!r}")
        port = int(line.split()[1])
        load = _http_load if args.protocol == "http" else _snmp_load
        asyncio.run(load(port, args.devices, 0.5, args.concurrency))  # warm-up
        cpu_before, started = _cpu_seconds(child.pid), time.monotonic()
        answered, failed = asyncio.run(load(port, args.devices, seconds, args.concurrency))
        elapsed, cpu = time.monotonic() - started, _cpu_seconds(child.pid) - cpu_before
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
    print(
        f"{args.protocol} ({args.variant if args.protocol == 'http' else 'udp'}, {args.loop}): "
        f"{answered / elapsed:,.0f} answers/s over {elapsed:.1f} s, {failed} failed; "
        f"server CPU {cpu / elapsed:.0%} of a core, {1000 * cpu / max(answered, 1):.3f} s per 1,000 answers; "
        f"at 100 % of a core: {answered / max(cpu, 1e-9):,.0f} answers/s"
    )


if __name__ == "__main__":
    main()
