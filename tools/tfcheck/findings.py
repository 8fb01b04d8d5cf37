"""A finding: where (file, line, block, argument) and what is wrong, with a suggestion."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Finding:
    file: Path
    line: int
    subject: str  # google_pubsub_subscription.push, module.submit, var.region, ...
    where: str  # the argument or block path inside it ("" for the block itself)
    message: str

    def render(self, relative_to: Path | None = None) -> str:
        path = self.file
        if relative_to is not None and path.is_relative_to(relative_to):
            path = path.relative_to(relative_to)
        where = f" {self.where}:" if self.where else ""
        return f"{path}:{self.line}: {self.subject}:{where} {self.message}"


def suggestion(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""
