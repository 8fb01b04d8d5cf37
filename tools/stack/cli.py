"""Helpers for a running dev stack, behind `make token|grant|env`.

    python -m tools.stack.cli token --user alice           # prints only the ID token
    python -m tools.stack.cli grant --user alice --tokens 10
    python -m tools.stack.cli env                          # `export NAME=value` lines

Output meant for `$(...)` / `eval` goes to stdout and nothing else does; every diagnostic goes
to stderr with exit status 1, so a failing `$(make -s token ...)` never smuggles an error message
into a curl header or a shell.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.stack.dev import AUTH_DIR, DEFAULT_PROJECT, EXPORTED_ENV, STACK_FILE
from tools.stack.devauth import load_or_create_signer
from tools.stack.processes import pid_alive

if TYPE_CHECKING:
    from shared.core.settings import Settings


class CliError(Exception):
    """Reported as one line on stderr, exit status 1."""


def read_stack(path: Path = STACK_FILE) -> dict[str, Any] | None:
    """The running stack's description, or None when no stack is running.

    A file whose `make dev` process is gone (killed with -9, machine rebooted) counts as not
    running: its ports would point at nothing.
    """
    try:
        stack: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CliError(f"{path} is unreadable ({exc}); restart `make dev`") from exc
    pid = stack.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return None
    return stack


def require_stack(path: Path = STACK_FILE) -> dict[str, Any]:
    stack = read_stack(path)
    if stack is None:
        raise CliError(
            f"no dev stack is running ({path} is missing or stale); start it with `make dev`"
        )
    return stack


def stack_project(stack: Mapping[str, Any] | None, environ: Mapping[str, str]) -> str:
    """The project tokens are minted for: the running stack's, else GCP_PROJECT, else default."""
    if stack is not None and isinstance(stack.get("project"), str):
        return str(stack["project"])
    return environ.get("GCP_PROJECT") or DEFAULT_PROJECT


def export_lines(env: Mapping[str, str]) -> list[str]:
    """`export NAME=value` for each of EXPORTED_ENV present in `env`, shell-quoted."""
    return [f"export {name}={shlex.quote(env[name])}" for name in EXPORTED_ENV if name in env]


def cmd_token(args: argparse.Namespace) -> int:
    stack = read_stack()
    signer = load_or_create_signer(AUTH_DIR)
    print(signer.mint(args.user, stack_project(stack, os.environ)))
    return 0


def cmd_env(_args: argparse.Namespace) -> int:
    stack = require_stack()
    for line in export_lines(stack.get("env", {})):
        print(line)
    return 0


def stack_settings(stack: Mapping[str, Any]) -> Settings:
    """The settings of the running stack, as its functions read them.

    Settings and the client libraries read the emulator hosts from the environment, exactly as
    a deployed function does, so this process's environment is pointed at the stack first.
    """
    os.environ.update({k: str(v) for k, v in stack.get("env", {}).items()})
    from shared.core.settings import Settings  # loaded only once the stack is known to run

    return Settings()


def cmd_grant(args: argparse.Namespace) -> int:
    from shared.money.ledger import Ledger
    from shared.wiring import documents

    settings = stack_settings(require_stack())
    balance = Ledger(documents(settings), settings).grant(args.user, args.tokens)
    print(f"granted {args.tokens} tokens to {args.user}; balance {balance}")
    return 0


def _user_id(value: str) -> str:
    # Firestore document ids cannot contain '/', and Firebase uids are 1-128 characters.
    if not value or len(value) > 128 or "/" in value or value.strip() != value:
        raise argparse.ArgumentTypeError(f"{value!r} is not a usable user id")
    return value


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.stack.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    token = sub.add_parser("token", help="print an ID token for a user (nothing else)")
    token.add_argument("--user", required=True, type=_user_id)
    token.set_defaults(func=cmd_token)

    grant = sub.add_parser("grant", help="add tokens to a user's balance in the dev stack")
    grant.add_argument("--user", required=True, type=_user_id)
    grant.add_argument("--tokens", required=True, type=_positive_int)
    grant.set_defaults(func=cmd_grant)

    env = sub.add_parser("env", help="print `export` lines for the running dev stack")
    env.set_defaults(func=cmd_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
