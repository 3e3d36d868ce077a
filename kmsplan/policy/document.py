"""Key policy documents parsed into typed, normalized statements.

`parse_policy` is the one entry point: it validates the shape of a key policy (JSON text or a
JSON-shaped mapping, AWS casing) and returns a frozen `Policy`. Every value in the result is
already in canonical form, so two documents that KMS and IAM read the same way parse into
statements that compare equal (apart from `sid` and `index`, which are labels):

- single strings and one-element lists are both frozensets;
- action names are case-insensitive in IAM, so they get one canonical spelling (the KMS API's
  casing for KMS actions, lower case otherwise);
- a 12-digit account id in an AWS principal is the account's root ARN (KMS itself stores it
  that way); ``"Principal": "*"`` is ``{"AWS": "*"}`` (IAM documents them as equivalent);
- condition keys are case-insensitive in IAM, so they get one canonical spelling; condition
  values are strings (``true`` is ``"true"``, ``5`` is ``"5"``), as IAM compares them;
- condition operators are kept exactly as written: IAM documents them only in one casing and
  does not promise that other casings mean the same, so a differently-cased operator is treated
  as a different operator (the conservative choice: it can show a diff, never hide one);
- ``Version`` defaults to ``"2008-10-17"`` when absent, as IAM does.

See docs/policy-equivalence.md for the full list and the reasons.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kmsplan import kmsspec
from kmsplan.errors import PolicyError

Effect = Literal["Allow", "Deny"]

DEFAULT_VERSION = kmsspec.POLICY_VERSION_WHEN_ABSENT
VERSIONS = tuple(sorted(kmsspec.POLICY_VERSIONS))

# Every action a KMS key policy can name (the API operations, with ReEncrypt split into the
# two permissions IAM checks, plus the permission-only SynchronizeMultiRegionKey). The spelling
# here is the canonical spelling of the action.
KMS_ACTIONS: tuple[str, ...] = tuple(
    f"kms:{name}"
    for name in (
        "CancelKeyDeletion",
        "ConnectCustomKeyStore",
        "CreateAlias",
        "CreateCustomKeyStore",
        "CreateGrant",
        "CreateKey",
        "Decrypt",
        "DeleteAlias",
        "DeleteCustomKeyStore",
        "DeleteImportedKeyMaterial",
        "DeriveSharedSecret",
        "DescribeCustomKeyStores",
        "DescribeKey",
        "DisableKey",
        "DisableKeyRotation",
        "DisconnectCustomKeyStore",
        "EnableKey",
        "EnableKeyRotation",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "GenerateRandom",
        "GetKeyLastUsage",
        "GetKeyPolicy",
        "GetKeyRotationStatus",
        "GetParametersForImport",
        "GetPublicKey",
        "ImportKeyMaterial",
        "ListAliases",
        "ListGrants",
        "ListKeyPolicies",
        "ListKeyRotations",
        "ListKeys",
        "ListResourceTags",
        "ListRetirableGrants",
        "PutKeyPolicy",
        "ReEncryptFrom",
        "ReEncryptTo",
        "ReplicateKey",
        "RetireGrant",
        "RevokeGrant",
        "RotateKeyOnDemand",
        "ScheduleKeyDeletion",
        "Sign",
        "SynchronizeMultiRegionKey",
        "TagResource",
        "UntagResource",
        "UpdateAlias",
        "UpdateCustomKeyStore",
        "UpdateKeyDescription",
        "UpdatePrimaryRegion",
        "Verify",
        "VerifyMac",
    )
)

# Condition keys in their documented spelling. Keys are case-insensitive in IAM; this table
# only chooses how the canonical form reads. Entries ending in ":" or "/" are prefixes whose
# suffix (a tag key, an encryption context key) is lower-cased.
_KNOWN_CONDITION_KEYS: tuple[str, ...] = (
    "aws:CalledVia",
    "aws:CalledViaFirst",
    "aws:CalledViaLast",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:MultiFactorAuthPresent",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:PrincipalIsAWSService",
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:PrincipalServiceName",
    "aws:PrincipalType",
    "aws:RequestedRegion",
    "aws:ResourceAccount",
    "aws:ResourceOrgID",
    "aws:ResourceOrgPaths",
    "aws:SecureTransport",
    "aws:SourceAccount",
    "aws:SourceArn",
    "aws:SourceIp",
    "aws:SourceOrgID",
    "aws:SourceOrgPaths",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:TagKeys",
    "aws:userid",
    "aws:username",
    "aws:ViaAWSService",
    "kms:BypassPolicyLockoutSafetyCheck",
    "kms:CallerAccount",
    "kms:CustomerMasterKeySpec",
    "kms:CustomerMasterKeyUsage",
    "kms:DataKeyPairSpec",
    "kms:EncryptionAlgorithm",
    "kms:EncryptionContextKeys",
    "kms:ExpirationModel",
    "kms:GrantConstraintType",
    "kms:GranteePrincipal",
    "kms:GrantIsForAWSResource",
    "kms:GrantOperations",
    "kms:KeyAgreementAlgorithm",
    "kms:KeyOrigin",
    "kms:KeySpec",
    "kms:KeyUsage",
    "kms:MacAlgorithm",
    "kms:MessageType",
    "kms:MultiRegion",
    "kms:MultiRegionKeyType",
    "kms:PrimaryRegion",
    "kms:ReEncryptOnSameKey",
    "kms:RecipientAttestation:ImageSha384",
    "kms:ReplicaRegion",
    "kms:RequestAlias",
    "kms:ResourceAliases",
    "kms:RetiringPrincipal",
    "kms:RotationPeriodInDays",
    "kms:ScheduleKeyDeletionPendingWindowInDays",
    "kms:SigningAlgorithm",
    "kms:ValidTo",
    "kms:ViaService",
    "kms:WrappingAlgorithm",
    "kms:WrappingKeySpec",
)
_KNOWN_CONDITION_KEY_PREFIXES: tuple[str, ...] = (
    "aws:PrincipalTag/",
    "aws:RequestTag/",
    "aws:ResourceTag/",
    "kms:EncryptionContext:",
    "kms:RecipientAttestation:PCR",
)
_CONDITION_KEY_SPELLING = {k.lower(): k for k in _KNOWN_CONDITION_KEYS}

_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ARN_PARTITION = re.compile(r"^arn:(aws[a-z-]*):")
# The elements of a key policy, in the order the IAM reference lists them (messages use it).
POLICY_ELEMENTS = ("Version", "Id", "Statement")
STATEMENT_ELEMENTS = (
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")
EFFECTS = ("Allow", "Deny")

_PRINCIPAL_TYPES = dict(
    zip(PRINCIPAL_TYPES, ("aws", "service", "federated", "canonical_user"), strict=True)
)
_STATEMENT_ELEMENTS = frozenset(STATEMENT_ELEMENTS)
_POLICY_ELEMENTS = frozenset(POLICY_ELEMENTS)


# ----------------------------------------------------------------------------------------------
# Canonical spellings


def canonical_principal(value: str, *, partition: str = "aws") -> str:
    """The canonical form of one AWS principal: a 12-digit account id becomes the account's
    root ARN (``arn:<partition>:iam::ID:root``), as KMS stores it; anything else is unchanged
    (ARNs are case-sensitive)."""
    if _ACCOUNT_ID.match(value):
        return f"arn:{partition}:iam::{value}:root"
    return value


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    return _compiled_wildcard(pattern.lower())


@functools.lru_cache(maxsize=4096)
def _compiled_wildcard(pattern: str) -> re.Pattern[str]:
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """Whether an IAM action pattern (``*`` and ``?`` wildcards, case-insensitive) covers
    `action`. A pattern covers itself, so ``action_matches("kms:*", "kms:*")`` is True."""
    return _wildcard_regex(pattern).fullmatch(action) is not None


@functools.lru_cache(maxsize=4096)
def canonical_action(action: str) -> str:
    """One spelling for every casing of an action or action pattern.

    A known KMS action gets its API spelling (``kms:encrypt`` → ``kms:Encrypt``). A pattern
    takes the spelling of its literal parts from the first known action it matches
    (``KMS:put*`` → ``kms:Put*``). Anything else is lower-cased. The result depends only on
    the lower-cased input, which is what makes it canonical.
    """
    lowered = action.lower()
    if lowered == "*":
        return "*"
    if "*" not in lowered and "?" not in lowered:
        for known in KMS_ACTIONS:
            if known.lower() == lowered:
                return known
        return lowered
    pieces = [p for p in re.split(r"([*?])", lowered) if p]
    # One capture group per piece, so the literal pieces can be re-spelled from the match.
    regex = re.compile(
        "".join("(.*)" if p == "*" else "(.)" if p == "?" else f"({re.escape(p)})" for p in pieces),
        re.IGNORECASE | re.DOTALL,
    )
    for known in KMS_ACTIONS:
        found = regex.fullmatch(known)
        if found is not None:
            return "".join(
                p if p in ("*", "?") else found.group(i + 1) for i, p in enumerate(pieces)
            )
    return lowered


@functools.lru_cache(maxsize=4096)
def canonical_condition_key(key: str) -> str:
    """Condition keys are case-insensitive in IAM: one spelling for every casing."""
    lowered = key.lower()
    if lowered in _CONDITION_KEY_SPELLING:
        return _CONDITION_KEY_SPELLING[lowered]
    for prefix in _KNOWN_CONDITION_KEY_PREFIXES:
        if lowered.startswith(prefix.lower()):
            return prefix + lowered[len(prefix) :]
    return lowered


def condition_value(value: object, *, where: str) -> str:
    """IAM compares condition values as strings: ``true`` is ``"true"``, ``5`` is ``"5"``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    raise PolicyError(
        f"{where}: a condition value must be a string, number or boolean, not {_json_type(value)}"
    )


