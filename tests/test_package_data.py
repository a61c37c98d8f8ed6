"""The package ships the data files it reads: every non-Python file under src/tiktalk is
package data in pyproject.toml (an installed, non-editable package has nothing else)."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "tiktalk"


def package_data_globs() -> list[str]:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return conf["tool"]["setuptools"]["package-data"]["tiktalk"]


def data_files() -> list[str]:
    return sorted(p.relative_to(PKG).as_posix() for p in PKG.rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts)


def unlisted(files: list[str], globs: list[str]) -> list[str]:
    # setuptools globs match inside the package directory; "*" does not cross "/"
    return [f for f in files if not any(fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)]


def test_every_data_file_is_package_data():
    files = data_files()
    assert "resources/claims.yaml" in files and "scale/costs.yaml" in files
    missing = unlisted(files, package_data_globs())
    assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_every_package_data_glob_matches_a_file():
    files = data_files()
    stale = [g for g in package_data_globs() if len(unlisted(files, [g])) == len(files)]
    assert not stale, f"package-data globs that match no file: {stale}"
