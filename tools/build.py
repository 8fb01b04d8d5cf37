"""`make build`: one deployable zip per function folder, named by the hash of what is in it.

Each `functions/<name>/` (a folder with a `main.py`) becomes `dist/<name>-<hash>.zip` holding:

- the folder's own `*.py` files (its `main.py`, and any local module next to it) and its pinned
  `requirements.txt`, at the top of the zip, where Cloud Functions looks for them;
- a copy of `shared/` (`*.py` files only: no `__pycache__`, no tests), so `import shared...`
  works without the repo around it.

The zip is deterministic: entries sorted, fixed timestamps and modes, one compression level.
`<hash>` is a SHA-256 over the entries' names and bytes (not over the compressed zip, which
could differ between zlib builds), so the same sources always give the same name. Terraform
uploads each zip as `<function>-<hash>.zip`; a new hash is a new object and so a redeploy, and
an unchanged function is left alone.

`dist/manifest.json` maps each folder to its zip: `{"submit": {"zip": ..., "content_hash": ...,
"files": N}, ...}`. Terraform reads it (terraform/functions.tf), so it never globs for zips.
Zips of earlier builds of the same functions are removed; nothing else in `dist/` is touched.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# Its own, not tools.stack's: `make build` runs on an infra machine's python3, without the venv.
REPO_ROOT: Final = Path(__file__).resolve().parents[1]
MANIFEST: Final = "manifest.json"
HASH_LENGTH: Final = 16  # hex digits of the SHA-256 kept in names (64 bits)
# Bumped whenever the packaging itself changes, so the same sources get a new name.
FORMAT: Final = "creations-function-zip/1"
# The earliest time a zip entry can carry; every entry gets it.
ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)
FILE_MODE: Final = 0o100644  # a regular file, rw-r--r--


class BuildError(RuntimeError):
    """The sources cannot be packaged (a folder without requirements.txt, a name clash...)."""


@dataclass(frozen=True)
class Built:
    function: str  # the folder name under functions/
    zip_path: Path
    content_hash: str
    files: int
    unchanged: bool  # the same zip was already in dist/

    @property
    def zip_name(self) -> str:
        return self.zip_path.name


def _is_packaged_python(path: Path, root: Path) -> bool:
    relative = path.relative_to(root)
    if "__pycache__" in relative.parts or "tests" in relative.parts:
        return False
    name = path.name
    return not (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py")


def _python_files(root: Path, *, recursive: bool) -> list[Path]:
    found = root.rglob("*.py") if recursive else root.glob("*.py")
    return sorted(p for p in found if p.is_file() and _is_packaged_python(p, root))


def function_folders(functions_dir: Path) -> list[Path]:
    """Every deployable folder: a direct child of `functions_dir` with a `main.py`."""
    return sorted(p for p in functions_dir.iterdir() if p.is_dir() and (p / "main.py").is_file())


def package_entries(folder: Path, shared_dir: Path) -> dict[str, bytes]:
    """What goes into the zip of `folder`: archive name -> content."""
    requirements = folder / "requirements.txt"
    if not requirements.is_file():
        raise BuildError(f"{folder} has no requirements.txt")
    entries: dict[str, bytes] = {"requirements.txt": requirements.read_bytes()}
    for path in _python_files(folder, recursive=False):
        entries[path.name] = path.read_bytes()
    if (folder / shared_dir.name).exists():
        raise BuildError(f"{folder} has its own {shared_dir.name}/, which the copy would hide")
    for path in _python_files(shared_dir, recursive=True):
        name = f"{shared_dir.name}/{path.relative_to(shared_dir).as_posix()}"
        entries[name] = path.read_bytes()
    return entries


def content_hash(entries: dict[str, bytes]) -> str:
    digest = hashlib.sha256(FORMAT.encode())
    for name in sorted(entries):
        data = entries[name]
        digest.update(b"\0" + name.encode() + b"\0" + str(len(data)).encode() + b"\0")
        digest.update(data)
    return digest.hexdigest()[:HASH_LENGTH]


def zip_bytes(entries: dict[str, bytes], target: Path) -> None:
    """Write `entries` to `target` so that the same entries always give the same bytes."""
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode below means the same everywhere
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, entries[name], compresslevel=9)
    tmp.replace(target)


def build_function(folder: Path, shared_dir: Path, dist: Path) -> Built:
    entries = package_entries(folder, shared_dir)
    digest = content_hash(entries)
    target = dist / f"{folder.name}-{digest}.zip"
    unchanged = target.is_file() and _zip_matches(target, entries)
    if not unchanged:
        zip_bytes(entries, target)
    return Built(folder.name, target, digest, len(entries), unchanged)


def _zip_matches(path: Path, entries: dict[str, bytes]) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(archive.namelist())
            if names != sorted(entries):
                return False
            return all(archive.read(name) == entries[name] for name in names)
    except (OSError, zipfile.BadZipFile):
        return False


def _remove_stale(dist: Path, built: Iterable[Built]) -> list[Path]:
    removed = []
    for item in built:
        for old in dist.glob(f"{item.function}-*.zip"):
            stem = old.name[len(item.function) + 1 : -len(".zip")]
            is_ours = len(stem) == HASH_LENGTH and all(c in "0123456789abcdef" for c in stem)
            if is_ours and old != item.zip_path:
                old.unlink()
                removed.append(old)
    return removed


def manifest_data(built: Iterable[Built]) -> dict[str, dict[str, str | int]]:
    return {
        item.function: {
            "zip": item.zip_name,
            "content_hash": item.content_hash,
            "files": item.files,
        }
        for item in sorted(built, key=lambda b: b.function)
    }


def build_all(
    functions_dir: Path = REPO_ROOT / "functions",
    shared_dir: Path = REPO_ROOT / "shared",
    dist: Path = REPO_ROOT / "dist",
) -> list[Built]:
    """Package every function folder into `dist`, write the manifest, drop stale zips."""
    folders = function_folders(functions_dir)
    if not folders:
        raise BuildError(f"no function folders (with a main.py) under {functions_dir}")
    dist.mkdir(parents=True, exist_ok=True)
    built = [build_function(folder, shared_dir, dist) for folder in folders]
    _remove_stale(dist, built)
    manifest = json.dumps(manifest_data(built), indent=2, sort_keys=True) + "\n"
    (dist / MANIFEST).write_text(manifest)
    return built


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make build", description=__doc__.split("\n")[0])
    parser.add_argument("--dist", type=Path, default=REPO_ROOT / "dist", help="output folder")
    args = parser.parse_args(argv)
    try:
        built = build_all(dist=args.dist)
    except BuildError as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 1
    for item in built:
        size_kib = item.zip_path.stat().st_size / 1024
        state = "unchanged" if item.unchanged else "built"
        print(f"{state:9} {_shown(item.zip_path)}  ({item.files} files, {size_kib:.0f} KiB)")
    print(f"manifest  {_shown(args.dist / MANIFEST)}")
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
