"""What a stack's processes listen on: the sockets in LISTEN state of a process and its children.

Read with psutil (``/proc/net/tcp*`` underneath), so the check sees what the kernel bound, not what
a configuration file says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Listener:
    pid: int
    command: str
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.address.split("%")[0]).is_loopback

    def __str__(self) -> str:
        return f"{self.command} (pid {self.pid}) on {self.address}:{self.port}"


def listeners(pids: Iterable[int]) -> list[Listener]:
    """Every listening TCP socket of ``pids`` and their descendants."""
    import psutil

    found: dict[tuple[int, str, int], Listener] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            try:
                sockets = process.net_connections(kind="tcp")
                command = " ".join(process.cmdline()[:3]) or process.name()
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            for sock in sockets:
                if sock.status == psutil.CONN_LISTEN:
                    listener = Listener(process.pid, command, sock.laddr.ip, sock.laddr.port)
                    found[(listener.pid, listener.address, listener.port)] = listener
    return sorted(found.values(), key=lambda item: (item.port, item.pid))


def pids_of(run_dir: Path) -> list[int]:
    """The pids the stack scripts recorded (``<state>/run/<service>.pid``)."""
    return [
        int(path.read_text().strip()) for path in sorted(run_dir.glob("*.pid")) if path.read_text().strip()
    ]
