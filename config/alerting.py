"""Build :class:`AlertingSettings` from the validated ``alerting`` block, templates parsed once.

A receiver's ``template: NAME`` is the file ``NAME.json`` in the custom templates directory
(``--alert-templates-dir``, default ``/app/alerts/templates``) or else among the templates
packaged with the product (``config/templates/``: slack, opsgenie, keybase, msteams,
ecs-1-12-0). Names never leave their directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from connaisseur.application.alerting import AlertingSettings, Receiver
from connaisseur.config.url_checks import url_problem
from connaisseur.domain.alert_template import AlertTemplate, TemplateError
from connaisseur.domain.errors import ConfigError, ConnaisseurError

PACKAGED_TEMPLATES = Path(__file__).with_name("templates")


def build_alerting(
    data: Mapping[str, Any] | None, templates_dirs: Sequence[Path], pod_name: str = ""
) -> AlertingSettings | None:
    """The alerting settings, or ``None`` when no receiver is configured.

    Raises:
        ConfigError: a template is missing or broken, a URL or header is unusable.
    """
    if not data:
        return None
    problems: list[str] = []
    loaded: dict[str, AlertTemplate] = {}
    lists: dict[str, tuple[Receiver, ...]] = {}
    for section in ("admitRequest", "rejectRequest"):
        entries = (data.get(section) or {}).get("receivers") or []
        receivers = []
        for i, entry in enumerate(entries):
            path = f"alerting.{section}.receivers[{i}]"
            try:
                receivers.append(_receiver(entry, i, templates_dirs, loaded))
            except ConnaisseurError as e:
                problems.append(f"{path}: {e.message}")
        lists[section] = tuple(receivers)
    if problems:
        raise ConfigError(f"alerting has {len(problems)} error(s)", tuple(problems))
    settings = AlertingSettings(
        cluster=str(data.get("clusterIdentifier") or "not specified"),
        admit=lists["admitRequest"],
        reject=lists["rejectRequest"],
        pod_name=pod_name,
    )
    return settings if settings.enabled else None


def _receiver(
    entry: Mapping[str, Any],
    index: int,
    dirs: Sequence[Path],
    loaded: dict[str, AlertTemplate],
) -> Receiver:
    name = str(entry["template"])
    if name not in loaded:
        loaded[name] = load_template(name, dirs)
    return Receiver(
        name=f"{name}-{index}",
        template=loaded[name],
        url=check_url(str(entry["receiverUrl"])),
        priority=int(entry.get("priority", 3)),
        headers=parse_headers(entry.get("customHeaders") or ()),
        payload_fields=entry.get("payloadFields"),
        fail_if_sending_fails=bool(entry.get("failIfAlertSendingFails", False)),
    )


def template_dirs(custom: str | Path | None) -> tuple[Path, ...]:
    """Where templates are looked up, in order: the custom directory, then the packaged ones."""
    return ((Path(custom),) if custom else ()) + (PACKAGED_TEMPLATES,)


def load_template(name: str, dirs: Sequence[Path]) -> AlertTemplate:
    """Read and parse ``<name>.json`` from the first directory that has it.

    Raises:
        TemplateError: bad name, no such template, unreadable or unparsable.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise TemplateError(f"invalid template name {name!r}")
    for directory in dirs:
        path = directory / f"{name}.json"
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as e:
            raise TemplateError(f"unable to read template file {path}: {e}") from e
        return AlertTemplate.parse(name, text)
    where = ", ".join(str(d) for d in dirs)
    raise TemplateError(f"unable to get template file {name}.json (looked in {where})")


def check_url(url: str) -> str:
    """An ``http(s)`` URL with a host (:func:`connaisseur.config.url_checks.url_problem`).

    Raises:
        ConfigError: anything else; the URL itself is never echoed (webhook URLs often carry
            their token in the path).
    """
    problem = url_problem(url, base=False)
    if problem is not None:
        raise ConfigError(f"invalid receiverUrl: {problem}")
    return url


def parse_headers(raw: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``Name: value`` lines → canonical (name, trimmed value); a later name replaces an earlier.

    Raises:
        ConfigError: a line without ``:`` or with an empty name.
    """
    headers: dict[str, str] = {"Content-Type": "application/json"}
    for line in raw:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ConfigError(f"header {line!r} is invalid: expected 'Name: value'")
        headers[canonical_header(name.strip())] = value.strip()
    return tuple(headers.items())


def canonical_header(name: str) -> str:
    """Go's canonical MIME header key: ``cOnTeNt-tYpE`` → ``Content-Type``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
