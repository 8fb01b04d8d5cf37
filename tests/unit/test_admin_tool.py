"""`tools.admin` refuses what would write somewhere unintended, before touching anything."""

from __future__ import annotations

import pytest

from tools import admin


def test_it_refuses_to_run_against_an_emulator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8085")
    argv = ["grant", "--project", "p", "--user", "u", "--tokens", "5", "--grant-id", "g"]
    assert admin.main(argv) == 1
    assert "FIRESTORE_EMULATOR_HOST" in capsys.readouterr().err


def test_it_needs_a_project_and_a_usable_grant_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in admin.EMULATOR_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    assert admin.main(["grant", "--user", "u", "--tokens", "5", "--grant-id", "g"]) == 1
    assert "--project" in capsys.readouterr().err
    argv = ["grant", "--project", "p", "--user", "u", "--tokens", "5", "--grant-id", "a/b"]
    assert admin.main(argv) == 2
    assert "--grant-id" in capsys.readouterr().err
