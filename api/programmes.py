"""Programme names per language, read from configuration (SPEC §5.1: rules come from config)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.settings import LANGUAGES

DEFAULT_FILE = Path(__file__).resolve().parent / "programmes.toml"


class ProgrammesSettings(BaseSettings):
    """Where the programme names are: from the environment or an .env file, as every setting."""

    #: An empty value means the packaged file, as an unset one does.
    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    file: Path | None = Field(None, alias="RABTA_PROGRAMMES_FILE")


@dataclass(frozen=True)
class Programmes:
    """The brand and each programme's name in every language."""

    brand: dict[str, str]
    names: dict[str, dict[str, str]]

    def name(self, programme: str, language: str) -> str:
        """A programme's name in `language`; an unknown programme shows its key, readable."""
        names = self.names.get(programme)
        if names is None:
            return programme.replace("_", " ").title()
        return names.get(language) or names["en"]


def load_programmes(path: Path) -> Programmes:
    """Read and check a programmes file: every name in all six languages."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    brand = data.get("brand", {})
    programmes = data.get("programmes", {})
    missing = [f"brand.{lang}" for lang in LANGUAGES if not brand.get(lang)]
    for key, names in programmes.items():
        missing += [f"programmes.{key}.{lang}" for lang in LANGUAGES if not names.get(lang)]
    if missing:
        raise ValueError(f"{path}: missing names: {', '.join(missing)}")
    return Programmes(brand=dict(brand), names={k: dict(v) for k, v in programmes.items()})


@lru_cache
def get_programmes() -> Programmes:
    """The configured programmes (RABTA_PROGRAMMES_FILE, else the packaged file)."""
    return load_programmes(ProgrammesSettings().file or DEFAULT_FILE)