# ----------------------------------------------------------------------------------------------
# The typed document


@dataclass(frozen=True, slots=True, kw_only=True)
class PrincipalSet:
    """The principals of a Principal or NotPrincipal element, canonical.

    ``aws`` holds canonical AWS principals (root ARNs for account ids) or ``"*"``; when
    ``"*"`` is present it is the only AWS member, because it already names everyone.
    """

    aws: frozenset[str] = frozenset()
    service: frozenset[str] = frozenset()
    federated: frozenset[str] = frozenset()
    canonical_user: frozenset[str] = frozenset()

    @property
    def is_public(self) -> bool:
        """``"Principal": "*"`` or ``{"AWS": "*"}``: anyone, including anonymous callers."""
        return "*" in self.aws

    def labels(self) -> tuple[str, ...]:
        """Every principal as a readable, sorted label: the AWS ARN (or ``*``) as is, others
        prefixed by their type (``Service:logs.amazonaws.com``)."""
        out = sorted(self.aws)
        out += sorted(f"Service:{s}" for s in self.service)
        out += sorted(f"Federated:{s}" for s in self.federated)
        out += sorted(f"CanonicalUser:{s}" for s in self.canonical_user)
        return tuple(out)

    def to_json(self) -> dict[str, list[str]]:
        """The canonical JSON shape: an object with sorted lists, empty types omitted."""
        out: dict[str, list[str]] = {}
        for element, attr in _PRINCIPAL_TYPES.items():
            values: frozenset[str] = getattr(self, attr)
            if values:
                out[element] = sorted(values)
        return out


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Condition:
    """One ``operator: {key: [values]}`` entry. Entries of a statement are ANDed; the values
    of one entry are ORed (for the ...IfExists/ForAnyValue forms, as IAM defines them)."""

    operator: str  # exactly as written: "StringEquals", "ForAnyValue:StringLike", "Bool"
    key: str  # canonical spelling, see canonical_condition_key
    values: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """One statement, normalized. Element sets are None when the element is absent."""

    index: int  # position in the original document's Statement list, for locations
    sid: str | None
    effect: Effect
    principals: PrincipalSet | None = None
    not_principals: PrincipalSet | None = None
    actions: frozenset[str] | None = None
    not_actions: frozenset[str] | None = None
    resources: frozenset[str] | None = None
    not_resources: frozenset[str] | None = None
    conditions: frozenset[Condition] = frozenset()

    @property
    def is_conditional(self) -> bool:
        return bool(self.conditions)

    @property
    def meaning(self) -> tuple[object, ...]:
        """Everything that decides what the statement grants: all of it but Sid and index.
        Hashable; equal exactly when two statements are equivalent."""
        return (
            self.effect,
            self.principals,
            self.not_principals,
            self.actions,
            self.not_actions,
            self.resources,
            self.not_resources,
            self.conditions,
        )

    def matches_action(self, action: str) -> bool:
        """Whether this statement applies to `action`, whatever its Effect: the action is
        covered by Action, or (NotAction) not covered by NotAction. Wildcards and case as
        IAM treats them; a statement without Action/NotAction applies to nothing."""
        if self.actions is not None:
            return any(action_matches(p, action) for p in self.actions)
        if self.not_actions is not None:
            return not any(action_matches(p, action) for p in self.not_actions)
        return False

    def allows_action(self, action: str) -> bool:
        """An Allow statement that applies to `action` (see matches_action). Always False for
        a Deny statement — use matches_action there. Principals and conditions are not
        considered."""
        return self.effect == "Allow" and self.matches_action(action)

    def applies_to_any_resource(self) -> bool:
        """In a key policy the only resource is the key itself, so ``"*"`` (or a NotResource
        that excludes nothing the key could match) applies; a statement without Resource has
        no effect."""
        if self.resources is not None:
            return bool(self.resources)
        return self.not_resources is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    version: str  # "2008-10-17" when the document has no Version, as IAM reads it
    id: str | None
    statements: tuple[Statement, ...]
    # The partition account ids were spelled in (arn:<partition>:iam::ID:root), the
    # partitions the document's principal and resource ARNs name, and whether it had any
    # bare account id: what parse_pair needs to spell both documents of a pair alike.
    partition: str = "aws"
    named_partitions: frozenset[str] = field(default=frozenset(), compare=False)
    has_account_ids: bool = field(default=False, compare=False)

    @property
    def meaning(self) -> tuple[str, frozenset[tuple[object, ...]]]:
        """What the policy grants: equal exactly when two policies are equivalent (Version
        counts; Id, Sids, statement order and duplicate statements do not)."""
        return self.version, frozenset(s.meaning for s in self.statements)

    @property
    def labelled_meaning(self) -> tuple[object, ...]:
        """The meaning plus the labels (Id, each statement's Sid), order still ignored."""
        return self.version, self.id, frozenset((s.sid, s.meaning) for s in self.statements)


