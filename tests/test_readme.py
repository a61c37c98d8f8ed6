"""The README is read in five minutes: at most 150 lines, its two commands first, every
relative link resolving to a file of the repo, and no link out of the repo."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_is_short_and_its_commands_are_ci_s():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    commands = re.findall(r"^    (bash tools/setup\.sh && .+)$", text, re.M)
    assert commands[0] == "bash tools/setup.sh && .venv/bin/snakemake --cores all"
    assert commands[1] in (ROOT / ".ci/run").read_text(encoding="utf-8")


def test_every_markdown_link_resolves_inside_the_repo():
    for doc in [ROOT / "README.md", ROOT / "bench/README.md", ROOT / "config/README.md",
                *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            assert not target.startswith("../shared"), (doc, target)
            assert (doc.parent / target).resolve().exists(), f"{doc.relative_to(ROOT)}: broken link {target}"
