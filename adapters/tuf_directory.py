"""Notary v1 trust data from a directory: the :class:`Notary` port offline.

The directory of a Notary server ``https://HOST[:PORT]`` in a bundle is
``notary/HOST[:PORT]/``, laid out as the ``notary`` client's own trust directory
(``-d DIR``): ``tuf/<GUN>/metadata/<role>.json``, delegations as ``targets/<name>.json``. So
``notary -d BUNDLE/notary/HOST -s https://HOST list GUN`` fills it, and so does
``connaisseur bundle export`` (docs/decisions/0055-offline-bundles.md).

Nothing here is trusted by being on disk: the files are the served bytes, judged by
``domain.notaryv1`` exactly as when fetched, expiry included (``now`` is the clock's, not the
bundle's), so metadata that expired is still expired offline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from connaisseur.adapters.bundle_files import BundleFiles
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Endpoint, Notary

NOTARY_DIR = "notary"


def notary_role_path(host: str, gun: str, role: str) -> tuple[str, ...]:
    """Path segments of ``role`` of ``gun`` served by the Notary at base URL ``host``."""
    return (NOTARY_DIR, server_directory(host), "tuf", gun, "metadata", f"{role}.json")


def server_directory(host: str) -> str:
    """The directory name of a server's base URL: its ``host[:port]``, lower case."""
    return urlsplit(host).netloc.lower() or host.lower()


class TufDirectoryNotary(Notary):
    """Reads a GUN's role files from a bundle; a missing file is what a 404 is online."""

    def __init__(self, files: BundleFiles) -> None:
        self._files = files

    async def fetch_roles(
        self, host: str, gun: str, roles: Sequence[str], endpoint: Endpoint, deadline: Deadline
    ) -> Mapping[str, bytes | None]:
        """The stored bytes of each role, ``None`` for a role the bundle does not hold.

        Raises:
            VerificationError: ``malformed_trust_data`` (an unsafe GUN or role name, a file
                over the size cap), ``fetch_failed`` (a file cannot be read).
        """
        return {role: await self._files.read(*notary_role_path(host, gun, role)) for role in roles}
