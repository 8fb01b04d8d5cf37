"""Operator commands against a deployed project (not the local stack): granting tokens.

    GOOGLE_CLOUD_PROJECT=<project> .venv/bin/python -m tools.admin grant --user UID --tokens 10 \
        --grant-id smoke-2026-12-02

Runs as whoever Application Default Credentials name (`gcloud auth application-default
login`): that principal needs `roles/datastore.user` on the project. A grant is one ledger
entry, written once per `--grant-id` (repeat the command safely; a new id is a new grant).
It refuses to run while an emulator variable is set, so it never writes to a local stack by
mistake (`make -s grant` is that stack's own command).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

GRANT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # it names a ledger document
EMULATOR_VARIABLES = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.admin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    grant = sub.add_parser("grant", help="add tokens to a user's balance (once per grant id)")
    grant.add_argument("--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT"))
    grant.add_argument("--user", required=True, help="the Firebase uid")
    grant.add_argument("--tokens", required=True, type=int)
    grant.add_argument(
        "--grant-id", required=True, help="names the grant: the same id never grants twice"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    emulated = [name for name in EMULATOR_VARIABLES if os.environ.get(name)]
    if emulated:
        print(f"admin: {', '.join(emulated)} set: this talks to a real project", file=sys.stderr)
        return 1
    if not GRANT_ID.fullmatch(args.grant_id):
        print("admin: --grant-id must be 1-128 letters, digits, '-' or '_'", file=sys.stderr)
        return 2
    if not args.project:
        print("admin: give --project or set GOOGLE_CLOUD_PROJECT", file=sys.stderr)
        return 1
    # Imported late: the project comes from the command line.
    from shared.core.errors import SuiteError
    from shared.core.settings import Settings
    from shared.money.ledger import Ledger
    from shared.wiring import documents

    settings = Settings(gcp_project=args.project)
    try:
        balance = Ledger(documents(settings), settings).grant(
            args.user, args.tokens, grant_id=args.grant_id
        )
    except SuiteError as exc:
        print(f"admin: {exc.message}", file=sys.stderr)
        return 1
    print(f"grant {args.grant_id}: {args.tokens} tokens to {args.user}; balance {balance}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
