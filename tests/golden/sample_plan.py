"""A hand-built Plan that exercises every feature the renderers show: create (key with policy,
alias, grant), update with a policy diff and an access summary, alias retarget onto a key that
does not exist yet, grant replacement, restore of a key pending deletion, an allowed delete, a
blocked delete, unmanaged notes, warnings, lint findings (one suppressed) and a cost delta.

It is written the way the differ fills a Plan, so the golden renderings built from it are
what reviewers will see; keep it realistic when the differ's output evolves.
"""

from __future__ import annotations

import json

from kmsplan.lint.finding import Finding, Severity
from kmsplan.model import Location, Role
from kmsplan.plan.types import (
    Action,
    ApiCall,
    AttributeChange,
    Change,
    CostLine,
    GateBlock,
    GateOptions,
    Plan,
    Resource,
    ref,
)

ACCOUNT = "111122223333"
PARTNER = "444455556666"
REGION = "eu-west-1"
INVOICES_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
REFUNDS_ID = "0987dcba-09fe-87dc-65ba-ab0987654321"
LEGACY_ID = "5c1f0c7e-3a2b-4c5d-9e8f-7a6b5c4d3e2f"
MANIFEST = "manifests/payments.yaml"


def _arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:{name}"


ROOT_STATEMENT = {
    "Sid": "AccountAdmin",
    "Effect": "Allow",
    "Principal": {"AWS": _arn("root")},
    "Action": "kms:*",
    "Resource": "*",
}

ORDERS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        ROOT_STATEMENT,
        {
            "Sid": "OrdersLambdaUse",
            "Effect": "Allow",
            "Principal": {"AWS": _arn("role/orders-lambda")},
            "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
        },
    ],
}

INVOICES_POLICY_LIVE = {
    "Version": "2012-10-17",
    "Statement": [
        ROOT_STATEMENT,
        {
            "Sid": "InvoiceReaders",
            "Effect": "Allow",
            "Principal": {"AWS": _arn("role/invoice-reader")},
            "Action": "kms:Decrypt",
            "Resource": "*",
        },
        {
            "Sid": "LegacyBatch",
            "Effect": "Allow",
            "Principal": {"AWS": _arn("user/legacy-batch")},
            "Action": ["kms:Decrypt", "kms:Encrypt"],
            "Resource": "*",
        },
    ],
}

INVOICES_POLICY_DESIRED = {
    "Version": "2012-10-17",
    "Statement": [
        ROOT_STATEMENT,
        {
            "Sid": "InvoiceReaders",
            "Effect": "Allow",
            "Principal": {"AWS": _arn("role/invoice-reader")},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
        },
        {
            "Sid": "PartnerDecrypt",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{PARTNER}:root"},
            "Action": "kms:Decrypt",
            "Resource": "*",
        },
    ],
}

# The unified diffs are in the format kmsplan.policy.diff.policy_diff produces.
ORDERS_UNIFIED = """\
--- live
+++ manifests
 {
+  "Version": "2012-10-17",
   "Statement": [
+    {
+      "Sid": "AccountAdmin",
+      "Effect": "Allow",
+      "Principal": {
+        "AWS": ["arn:aws:iam::111122223333:root"]
+      },
+      "Action": ["kms:*"],
+      "Resource": ["*"]
+    }
+    {
+      "Sid": "OrdersLambdaUse",
+      "Effect": "Allow",
+      "Principal": {
+        "AWS": ["arn:aws:iam::111122223333:role/orders-lambda"]
+      },
+      "Action": [
+        "kms:CreateGrant",
+        "kms:Decrypt",
+        "kms:GenerateDataKey"
+      ],
+      "Resource": ["*"]
+    }
   ]
 }
"""

INVOICES_UNIFIED = """\
--- live
+++ manifests
 {
   "Version": "2012-10-17",
   "Statement": [
     ... unchanged: Sid "AccountAdmin"
     {
       "Sid": "InvoiceReaders",
       "Effect": "Allow",
       "Principal": {
         "AWS": ["arn:aws:iam::111122223333:role/invoice-reader"]
       },
-      "Action": ["kms:Decrypt"],
+      "Action": [
+        "kms:Decrypt",
+        "kms:GenerateDataKey"
+      ],
       "Resource": ["*"]
     }
+    {
+      "Sid": "PartnerDecrypt",
+      "Effect": "Allow",
+      "Principal": {
+        "AWS": ["arn:aws:iam::444455556666:root"]
+      },
+      "Action": ["kms:Decrypt"],
+      "Resource": ["*"]
+    }
-    {
-      "Sid": "LegacyBatch",
-      "Effect": "Allow",
-      "Principal": {
-        "AWS": ["arn:aws:iam::111122223333:user/legacy-batch"]
-      },
-      "Action": [
-        "kms:Decrypt",
-        "kms:Encrypt"
-      ],
-      "Resource": ["*"]
-    }
   ]
 }
"""


