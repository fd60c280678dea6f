"""The documentation's links hold: every relative link and image in the project's Markdown
names a file that exists, and every ``#anchor`` a heading of the Markdown file it points
into, as GitHub makes a heading's anchor.

GitHub's rule for a heading's anchor: its text lowercased, every character that is not a
letter, a digit, a space, a hyphen or an underscore removed, each space made a hyphen; a
second heading with the same anchor gets ``-1``, a third ``-2``, and so on. Links to other
sites (``http:``, ``https:``, ``mailto:`` or any other scheme) are not followed, and
nothing inside a fenced code block or an inline code span is a link. Pure Python: no
Markdown renderer, no subprocess.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    ROOT / "CHANGELOG.md",
    ROOT / "benchmarks" / "README.md",
    ROOT / "checkpoints" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
README_MAX_LINES = 260

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
# the target of an inline link or image: ](target) or ](target "title")
LINK = re.compile(r"\]\(\s*<?([^)\s>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?")  # [name]: target
HTML_LINK = re.compile(r"<(?:img|a|source)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']*)[\"']", re.I)
HTML_ANCHOR = re.compile(r"<[a-z][^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.I)
ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    fence = ""
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                if not line.strip().strip(fence[0]):
                    fence = ""
            continue
        if m:
            fence = m.group(1)
            continue
        yield number, line


def slug(heading: str) -> str:
    """A heading's anchor before duplicates are numbered, by GitHub's rule."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags count by their content
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown text has: its headings' (numbered as GitHub numbers
    duplicates) and its HTML elements' ids and names."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    previous = ""
    for _, line in prose(text):
        heading = None
        m = ATX.match(line)
        if m:
            heading = m.group(1) or ""
        elif (
            SETEXT.match(line)
            and previous.strip()
            and not previous.lstrip().startswith(("#", "|", "-", "*", "+", ">"))
        ):
            heading = previous.strip()
        if heading is not None:
            base = slug(heading)
            count = seen.get(base, 0)
            found.add(base if count == 0 else f"{base}-{count}")
            seen[base] = count + 1
        found.update(HTML_ANCHOR.findall(line))
        previous = "" if heading is not None else line
    return found


def links(text: str) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link and image outside code."""
    for number, line in prose(text):
        bare = CODE_SPAN.sub("", line)
        for pattern in (LINK, REFERENCE, HTML_LINK):
            for target in pattern.findall(bare):
                yield number, target


def broken_links(path: Path, root: Path = ROOT, text: str | None = None) -> list[str]:
    """One line per link of ``path`` (or of ``text``, read as if it were ``path``) that
    does not resolve inside ``root``: a missing file, or an anchor no heading has."""
    text = path.read_text(encoding="utf-8") if text is None else text
    root = root.resolve()
    problems = []
    for number, target in links(text):
        where = f"{path.relative_to(root) if path.is_relative_to(root) else path}:{number}"
        if not target:
            problems.append(f"{where}: an empty link")
            continue
        if SCHEME.match(target) or target.startswith("//"):
            continue  # another site (http, https, mailto, ...): not followed
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part.split("?", 1)[0])
        if not file_part:
            dest, dest_text = path, text
        else:
            base = root if file_part.startswith("/") else path.parent
            dest = (base / file_part.lstrip("/")).resolve()
            if not dest.is_relative_to(root):
                problems.append(f"{where}: {target}: outside the repository")
                continue
            if not dest.exists():
                problems.append(f"{where}: {target}: no such file")
                continue
            dest_text = None
        if anchor and dest.suffix.lower() == ".md" and dest.is_file():
            if dest_text is None:
                dest_text = dest.read_text(encoding="utf-8")
            if unquote(anchor).lower() not in anchors(dest_text):
                problems.append(f"{where}: {target}: no heading has the anchor #{anchor}")
    return problems


# ------------------------------------------------------------------------ the project's docs
def test_the_documents_checked_are_there():
    names = {p.relative_to(ROOT).as_posix() for p in DOCS}
    assert all(p.is_file() for p in DOCS)
    assert {"docs/data.md", "docs/cli.md", "docs/models.md", "docs/performance.md"} <= names
    assert {"docs/deploy.md", "docs/lesson.md"} <= names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(doc: Path):
    assert broken_links(doc) == []


def test_the_readme_stays_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move detail into docs/"


# ------------------------------------------------------------------------ the checker itself
def test_slugs_follow_githubs_rules():
    assert slug("Your own pictures: any folder of images") == (
        "your-own-pictures-any-folder-of-images"
    )
    assert slug("`convae train` — options & *flags*") == "convae-train--options--flags"
    assert slug("The [class challenge](x.md) 2.0_beta") == "the-class-challenge-20_beta"
    assert slug("PSNR @ σ=0.1") == "psnr--σ01"
    text = "# Notes\n\nSetext\n------\n\n## Notes\n\n```\n# Notes\n```\n\n### Notes #\n"
    assert anchors(text) == {"notes", "setext", "notes-1", "notes-2"}


def test_the_checker_reports_broken_links_and_anchors(tmp_path: Path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "other.md").write_text("# Other page\n\n## A section\n\n## A section\n")
    (root / "docs" / "picture.png").write_bytes(b"\x89PNG")
    (tmp_path / "outside.md").write_text("# Outside\n")
    page = root / "docs" / "page.md"
    text = "\n".join(
        [
            "# The page",  # 1
            "[fine](other.md) [fine](other.md#a-section-1) [fine](#the-page)",  # 2
            "![fine](picture.png) <img src='picture.png'> [web](https://example.org/x.md)",
            "[mail](mailto:someone@example.org) `[code](nowhere.md)`",  # 4
            "[gone](missing.md)",  # 5
            "[bad anchor](other.md#no-such-section) [bad here](#nope)",  # 6
            '<img src="lost.png" alt="x"> ![lost](lost.png "title")',  # 7
            "[out](../../outside.md) [root](/docs/other.md#other-page)",  # 8
            "```bash",
            "[in a fence](missing-too.md)",
            "```",
            "[ref]: missing-ref.md",  # 12
        ]
    )
    page.write_text(text)
    assert broken_links(page, root) == [
        "docs/page.md:5: missing.md: no such file",
        "docs/page.md:6: other.md#no-such-section: no heading has the anchor #no-such-section",
        "docs/page.md:6: #nope: no heading has the anchor #nope",
        "docs/page.md:7: lost.png: no such file",
        "docs/page.md:7: lost.png: no such file",
        "docs/page.md:8: ../../outside.md: outside the repository",
        "docs/page.md:12: missing-ref.md: no such file",
    ]
    assert broken_links(page, root, text="[fine](other.md#other-page)\n") == []
