"""The JSON depth limit works on the raw bytes; it must agree with a walk of the decoded tree."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from connaisseur.entrypoints.admission import BadRequestError, decode_json

LIMIT = 100


def tree_depth(node: Any) -> int:
    """Container nesting of a decoded document (a scalar is 0, ``{}`` is 1)."""
    if isinstance(node, dict):
        return 1 + max((tree_depth(v) for v in node.values()), default=0)
    if isinstance(node, list):
        return 1 + max((tree_depth(v) for v in node), default=0)
    return 0


def nested(depth: int, leaf: Any = 1) -> Any:
    node = leaf
    for level in range(depth):
        node = [node] if level % 2 else {"k": node}
    return node


# Strings that look like structure to a naive scanner: brackets, quotes, escapes, non-ASCII.
TRICKY = ['{"[', "]}", '\\"{', "\\", '\\\\"', "\u00e9{\u4e2d[", "\U0001f600]", "\n{\t"]


def random_document(rng: random.Random, depth: int) -> Any:
    if depth == 0 or rng.random() < 0.2:
        return rng.choice([None, True, 1.5, -3, rng.choice(TRICKY)])
    if rng.random() < 0.5:
        return [random_document(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(TRICKY) + str(i): random_document(rng, depth - 1) for i in range(3)}


def accepts(body: bytes, limit: int = LIMIT) -> bool:
    try:
        decode_json(body, limit)
    except BadRequestError:
        return False
    return True


@pytest.mark.parametrize("depth", [0, 1, 2, LIMIT - 1, LIMIT])
def test_documents_up_to_the_limit_are_accepted(depth: int) -> None:
    assert accepts(orjson.dumps(nested(depth)))


@pytest.mark.parametrize("depth", [LIMIT + 1, LIMIT + 2, 5 * LIMIT])
def test_documents_beyond_the_limit_are_refused(depth: int) -> None:
    body = b"[" * depth + b"]" * depth  # orjson.dumps itself stops at 255 levels
    with pytest.raises(BadRequestError, match="nested deeper than 100 levels"):
        decode_json(body, LIMIT)


def test_brackets_inside_strings_do_not_count() -> None:
    body = orjson.dumps({"a": "[" * 500 + '\\"{' * 200, "b": ["]" * 300]})
    assert accepts(body)


def test_many_shallow_containers_are_accepted() -> None:
    body = orjson.dumps({"items": [{"x": [1]} for _ in range(5000)]})
    assert accepts(body)


def test_whitespace_and_pretty_printing_do_not_matter() -> None:
    body = json.dumps(nested(LIMIT + 1), indent=2).encode()
    assert not accepts(body)
    assert accepts(json.dumps(nested(LIMIT), indent=2).encode())


@pytest.mark.parametrize("seed", range(200))
def test_agrees_with_a_walk_of_the_decoded_tree(seed: int) -> None:
    rng = random.Random(seed)
    document = random_document(rng, rng.randint(1, 12))
    body = json.dumps(document, ensure_ascii=rng.random() < 0.5).encode()
    limit = rng.randint(1, 8)
    assert accepts(body, limit) is (tree_depth(document) <= limit)


def test_invalid_json_is_refused_before_the_depth_check() -> None:
    with pytest.raises(BadRequestError, match="received invalid json"):
        decode_json(b'{"a": [}', LIMIT)


@pytest.mark.parametrize(
    "strings",
    [["[", "", "]"], ["", "{", ""], ["[[", "]]", ""], ['\\"[', "", "\\\\"], ["{}" * 60, ""]],
)
def test_strings_holding_brackets_next_to_empty_strings(strings: list[str]) -> None:
    # Enough brackets overall that the cheap count does not settle it, one level too deep.
    document: Any = strings
    for _ in range(LIMIT):
        document = [document, *strings]
    body = json.dumps(document).encode()
    assert tree_depth(document) == LIMIT + 1
    assert not accepts(body)
    assert accepts(json.dumps(document[0]).encode())


def test_a_realistic_object_with_managed_fields_is_accepted() -> None:
    fields: dict[str, Any] = {f"f:k{i}": {"f:a": {}, "f:b": {".": {}}} for i in range(60)}
    review = {"request": {"object": {"metadata": {"managedFields": [{"fieldsV1": fields}]}}}}
    assert accepts(orjson.dumps(review))
