"""`make build` (tools/build.py): deterministic zips, and each one works on its own.

The slow test unpacks every zip into a folder of its own and imports its entry points with a
virtualenv holding only that function's requirements.txt, as Cloud Functions will: a module
that `shared/` needs but the function's requirements lack fails here, not at deploy time.
Those venvs are kept in build/function-venvs/, keyed by the requirements' content and the
Python version, so they are made once per change of requirements (minutes the first time,
seconds after); FRESH_FUNCTION_VENVS=1 rebuilds them.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.entry_points import entry_points
from tests.support.paths import REPO
from tools.build import (
    FILE_MODE,
    HASH_LENGTH,
    MANIFEST,
    ZIP_EPOCH,
    BuildError,
    Built,
    build_all,
    function_folders,
    main,
)

FUNCTIONS_DIR = REPO / "functions"
SHARED_DIR = REPO / "shared"
VENV_CACHE = REPO / "build" / "function-venvs"
PIP_TIMEOUT = 900  # one venv's install, from an empty pip cache


def shared_sources() -> set[str]:
    return {
        f"shared/{p.relative_to(SHARED_DIR).as_posix()}"
        for p in SHARED_DIR.rglob("*.py")
        if "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[Built]:
    return build_all(dist=tmp_path_factory.mktemp("dist"))


def test_every_function_folder_is_built_with_its_files_and_shared(built: list[Built]) -> None:
    folders = {p.name for p in function_folders(FUNCTIONS_DIR)}
    assert {b.function for b in built} == folders
    for item in built:
        assert item.zip_name == f"{item.function}-{item.content_hash}.zip"
        assert len(item.content_hash) == HASH_LENGTH
        with zipfile.ZipFile(item.zip_path) as archive:
            names = archive.namelist()
            own = {p.name for p in (FUNCTIONS_DIR / item.function).glob("*.py")}
            assert {"main.py", "requirements.txt"} | own | shared_sources() == set(names)
            assert names == sorted(names), "entries are sorted"
            for info in archive.infolist():
                assert info.date_time == ZIP_EPOCH, info.filename
                assert info.external_attr >> 16 == FILE_MODE, info.filename
            assert (
                archive.read("main.py") == (FUNCTIONS_DIR / item.function / "main.py").read_bytes()
            )
        assert item.files == len(names)


def test_manifest_maps_each_folder_to_its_zip(built: list[Built]) -> None:
    dist = built[0].zip_path.parent
    manifest = json.loads((dist / MANIFEST).read_text())
    assert manifest == {
        b.function: {"zip": b.zip_name, "content_hash": b.content_hash, "files": b.files}
        for b in built
    }
    assert sorted(p.name for p in dist.glob("*.zip")) == sorted(b.zip_name for b in built)


def test_the_same_sources_give_the_same_bytes(built: list[Built], tmp_path: Path) -> None:
    again = {b.function: b for b in build_all(dist=tmp_path)}
    for item in built:
        twin = again[item.function]
        assert twin.zip_name == item.zip_name
        assert twin.zip_path.read_bytes() == item.zip_path.read_bytes()
    # Building into a folder that already has them writes nothing.
    assert all(b.unchanged for b in build_all(dist=tmp_path))


def fake_repo(root: Path) -> tuple[Path, Path]:
    functions, shared = root / "functions", root / "shared"
    (functions / "alpha").mkdir(parents=True)
    (functions / "alpha" / "main.py").write_text("def alpha(request): ...\n")
    (functions / "alpha" / "requirements.txt").write_text("functions-framework==3.10.2\n")
    (functions / "alpha" / "test_main.py").write_text("# not shipped\n")
    (functions / "docs").mkdir()  # no main.py: not a function
    (shared / "__pycache__").mkdir(parents=True)
    (shared / "__init__.py").write_text("")
    (shared / "core.py").write_text("X = 1\n")
    (shared / "notes.md").write_text("not shipped\n")
    (shared / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"\0")
    return functions, shared


def test_a_change_of_source_is_a_new_name_and_the_old_zip_goes(tmp_path: Path) -> None:
    functions, shared = fake_repo(tmp_path / "repo")
    dist = tmp_path / "dist"
    (first,) = build_all(functions, shared, dist)
    with zipfile.ZipFile(first.zip_path) as archive:
        assert archive.namelist() == [
            "main.py",
            "requirements.txt",
            "shared/__init__.py",
            "shared/core.py",
        ]
    (shared / "core.py").write_text("X = 2\n")
    (second,) = build_all(functions, shared, dist)
    assert second.content_hash != first.content_hash
    assert not first.zip_path.exists()
    assert [p.name for p in dist.glob("*.zip")] == [second.zip_name]


def test_a_function_without_requirements_is_an_error(tmp_path: Path) -> None:
    functions, shared = fake_repo(tmp_path / "repo")
    (functions / "alpha" / "requirements.txt").unlink()
    with pytest.raises(BuildError, match=r"requirements\.txt"):
        build_all(functions, shared, tmp_path / "dist")


def test_make_build_prints_what_it_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--dist", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for folder in function_folders(FUNCTIONS_DIR):
        assert re.search(rf"^built +\S*/{folder.name}-[0-9a-f]{{{HASH_LENGTH}}}\.zip ", out, re.M)
    assert MANIFEST in out


# --- each zip on its own ----------------------------------------------------------------------


def requirement_lines(requirements: Path) -> list[str]:
    """The requirements without comments and blank lines, sorted."""
    lines = (line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines())
    return sorted(line for line in lines if line)


def venv_key(requirements: Path) -> str:
    identity = json.dumps([sys.version, sys.executable, requirement_lines(requirements)])
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def prune_venvs(keep: set[str], older_than_s: float = 3600) -> None:
    """Drop cached venvs of requirements that changed (if untouched for an hour: another run
    may still be using them)."""
    if not VENV_CACHE.is_dir():
        return
    for path in VENV_CACHE.iterdir():
        if path.name not in keep and time.time() - path.stat().st_mtime > older_than_s:
            shutil.rmtree(path, ignore_errors=True)


def venv_for(requirements: Path) -> Path:
    """A virtualenv with exactly these requirements installed (made once, then reused)."""
    lines = requirement_lines(requirements)
    venv = VENV_CACHE / venv_key(requirements)
    marker = venv / ".installed"
    if marker.is_file() and not os.environ.get("FRESH_FUNCTION_VENVS"):
        return venv
    # A venv without the marker is a half-made one (an interrupted run): start it afresh.
    shutil.rmtree(venv, ignore_errors=True)
    VENV_CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise AssertionError(f"pip install -r {requirements} failed:\n{result.stderr[-3000:]}")
    marker.write_text("\n".join(lines) + "\n")
    return venv


@pytest.fixture(scope="module")
def unpacked(
    built: list[Built], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[Path, Path]]]:
    """Function folder -> (the zip unpacked into a folder of its own, its venv)."""
    folders: dict[str, Path] = {}
    for item in built:
        target = tmp_path_factory.mktemp(f"unpacked-{item.function}")
        with zipfile.ZipFile(item.zip_path) as archive:
            archive.extractall(target)
        folders[item.function] = target
    requirements = {name: folder / "requirements.txt" for name, folder in folders.items()}
    # Functions with the same requirements share one venv.
    distinct = {tuple(requirement_lines(path)): path for path in requirements.values()}
    prune_venvs({venv_key(path) for path in distinct.values()})
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        venvs = dict(zip(distinct, pool.map(venv_for, distinct.values()), strict=True))
    for venv in venvs.values():
        venv.touch()  # in use: keeps a concurrent run's prune_venvs away
    yield {
        name: (folders[name], venvs[tuple(requirement_lines(path))])
        for name, path in requirements.items()
    }


CHECK = r"""
import json, sys
from pathlib import Path
here = Path.cwd().resolve()
import main
import shared
from functions_framework import create_app
assert Path(main.__file__).resolve().parent == here, main.__file__
assert Path(shared.__file__).resolve().parent == here / "shared", shared.__file__
for target in json.loads(sys.argv[1]):
    assert callable(getattr(main, target)), target
    create_app(target, str(here / "main.py"))
repo = Path(sys.argv[2]).resolve()
leaked = [p for p in sys.path if p and Path(p).resolve() in (repo, repo / "functions")]
assert not leaked, f"the repository is importable: {leaked}"
print("ok")
"""


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("function", [p.name for p in function_folders(FUNCTIONS_DIR)])
def test_each_zip_imports_its_entry_points_with_only_its_requirements(
    function: str, unpacked: dict[str, tuple[Path, Path]]
) -> None:
    folder, venv = unpacked[function]
    targets = [point.target for point in entry_points(folder / "main.py")]
    assert targets, f"functions/{function}/main.py registers no entry point"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-E", "-s", "-c", CHECK, json.dumps(targets), str(REPO)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), (
        f"{function}: importing {targets} with only its requirements failed:\n"
        f"{result.stderr[-3000:]}"
    )
