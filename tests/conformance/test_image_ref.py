"""Conformance: image references (area ``image_ref``)."""

from __future__ import annotations

from typing import Any

import pytest

from connaisseur.domain.errors import ConnaisseurError
from connaisseur.domain.image import ImageReference, normalise_registry_repo
from tests.support.conformance import params


def _run(case: dict[str, Any]) -> dict[str, Any]:
    inputs, op = case["inputs"], case["op"]
    if op == "parse_registry_repo":
        return {"value": normalise_registry_repo(inputs["input"])}
    image = ImageReference.parse(inputs["ref"])
    if op == "parse_image":
        return {
            "repository": image.context,
            "identifier": image.identifier,
            "name": image.name,
            "original": image.original,
        }
    if op == "image_digest":
        return {"digest": image.digest}
    if op == "image_tag":
        return {"tag": image.tag}
    if op == "image_scope":
        return {"scope": image.scope(inputs["scope_tag"])}
    if op == "image_set_digest":
        return {
            "name_before": image.name,
            "name_after": image.with_digest(inputs["new_digest"]).name,
        }
    if op == "notary_reference":
        return {"notary_reference": image.notary_reference}
    raise AssertionError(f"unhandled op {op}")


@pytest.mark.parametrize("case", params("image_ref"))
def test_image_ref(case: dict[str, Any]) -> None:
    expected = case["expected"]
    if not expected["ok"]:
        with pytest.raises(ConnaisseurError) as info:
            _run(case)
        assert info.value.category == expected["error"]
        return
    result = _run(case)
    for key, value in expected.items():
        if key != "ok":
            assert result[key] == value, key
