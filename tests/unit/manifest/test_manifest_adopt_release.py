"""`adopt:` in a key block and `released:` at the top level: what loads, what is refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kmsplan.errors import ValidationFailed
from kmsplan.manifest import load

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return str(path)


def errors(paths: list[str]) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        load(paths)
    return [d.render() for d in info.value.diagnostics]


@pytest.mark.parametrize(
    "ref",
    [
        KEY_ID,
        f"arn:aws:kms:eu-west-1:111122223333:key/{KEY_ID}",
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "alias/payments/orders",
    ],
)
def test_adopt_takes_a_key_id_a_key_arn_or_an_alias(tmp_path: Path, ref: str) -> None:
    path = write(
        tmp_path / "m.yaml",
        f"""
        version: 1
        stack: payments
        keys:
          orders:
            adopt: {ref}
        """,
    )
    assert load([path]).keys[0].adopt == ref


def test_adopt_of_something_that_names_no_key_is_refused_with_what_is_allowed(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: payments
        keys:
          orders:
            adopt: my-orders-key
        """,
    )
    assert errors([path]) == [
        f'{path}:5:12: error: keys.orders.adopt: "my-orders-key" is not valid (a key id '
        "(1234abcd-12ab-34cd-56ef-1234567890ab or mrk-...), a key ARN "
        "(arn:aws:kms:REGION:ACCOUNT:key/ID) or an alias name (alias/NAME))"
    ]


def test_released_names_load_sorted_from_every_file(tmp_path: Path) -> None:
    a = write(
        tmp_path / "set" / "a.yaml",
        """
        version: 1
        stack: payments
        released: [zeta, alpha]
        keys:
          orders: {}
        """,
    )
    write(
        tmp_path / "set" / "b.yaml",
        """
        version: 1
        stack: payments
        released: [beta]
        """,
    )
    loaded = load([str(Path(a).parent)])
    assert loaded.released == ("alpha", "beta", "zeta")
    assert [k.name for k in loaded.keys] == ["orders"]


def test_a_name_both_declared_and_released_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: payments
        released: [archive, orders]
        keys:
          orders: {}
        """,
    )
    assert errors([path]) == [
        f'{path}:3:21: error: released[1]: key "orders" is both released and declared '
        f"({path}:5) (remove its block to release it, or remove it from released: to keep "
        "managing it)"
    ]


def test_a_released_name_that_no_manifest_could_declare_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "m.yaml",
        """
        version: 1
        stack: payments
        released: ["bad name"]
        """,
    )
    (message,) = errors([path])
    assert message.startswith(f'{path}:3:12: error: released[0]: "bad name" is not valid')