PolicyInput = str | Mapping[str, Any] | Policy


# ----------------------------------------------------------------------------------------------
# Parsing


def parse_policy(doc: PolicyInput, *, partition: str | None = None) -> Policy:
    """Parse and validate a key policy (JSON text or a JSON-shaped mapping; a Policy is
    returned as is).

    `partition` spells account ids as root ARNs (``arn:aws-cn:iam::ID:root``); by default it
    is the partition the document's principal and resource ARNs name, else ``aws``. Raises
    PolicyError naming the element that is wrong and what is allowed.
    """
    if isinstance(doc, Policy):
        return doc
    # The differ looks at the same documents several times (equivalence, labels, the
    # statement diff), so each document's text is parsed once. The text is the key: a
    # mapping that changes between calls is simply a different document.
    if isinstance(doc, str):
        key = doc
    else:
        try:
            key = json.dumps(doc, allow_nan=False)
        except (TypeError, ValueError):  # not JSON-shaped: the parser says what is wrong
            return _parse_document(load_document(doc), partition)
    cached = _PARSED.get((key, partition))
    if cached is not None:
        return cached
    policy = _parse_document(load_document(doc), partition)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[(key, partition)] = policy
    return policy


_PARSED: dict[tuple[str, str | None], Policy] = {}
_PARSED_MAX = 2048


