"""The scenario's vendors as the runner drives them: faults in, request counts out.

`LocalVendor` is a simulator the tool runs in its own event loop (`serve_vendors`);
`RemoteVendor` is an external simulator reached over its `/_sim` control routes.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp

from gateway.chaos.timeline import HEALTHY, VendorFaults
from gateway.simulator import VendorHandle

_CONTROL_TIMEOUT = aiohttp.ClientTimeout(total=5)


class VendorControl(Protocol):
    name: str
    url: str  # root URL, e.g. http://127.0.0.1:9001

    async def apply(self, faults: VendorFaults) -> None: ...

    async def requests_seen(self) -> int: ...


class LocalVendor:
    def __init__(self, handle: VendorHandle) -> None:
        self.handle = handle
        self.name = handle.name
        self.url = handle.base_url

    async def apply(self, faults: VendorFaults) -> None:
        if faults.down and self.handle.listening:
            await self.handle.go_down()
        elif not faults.down and not self.handle.listening:
            await self.handle.come_up()
        self.handle.set_faults(faults.faults)

    async def requests_seen(self) -> int:
        return self.handle.stats().total


class RemoteVendor:
    def __init__(self, name: str, url: str, session: aiohttp.ClientSession) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self._session = session

    async def apply(self, faults: VendorFaults) -> None:
        if faults.down:
            raise ValueError(f"vendor '{self.name}' is external: 'down' cannot close its port")
        body = [f.model_dump(mode="json", exclude_none=True) for f in faults.faults]
        async with self._session.put(
            self.url + "/_sim/faults", json=body, timeout=_CONTROL_TIMEOUT
        ) as response:
            if response.status != 200:
                text = (await response.text())[:200]
                raise RuntimeError(f"vendor '{self.name}' refused the faults: {text}")

    async def requests_seen(self) -> int:
        async with self._session.get(
            self.url + "/_sim/stats", timeout=_CONTROL_TIMEOUT
        ) as response:
            data = await response.json()
        return int(data["total"])


async def heal(vendors: list[VendorControl]) -> None:
    """Every vendor back to healthy (the end of a run, and its clean-up on errors)."""
    for vendor in vendors:
        await vendor.apply(HEALTHY)
