"""Every setting is read from the environment or an .env file in the working directory, as the
README says: not only api.settings' but the surge knobs and the programmes file too."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.programmes import DEFAULT_FILE, get_programmes, load_programmes
from api.surge import SurgeSettings


@pytest.fixture
def env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write an .env file in a fresh working directory, with nothing in the environment."""
    monkeypatch.chdir(tmp_path)

    def write(**values: str) -> None:
        for name in values:
            monkeypatch.delenv(name, raising=False)
        lines = [f"{name}={value}" for name, value in values.items()]
        (tmp_path / ".env").write_text("\n".join(lines) + "\n")

    return write


def test_surge_settings_read_the_env_file(env_file):
    env_file(RABTA_SURGE_MAX_IN_FLIGHT="3", RABTA_SURGE_ANSWER_WITHIN_MS="5000")
    surge = SurgeSettings()
    assert (surge.max_in_flight, surge.answer_within_ms) == (3, 5000)


def test_the_programmes_file_is_named_in_the_env_file(env_file, tmp_path):
    renamed = DEFAULT_FILE.read_text(encoding="utf-8").replace('en = "', 'en = "Renamed ', 1)
    (tmp_path / "programmes.toml").write_text(renamed, encoding="utf-8")
    env_file(RABTA_PROGRAMMES_FILE=str(tmp_path / "programmes.toml"))
    get_programmes.cache_clear()
    try:
        assert get_programmes().brand["en"].startswith("Renamed ")
    finally:
        get_programmes.cache_clear()


def test_an_empty_programmes_file_setting_means_the_packaged_one(env_file):
    env_file(RABTA_PROGRAMMES_FILE="")
    get_programmes.cache_clear()
    try:
        assert get_programmes() == load_programmes(DEFAULT_FILE)
    finally:
        get_programmes.cache_clear()
