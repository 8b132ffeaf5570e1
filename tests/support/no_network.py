"""An outbound-connection guard: every connect and name look-up of this process fails, and is
recorded, while it is active. Used to show that an offline verification makes no network
request at all (docs/decisions/0055-offline-bundles.md); a subprocess is instead run in a network
namespace of its own (``unshare --net``) where that is possible."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Attempts:
    """What tried to reach out while the guard was up."""

    seen: list[str] = field(default_factory=list)


@contextlib.contextmanager
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[Attempts]:
    """Refuse (``OSError``) and record every ``connect``, ``create_connection`` and
    ``getaddrinfo`` (asyncio's connections go through these) until the block ends."""
    attempts = Attempts()

    def refuse(what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.seen.append(f"{what}{args[1:] if what.startswith('socket.') else args}")
            raise OSError(101, f"network is off for this test ({what})")

        return refused

    with monkeypatch.context() as m:
        m.setattr(socket.socket, "connect", refuse("socket.connect"))
        m.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
        m.setattr(socket, "create_connection", refuse("create_connection"))
        m.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
        yield attempts


def port_closed(host_port: str) -> bool:
    """Whether nothing accepts connections at ``host:port`` any more (a stopped server)."""
    host, _, port = host_port.rpartition(":")
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) != 0


def network_namespace_prefix() -> list[str] | None:
    """``unshare --net`` when this machine lets us give a process no network at all (root or
    user namespaces), else ``None``."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, timeout=10, check=False)
    if probe.returncode == 0:
        return [unshare, "--net"]
    probe = subprocess.run(
        [unshare, "--user", "--map-root-user", "--net", "true"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return [unshare, "--user", "--map-root-user", "--net"] if probe.returncode == 0 else None


def mount_like_kubernetes(document: dict[str, Any], volume: Path) -> Path:
    """Lay out a ConfigMap's ``binaryData`` (or a Secret's ``data``) as the kubelet mounts it:
    the keys in a timestamped directory, ``..data`` linking to it, one link per key."""
    import base64

    real = volume / "..2026_01_01_00_00_00.000000001"
    real.mkdir(parents=True)
    for key, encoded in (document.get("binaryData") or document.get("data") or {}).items():
        (real / key).write_bytes(base64.b64decode(encoded))
        (volume / key).symlink_to(f"..data/{key}")
    (volume / "..data").symlink_to(real.name)
    return volume