def parse_pair(
    a: PolicyInput, b: PolicyInput, *, partition: str | None = None
) -> tuple[Policy, Policy]:
    """Parse two policies that are to be compared, spelling account ids in the same
    partition: ``111122223333`` in one must match ``arn:aws-cn:iam::111122223333:root`` in the
    other when either names an aws-cn ARN."""
    first, second = parse_policy(a, partition=partition), parse_policy(b, partition=partition)
    if partition is not None:
        return first, second
    joint = _choose_partition(first.named_partitions | second.named_partitions)
    if first.has_account_ids and first.partition != joint and not isinstance(a, Policy):
        first = parse_policy(a, partition=joint)
    if second.has_account_ids and second.partition != joint and not isinstance(b, Policy):
        second = parse_policy(b, partition=joint)
    return first, second


def _parse_document(data: Mapping[str, Any], partition: str | None) -> Policy:
    unknown = sorted(set(data) - _POLICY_ELEMENTS)
    if unknown:
        raise PolicyError(
            f"unknown policy element {_quote(unknown[0])} (allowed: Version, Id, Statement; "
            "element names are case-sensitive)"
        )
    version = data.get("Version", DEFAULT_VERSION)
    if version not in VERSIONS:
        raise PolicyError(
            f"Version: {_show(version)} is not a policy language version "
            f"(allowed: {', '.join(VERSIONS)})"
        )
    policy_id = data.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise PolicyError(f"Id: must be a string, not {_json_type(policy_id)}")
    if "Statement" not in data:
        raise PolicyError("Statement: missing (a key policy needs at least one statement)")
    raw_statements = data["Statement"]
    if isinstance(raw_statements, Mapping):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list):
        raise PolicyError(
            f"Statement: must be a list of statements or one statement object, "
            f"not {_json_type(raw_statements)}"
        )
    named, has_ids = _scan_partitions(raw_statements)
    if partition is None:
        partition = _choose_partition(named)
    statements = tuple(
        _parse_statement(raw, index=i, partition=partition) for i, raw in enumerate(raw_statements)
    )
    return Policy(
        version=version,
        id=policy_id,
        statements=statements,
        partition=partition,
        named_partitions=named,
        has_account_ids=has_ids,
    )


