"""Every "MECHANICS.md §n" the code cites (docstrings, profile files) has its exchange pages in
docs/SOURCES.md: the notes themselves are not in the repository."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"MECHANICS\.md[ ,]*(?:§ ?)?(\d+(?:\.\d+)?)")


def test_every_cited_section_is_listed_with_its_sources():
    cited = set()
    for path in [*REPO.joinpath("backtester").rglob("*.py"),
                 *REPO.joinpath("backtester").rglob("*.toml")]:  # fmt: skip
        cited |= set(CITATION.findall(path.read_text(encoding="utf-8")))
    assert cited  # the code does cite the notes
    listed = set(re.findall(r"^\| §(\d+(?:\.\d+)?)", (REPO / "docs/SOURCES.md").read_text(), re.M))
    assert sorted(cited - listed) == []


def test_every_source_tag_used_has_its_page():
    text = (REPO / "docs/SOURCES.md").read_text()
    table, pages = text.split("## The sources")
    defined = set(re.findall(r"^\| ([A-Za-z0-9-]+) \| ", pages, re.M)) - {"tag"}
    used = set()
    for row in re.findall(r"^\| §[^|]+\|[^|]+\| (.*) \|$", table, re.M):
        used |= {w.strip().split(" ")[0] for w in row.split(",")} - {"no"}
    assert sorted(used - defined) == []
    # each source is a web address or a repository path a reader can open
    for line in re.findall(r"^\| [A-Za-z0-9-]+ \| (.*) \|$", pages, re.M)[1:]:  # no header
        assert re.search(r"https?://|[\w.-]+\.(com|me)/|[\w-]+/[\w-]+", line), line


def test_backtester_profiles_points_at_the_sources_page(capsys):
    from backtester.cli import main

    assert main(["profiles", "okx_coinm_2019"]) == 0
    out = capsys.readouterr().out
    assert "MECHANICS.md" in out  # the profile cites the notes ...
    assert "docs/SOURCES.md lists the exchange pages of each section" in out  # ... and says where
    assert (REPO / "docs/SOURCES.md").is_file()
