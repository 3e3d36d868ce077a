"""Statement-level policy diffs and access summaries."""

from __future__ import annotations

import copy
import json
from typing import Any

from kmsplan.policy.diff import policy_diff

ROOT = "arn:aws:iam::111122223333:root"
APP = "arn:aws:iam::111122223333:role/app"


def live() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Admin",
                "Effect": "Allow",
                "Principal": {"AWS": "111122223333"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Use",
                "Effect": "Allow",
                "Principal": {"AWS": APP},
                "Action": ["kms:Decrypt", "kms:Encrypt"],
                "Resource": "*",
            },
        ],
    }


def test_modified_and_added_statements_golden() -> None:
    desired = live()
    desired["Statement"][1]["Action"] = ["kms:Decrypt", "kms:GenerateDataKey"]
    desired["Statement"][1]["Condition"] = {
        "StringEquals": {"kms:viaservice": "s3.eu-west-1.amazonaws.com"}
    }
    desired["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": {"Service": "logs.amazonaws.com"},
            "Action": "kms:Encrypt",
            "Resource": "*",
        }
    )
    diff = policy_diff(live(), desired, before_label="live", after_label="desired")
    assert diff["equivalent"] is False
    assert diff["label_only"] is False
    assert [(s["sid"], s["change"]) for s in diff["statements"]] == [
        ("Admin", "unchanged"),
        ("Use", "modified"),
        ("", "added"),
    ]
    assert diff["statements"][1]["before"] == {
        "Sid": "Use",
        "Effect": "Allow",
        "Principal": {"AWS": [APP]},
        "Action": ["kms:Decrypt", "kms:Encrypt"],
        "Resource": ["*"],
    }
    assert diff["unified"] == (
        "--- live\n"
        "+++ desired\n"
        " {\n"
        '   "Version": "2012-10-17",\n'
        '   "Statement": [\n'
        '     ... unchanged: Sid "Admin"\n'
        "     {\n"
        '       "Sid": "Use",\n'
        '       "Effect": "Allow",\n'
        '       "Principal": {\n'
        f'         "AWS": ["{APP}"]\n'
        "       },\n"
        '       "Action": [\n'
        '         "kms:Decrypt",\n'
        '-        "kms:Encrypt"\n'
        '+        "kms:GenerateDataKey"\n'
        "       ],\n"
        '-      "Resource": ["*"]\n'
        '+      "Resource": ["*"],\n'
        '+      "Condition": {\n'
        '+        "StringEquals": {\n'
        '+          "kms:ViaService": ["s3.eu-west-1.amazonaws.com"]\n'
        "+        }\n"
        "+      }\n"
        "     }\n"
        "+    {\n"
        '+      "Effect": "Allow",\n'
        '+      "Principal": {\n'
        '+        "Service": ["logs.amazonaws.com"]\n'
        "+      },\n"
        '+      "Action": ["kms:Encrypt"],\n'
        '+      "Resource": ["*"]\n'
        "+    }\n"
        "   ]\n"
        " }\n"
    )
    assert diff["access"] == [
        {"principal": "Service:logs.amazonaws.com", "gained": ["kms:Encrypt"], "lost": []},
        {
            "principal": APP,
            "gained": ["kms:Decrypt (conditional)", "kms:GenerateDataKey (conditional)"],
            "lost": ["kms:Decrypt", "kms:Encrypt"],
        },
    ]
    json.dumps(diff)  # JSON-shaped all the way down


def test_removed_statement_and_lost_access() -> None:
    desired = live()
    del desired["Statement"][1]
    diff = policy_diff(live(), desired)
    assert [(s["sid"], s["change"]) for s in diff["statements"]] == [
        ("Admin", "unchanged"),
        ("Use", "removed"),
    ]
    assert diff["statements"][1]["after"] is None
    assert '-      "Sid": "Use",\n' in diff["unified"]
    assert diff["access"] == [
        {"principal": APP, "gained": [], "lost": ["kms:Decrypt", "kms:Encrypt"]}
    ]


def test_equivalent_rewrite_shows_no_change() -> None:
    desired = live()
    desired["Statement"].reverse()
    desired["Statement"][1]["Principal"] = {"AWS": [ROOT]}
    desired["Statement"][0]["Action"] = ["kms:encrypt", "KMS:Decrypt"]
    diff = policy_diff(live(), desired)
    assert diff["equivalent"] is True
    assert diff["label_only"] is False
    assert {s["change"] for s in diff["statements"]} == {"unchanged"}
    assert diff["access"] == []


