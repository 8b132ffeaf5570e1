"""Inclusion proofs and checkpoints (``domain/rekor.py``) against an independent oracle:
sigstore-python's Merkle check (``sigstore._internal.merkle``) on the same entries, for every
leaf of trees of every size up to 33, and for tampered proofs."""

from __future__ import annotations

import base64
import json

import pytest
from sigstore._internal.merkle import verify_merkle_inclusion
from sigstore.errors import VerificationError as SigstoreVerificationError
from sigstore.models import TransparencyLogEntry as SigstoreEntry
from sigstore_models.rekor.v1 import TransparencyLogEntry as EntryModel

from connaisseur.domain.errors import Rejection
from connaisseur.domain.rekor import (
    leaf_hash,
    root_from_audit_path,
    verify_checkpoint,
)
from connaisseur.domain.sigstore import log_id
from tests.support.sigstore_bundles import MerkleRekor, audit_path, b64, tree_hash


def sigstore_accepts(index: int, size: int, body: bytes, path: list[bytes], root: bytes) -> bool:
    entry = EntryModel.from_json(
        json.dumps(
            {
                "logIndex": str(index),
                "logId": {"keyId": b64(b"\x00" * 32)},
                "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                "inclusionProof": {
                    "logIndex": str(index),
                    "rootHash": b64(root),
                    "treeSize": str(size),
                    "hashes": [b64(h) for h in path],
                    "checkpoint": {"envelope": "unused"},
                },
                "canonicalizedBody": b64(body),
            }
        )
    )
    try:
        verify_merkle_inclusion(SigstoreEntry(entry))
    except SigstoreVerificationError:
        return False
    return True


def ours_accepts(index: int, size: int, body: bytes, path: list[bytes], root: bytes) -> bool:
    try:
        return root_from_audit_path(index, size, leaf_hash(body), path) == root
    except Rejection:
        return False


@pytest.mark.parametrize("size", range(1, 34))
def test_every_leaf_of_every_tree_agrees_with_sigstore(size: int) -> None:
    bodies = [f"entry {i}".encode() for i in range(size)]
    leaves = [leaf_hash(b) for b in bodies]
    root = tree_hash(leaves)
    for index in range(size):
        path = audit_path(index, leaves)
        assert ours_accepts(index, size, bodies[index], path, root)
        assert sigstore_accepts(index, size, bodies[index], path, root)
        tampered = [*path]
        if tampered:
            tampered[-1] = bytes(32)
            assert ours_accepts(index, size, bodies[index], tampered, root) is sigstore_accepts(
                index, size, bodies[index], tampered, root
            )
            assert not ours_accepts(index, size, bodies[index], tampered, root)
        # a proof for this leaf does not prove another body, a longer or shorter path fails
        assert not ours_accepts(index, size, b"other", path, root)
        assert not ours_accepts(index, size, bodies[index], [*path, bytes(32)], root)
        if path:
            assert not ours_accepts(index, size, bodies[index], path[:-1], root)


def test_an_index_outside_the_tree_is_refused() -> None:
    with pytest.raises(Rejection, match="does not fit"):
        root_from_audit_path(5, 5, bytes(32), [])


def test_a_checkpoint_names_its_tree_once_the_log_signed_it() -> None:
    rekor = MerkleRekor()
    note = rekor.checkpoint(12, b"\x07" * 32)
    public = rekor.key.public_key()
    assert verify_checkpoint(note, log_id(public), public) == (12, b"\x07" * 32)
    impostor = MerkleRekor()
    forged = rekor.checkpoint(12, b"\x07" * 32, signer=impostor)
    with pytest.raises(Rejection, match="not signed by the transparency log"):
        verify_checkpoint(forged, log_id(public), public)


@pytest.mark.parametrize(
    "text",
    [
        "no blank line\n\u2014 rekor.test AAAA\n",
        "a\n\nb\n\n\u2014 rekor.test AAAA\n",
        "origin\nnot-a-size\nAAAA\n\n\u2014 rekor.test AAAA\n",
        "x" * 20000,
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    rekor = MerkleRekor()
    public = rekor.key.public_key()
    with pytest.raises(Rejection):
        verify_checkpoint(text, log_id(public), public)


def test_a_checkpoint_with_an_unparsable_tree_is_refused_after_its_signature() -> None:
    rekor = MerkleRekor()
    note = "origin\nnot-a-size\nAAAA\n"
    hint = bytes.fromhex(rekor.log_id)[:4]
    signed = (
        f"{note}\n\u2014 origin {base64.b64encode(hint + rekor.sign(note.encode())).decode()}\n"
    )
    public = rekor.key.public_key()
    with pytest.raises(Rejection, match="malformed checkpoint"):
        verify_checkpoint(signed, log_id(public), public)
