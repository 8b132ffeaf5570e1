"""The files of an offline bundle directory, each read at most once.

An offline bundle (docs/decisions/0055-offline-bundles.md) is a directory: an OCI image layout
under ``oci/``, Notary trust directories under ``notary/``, Rekor entries under ``rekor/``. The
adapters that read it (:mod:`adapters.oci_layout`, :mod:`adapters.tuf_directory`,
:mod:`adapters.rekor_directory`) share one :class:`BundleFiles` per bundle:

* the directory tree is listed once, when the bundle is opened, so a look-up of a file that is
  not there costs no I/O (and image names chosen by a requester cannot make us probe the disk);
* a file is read at most once (in a worker thread: a bundle may sit on a network volume) and
  its bytes are kept, so that after the first verification that needs it no I/O happens;
* every path stays inside the bundle: names are joined segment by segment, ``..`` and empty
  segments are refused, and a symbolic link that leads out of the bundle is not followed
  (Kubernetes ConfigMap and Secret volumes are links into the volume's own ``..data``).

A bundle may also be **flat** (content-addressed; docs/decisions/0058-bundles-in-the-cluster.md),
the shape a ConfigMap or Secret can hold,
whose keys cannot contain ``/``: ``connaisseur-bundle.json`` beside one file per content, named
by the SHA-256 hex of its bytes (``connaisseur bundle kubernetes`` writes it). Its manifest's
``files`` map then says which path each content has; each such file is checked against its
digest when read.

Files are bounded by ``max_file_bytes``; a larger one is ``malformed_trust_data``. Reading
failures become ``fetch_failed`` (docs/decisions/0009-transient-vs-permanent.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from connaisseur.domain.errors import Category, ConfigError, VerificationError

#: Files in a bundle, at most: the listing is kept in memory.
MAX_BUNDLE_FILES = 1_000_000
#: The bundle's manifest (written by ``connaisseur bundle export``).
MANIFEST_FILE = "connaisseur-bundle.json"
_FLAT_NAME = re.compile(r"[0-9a-f]{64}")


@dataclass(slots=True)
class ReadCounter:
    """How often the disk was read (the benchmark and the tests read it)."""

    files: int = 0
    bytes: int = 0
    listed: int = 0


@dataclass(slots=True)
class _Reading:
    """One file's content, read once; concurrent readers wait for the same read."""

    task: asyncio.Future[bytes] | None = None
    content: bytes | None = field(default=None, repr=False)