def _statement(policy: dict[str, object], sid: str) -> dict[str, object]:
    statements = policy["Statement"]
    assert isinstance(statements, list)
    return next(s for s in statements if s["Sid"] == sid)


def build_sample_plan() -> Plan:
    orders = Change(
        address="key.orders",
        resource=Resource.KEY,
        action=Action.CREATE,
        key="orders",
        reason="declared in the manifests, not found in KMS",
        after={
            "description": "Orders table encryption",
            "spec": "SYMMETRIC_DEFAULT",
            "usage": "ENCRYPT_DECRYPT",
            "multi_region": False,
            "enabled": True,
            "rotation": {"enabled": True, "period_days": 180},
            "deletion": {"protected": True, "window_days": 30},
            "tags": {"data-class": "confidential", "team": "payments"},
            "policy": ORDERS_POLICY,
        },
        calls=(
            ApiCall(
                operation="CreateKey",
                params={
                    "Description": "Orders table encryption",
                    "KeySpec": "SYMMETRIC_DEFAULT",
                    "KeyUsage": "ENCRYPT_DECRYPT",
                    "MultiRegion": False,
                    "Policy": json.dumps(ORDERS_POLICY, sort_keys=True),
                    "Tags": [
                        {"TagKey": "data-class", "TagValue": "confidential"},
                        {"TagKey": "kmsplan:deletion-protection", "TagValue": "true"},
                        {"TagKey": "kmsplan:key", "TagValue": "orders"},
                        {"TagKey": "kmsplan:stack", "TagValue": "payments"},
                        {"TagKey": "team", "TagValue": "payments"},
                    ],
                },
            ),
            ApiCall(
                operation="EnableKeyRotation",
                params={"KeyId": ref("key.orders"), "RotationPeriodInDays": 180},
            ),
        ),
        policy_diff={
            "equivalent": False,
            "label_only": False,
            "statements": [
                {
                    "sid": "AccountAdmin",
                    "change": "added",
                    "before": None,
                    "after": ROOT_STATEMENT,
                },
                {
                    "sid": "OrdersLambdaUse",
                    "change": "added",
                    "before": None,
                    "after": _statement(ORDERS_POLICY, "OrdersLambdaUse"),
                },
            ],
            "unified": ORDERS_UNIFIED,
            "access": [
                {
                    "principal": _arn("role/orders-lambda"),
                    "gained": ["kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey"],
                    "lost": [],
                },
                {"principal": _arn("root"), "gained": ["kms:*"], "lost": []},
            ],
        },
    )
    orders_alias = Change(
        address="alias.alias/payments/orders",
        resource=Resource.ALIAS,
        action=Action.CREATE,
        key="orders",
        reason="declared in the manifests, not found in KMS",
        after={"name": "alias/payments/orders", "target_key_id": ref("key.orders")},
        calls=(
            ApiCall(
                operation="CreateAlias",
                params={"AliasName": "alias/payments/orders", "TargetKeyId": ref("key.orders")},
            ),
        ),
        depends_on=("key.orders",),
    )
    orders_grant = Change(
        address="grant.orders.orders-lambda",
        resource=Resource.GRANT,
        action=Action.CREATE,
        key="orders",
        reason="declared in the manifests, not found in KMS",
        after={
            "name": "orders-lambda",
            "grantee": _arn("role/orders-lambda"),
            "operations": ["Decrypt", "GenerateDataKey"],
            "constraints": {"encryption_context_subset": {"service": "orders"}},
        },
        calls=(
            ApiCall(
                operation="CreateGrant",
                params={
                    "KeyId": ref("key.orders"),
                    "Name": "kmsplan/orders-lambda",
                    "GranteePrincipal": _arn("role/orders-lambda"),
                    "Operations": ["Decrypt", "GenerateDataKey"],
                    "Constraints": {"EncryptionContextSubset": {"service": "orders"}},
                },
            ),
        ),
        depends_on=("key.orders",),
    )
    invoices = Change(
        address="key.invoices",
        resource=Resource.KEY,
        action=Action.UPDATE,
        key="invoices",
        reason="the live key differs from the manifests",
        before={
            "key_id": INVOICES_ID,
            "description": "Invoices",
            "rotation": {"enabled": True, "period_days": 365},
            "tags": {"team": "billing"},
            "policy": INVOICES_POLICY_LIVE,
        },
        after={
            "key_id": INVOICES_ID,
            "description": "Invoice PDFs and exports | EU",
            "rotation": {"enabled": True, "period_days": 180},
            "tags": {"team": "payments"},
            "policy": INVOICES_POLICY_DESIRED,
        },
        attributes=(
            AttributeChange(
                name="description", before="Invoices", after="Invoice PDFs and exports | EU"
            ),
            AttributeChange(name="rotation.period_days", before=365, after=180),
            AttributeChange(name="tags.team", before="billing", after="payments"),
            AttributeChange(
                name="policy", before=INVOICES_POLICY_LIVE, after=INVOICES_POLICY_DESIRED
            ),
        ),
        calls=(
            ApiCall(
                operation="UpdateKeyDescription",
                params={"KeyId": INVOICES_ID, "Description": "Invoice PDFs and exports | EU"},
            ),
            ApiCall(
                operation="EnableKeyRotation",
                params={"KeyId": INVOICES_ID, "RotationPeriodInDays": 180},
            ),
            ApiCall(
                operation="TagResource",
                params={"KeyId": INVOICES_ID, "Tags": [{"TagKey": "team", "TagValue": "payments"}]},
            ),
            ApiCall(
                operation="PutKeyPolicy",
                params={
                    "KeyId": INVOICES_ID,
                    "PolicyName": "default",
                    "Policy": json.dumps(INVOICES_POLICY_DESIRED, sort_keys=True),
                },
            ),
        ),
        policy_diff={
            "equivalent": False,
            "label_only": False,
            "statements": [
                {
                    "sid": "AccountAdmin",
                    "change": "unchanged",
                    "before": ROOT_STATEMENT,
                    "after": ROOT_STATEMENT,
                },
                {
                    "sid": "InvoiceReaders",
                    "change": "modified",
                    "before": _statement(INVOICES_POLICY_LIVE, "InvoiceReaders"),
                    "after": _statement(INVOICES_POLICY_DESIRED, "InvoiceReaders"),
                },
                {
                    "sid": "PartnerDecrypt",
                    "change": "added",
                    "before": None,
                    "after": _statement(INVOICES_POLICY_DESIRED, "PartnerDecrypt"),
                },
                {
                    "sid": "LegacyBatch",
                    "change": "removed",
                    "before": _statement(INVOICES_POLICY_LIVE, "LegacyBatch"),
                    "after": None,
                },
            ],
            "unified": INVOICES_UNIFIED,
            "access": [
                {
                    "principal": _arn("role/invoice-reader"),
                    "gained": ["kms:GenerateDataKey"],
                    "lost": [],
                },
                {
                    "principal": _arn("user/legacy-batch"),
                    "gained": [],
                    "lost": ["kms:Decrypt", "kms:Encrypt"],
                },
                {
                    "principal": f"arn:aws:iam::{PARTNER}:root",
                    "gained": ["kms:Decrypt"],
                    "lost": [],
                },
            ],
        },
    )
    current_alias = Change(
        address="alias.alias/payments/current",
        resource=Resource.ALIAS,
        action=Action.UPDATE,
        key="orders",
        reason="the manifests move this alias from key invoices to key orders",
        before={"name": "alias/payments/current", "target_key_id": INVOICES_ID},
        after={"name": "alias/payments/current", "target_key_id": ref("key.orders")},
        attributes=(
            AttributeChange(name="target_key_id", before=INVOICES_ID, after=ref("key.orders")),
        ),
        calls=(
            ApiCall(
                operation="UpdateAlias",
                params={"AliasName": "alias/payments/current", "TargetKeyId": ref("key.orders")},
            ),
        ),
        depends_on=("key.orders",),
    )
    reporting_grant = Change(
        address="grant.invoices.reporting",
        resource=Resource.GRANT,
        action=Action.UPDATE,
        key="invoices",
        reason="grants cannot be changed in place: a new grant replaces the old one",
        before={
            "name": "reporting",
            "grantee": _arn("role/reporting"),
            "operations": ["Decrypt"],
            "grant_id": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2",
        },
        after={
            "name": "reporting",
            "grantee": _arn("role/reporting"),
            "operations": ["Decrypt", "DescribeKey"],
        },
        attributes=(
            AttributeChange(
                name="operations", before=["Decrypt"], after=["Decrypt", "DescribeKey"]
            ),
        ),
        calls=(
            ApiCall(
                operation="CreateGrant",
                params={
                    "KeyId": INVOICES_ID,
                    "Name": "kmsplan/reporting",
                    "GranteePrincipal": _arn("role/reporting"),
                    "Operations": ["Decrypt", "DescribeKey"],
                },
            ),
            ApiCall(
                operation="RevokeGrant",
                params={
                    "KeyId": INVOICES_ID,
                    "GrantId": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2",
                },
            ),
        ),
        depends_on=("key.invoices",),
    )
    refunds = Change(
        address="key.refunds",
        resource=Resource.KEY,
        action=Action.RESTORE,
        key="refunds",
        reason="declared in the manifests, found pending deletion (scheduled for 2024-07-01)",
        before={"key_id": REFUNDS_ID, "state": "PendingDeletion", "enabled": False},
        after={"key_id": REFUNDS_ID, "state": "Enabled", "enabled": True},
        attributes=(AttributeChange(name="state", before="PendingDeletion", after="Enabled"),),
        calls=(
            ApiCall(operation="CancelKeyDeletion", params={"KeyId": REFUNDS_ID}),
            ApiCall(operation="EnableKey", params={"KeyId": REFUNDS_ID}),
        ),
    )
    legacy_alias = Change(
        address="alias.alias/payments/legacy",
        resource=Resource.ALIAS,
        action=Action.DELETE,
        key="legacy",
        reason="not declared in the manifests any more",
        before={"name": "alias/payments/legacy", "target_key_id": LEGACY_ID},
        calls=(ApiCall(operation="DeleteAlias", params={"AliasName": "alias/payments/legacy"}),),
    )
    legacy = Change(
        address="key.legacy",
        resource=Resource.KEY,
        action=Action.DELETE,
        key="legacy",
        reason="the key's block is gone from the manifests: schedule deletion in 30 days",
        before={
            "key_id": LEGACY_ID,
            "description": "Legacy payments key",
            "state": "Enabled",
            "deletion": {"protected": True, "window_days": 30},
        },
        calls=(
            ApiCall(
                operation="ScheduleKeyDeletion",
                params={"KeyId": LEGACY_ID, "PendingWindowInDays": 30},
            ),
        ),
        depends_on=("alias.alias/payments/legacy",),
        blocked=(
            GateBlock(
                rule="deletion-protection",
                reason="the key's kmsplan:deletion-protection tag is true",
                unblock=(
                    "declare the key again with `deletion: {protected: false}`, apply that, "
                    "then remove its block"
                ),
            ),
            GateBlock(
                rule="allow-delete",
                reason="this run does not allow key deletion",
                unblock="run with `--allow-delete`",
            ),
        ),
    )
    return Plan(
        stack="payments",
        account_id=ACCOUNT,
        region=REGION,
        role=Role(arn=f"arn:aws:iam::{ACCOUNT}:role/kmsplan-payments", external_id="payments-7f3a"),
        changes=(
            orders,
            orders_alias,
            orders_grant,
            invoices,
            current_alias,
            reporting_grant,
            refunds,
            legacy_alias,
            legacy,
        ),
        gate=GateOptions(),
        unmanaged=(
            f"grant 0f1e2d3c… on key invoices for arn:aws:iam::{ACCOUNT}:role/aws-service-role/"
            "rds.amazonaws.com/AWSServiceRoleForRDS (not created by kmsplan; never revoked)",
            "alias alias/payments/old-reports points at key invoices but is not declared "
            "in the manifests; left as it is",
        ),
        warnings=(
            f"policy of key invoices names arn:aws:iam::{PARTNER}:root from another account: "
            "kmsplan cannot check that it exists",
        ),
        findings=(
            Finding(
                rule="cross-account-without-condition",
                severity=Severity.WARNING,
                title="Cross-account access without kms:CallerAccount or kms:ViaService",
                message=(
                    f"statement PartnerDecrypt lets account {PARTNER} use the key from any "
                    "service; add a kms:ViaService or kms:CallerAccount condition"
                ),
                key="invoices",
                path="keys.invoices.policy.Statement[2]",
                location=Location(file=MANIFEST, line=48, column=11),
                suppressed=False,
            ),
            Finding(
                rule="key-management-to-user",
                severity=Severity.ERROR,
                title="Key-management actions granted to a principal that only uses the key",
                message=(
                    "statement OrdersLambdaUse lets role/orders-lambda call kms:CreateGrant; "
                    "a principal that encrypts and decrypts should not delegate access"
                ),
                key="orders",
                path="keys.orders.policy.Statement[1]",
                location=Location(file=MANIFEST, line=21, column=11),
                suppressed=False,
            ),
            Finding(
                rule="rotation-disabled",
                severity=Severity.WARNING,
                title="Automatic rotation is disabled on a symmetric key",
                message="key refunds does not rotate its key material",
                key="refunds",
                path="keys.refunds.rotation",
                location=Location(file=MANIFEST, line=60, column=5),
                suppressed=True,
            ),
        ),
        cost=(
            CostLine(description="new key orders", monthly_usd=1.0),
            CostLine(
                description="key refunds is billed again once its deletion is cancelled",
                monthly_usd=1.0,
            ),
        ),
        fingerprint={
            "discovery": "sha256:3f1a9c0d6e2b7a4f",
            "key.invoices": "sha256:9b8e2c1d0f3a4b5c",
            "key.legacy": "sha256:0a1b2c3d4e5f6071",
            "key.refunds": "sha256:c4d5e6f708192a3b",
            "alias.alias/payments/current": "sha256:5e6f708192a3b4c5",
        },
        kmsplan_version="0.1.0",
    )
