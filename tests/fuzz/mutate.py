"""A small deterministic mutator: byte-level havoc plus JSON-aware mutations of seed documents.

Used by the built-in fuzz engine, as atheris' custom mutator (half of its mutations) and by the
webhook fuzzer. Everything is drawn from the ``random.Random`` handed in, so a seed reproduces a
run. The JSON mutations produce what byte flips rarely reach: every JSON type in every place,
huge and deeply nested values, numbers beyond 64 bits and floats, unicode and control
characters, lone surrogates and duplicate keys.
"""

from __future__ import annotations

import json
import random
from typing import Any

#: Text that parsers mishandle: numbers at and past the limits, odd unicode, separators.
INTERESTING_TEXT = [
    "",
    "0",
    "-1",
    "18446744073709551616",
    "9" * 400,
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "0.000000000000000000001",
    "\u0000",
    "\u202e",
    "\ufeff",
    "\uffff",
    "\U0001f600",
    "ǅ",
    "İ",
    "\u00b2",
    "\u0663",
    "a" * 300,
    "/" * 64,
    ":",
    "@",
    "@sha256:" + "0" * 64,
    ":" * 10,
    "*",
    "{a,b}",
    "[",
    "\\",
    "%00",
    "..",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59.999999999-01:00",
    "99991231235959.9999Z",
    'realm="http://evil.test/"',
]


def interesting_values(rng: random.Random, depth: int = 0) -> Any:
    """One hostile JSON value."""
    choice = rng.randrange(14)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 1, 2**31, 2**63 - 1, -(2**63), 2**64, 10**30])
    if choice == 3:
        return rng.choice([0.5, -0.0, 1e308, -1e-308, 3.0])
    if choice in (4, 5, 6):
        return rng.choice(INTERESTING_TEXT)
    if choice == 7:
        return rng.choice(INTERESTING_TEXT) * rng.randrange(1, 40)
    if choice == 8 and depth < 4:
        return [interesting_values(rng, depth + 1) for _ in range(rng.randrange(4))]
    if choice == 9 and depth < 4:
        keys = rng.sample(INTERESTING_TEXT[:12], rng.randrange(4))
        return {k: interesting_values(rng, depth + 1) for k in keys}
    if choice == 10:
        return nested(rng.randrange(50, 400))
    if choice == 11:
        return [rng.choice([{}, [], 0, ""])] * rng.randrange(100, 5000)
    if choice == 12:
        return "".join(chr(rng.randrange(0x10FFFF)) for _ in range(rng.randrange(1, 20)))
    return {}


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def deep_text(data: bytes, rng: random.Random) -> bytes:
    """Nesting past every recursion limit, spliced in as text after a ``:`` (or around all)."""
    depth = rng.choice([101, 999, 1001, 3000, 100_000])
    deep = b"[" * depth + b"0" + b"]" * depth
    colons = [i for i in range(min(len(data), 4096)) if data[i : i + 1] == b":"]
    if not colons:
        return b"[" * depth + data + b"]" * depth
    at = rng.choice(colons) + 1
    end = at
    while end < len(data) and data[end : end + 1] not in (b",", b"}"):
        end += 1
    return data[:at] + deep + data[end:]


def paths(value: Any, prefix: tuple[Any, ...] = (), limit: int = 400) -> list[tuple[Any, ...]]:
    """Paths to the nodes of ``value`` (breadth-first, at most ``limit``)."""
    found: list[tuple[Any, ...]] = []
    queue: list[tuple[tuple[Any, ...], Any]] = [(prefix, value)]
    while queue and len(found) < limit:
        path, node = queue.pop(0)
        found.append(path)
        if isinstance(node, dict):
            queue += [((*path, k), v) for k, v in node.items()]
        elif isinstance(node, list):
            queue += [((*path, i), v) for i, v in enumerate(node[:50])]
    return found


