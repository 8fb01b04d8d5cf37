"""`python -m tools.tfcheck [DIR ...]`: check each root module (default terraform/) and the local
modules it calls against the pinned provider schemas; exit 1 on any finding."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.tfcheck.cache import DEFAULT_CACHE, REPO, CachedSchemas, SchemaError
from tools.tfcheck.check import Result, check_tree
from tools.tfcheck.config import ConfigError
from tools.tfcheck.extract import ExtractError
from tools.tfcheck.fetch import FetchError
from tools.tfcheck.report import render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.tfcheck", description=__doc__)
    parser.add_argument("roots", nargs="*", type=Path, default=[REPO / "terraform"])
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help="where wheels and schemas are cached"
    )
    args = parser.parse_args(argv)
    schemas = CachedSchemas(args.cache)
    failed = False
    for root in args.roots:
        try:
            result: Result = check_tree(root, schemas)
        except (ConfigError, FetchError, ExtractError, SchemaError) as error:
            print(f"tfcheck: {error}", file=sys.stderr)
            return 2
        print(render(result, schemas.loaded, Path.cwd()))
        failed = failed or bool(result.findings)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
