"""Marshmallow schemas for the configuration; unknown keys are errors everywhere.

A configuration is either a Helm values file (its ``application`` section and top-level
``alerting`` are used) or an application config (``validators``, ``policy``, optional
``alerting``, ``features``, ``logLevel``, ``logFormat``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from connaisseur.domain.errors import ConfigError, ConnaisseurError

_T = TypeVar("_T")
VALIDATOR_TYPES = ("static", "notaryv1", "cosign", "notation")

_non_empty = validate.Length(min=1)
#: Bounds on the mirrors a configuration lists: sources per list, endpoints tried per source.
MAX_MIRRORS = 256
MAX_MIRROR_ENDPOINTS = 8


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class KeylessSchema(_Strict):
    """The fields only; which combinations are valid is checked by ``config.validators``."""

    issuer = fields.String()
    subject = fields.String()
    issuerRegex = fields.String()
    subjectRegex = fields.String()


class TrustRootSchema(_Strict):
    name = fields.String(required=True, validate=_non_empty)
    key = fields.String()
    cert = fields.String()
    tsCert = fields.String()
    keyless = fields.Nested(KeylessSchema)
    # Notation only (docs/decisions/0025-notation-signing-authority.md); Connaisseur v3 has none.
    storeType = fields.String(validate=validate.OneOf(("ca", "signingAuthority")))

    @validates_schema
    def _one_anchor(self, data: dict[str, Any], **_: Any) -> None:
        anchors = [k for k in ("key", "cert", "keyless") if k in data]
        if len(anchors) != 1:
            raise ValidationError("exactly one of key, cert and keyless must be set")


class AuthSchema(_Strict):
    secretName = fields.String(validate=_non_empty)
    useKeychain = fields.Boolean()
    # Chart-level convenience, as in Connaisseur's chart: inline credentials in a values file
    # (docs/decisions/0015-credentials-name-their-registry.md).
    username = fields.String()
    password = fields.String()
    registry = fields.String()

    @validates_schema
    def _some_source(self, data: dict[str, Any], **_: Any) -> None:
        inline = "username" in data and "password" in data
        if not (data.get("secretName") or data.get("useKeychain") or inline):
            raise ValidationError("neither secretName nor useKeychain (nor username/password) set")


class CosignHostSchema(_Strict):
    rekor = fields.String()
    rekorPubkey = fields.String()
    fulcioCert = fields.String()
    ctLogPubkey = fields.String()
    # A private Sigstore's trusted_root.json, as JSON text or the same document written as YAML
    # (docs/decisions/0052-private-sigstore-trusted-root.md).
    trustedRoot = fields.Raw()

    @validates_schema
    def _trusted_root_document(self, data: dict[str, Any], **_: Any) -> None:
        root = data.get("trustedRoot")
        if root is not None and not isinstance(root, str | Mapping):
            raise ValidationError("must be the JSON document (text) or a mapping", "trustedRoot")


class MirrorEndpointSchema(_Strict):
    """One endpoint of a mirror (docs/decisions/0050-registry-mirrors.md)."""

    url = fields.String(required=True, validate=_non_empty)
    cert = fields.String()
    auth = fields.Nested(AuthSchema)
    # containerd's host capabilities; push is accepted (hosts.toml files carry it) and unused.
    capabilities = fields.List(
        fields.String(validate=validate.OneOf(("pull", "resolve", "push"))), validate=_non_empty
    )


class MirrorSchema(_Strict):
    source = fields.String(required=True, validate=_non_empty)
    endpoints = fields.List(
        fields.Nested(MirrorEndpointSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_MIRROR_ENDPOINTS),
    )
    fallbackToSource = fields.Boolean(load_default=True)


_mirrors = functools.partial(
    fields.List, fields.Nested(MirrorSchema), validate=validate.Length(max=MAX_MIRRORS)
)


class _ValidatorBase(_Strict):
    name = fields.String(required=True, validate=_non_empty)
    type = fields.String(required=True, validate=validate.OneOf(VALIDATOR_TYPES))


class StaticValidatorSchema(_ValidatorBase):
    approve = fields.Boolean(load_default=False)


SOURCE_TYPES = ("upstream", "bundle")


class SourceSchema(_Strict):
    """Where a validator reads trust data: its upstreams (registry, Notary, Rekor) or an
    offline bundle directory (docs/decisions/0055-offline-bundles.md)."""

    type = fields.String(required=True, validate=validate.OneOf(SOURCE_TYPES))
    path = fields.String(validate=_non_empty)

    @validates_schema
    def _path_for_bundles(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("type") == "bundle" and not data.get("path"):
            raise ValidationError("a bundle source needs a path", "path")
        if data.get("type") == "upstream" and "path" in data:
            raise ValidationError("only a bundle source has a path", "path")


class _TrustingValidator(_ValidatorBase):
    cert = fields.String()
    auth = fields.Nested(AuthSchema)
    source = fields.Nested(SourceSchema)
    trustRoots = fields.List(
        fields.Nested(TrustRootSchema),
        required=True,
        validate=validate.Length(min=1, error="no trust roots provided"),
    )


class NotaryV1ValidatorSchema(_TrustingValidator):
    host = fields.String()


class _RegistryValidator(_TrustingValidator):
    """A validator that reads images and signatures from registries (cosign, Notation)."""

    mirrors = _mirrors()
    signatureRepository = fields.String(validate=_non_empty)


class CosignValidatorSchema(_RegistryValidator):
    host = fields.Nested(CosignHostSchema)


class NotationValidatorSchema(_RegistryValidator):
    pass


VALIDATOR_SCHEMAS: dict[str, type[Schema]] = {
    "static": StaticValidatorSchema,
    "notaryv1": NotaryV1ValidatorSchema,
    "cosign": CosignValidatorSchema,
    "notation": NotationValidatorSchema,
}


_SCALARS = (str, int, float, bool, type(None))


class ConditionSchema(_Strict):
    """One condition on an attestation's predicate; ``config.validators`` parses the path and
    compiles the regular expression (docs/decisions/0042-attestation-conditions.md)."""

    field = fields.String(required=True, validate=_non_empty)
    equals = fields.Raw(allow_none=True)
    matches = fields.String(validate=_non_empty)
    oneOf = fields.List(fields.Raw(allow_none=True), validate=_non_empty)

    @validates_schema
    def _one_operator(self, data: dict[str, Any], **_: Any) -> None:
        operators = [k for k in ("equals", "matches", "oneOf") if k in data]
        if len(operators) != 1:
            raise ValidationError("exactly one of equals, matches and oneOf must be set")
        values = [data["equals"]] if "equals" in data else data.get("oneOf") or []
        if any(not isinstance(v, _SCALARS) for v in values):
            raise ValidationError("equals and oneOf compare with strings, numbers, booleans, null")


class AttestationSchema(_Strict):
    predicateType = fields.String(required=True, validate=_non_empty)
    conditions = fields.List(fields.Nested(ConditionSchema), load_default=list)


class RuleOptionsSchema(_Strict):
    trustRoot = fields.String()
    threshold = fields.Integer(strict=True, validate=validate.Range(min=0))
    required = fields.List(fields.String(validate=_non_empty), validate=_non_empty)
    delegations = fields.List(fields.String(validate=_non_empty), validate=_non_empty)
    verifyInTransparencyLog = fields.Boolean()
    verifySCT = fields.Boolean()
    ignoreReference = fields.Boolean()
    mode = fields.String(validate=validate.OneOf(("mutate", "insecureValidateOnly")))
    verificationLevel = fields.String(validate=validate.OneOf(("strict", "permissive", "audit")))
    verifyTimestamp = fields.String(validate=validate.OneOf(("always", "afterCertExpiry")))
    # cosign only (docs/decisions/0040-cosign-signature-formats.md, 0042-attestation-conditions.md)
    signatureFormat = fields.String(validate=validate.OneOf(("classic", "bundle", "any")))
    attestations = fields.List(fields.Nested(AttestationSchema), validate=_non_empty)
    signatureRepository = fields.String(validate=_non_empty)

    @validates_schema
    def _exclusive(self, data: dict[str, Any], **_: Any) -> None:
        if "required" in data and "delegations" in data:
            raise ValidationError("required and delegations must not both be set")


class RuleSchema(_Strict):
    pattern = fields.String(required=True, validate=_non_empty)
    validator = fields.String(load_default="")
    with_ = fields.Nested(RuleOptionsSchema, data_key="with")


class ReceiverSchema(_Strict):
    template = fields.String(required=True, validate=_non_empty)
    receiverUrl = fields.String(required=True, validate=_non_empty)
    priority = fields.Integer(strict=True, load_default=3, validate=validate.Range(min=0))
    customHeaders = fields.List(
        fields.String(validate=validate.Regexp(r"^[^:]+:", error="header must be 'Name: value'")),
        validate=validate.Length(min=1, error="customHeaders must not be empty when set"),
    )
    payloadFields = fields.Dict(
        keys=fields.String(),
        validate=validate.Length(min=1, error="payloadFields must not be empty when set"),
    )
    failIfAlertSendingFails = fields.Boolean(load_default=False)


class ReceiversSchema(_Strict):
    receivers = fields.List(fields.Nested(ReceiverSchema), load_default=list)


class AlertingSchema(_Strict):
    clusterIdentifier = fields.String(load_default="not specified")
    admitRequest = fields.Nested(ReceiversSchema)
    rejectRequest = fields.Nested(ReceiversSchema)


class CacheSchema(_Strict):
    expirySeconds = fields.Integer(strict=True, load_default=30)
    cacheErrors = fields.Boolean(load_default=True)


class NamespacedValidationSchema(_Strict):
    mode = fields.String(validate=validate.OneOf(("ignore", "validate")))


class FeaturesSchema(_Strict):
    automaticChildApproval = fields.Boolean(load_default=True)
    automaticUnchangedApproval = fields.Boolean(load_default=False)
    detectionMode = fields.Boolean(load_default=False)
    resourceValidationMode = fields.String(
        load_default="all", validate=validate.OneOf(("all", "podsOnly"))
    )
    namespacedValidation = fields.Nested(NamespacedValidationSchema)
    cache = fields.Nested(CacheSchema)


class ApplicationSchema(_Strict):
    """The application config; ``validators`` entries are checked per type by the loader."""

    validators = fields.List(fields.Raw(), required=True, validate=_non_empty)
    policy = fields.List(fields.Nested(RuleSchema), required=True, validate=_non_empty)
    alerting = fields.Nested(AlertingSchema)
    features = fields.Nested(FeaturesSchema)
    mirrors = _mirrors()
    logLevel = fields.String()
    logFormat = fields.String()


class ValuesSchema(Schema):
    """A Helm values file: only ``application`` and ``alerting`` matter to the application."""

    class Meta:
        unknown = EXCLUDE  # kubernetes.* and anything else belongs to the chart

    application = fields.Raw(required=True)
    alerting = fields.Raw()


class Collected:
    """Runs parsers, collecting what each reports in ``problems`` instead of stopping at the
    first, so that one pass of ``check-config`` names every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def __call__(self, parse: Callable[..., _T], *args: Any) -> _T | None:
        """``parse(*args)``, or ``None`` after adding its problems."""
        try:
            return parse(*args)
        except ConnaisseurError as e:
            self.problems.extend(e.problems if isinstance(e, ConfigError) else [e.message])
            return None


def load(s: Schema, raw: Any, path: str, problems: list[str]) -> dict[str, Any]:
    """``raw`` loaded by ``s``; each error is added to ``problems`` with its path under ``path``,
    and what did load is returned."""
    try:
        result: dict[str, Any] = s.load(raw if raw is not None else {})
        return result
    except ValidationError as e:
        problems.extend(_flatten(e.messages, path))
        valid = e.valid_data
        return valid if isinstance(valid, dict) else {}


def _flatten(messages: Any, path: str) -> list[str]:
    if isinstance(messages, Mapping):
        out = []
        for key, value in messages.items():
            if key == "_schema":
                out += _flatten(value, path)
            elif isinstance(key, int):
                out += _flatten(value, f"{path}[{key}]")
            else:
                out += _flatten(value, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{path or '<root>'}: {m}" for m in messages]
    if isinstance(messages, list):
        return [line for m in messages for line in _flatten(m, path)]
    return [f"{path or '<root>'}: {messages}"]