def test_sid_rename_is_label_only() -> None:
    desired = live()
    desired["Statement"][1]["Sid"] = "AppUse"
    diff = policy_diff(live(), desired)
    assert diff["equivalent"] is True
    assert diff["label_only"] is True
    assert [(s["sid"], s["change"]) for s in diff["statements"]] == [
        ("Admin", "unchanged"),
        ("AppUse", "modified"),
    ]
    assert '-      "Sid": "Use",\n+      "Sid": "AppUse",\n' in diff["unified"]
    assert diff["access"] == []


def test_id_change_is_label_only() -> None:
    desired = live()
    desired["Id"] = "orders"
    diff = policy_diff(live(), desired)
    assert diff["label_only"] is True
    assert '+  "Id": "orders",\n' in diff["unified"]


def test_sidless_statements_match_by_content() -> None:
    before = live()
    for statement in before["Statement"]:
        del statement["Sid"]
    after = copy.deepcopy(before)
    after["Statement"][1]["Action"] = "kms:Decrypt"
    diff = policy_diff(before, after)
    assert [(s["sid"], s["change"]) for s in diff["statements"]] == [
        ("", "unchanged"),
        ("", "added"),
        ("", "removed"),
    ]
    assert "... unchanged: statement without Sid" in diff["unified"]
    assert diff["access"] == [{"principal": APP, "gained": [], "lost": ["kms:Encrypt"]}]


def test_new_policy_is_all_added() -> None:
    diff = policy_diff(None, live())
    assert diff["equivalent"] is False
    assert diff["label_only"] is False
    assert diff["version"] == {"before": None, "after": "2012-10-17"}
    assert {s["change"] for s in diff["statements"]} == {"added"}
    assert diff["unified"].splitlines()[:5] == [
        "--- before",
        "+++ after",
        " {",
        '+  "Version": "2012-10-17",',
        '   "Statement": [',
    ]
    assert diff["access"] == [
        {"principal": APP, "gained": ["kms:Decrypt", "kms:Encrypt"], "lost": []},
        {"principal": ROOT, "gained": ["kms:*"], "lost": []},
    ]


def test_version_change_is_shown() -> None:
    desired = live()
    desired["Version"] = "2008-10-17"
    diff = policy_diff(live(), desired)
    assert diff["equivalent"] is False
    assert diff["version"] == {"before": "2012-10-17", "after": "2008-10-17"}
    assert '-  "Version": "2012-10-17",\n+  "Version": "2008-10-17",\n' in diff["unified"]


def test_access_summary_applies_denies_and_compresses_kms_star() -> None:
    desired = live()
    desired["Statement"].append(
        {
            "Sid": "NoDelete",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["kms:ScheduleKeyDeletion", "kms:Decrypt"],
            "Resource": "*",
        }
    )
    desired["Statement"].append(
        {
            "Sid": "MaybeNoEncrypt",
            "Effect": "Deny",
            "Principal": {"AWS": APP},
            "Action": "kms:Encrypt",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    diff = policy_diff(live(), desired)
    assert diff["access"] == [
        {
            "principal": APP,
            "gained": ["kms:Encrypt (conditional)"],
            "lost": ["kms:Decrypt", "kms:Encrypt"],
        },
        {"principal": ROOT, "gained": [], "lost": ["kms:Decrypt", "kms:ScheduleKeyDeletion"]},
    ]


def test_access_summary_shows_nearly_everything_as_an_exception_list() -> None:
    desired = live()
    desired["Statement"][1]["Action"] = "kms:*"
    desired["Statement"][1]["NotAction"] = desired["Statement"][1].pop("Action")
    desired["Statement"][1]["NotAction"] = ["kms:Put*", "kms:ScheduleKeyDeletion"]
    before = live()
    del before["Statement"][1]
    diff = policy_diff(before, desired)
    assert diff["access"] == [
        {
            "principal": APP,
            "gained": ["kms:* except kms:PutKeyPolicy, kms:ScheduleKeyDeletion"],
            "lost": [],
        },
    ]
