"""Flashbid's load bench: scenarios driven through the nginx gateway of the bench stack, with
its rate limits on, printing a table and writing the figures to bench-results/<scenario>-*.json.

    python3 tests/stack.py up --profile bench          # or `just bench`, which also stops it
    .venv/bin/python tests/bench flash-sale [--replicas 1,2] [--buyers 20000] ...

The bench stack (tests/stack.py, profile `bench`: ports 28xxx, `.state/bench/`) believes
X-Forwarded-For from loopback, so that the load generator can present each simulated buyer's
own address, and keeps PostgreSQL's normal durability. Data is prepared through the API, except
the buyers, which auth makes in bulk (`python -m flashbid_auth bench-users`). The exit status
is 1 when a scenario's outcome is wrong (an oversold unit, a lost or extra order); performance
targets missed are reported, not fatal: the machine is shared and noisy.
"""

import argparse
import sys

import flash_sale
import ranked_storm
import watchers
from harness import BenchError, machine, python_speed, write_results

import stack

SCENARIOS = {"flash-sale": flash_sale, "ranked-storm": ranked_storm, "watchers": watchers}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    scenarios = parser.add_subparsers(dest="scenario", required=True, metavar="scenario")
    for name, module in SCENARIOS.items():
        module.add_arguments(scenarios.add_parser(name, help=module.__doc__.splitlines()[0]))
    args = parser.parse_args()
    profile = stack.Profile.load("bench")
    if not stack.http_ok(f"{profile.gateway}/api/purchase/health/ready"):
        sys.exit("bench: the bench stack is not up: `python3 tests/stack.py up --profile bench`")
    speed = python_speed()
    print(f"machine speed: a fixed piece of Python took {speed} ms (lower is faster)")
    try:
        document, passed = SCENARIOS[args.scenario].run(profile, args)
    except BenchError as error:
        sys.exit(f"bench: {error}")
    document = {"scenario": args.scenario, **document, **machine(), "python_speed_ms": speed}
    path = write_results(args.scenario, document)
    print(f"\nfigures: {path.relative_to(stack.ROOT)}")
    sys.exit(0 if passed else 1)


main()