def replace_at(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return value


def mutate_json(document: Any, rng: random.Random) -> Any:
    """One structural mutation of a decoded JSON document (modified in place and returned)."""
    path = rng.choice(paths(document))
    parent: Any = document
    for key in path[:-1]:
        parent = parent[key]
    node = parent[path[-1]] if path else document
    action = rng.randrange(6)
    if action == 0 and path and isinstance(parent, dict):
        del parent[path[-1]]
        return document
    if action == 1 and isinstance(node, list) and node:
        return replace_at(document, path, node * rng.randrange(2, 200))
    if action == 2 and isinstance(node, dict):
        node[rng.choice(INTERESTING_TEXT)] = interesting_values(rng)
        return document
    if action == 3 and isinstance(node, str):
        return replace_at(document, path, _mutate_text(node, rng))
    return replace_at(document, path, interesting_values(rng))


def _mutate_text(value: str, rng: random.Random) -> str:
    cut = rng.randrange(len(value) + 1)
    insert = rng.choice(INTERESTING_TEXT)
    if rng.random() < 0.5:
        return value[:cut] + insert + value[cut:]
    return value[:cut] + insert + value[cut + rng.randrange(1, 4) :]


def encode(document: Any, rng: random.Random) -> bytes:
    """Serialise, sometimes with a duplicated key (a second value for the same name)."""
    raw = json.dumps(document, ensure_ascii=rng.random() < 0.3, allow_nan=True)
    if rng.random() < 0.1 and '":' in raw:
        at = rng.choice([i for i in range(len(raw)) if raw.startswith('{"', i)] or [0])
        end = raw.find('":', at)
        if raw.startswith('{"', at) and end > at:
            key = raw[at + 1 : end + 1]
            raw = raw[: at + 1] + f"{key}:{json.dumps(interesting_values(rng))}," + raw[at + 1 :]
    return raw.encode("utf-8", "surrogatepass")


def havoc(data: bytes, rng: random.Random, seeds: list[bytes], max_size: int) -> bytes:
    """A few byte-level mutations (flips, inserts, deletes, repeats, splices)."""
    out = bytearray(data)
    for _ in range(1 + rng.randrange(6)):
        action = rng.randrange(8)
        at = rng.randrange(len(out) + 1)
        if action == 0 and out:
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif action == 1 and out:
            out[rng.randrange(len(out))] = rng.choice([0, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif action == 2:
            out[at:at] = rng.choice(INTERESTING_TEXT).encode("utf-8", "surrogatepass")
        elif action == 3 and out:
            del out[at : at + rng.randrange(1, 64)]
        elif action == 4 and out:
            chunk = out[at : at + rng.randrange(1, 32)]
            out[at:at] = chunk * rng.randrange(1, 64)
        elif action == 5 and seeds:
            other = rng.choice(seeds)
            start = rng.randrange(len(other) + 1)
            out[at:] = other[start : start + rng.randrange(1, 256)]
        elif action == 6:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        else:
            out[at:at] = rng.choice([b"[", b"{", b'"', b"]", b"}", b",", b":", b"\\u0000"])
    return bytes(out[:max_size])


class Mutator:
    """Derives inputs from a target's seeds; ``prefix`` leading bytes select a variant."""

    def __init__(self, seeds: list[bytes], prefix: int = 0, max_size: int = 1 << 20) -> None:
        self.seeds = seeds or [b""]
        self.prefix = prefix
        self.max_size = max_size

    def next(self, rng: random.Random) -> bytes:
        """A fresh input: a seed mutated by one to four rounds."""
        data = rng.choice(self.seeds)
        for _ in range(1 + rng.randrange(4)):
            data = self.mutate(data, rng)
        return data

    def mutate(self, data: bytes, rng: random.Random) -> bytes:
        head, body = data[: self.prefix], data[self.prefix :]
        if rng.random() < 0.05 and self.prefix:
            head = bytes(rng.randrange(256) for _ in range(self.prefix))
        if rng.random() < 0.05:
            return head + deep_text(body, rng)[: self.max_size]
        if rng.random() < 0.6:
            try:
                document = json.loads(body)
            except (ValueError, RecursionError):
                document = None
            if isinstance(document, dict | list):
                return head + encode(mutate_json(document, rng), rng)[: self.max_size]
        return head + havoc(body, rng, self.seeds, self.max_size)
