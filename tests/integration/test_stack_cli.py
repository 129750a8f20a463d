"""tests/stack.py's command line acts on the stack it is told, whatever the order of its words,
and refuses what fits nowhere before it touches any stack."""

import subprocess
import sys

import pytest

import stack

pytestmark = pytest.mark.stack


def run(*words: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(stack.ROOT / "tests" / "stack.py"), *words],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def gateway_line(output: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith("gateway")]
    return line


@pytest.mark.parametrize(
    "words",
    [
        ("status", "--profile", "test"),
        ("--profile", "test", "status"),
        ("status", "--profile=test"),
    ],
)
def test_an_option_after_the_command_is_the_same_option(profile, words) -> None:
    shown = run(*words)
    assert shown.returncode == 0, shown.stderr
    line = gateway_line(shown.stdout)  # the running test stack, not another profile's
    assert str(profile.ports["gateway"]) in line and "running" in line, line


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (("status", "--profile", "bogus"), "invalid choice"),
        (("status", "test"), "takes no name"),
        (("status", "--profile", "test", "--replicas", "2"), "unrecognized arguments"),
        (("status", "--prof", "test"), "unrecognized arguments"),
    ],
)
def test_what_fits_nowhere_is_an_error(words, says) -> None:
    # `status`: had the words been taken anyhow, nothing would have been stopped or started
    refused = run(*words)
    assert refused.returncode == 2 and says in refused.stderr, refused.stderr
    assert refused.stdout == ""


def test_around_keeps_the_command_s_own_options() -> None:
    args = stack.parse(["around", "--profile", "bench", "pytest", "-x", "--profile", "-k", "up"])
    assert (args.command, args.profile, args.rest) == (
        "around", "bench", ["pytest", "-x", "--profile", "-k", "up"],
    )  # fmt: skip
    up = stack.parse(["up", "--profile", "bench", "--purchase-replicas", "2"])
    assert (up.profile, up.purchase_replicas) == ("bench", 2)
    with pytest.raises(SystemExit):
        stack.parse(["around", "--profile", "test"])  # no command to run
