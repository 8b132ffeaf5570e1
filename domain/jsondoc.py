"""JSON from untrusted sources, decoded with a bound on nesting.

The standard library's decoder recurses once per nesting level and raises ``RecursionError`` —
not ``ValueError`` — past the interpreter's limit, and a document that decodes just under it
still fails when re-encoded (TUF's canonical JSON) from a deeper stack. Every parser of
attacker bytes (admission requests, trust data, manifests, envelopes, token answers) therefore
decodes through :func:`loads`, which refuses more than :data:`MAX_DEPTH` levels (D8) with a
``ValueError``, the error those parsers already handle.
"""

from __future__ import annotations

import json
from typing import Any

#: Deepest nesting accepted (D8): far beyond any real manifest, envelope or TUF role.
MAX_DEPTH = 100

# Structure only: brackets (``[]`` folded into ``{}``) and the quotes that delimit strings.
_STRUCTURE = bytes.maketrans(b"[]", b"{}")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')


def loads(raw: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Decode JSON text nested at most ``max_depth`` levels deep.

    Raises:
        ValueError: not JSON (``json.JSONDecodeError``, ``UnicodeDecodeError``), or nested
            deeper than ``max_depth``.
    """
    try:
        document = json.loads(raw)
    except RecursionError as e:
        raise ValueError(f"JSON nested deeper than {max_depth} levels") from e
    text = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if nested_deeper_than(text, max_depth):
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return document


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether the valid JSON text ``body`` nests arrays/objects more than ``limit`` deep.

    Works on the bytes with C-speed bytes methods instead of walking the decoded tree in
    Python (which would cost more than the whole rest of a static admission). ``body`` must
    already have decoded, so brackets outside strings are balanced and every unescaped quote
    opens or closes a string. Steps:

    1. Drop escape pairs (escaped backslashes first, then escaped quotes), so only the
       delimiting quotes remain.
    2. Keep only brackets and quotes; fold ``[]`` into ``{}``.
    3. Cut out the strings: strings without brackets are ``""`` pairs, removed with one
       ``replace``. If a quote survives, some string held brackets (the first such string's
       opening quote ends an odd run of quotes, so it cannot pair away); then pair quotes
       in order with ``split``.
    4. Each ``replace(b"{}", b"")`` removes exactly the innermost level, so the text is empty
       after ``depth`` passes.
    """
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = body.translate(_STRUCTURE, _NOT_STRUCTURE)
    if structure.count(b"{") <= limit:
        return False  # too few brackets to nest that deep, strings included: the usual case
    brackets = structure.replace(b'""', b"")
    if b'"' in brackets:
        brackets = b"".join(structure.split(b'"')[::2])
    for _ in range(limit):
        brackets = brackets.replace(b"{}", b"")
        if not brackets:
            return False
    return True
