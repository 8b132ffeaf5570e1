"""Where the cluster tests find their binaries, and what a machine without them is told."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.support import kube, tools


def test_missing_binaries_give_one_line_naming_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        kube, "find_tool", lambda name: None if name.startswith("kube-") else Path(name)
    )
    reason = kube.kube_tools()
    assert isinstance(reason, str)
    assert "\n" not in reason
    assert reason.startswith("kube-apiserver, kube-controller-manager not found")
    assert "apt-get install etcd-server" in reason
    assert "kubectl" in reason


def test_a_tool_is_taken_from_path_then_from_the_project_tools_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on_path, local = tmp_path / "path", tmp_path / "tools"
    for folder in (on_path, local):
        folder.mkdir()
        binary = folder / "mytool"
        binary.write_text("#!/bin/sh\n")
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(tools, "TOOLS_BIN", local)
    monkeypatch.setattr(tools, "unpack_script", lambda: None)
    monkeypatch.setenv("PATH", str(on_path))
    assert tools.find_tool("mytool") == on_path / "mytool"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert tools.find_tool("mytool") == local / "mytool"
    assert tools.find_tool("absent") is None
