"""The command line: a thin click layer. Commands live in kmsplan.commands.*; this module
registers them and is the one place where errors become messages and exit codes."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from kmsplan import __version__
from kmsplan.errors import ExitCode, KmsplanError
from kmsplan.render.terminal import terminal_safe


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kmsplan")
def cli() -> None:
    """Declarative AWS KMS: keys, aliases, key policies, grants and rotation from YAML."""


def _register() -> None:
    from kmsplan.commands import (
        apply,
        demo,
        force_unlock,
        iam_policy,
        import_keys,
        lint,
        local_kms,
        plan,
        stacks,
        validate,
    )

    for module in (
        validate,
        plan,
        apply,
        import_keys,
        force_unlock,
        lint,
        stacks,
        iam_policy,
        demo,
        local_kms,
    ):
        cli.add_command(module.command)


_register()


# Set to 1 to see the traceback of an unexpected error (a bug) as well as its summary.
DEBUG_ENV = "KMSPLAN_DEBUG"
REPORT_TO = "kmsplan's issue tracker"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI; turn every kmsplan error into a message and an exit code,
    and anything else (a bug) into one line saying so."""
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except KmsplanError as exc:
        click.echo(terminal_safe(exc.render()), err=True)
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return int(ExitCode.ERROR)
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.ERROR) if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except Exception as exc:  # the last resort: no traceback reaches the user
        if os.environ.get(DEBUG_ENV) == "1":
            traceback.print_exc()
        click.echo(bug_message(exc), err=True)
        return int(ExitCode.ERROR)
    return int(rv) if isinstance(rv, int) else int(ExitCode.OK)


def bug_message(exc: BaseException) -> str:
    """One line for an exception kmsplan did not expect: a bug, wherever it came from."""
    where = _innermost_kmsplan_frame(exc)
    at = f" in {where}" if where else ""
    return (
        f"error: internal error (a bug in kmsplan {__version__}): {type(exc).__name__}{at}. "
        f"Please report it on {REPORT_TO} with the command you ran; set {DEBUG_ENV}=1 to "
        "see the traceback"
    )


def _innermost_kmsplan_frame(exc: BaseException) -> str:
    """`kmsplan/aws/reader.py:259`: the last frame of kmsplan's own code that `exc` passed."""
    package = Path(__file__).resolve().parent
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(package):
            where = f"{Path(package.name, path.relative_to(package)).as_posix()}:{frame.lineno}"
    return where


if __name__ == "__main__":
    sys.exit(main())
