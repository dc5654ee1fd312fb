"""The control API of a running simulator (127.0.0.1 only), and the file that tells where it is.

    POST /inject  {"device": CODE, "fault": KIND, "for_s": N|null, "variant": ..., "delay_s": ...}
    POST /clear   {"device": CODE, "fault": KIND (optional: all faults when absent)}
    GET  /devices/{code}   its identity, current state and faults
    GET  /devices          how many devices, and which have faults
    GET  /                 what this simulator serves (ports, scenarios, counters)

Errors are JSON `{"error": ...}` with 400 (bad request), 404 (unknown device) or 422 (a fault the
device cannot show). `{data_dir}/simulator.json` holds the control URL and the pid while it runs.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from monitor.simulator.faults import parse_fault_kind
from monitor.simulator.fleet import Fleet, SimDevice

STATE_FILE = "simulator.json"


def device_view(fleet: Fleet, device: SimDevice) -> dict[str, Any]:
    """A device's identity, state and faults, JSON-ready."""
    state = device.snapshot(fleet.clock())
    return {
        "code": device.code,
        "kind": device.kind,
        "protocol": device.protocol,
        "profile": device.profile,
        "address": device.address,
        "host": device.host,
        "commune_code": device.commune_code,
        "district_code": device.district_code,
        "parent_code": device.parent_code,
        "interval_s": device.interval_s,
        "state": state.as_dict(),
        "faults": [fault.as_dict() for fault in device.faults.values()],
    }


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _optional_number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number or null")
    return float(value)


class ControlServer:
    """The control API over a fleet. `describe` supplies the body of `GET /`."""

    def __init__(
        self, fleet: Fleet, *, host: str = "127.0.0.1", port: int = 0, describe: Callable[[], dict[str, Any]]
    ) -> None:
        self.fleet = fleet
        self.host = host
        self.requested_port = port
        self.describe = describe
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port: int | None = None

    @property
    def url(self) -> str | None:
        """`http://127.0.0.1:PORT` once started."""
        return None if self.port is None else f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Serve the API."""
        app = web.Application()
        app.router.add_get("/", self._info)
        app.router.add_get("/devices", self._devices)
        app.router.add_get("/devices/{code}", self._device)
        app.router.add_post("/inject", self._inject)
        app.router.add_post("/clear", self._clear)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.requested_port)
        await self._site.start()
        server = cast(asyncio.Server, self._site._server)
        self.port = int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._site = None
        self.port = None

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response(self.describe())

    async def _devices(self, request: web.Request) -> web.Response:
        return web.json_response({"count": len(self.fleet), "with_faults": sorted(self.fleet.troubled)})

    async def _device(self, request: web.Request) -> web.Response:
        device = self.fleet.devices.get(request.match_info["code"])
        if device is None:
            return _error(404, f"no simulated device {request.match_info['code']!r}")
        return web.json_response(device_view(self.fleet, device))

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], SimDevice]:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(
                text=json.dumps({"error": "the body must be JSON"}), content_type="application/json"
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("device"), str):
            raise web.HTTPBadRequest(
                text=json.dumps({"error": 'the body must be an object with "device": CODE'}),
                content_type="application/json",
            )
        device = self.fleet.devices.get(body["device"])
        if device is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"no simulated device {body['device']!r}"}), content_type="application/json"
            )
        return body, device

    async def _inject(self, request: web.Request) -> web.Response:
        body, device = await self._body(request)
        try:
            kind = parse_fault_kind(str(body.get("fault", "")))
            for_s = _optional_number(body, "for_s")
            delay_s = _optional_number(body, "delay_s")
            variant = body.get("variant")
            if variant is not None and not isinstance(variant, str):
                raise ValueError("variant must be a string")
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            fault = self.fleet.inject(device.code, kind, for_s=for_s, variant=variant, delay_s=delay_s)
        except ValueError as exc:
            return _error(422, str(exc))
        return web.json_response({"injected": fault.as_dict(), "device": device_view(self.fleet, device)})

    async def _clear(self, request: web.Request) -> web.Response:
        body, device = await self._body(request)
        try:
            kind = parse_fault_kind(body["fault"]) if body.get("fault") else None
        except ValueError as exc:
            return _error(400, str(exc))
        cleared = self.fleet.clear(device.code, kind)
        return web.json_response(
            {"cleared": [fault.as_dict() for fault in cleared], "device": device_view(self.fleet, device)}
        )


def write_state_file(data_dir: Path, content: dict[str, Any]) -> Path:
    """Write `{data_dir}/simulator.json` atomically; return its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / STATE_FILE
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(content, indent=2), encoding="utf-8")
    temporary.replace(path)
    return path


def remove_state_file(data_dir: Path) -> None:
    """Remove `{data_dir}/simulator.json` if it is this process's (another simulator may have replaced it)."""
    path = data_dir / STATE_FILE
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def read_state_file(data_dir: Path) -> dict[str, Any]:
    """The content of `{data_dir}/simulator.json`; FileNotFoundError or ValueError when absent or broken."""
    content = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
    if not isinstance(content, dict) or not isinstance(content.get("control_url"), str):
        raise ValueError(f"{data_dir / STATE_FILE} holds no control_url")
    return content
