"""The TransparencyLog port answers parsed Rekor entries: what does not parse proves nothing
and is left out, so the other entries can still prove a signature was logged."""

from __future__ import annotations

import json

from connaisseur.adapters.rekor import AiohttpRekorClient
from connaisseur.application.deadline import Deadline
from tests.support.cosign import FakeRekor
from tests.support.fakes import FakeClock, ScriptedHttp


async def test_entries_are_parsed_and_unparsable_ones_left_out() -> None:
    rekor = FakeRekor()
    good = rekor.entry(b"payload", b"signature", "-----BEGIN PUBLIC KEY-----", 1_700_000_000)
    answer = [{"u1": {"body": "not base64!"}, "u2": FakeRekor.api_entry(good)}, "junk"]
    http = ScriptedHttp(
        [(200, {}, json.dumps(["u1", "u2"]).encode()), (200, {}, json.dumps(answer).encode())]
    )
    client = AiohttpRekorClient(http)  # type: ignore[arg-type]
    deadline = Deadline.after(FakeClock(frozen=True), 5)
    assert await client.find_entries("https://rekor.test", "sha256:00", deadline) == [good]
    assert http.requests == [
        "POST https://rekor.test/api/v1/index/retrieve",
        "POST https://rekor.test/api/v1/log/entries/retrieve",
    ]
