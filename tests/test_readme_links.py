"""Every relative link of README.md resolves: the front door points at pages that exist. (The
pages under docs/ are checked by `mkdocs build --strict`, links and anchors both.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """A heading's anchor as mkdocs' and GitHub's renderers make it (for the headings used here)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().strip("#").strip().replace("`", "").lower())
    return re.sub(r"\s+", "-", text)


def relative_links(markdown: str) -> list[str]:
    text = re.sub(r"```.*?```", "", markdown, flags=re.S).replace("\n", " ")
    return [url for url in LINK.findall(text) if not re.match(r"[a-z]+:", url)]


def test_the_check_sees_links_and_anchors():
    assert relative_links("a [b](docs/x.md#y) [c](https://e.org) ```\n[d](no.md)\n```") == [
        "docs/x.md#y"]
    assert slug("## CREATE's reading, chosen on validation") == "creates-reading-chosen-on-validation"


def test_every_relative_link_of_the_readme_resolves():
    broken = []
    for url in relative_links((ROOT / "README.md").read_text()):
        path, _, anchor = url.partition("#")
        target = ROOT / path
        if not target.is_file():
            broken.append(f"{url}: no such file")
        elif anchor and target.suffix == ".md":
            headings = [line for line in target.read_text().splitlines() if line.startswith("#")]
            if anchor not in {slug(h) for h in headings}:
                broken.append(f"{url}: no heading with that anchor")
    assert not broken, broken
