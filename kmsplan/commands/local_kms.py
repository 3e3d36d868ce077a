"""`kmsplan local-kms`: run the local KMS emulator in the foreground until Ctrl-C."""

from __future__ import annotations

import time

import click

from kmsplan.local_kms import DEFAULT_PORT, REGION, local_kms


def wait_for_interrupt() -> None:
    while True:
        time.sleep(3600)


@click.command("local-kms", short_help="Run a local KMS emulator (moto) on 127.0.0.1.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on (127.0.0.1 only).",
)
def command(port: int) -> None:
    """Run a local KMS emulator (moto) on 127.0.0.1 for trying kmsplan without AWS.

    Needs the 'local' extra: pip install 'kmsplan[local]'. Keys live in memory and are gone
    when it stops (Ctrl-C).
    """
    with local_kms(port) as endpoint:
        click.echo(f"Local KMS emulator listening on {endpoint}")
        click.echo("Point kmsplan at it (any credentials work; nothing leaves this machine):")
        click.echo("  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
        # One stack: examples/ as a whole holds several, which plan refuses to merge.
        click.echo(
            f"  kmsplan plan --endpoint-url {endpoint} --region {REGION} examples/minimal.yaml"
        )
        click.echo("Keys live in memory only. Press Ctrl-C to stop.")
        try:
            wait_for_interrupt()
        except KeyboardInterrupt:
            click.echo("\nStopping the emulator...")
    click.echo("Stopped.")
