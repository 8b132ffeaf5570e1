"""The ``connaisseur`` command line: serve, verify, review, explain, check-config, bundle.

The contract (commands, options, output, exit codes):
docs/decisions/0017-command-line-contract.md.

Exit codes: 0 all admitted; 1 at least one image or the request denied; 2 usage or config error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from connaisseur.adapters.bundle_export import BundleRecorder, kubernetes_object
from connaisseur.adapters.clock import FixedClock
from connaisseur.application.deadline import Deadline
from connaisseur.application.explain import Evidence, Explanation
from connaisseur.application.pipeline import Finding
from connaisseur.application.settings import Settings
from connaisseur.application.verify import VerifyImageCommand
from connaisseur.config.container import (
    Container,
    build_container,
    running,
    warn_about_features,
)
from connaisseur.config.loader import DEFAULT_SECRETS_DIR, load_settings
from connaisseur.domain.errors import ConfigError, ConnaisseurError
from connaisseur.domain.verdict import ImageVerdict, RequestVerdict
from connaisseur.entrypoints.admission import (
    BadRequestError,
    decode_json,
    parse_review,
    render_review,
)
from connaisseur.entrypoints.logs import configure_logging, log_admission

EXIT_OK, EXIT_DENIED, EXIT_USAGE = 0, 1, 2
#: What one ConfigMap or Secret may hold (etcd's object limit, less room for metadata).
KUBERNETES_OBJECT_BYTES = 1_000_000


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except ConfigError as e:
        _emit_problems(args, e.problems)
        return EXIT_USAGE
    except UsageError as e:
        print(f"connaisseur: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `connaisseur explain ... | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


_TEMPLATES_HELP = "custom alert templates (<name>.json); default /app/alerts/templates"
_OFFLINE_HELP = (
    "read all trust data from this bundle (made by `connaisseur bundle export`); "
    "no request goes to a registry, Notary or Rekor"
)
_ALERTING_HELP = (
    "the alerting block in a file of its own (like /app/alerts/config.yaml); "
    "default $ALERTING_CONFIG"
)


class UsageError(Exception):
    """Bad arguments or input files."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="connaisseur", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    # Each option shared by several commands is defined once, in its group.
    common = _group()
    common.add_argument("--config", type=Path, help="values file or application config")
    common.add_argument("--format", choices=("json", "text"), default=None)
    secrets = _group()
    secrets.add_argument("--secrets-dir", type=Path, default=DEFAULT_SECRETS_DIR)
    clock = _group()
    clock.add_argument("--now", type=_rfc3339, help="fix the clock (RFC 3339)")
    offline = _group()
    offline.add_argument("--offline", type=Path, metavar="DIR", help=_OFFLINE_HELP)
    alerting = _group()
    alerting.add_argument("--alert-templates-dir", type=Path, help=_TEMPLATES_HELP)
    alerting.add_argument("--alerting-config", type=Path, metavar="FILE", help=_ALERTING_HELP)

    def command(
        name: str,
        run: Callable[[argparse.Namespace], int],
        help_: str,
        *groups: argparse.ArgumentParser,
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, parents=[common, *groups])
        p.set_defaults(run=run)
        return p

    serve = command("serve", _serve, "run the webhook", secrets, offline, alerting)
    serve.add_argument("--listen", default="0.0.0.0:5000")
    serve.add_argument("--tls-cert", type=Path)
    serve.add_argument("--tls-key", type=Path)
    verify = command("verify", _verify, "verify images against the policy", secrets, offline, clock)
    verify.add_argument(
        "--explain",
        action="store_true",
        help="also list every signature and attestation found, and why each did or did not count",
    )
    verify.add_argument("images", nargs="+", metavar="IMAGE")
    review = command(
        "review",
        _review,
        "answer an AdmissionReview like the webhook",
        secrets,
        offline,
        clock,
        alerting,
    )
    review.add_argument("--explain", action="store_true", help="also show the decoded patch")
    review.add_argument("file", metavar="FILE|-")
    explain = command("explain", _explain, "show how the policy applies (no network)")
    explain.add_argument("images", nargs="+", metavar="IMAGE")
    command("check-config", _check_config, "validate the configuration", secrets, offline, alerting)
    bundle = sub.add_parser("bundle", help="offline bundles of trust data")
    bundle_sub = bundle.add_subparsers(required=True, metavar="COMMAND")
    export = bundle_sub.add_parser(
        "export",
        help="verify images and write what their verification reads as a bundle",
        parents=[common, secrets, clock],
    )
    export.set_defaults(run=_bundle_export)
    export.add_argument("images", nargs="+", metavar="IMAGE")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="DIR")
    export.add_argument(
        "--timeout", type=float, default=300.0, help="seconds for the whole export (300)"
    )
    kube = bundle_sub.add_parser(
        "kubernetes",
        help="print a bundle as a ConfigMap (or Secret) to mount with the chart's offlineBundle",
    )
    kube.set_defaults(run=_bundle_kubernetes, format="json")
    kube.add_argument("bundle", type=Path, metavar="DIR")
    kube.add_argument("--name", required=True)
    kube.add_argument("--namespace", default="connaisseur")
    kube.add_argument("--secret", action="store_true", help="a Secret instead of a ConfigMap")
    return parser