def _scan_partitions(raw_statements: list[Any]) -> tuple[frozenset[str], bool]:
    """The partitions named by principal and resource ARNs, and whether any AWS principal is
    a bare account id. Tolerates malformed statements: the parser reports those."""
    named: set[str] = set()
    has_ids = False
    for raw in raw_statements:
        if not isinstance(raw, Mapping):
            continue
        values: list[Any] = []
        for element in ("Principal", "NotPrincipal"):
            principal = raw.get(element)
            if isinstance(principal, Mapping):
                aws = principal.get("AWS")
                values.extend(aws if isinstance(aws, list) else [aws])
        has_ids = has_ids or any(isinstance(v, str) and _ACCOUNT_ID.match(v) for v in values)
        for element in ("Resource", "NotResource"):
            resource = raw.get(element)
            values.extend(resource if isinstance(resource, list) else [resource])
        for value in values:
            # Cheap prefix tests first: nearly every ARN is in "aws".
            if isinstance(value, str) and value.startswith("arn:aws"):
                if value.startswith("arn:aws:"):
                    named.add("aws")
                else:
                    match = _ARN_PARTITION.match(value)
                    if match:
                        named.add(match.group(1))
    return frozenset(named), has_ids


def _choose_partition(named: frozenset[str]) -> str:
    # A policy lives in one partition; "aws" when the ARNs name none (or, oddly, several).
    if len(named) == 1:
        return next(iter(named))
    return "aws"


