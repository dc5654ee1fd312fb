"""The load side of `bench_collect.py`: the project's `Simulator` serving a synthetic fleet (see `_common`).

    python bench/_sim_process.py DEVICES MAX_SECONDS

Prints `READY {"http_port": ..., "snmp_port": ...}` once serving, then runs until its stdin closes (the
parent is done, or died), SIGTERM, or MAX_SECONDS, whichever comes first. The parent pins it to CPU 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from _common import event_loop_runner, say, sim_devices

from monitor.simulator import Simulator


async def serve(devices: int, max_seconds: float) -> None:
    """Serve the fleet on ephemeral ports until told to stop."""
    simulator = Simulator(sim_devices(devices), seed=1, http_port=0, snmp_port=0, snmp_v3_port=0, control_port=0)
    await simulator.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), stop.set)  # readable means EOF here: the parent closed the pipe
    say("READY", {"http_port": simulator.http_port, "snmp_port": simulator.snmp_port})
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max_seconds)
    finally:
        await simulator.stop()


def main() -> None:
    """Parse DEVICES and MAX_SECONDS and serve."""
    devices, max_seconds = int(sys.argv[1]), float(sys.argv[2])
    _, run = event_loop_runner()
    run(serve(devices, max_seconds))


if __name__ == "__main__":
    main()
