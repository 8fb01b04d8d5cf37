"""Which API to call and with which token: flags, then the environment, then `make dev`.

`--api`/`CREATIONS_API` and `--token`/`CREATIONS_TOKEN` say it outright. Without them, a
running dev stack is found through its `.dev/stack.json` (in the current directory or a parent,
or in the checkout this package is installed from): its submit URL is the API, and a dev token
is minted for `--user`/`CREATIONS_USER` (default `dev`) by the stack's own tool, the one behind
`make -s token` (`python -m tools.stack.cli token`). This is the only thing the client does
besides HTTP, and only for the local stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from creations_cli.exits import ConfigError

DEFAULT_DEV_USER = "dev"
STACK_FILE = Path(".dev") / "stack.json"
TOKEN_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class DevStack:
    """A running `make dev`: the checkout it runs from and its submit URL."""

    repo: Path
    submit_url: str


@dataclass(frozen=True)
class Connection:
    base_url: str
    token: str
    # Set when the token was minted for the dev stack: hints name the user.
    dev_user: str | None = None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but alive
    return True


def candidate_repos(cwd: Path, package_file: Path) -> list[Path]:
    """Where a `.dev/stack.json` may be: `cwd` and its parents, then this package's checkout
    (an editable install lives in `<repo>/cli/creations_cli/`)."""
    found = [cwd, *cwd.parents]
    checkout = package_file.resolve().parent.parent.parent
    if checkout not in found:
        found.append(checkout)
    return found


def read_dev_stack(repo: Path, alive: Callable[[int], bool] = pid_alive) -> DevStack | None:
    """The stack described in `repo/.dev/stack.json`, if its `make dev` process still runs."""
    try:
        stack = json.loads((repo / STACK_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stack, dict):
        return None
    pid = stack.get("pid")
    env = stack.get("env")
    url = env.get("SUBMIT_URL") if isinstance(env, dict) else None
    if not isinstance(pid, int) or not isinstance(url, str) or not alive(pid):
        return None
    return DevStack(repo=repo, submit_url=url)


def find_dev_stack(
    repos: Iterable[Path], alive: Callable[[int], bool] = pid_alive
) -> DevStack | None:
    for repo in repos:
        stack = read_dev_stack(repo, alive)
        if stack is not None:
            return stack
    return None


TokenMinter = Callable[[DevStack, str], str]


def mint_dev_token(stack: DevStack, user: str) -> str:
    """An ID token for `user` from the dev stack's signer (`make -s token USER=<user>`)."""
    venv_python = stack.repo / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.exists() else sys.executable
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and tool, no shell
            [python, "-m", "tools.stack.cli", "token", "--user", user],
            cwd=stack.repo,
            capture_output=True,
            text=True,
            timeout=TOKEN_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"could not get a dev token from {stack.repo}: {exc}") from exc
    token = done.stdout.strip()
    if done.returncode != 0 or not token:
        detail = done.stderr.strip().splitlines()[-1:] or ["no token printed"]
        raise ConfigError(
            f"could not get a dev token for {user!r} from {stack.repo}: {detail[0]}",
            hint="`make -s token USER=<uid>` in that checkout shows the same problem",
        )
    return token


def resolve(
    *,
    api: str | None,
    token: str | None,
    user: str | None,
    repos: Iterable[Path],
    alive: Callable[[int], bool] = pid_alive,
    mint: TokenMinter = mint_dev_token,
) -> Connection:
    """The connection the flags and environment (`api`, `token`, `user`) ask for, completed
    from a running dev stack where they leave a gap. A `user` asks for a dev token even when a
    token is set."""
    if api and token and not user:
        return Connection(base_url=api, token=token)
    searched = list(repos)
    stack = find_dev_stack(searched, alive)
    if stack is None:
        looked = ", ".join(str(repo / STACK_FILE) for repo in _shortlist(searched))
        if not api:
            raise ConfigError(
                "no API to talk to: set CREATIONS_API (the submit function's URL) and "
                "CREATIONS_TOKEN (a Firebase ID token), or pass --api and --token",
                hint=f"or start `make dev` in the repository (no running dev stack: {looked})",
            )
        raise ConfigError(
            "no token: set CREATIONS_TOKEN (a Firebase ID token) or pass --token"
            + (f"; --user {user} needs a running `make dev`" if user else ""),
            hint=f"or start `make dev` and pass --user <uid> (no running dev stack: {looked})",
        )
    base_url = api or stack.submit_url
    if token and not user:
        return Connection(base_url=base_url, token=token)
    uid = user or DEFAULT_DEV_USER
    return Connection(base_url=base_url, token=mint(stack, uid), dev_user=uid)


def _shortlist(repos: list[Path]) -> list[Path]:
    """The places worth naming in a message: the current directory and the checkout."""
    return repos if len(repos) <= 2 else [repos[0], repos[-1]]
