"""The docs' relative links stay inside docs/ and their anchors exist (what `mkdocs build
--strict` checks, without mkdocs)."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_ID = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _slug(heading: str) -> str:
    """Python-Markdown's `toc` slug (mkdocs' default): lower case, punctuation dropped,
    spaces to hyphens."""
    text = re.sub(r"[^\w\s-]", "", heading).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text())
    return {_slug(h) for h in _HEADING.findall(text)} | set(_ID.findall(text))


def broken_links(page: Path, root: Path = DOCS) -> list[str]:
    """The local links of ``page`` that leave ``root``, name a missing file or a missing anchor."""
    problems = []
    for target in _LINK.findall(_FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        if not resolved.is_relative_to(root):
            problems.append(f"{target}: outside docs/")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no such anchor")
    return problems


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_links_resolve_inside_docs(page):
    assert broken_links(page) == []


def test_checker_catches_each_kind_of_broken_link(tmp_path):
    page = tmp_path / "a.md"
    page.write_text(
        "# Top part\n\n[ok](#top-part) [x](../x.py) [y](b.md) [z](#nowhere)\n"
        "```\n[fenced](#ignored)\n```\n"
    )
    assert [p.split(":")[1].strip() for p in broken_links(page, tmp_path)] == [
        "outside docs/",
        "no such file",
        "no such anchor",
    ]
