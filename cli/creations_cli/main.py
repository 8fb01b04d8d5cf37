"""The `creations` console script (cli/pyproject.toml's `[project.scripts]`)."""

from __future__ import annotations

from creations_cli.commands import build_app

app = build_app()


def run() -> None:
    app()


if __name__ == "__main__":
    run()
