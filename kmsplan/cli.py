"""The command line: a thin click layer. Commands live in kmsplan.commands.*; this module
registers them and is the one place where errors become messages and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from kmsplan import __version__
from kmsplan.errors import ExitCode, KmsplanError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kmsplan")
def cli() -> None:
    """Declarative AWS KMS: keys, aliases, key policies, grants and rotation from YAML."""


def _register() -> None:
    from kmsplan.commands import apply, demo, lint, local_kms, plan, validate

    for module in (validate, plan, apply, lint, demo, local_kms):
        cli.add_command(module.command)


_register()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI; turn every kmsplan error into a message and an exit code."""
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except KmsplanError as exc:
        click.echo(exc.render(), err=True)
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return int(ExitCode.ERROR)
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.ERROR) if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    return int(rv) if isinstance(rv, int) else int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
