# Flashbid: `just up` starts the platform, `just test` runs every test. `just --list` for the rest.

set shell := ["bash", "-euo", "pipefail", "-c"]

stack := "python3 tests/stack.py"

# List the recipes
default:
    @just --list

# Install what is missing and start the whole platform in the background (gateway :8080)
up:
    @{{stack}} up

# Stop exactly what `just up` started
down:
    @{{stack}} down

# Stop, then start again (after changing code)
restart: down up

# Load demo data: verified demo customers (and, as the services grow, items and events)
seed:
    @{{stack}} seed

# Each server of the development stack: pid, port, readiness
status:
    @{{stack}} status

# Follow the logs of one server (auth, catalog, gateway, postgres, ...) or of all
logs name="":
    @{{stack}} logs {{name}}

# The whole suite: unit, integration and end-to-end, on its own stack (ports 18xxx), stopped after
test *args:
    @{{stack}} --profile test around .venv/bin/pytest {{args}}

# Load bench through the gateway, on its own stack (ports 28xxx) stopped after; figures in bench-results/
bench scenario="flash-sale" *args:
    @{{stack}} --profile bench around .venv/bin/python tests/bench {{scenario}} {{args}}

# Unit tests only: no servers needed
unit *args:
    @uv run --frozen pytest -m "not stack" {{args}}

# Lint and format check
lint:
    @uv run --frozen ruff check .
    @uv run --frozen ruff format --check .
