"""Rekor entries from a directory: the :class:`TransparencyLog` port offline.

For cosign signatures that carry no Rekor bundle, ``connaisseur bundle export`` stores what
Rekor answered: ``rekor/HOST[:PORT]/<sha256 hex of the payload>.json``, in the form of Rekor's
``/api/v1/log/entries/retrieve`` answer (a JSON list of ``{uuid: entry}`` objects;
docs/decisions/0055-offline-bundles.md).
They are judged offline by ``domain.rekor`` (SET against the configured Rekor key) as when
fetched; a payload the bundle has no file for has no entries, as Rekor says for an unknown hash.
"""

from __future__ import annotations

from collections.abc import Sequence

from connaisseur.adapters.bundle_files import BundleFiles
from connaisseur.adapters.rekor import parse_entries
from connaisseur.adapters.tuf_directory import server_directory
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import TransparencyLog
from connaisseur.domain import jsondoc
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.rekor import RekorEntry

REKOR_DIR = "rekor"


def rekor_entries_path(host: str, artifact_hash: str) -> tuple[str, ...]:
    """Path segments of the entries for ``artifact_hash`` (``sha256:<hex>``) of a Rekor."""
    return (REKOR_DIR, server_directory(host), artifact_hash.removeprefix("sha256:") + ".json")


class RekorDirectoryLog(TransparencyLog):
    """Answers Rekor look-ups from the entries a bundle holds."""

    def __init__(self, files: BundleFiles) -> None:
        self._files = files

    async def find_entries(
        self, host: str, artifact_hash: str, deadline: Deadline
    ) -> Sequence[RekorEntry]:
        """The stored entries for ``artifact_hash``; ``[]`` when the bundle holds none. An
        entry that does not parse is left out, as online.

        Raises:
            VerificationError: ``malformed_trust_data`` (not a JSON list), ``fetch_failed``.
        """
        raw = await self._files.read(*rekor_entries_path(host, artifact_hash))
        if raw is None:
            return []
        try:
            entries = jsondoc.loads(raw)
        except ValueError as e:
            raise VerificationError(
                f"bundle Rekor entries for {artifact_hash} are not JSON",
                category=Category.MALFORMED_TRUST_DATA,
            ) from e
        if not isinstance(entries, list):
            raise VerificationError(
                f"bundle Rekor entries for {artifact_hash} are not a list",
                category=Category.MALFORMED_TRUST_DATA,
            )
        return parse_entries(entries)