def _group() -> argparse.ArgumentParser:
    """Options to share between commands (an argparse parent parser)."""
    return argparse.ArgumentParser(add_help=False)


def _rfc3339(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {value!r}") from e


def _settings(args: argparse.Namespace) -> Settings:
    secrets = getattr(args, "secrets_dir", DEFAULT_SECRETS_DIR)
    settings = load_settings(
        args.config,
        secrets_dir=secrets,
        env=os.environ,
        alerting_config=getattr(args, "alerting_config", None),
        offline=getattr(args, "offline", None),
    )
    templates = getattr(args, "alert_templates_dir", None)
    if templates is not None:
        infra = replace(settings.infra, alert_templates_dir=str(templates))
        settings = replace(settings, infra=infra)
    return settings


def _container(
    args: argparse.Namespace, settings: Settings, recorder: BundleRecorder | None = None
) -> Container:
    """The composition for ``settings``, its clock fixed when ``--now`` is given."""
    now = getattr(args, "now", None)
    return build_container(settings, FixedClock(now) if now else None, recorder)


def _serve(args: argparse.Namespace) -> int:
    from connaisseur.entrypoints.server import serve

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_format)
    warn_about_features(settings)
    container = _container(args, settings)
    return serve(settings, container, args.listen, args.tls_cert, args.tls_key)


def _verify(args: argparse.Namespace) -> int:
    container = _container(args, _settings(args))

    async def run() -> tuple[list[ImageVerdict], list[Evidence]]:
        async with running(container):
            verify = container.verify_image()
            deadline = Deadline.after(
                container.clock(), container.settings().limits.deadline_cap_seconds
            )
            commands = [VerifyImageCommand(image=image) for image in args.images]
            verdicts = await asyncio.gather(*(verify.execute(c, deadline) for c in commands))
            evidence: list[Evidence] = []
            if args.explain:  # after the verdicts: explaining never changes one
                inspect = container.inspect_image()
                evidence = list(
                    await asyncio.gather(*(inspect.execute(i, deadline) for i in args.images))
                )
            return list(verdicts), evidence

    verdicts, evidence = asyncio.run(run())
    for i, verdict in enumerate(verdicts):
        document, text = _verdict_json(verdict), _verdict_text(verdict)
        if evidence:
            findings = explained_findings(evidence[i])
            document["evidence"] = findings
            text += "".join("\n  " + _finding_text(f) for f in findings)
        _emit(args, document, text)
    return EXIT_OK if all(v.allowed for v in verdicts) else EXIT_DENIED