def load_document(doc: str | Mapping[str, Any]) -> Mapping[str, Any]:
    """JSON text (or an already-loaded mapping) as a mapping; PolicyError if it is not a JSON
    object or has a key twice."""
    if isinstance(doc, str):
        try:
            data = json.loads(doc, object_pairs_hook=_reject_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise PolicyError(
                f"policy is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
    else:
        data = doc
    if not isinstance(data, Mapping):
        raise PolicyError(f"policy must be a JSON object, not {_json_type(data)}")
    return data


def _show(value: object) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        # YAML reads an unquoted 2012-10-17 as a date; say what was found, not crash.
        return f"{value!s} ({type(value).__name__})"


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # json.loads would silently keep the last one; a reviewer reading the text would
            # not know which of the two KMS evaluates.
            raise PolicyError(f"policy is not valid JSON: duplicate key {_quote(key)}")
        out[key] = value
    return out


def _parse_statement(raw: object, *, index: int, partition: str) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: must be an object, not {_json_type(raw)}")
    unknown = sorted(set(raw) - _STATEMENT_ELEMENTS)
    if unknown:
        raise PolicyError(
            f"{where}: unknown element {_quote(unknown[0])} (allowed: "
            + ", ".join(sorted(_STATEMENT_ELEMENTS))
            + "; element names are case-sensitive)"
        )
    for a, b in (
        ("Principal", "NotPrincipal"),
        ("Action", "NotAction"),
        ("Resource", "NotResource"),
    ):
        if a in raw and b in raw:
            raise PolicyError(f"{where}: has both {a} and {b} (a statement may use only one)")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"{where}.Sid: must be a string, not {_json_type(sid)}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        shown = "missing" if effect is None else _show(effect)
        raise PolicyError(f'{where}.Effect: {shown} (allowed: "Allow" or "Deny", case-sensitive)')

    def strings(element: str) -> frozenset[str] | None:
        if element not in raw:
            return None
        return frozenset(_string_list(raw[element], where=f"{where}.{element}"))

    def actions(element: str) -> frozenset[str] | None:
        values = strings(element)
        if values is None:
            return None
        for value in values:
            if value != "*" and ":" not in value:
                raise PolicyError(
                    f"{where}.{element}: {json.dumps(value)} is not an action "
                    '(allowed: "*" or "service:Action", e.g. "kms:Decrypt")'
                )
        return frozenset(canonical_action(v) for v in values)

    def principals(element: str) -> PrincipalSet | None:
        if element not in raw:
            return None
        return _parse_principals(raw[element], where=f"{where}.{element}", partition=partition)

    return Statement(
        index=index,
        sid=sid,
        effect=effect,
        principals=principals("Principal"),
        not_principals=principals("NotPrincipal"),
        actions=actions("Action"),
        not_actions=actions("NotAction"),
        resources=strings("Resource"),
        not_resources=strings("NotResource"),
        conditions=_parse_conditions(raw.get("Condition"), where=f"{where}.Condition"),
    )


def _string_list(value: object, *, where: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str):
            raise PolicyError(
                f"{where}: must be a string or a list of strings, found {_json_type(item)}"
            )
    return items  # type: ignore[return-value]  # checked above


def _parse_principals(value: object, *, where: str, partition: str) -> PrincipalSet:
    if value == "*":
        return PrincipalSet(aws=_PUBLIC)
    if not isinstance(value, Mapping):
        raise PolicyError(
            f'{where}: must be "*" or an object such as '
            f'{{"AWS": "arn:aws:iam::111122223333:root"}}, not {_json_type(value)}'
        )
    unknown = sorted(k for k in value if k not in _PRINCIPAL_TYPES)
    if unknown:
        raise PolicyError(
            f"{where}: unknown principal type {_quote(unknown[0])} "
            "(allowed: AWS, Service, Federated, CanonicalUser)"
        )
    fields: dict[str, frozenset[str]] = {}
    for element, names in value.items():
        fields[_PRINCIPAL_TYPES[element]] = frozenset(
            _string_list(names, where=f"{where}.{element}")
        )
    aws = fields.get("aws", _EMPTY)
    if "*" in aws:
        aws = _PUBLIC
    elif any(_ACCOUNT_ID.match(p) for p in aws):
        aws = frozenset(canonical_principal(p, partition=partition) for p in aws)
    return PrincipalSet(
        aws=aws,
        service=fields.get("service", _EMPTY),
        federated=fields.get("federated", _EMPTY),
        canonical_user=fields.get("canonical_user", _EMPTY),
    )


_EMPTY: frozenset[str] = frozenset()
_PUBLIC = frozenset({"*"})


def _parse_conditions(value: object, *, where: str) -> frozenset[Condition]:
    if value is None:
        return frozenset()
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where}: must be an object, not {_json_type(value)}")
    out: dict[tuple[str, str], Condition] = {}
    for operator, block in value.items():
        if not isinstance(block, Mapping):
            raise PolicyError(
                f"{where}.{operator}: must be an object of condition keys to values, "
                f"not {_json_type(block)}"
            )
        for key, raw_values in block.items():
            here = f"{where}.{operator}.{key}"
            items = raw_values if isinstance(raw_values, list) else [raw_values]
            canonical_key = canonical_condition_key(key)
            if (operator, canonical_key) in out:
                raise PolicyError(
                    f"{here}: condition key given twice under {operator} "
                    f"(condition keys are case-insensitive)"
                )
            out[(operator, canonical_key)] = Condition(
                operator=operator,
                key=canonical_key,
                values=frozenset(condition_value(v, where=here) for v in items),
            )
    return frozenset(out.values())


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _quote(text: str) -> str:
    return json.dumps(text)