class BundleFiles:
    """Read-once access to the files of one bundle directory."""

    def __init__(self, root: Path, *, max_file_bytes: int = 4 * 1024 * 1024) -> None:
        """List the bundle's files.

        Raises:
            ConfigError: the directory does not exist, cannot be listed or is too large.
        """
        self.root = root
        self.max_file_bytes = max_file_bytes
        self.counter = ReadCounter()
        self._real_root = _real_directory(root)
        listed = frozenset(self._list())
        #: path in the bundle → the flat file holding it (a flat bundle), checked when read
        self._flat = _flat_names(root, listed, max_file_bytes)
        self._files = listed | frozenset(self._flat)
        self._readings: dict[str, _Reading] = {}

    def __contains__(self, relative: str) -> bool:
        return relative in self._files

    def names(self) -> frozenset[str]:
        """Every file of the bundle, as ``/``-separated paths relative to its root."""
        return self._files

    def under(self, prefix: str) -> Iterable[str]:
        """The files whose relative path starts with ``prefix``."""
        return (name for name in self._files if name.startswith(prefix))

    async def read(self, *segments: str) -> bytes | None:
        """The file named by ``segments`` (joined with ``/``), or ``None`` if the bundle has no
        such file.

        Raises:
            VerificationError: ``malformed_trust_data`` (an unsafe name, a file over the cap),
                ``fetch_failed`` (the file cannot be read).
        """
        relative = join(*segments)
        if relative not in self._files:
            return None
        reading = self._readings.get(relative)
        if reading is None:
            reading = self._readings[relative] = _Reading()
        if reading.content is not None:
            return reading.content
        if reading.task is None:
            reading.task = asyncio.ensure_future(asyncio.to_thread(self._read, relative))
        try:
            content = await asyncio.shield(reading.task)
        except VerificationError:
            reading.task = None  # a failed read may be retried by a later verification
            raise
        reading.content = content
        return content

    def _read(self, relative: str) -> bytes:
        flat = self._flat.get(relative)
        content = self._read_file(flat or relative)
        if flat is not None and hashlib.sha256(content).hexdigest() != flat:
            raise VerificationError(
                f"bundle file {flat} (holding {relative}) does not match its name",
                category=Category.MALFORMED_TRUST_DATA,
            )
        return content

    def _read_file(self, relative: str) -> bytes:
        path = self.root / relative
        try:
            real = path.resolve(strict=True)
            if not real.is_relative_to(self._real_root):
                raise VerificationError(
                    f"bundle file {relative} links outside the bundle",
                    category=Category.MALFORMED_TRUST_DATA,
                )
            with real.open("rb") as f:
                content = f.read(self.max_file_bytes + 1)
        except OSError as e:
            raise VerificationError(
                f"cannot read bundle file {relative}: {e.strerror}",
                category=Category.FETCH_FAILED,
            ) from e
        if len(content) > self.max_file_bytes:
            raise VerificationError(
                f"bundle file {relative} is larger than {self.max_file_bytes} bytes",
                category=Category.MALFORMED_TRUST_DATA,
            )
        self.counter.files += 1
        self.counter.bytes += len(content)
        return content

    def _list(self) -> Iterable[str]:
        """Every regular file under the root, relative; Kubernetes' ``..data`` bookkeeping
        entries (names starting with ``..``) are skipped, their content is reached through the
        links beside them."""
        found = 0
        visited = {self._real_root}
        for directory, subdirs, files in os.walk(self.root, followlinks=True):
            subdirs[:] = [
                d
                for d in subdirs
                if not d.startswith("..") and self._first_visit(Path(directory) / d, visited)
            ]
            base = Path(directory).relative_to(self.root)
            for name in files:
                if name.startswith(".."):
                    continue
                found += 1
                if found > MAX_BUNDLE_FILES:
                    raise ConfigError(f"bundle {self.root} has more than {MAX_BUNDLE_FILES} files")
                yield (base / name).as_posix()
        self.counter.listed += found

    def _first_visit(self, directory: Path, visited: set[Path]) -> bool:
        """Whether to walk into a directory: inside the bundle after links, and not seen
        before (a link to ``/`` or a loop is not followed)."""
        real = directory.resolve()
        if real in visited or not real.is_relative_to(self._real_root):
            return False
        visited.add(real)
        return True


def _flat_names(root: Path, listed: frozenset[str], max_file_bytes: int) -> dict[str, str]:
    """For a flat bundle, each path of its manifest → the file named by its content's digest;
    ``{}`` for a bundle laid out in directories.

    Raises:
        ConfigError: the manifest of a flat bundle cannot be read.
    """
    flat = {name for name in listed if _FLAT_NAME.fullmatch(name)}
    if MANIFEST_FILE not in listed or not flat:
        return {}
    try:
        with (root / MANIFEST_FILE).open("rb") as f:
            manifest = json.loads(f.read(max_file_bytes + 1))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"bundle {root}: unreadable {MANIFEST_FILE} ({e})") from e
    return {
        path: digest.removeprefix("sha256:")
        for path, digest in (files.items() if isinstance(files, dict) else [])
        if isinstance(path, str)
        and isinstance(digest, str)
        and digest.removeprefix("sha256:") in flat
        and path not in listed
    }


def join(*segments: str) -> str:
    """``segments`` joined with ``/`` after checking each is a plain name (no ``..``, no
    empty segment, no NUL): names come from image references and configuration.

    Raises:
        VerificationError: ``malformed_trust_data``.
    """
    parts = [p for s in segments for p in s.split("/")]
    if any(p in ("", ".", "..") or "\0" in p or "\\" in p for p in parts):
        raise VerificationError(
            f"unsafe name in bundle path {'/'.join(segments)[:200]!r}",
            category=Category.MALFORMED_TRUST_DATA,
        )
    return "/".join(parts)


def _real_directory(root: Path) -> Path:
    try:
        real = root.resolve(strict=True)
    except OSError as e:
        raise ConfigError(f"bundle {root}: {e.strerror}") from e
    if not real.is_dir():
        raise ConfigError(f"bundle {root} is not a directory")
    return real