def _bundle_export(args: argparse.Namespace) -> int:
    """Verify the images through recording adapters, complete what other verification paths
    read, and write the bundle (docs/decisions/0057-export-records-a-verification.md)."""
    recorder = BundleRecorder()
    container = _container(args, _settings(args), recorder)

    async def run() -> list[ImageVerdict]:
        async with running(container):
            verify = container.verify_image()
            clock = container.clock()
            deadline = Deadline.after(clock, args.timeout)
            commands = [VerifyImageCommand(image=image) for image in args.images]
            verdicts = [await verify.execute(c, deadline) for c in commands]
            upstream = container.trust_data().upstream
            limit = container.settings().limits.max_document_bytes
            await recorder.complete(upstream.notary, deadline, limit)
            return verdicts

    try:
        verdicts = asyncio.run(run())
        created = container.clock().now()
        recorder.write(args.output, created, [_verdict_json(v) for v in verdicts])
    except ConnaisseurError as e:
        raise UsageError(f"bundle export failed: {e.message}") from e
    except OSError as e:
        raise UsageError(f"cannot write the bundle: {e}") from e
    for verdict in verdicts:
        _emit(args, _verdict_json(verdict), _verdict_text(verdict))
    return EXIT_OK if all(v.allowed for v in verdicts) else EXIT_DENIED


def _bundle_kubernetes(args: argparse.Namespace) -> int:
    """The bundle as one Kubernetes object (JSON, which ``kubectl apply -f`` reads)."""
    kind = "secret" if args.secret else "configmap"
    try:
        document = kubernetes_object(args.bundle, args.name, args.namespace, kind)
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(f"cannot read the bundle {args.bundle}: {e}") from e
    size = sum(len(v) for v in (document.get("binaryData") or document.get("data") or {}).values())
    if size > KUBERNETES_OBJECT_BYTES:
        print(
            f"connaisseur: the bundle is {size} bytes encoded, more than a {kind} holds "
            f"({KUBERNETES_OBJECT_BYTES}); mount it from a PVC or an image volume instead",
            file=sys.stderr,
        )
        return EXIT_USAGE
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    return EXIT_OK


def _verdict_json(v: ImageVerdict) -> dict[str, Any]:
    error = None if v.allowed else {"category": str(v.category), "message": v.message}
    return {
        "image": v.image,
        "reference": v.reference,
        "allowed": v.allowed,
        "digest": v.digest,
        "rule": v.rule,
        "validator": v.validator,
        "error": error,
    }


def explained_findings(evidence: Evidence) -> list[dict[str, Any]]:
    """Every signature and attestation of ``verify --explain``: what it is, whether it
    counted, for which trust roots, and why (docs/decisions/0043-explain-every-signature.md)."""
    if evidence.inspection is None:
        return []
    required = (
        {a.predicate_type for a in evidence.rule.options.attestations} if evidence.rule else set()
    )
    return [_finding(f, required) for f in evidence.inspection.findings]


def _finding(found: Finding, required: set[str]) -> dict[str, Any]:
    report: dict[str, Any] = dict(found.described)
    judgement = found.judgement
    roots = list(dict.fromkeys(v.root for v in judgement.vouches)) if judgement else []
    refused = [found.rejection] if found.rejection else list(judgement.refused if judgement else ())
    reasons = list(dict.fromkeys(r.message for r in refused))
    evidence_for = judgement.requirement if judgement else None
    counted = bool(roots) and (evidence_for is None or evidence_for in required)
    if counted:
        why = f"signed by trust root {', '.join(roots)}"
    elif roots:
        why = f"signed by trust root {', '.join(roots)}, but the rule requires no such attestation"
    else:
        why = "; ".join(reasons) or "not judged"
    report.update({"counted": counted, "trustRoots": roots, "why": why})
    if counted and reasons:
        report["notFor"] = reasons  # the other selected roots refused it
    return report


def _finding_text(finding: Mapping[str, Any]) -> str:
    mark = "counted" if finding["counted"] else "not counted"
    if "where" not in finding:
        return f"- {finding['why']}"
    kind = finding.get("kind", "candidate")
    if "predicateType" in finding:
        kind += f" {finding['predicateType']}"
    where = f"[{finding.get('format', '?')}] {finding.get('where', '')}"
    return f"- {kind} {where}, {finding.get('signer', '?')}: {mark}: {finding['why']}"


def _verdict_text(v: ImageVerdict) -> str:
    if v.allowed:
        return f"ADMIT {v.image} -> {v.new_image} (rule {v.rule}, validator {v.validator})"
    return f"DENY  {v.image}: [{v.category}] {v.message} (rule {v.rule}, validator {v.validator})"


def _review(args: argparse.Namespace) -> int:
    settings = _settings(args)
    # The same admission log line as the webhook, on stderr so stdout stays the answer.
    configure_logging(settings.log_level, "json", sys.stderr)
    warn_about_features(settings)
    container = _container(args, settings)
    try:
        body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        limits = settings.limits
        command, api_version = parse_review(
            decode_json(body, limits.max_json_depth), limits.deadline_cap_seconds
        )
    except (OSError, BadRequestError) as e:
        raise UsageError(str(e)) from e

    async def run() -> RequestVerdict:
        async with running(container):  # leaving it waits for alerts still being sent
            started = time.perf_counter()
            verdict = await container.review_admission().execute(command)
            log_admission(command, verdict, time.perf_counter() - started)
            return verdict

    verdict = asyncio.run(run())
    answer = render_review(verdict, api_version)
    if args.explain:  # always present with --explain: [] says "nothing to patch"
        answer["patchDecoded"] = [
            {"op": "replace", "path": p.path, "value": p.value} for p in verdict.patch
        ]
    _emit(args, answer, orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    return EXIT_OK if answer["response"]["allowed"] else EXIT_DENIED


def _explain(args: argparse.Namespace) -> int:
    # No network, so no credentials: secretName stays unresolved (there is no --secrets-dir).
    settings = load_settings(args.config, secrets_dir=None, env=os.environ)
    container = _container(args, settings)

    async def run() -> list[dict[str, Any]]:
        async with running(container):
            explain = container.explain_image()
            return [_explain_report(explain.execute(raw)) for raw in args.images]

    code = EXIT_OK
    for report in asyncio.run(run()):
        code = max(code, EXIT_OK if report.get("rule") else EXIT_DENIED)
        _emit(args, report, orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return code


def _explain_report(found: Explanation) -> dict[str, Any]:
    report: dict[str, Any] = {
        "image": found.image,
        "reference": found.reference,
        "matching_rules": [
            {
                "pattern": r.pattern,
                "normalised": r.normalised,
                "specificity": {
                    "components": s.component_count,
                    "prefix_lengths": list(s.prefix_lengths),
                    "component_lengths": list(s.component_lengths),
                },
            }
            for r, s in found.matches
        ],
        "rule": found.rule.pattern if found.rule else None,
        "validator": found.rule.validator if found.rule else None,
        "validator_type": found.validator.type if found.validator else None,
        "trust_roots": list(found.trust_roots),
    }
    if found.error is not None:
        report["error"] = {"category": str(found.error.category), "message": found.error.message}
    return report


def _check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    asyncio.run(_start(_container(args, settings)))
    summary = {
        "ok": True,
        "problems": [],
        "validators": [v.name for v in settings.validators],
        "rules": len(settings.policy.rules),
    }
    _emit(
        args,
        summary,
        f"configuration OK: {len(settings.validators)} validators, "
        f"{len(settings.policy.rules)} rules",
    )
    return EXIT_OK


async def _start(container: Container) -> None:
    """Start the composition as ``serve`` does, without serving (and without network): every
    validator is built, the packaged trust material (sigstore's public-good keys) read."""
    async with running(container):
        pass


def _emit_problems(args: argparse.Namespace, problems: Sequence[str]) -> None:
    report = {"ok": False, "problems": list(problems)}
    text = "\n".join(problems)
    if getattr(args, "run", None) is _check_config:
        _emit(args, report, text)
    else:
        print(f"connaisseur: invalid configuration:\n{text}", file=sys.stderr)


def _emit(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    fmt = args.format or ("text" if sys.stdout.isatty() else "json")
    if fmt == "json":
        sys.stdout.write(orjson.dumps(document).decode() + "\n")
    else:
        sys.stdout.write(text + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
