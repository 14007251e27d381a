"""The documentation is checked: the option reference matches the parser, every `python3 main.py` command in
a fenced block of README.md and docs/*.md parses (run with --dry_run), every linked file, image and heading
exists, every experiment has a page reachable from the README, and no page speaks of the project's process."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from run.option_docs import EXPERIMENT_PAGES, render
from run.parser import EXPERIMENTS

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
SKIP_DIRS = {"results", "visualizations", "node_modules"}

FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.M | re.S)
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SEPARATORS = {"&&", "||", ";", "|"}


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_option_reference_is_generated_from_the_parser():
    page = (DOCS / "options.md").read_text()
    assert page == render(), "docs/options.md is out of date: python3 -m run.option_docs > docs/options.md"


def test_every_experiment_has_a_page_reachable_from_the_readme():
    readme = (REPO / "README.md").read_text()
    for name in EXPERIMENTS:
        assert name in EXPERIMENT_PAGES, f"--experiment {name} has no page: add it to run/option_docs.py"
        page = EXPERIMENT_PAGES[name][0].split("#")[0]
        assert (DOCS / page).is_file(), f"--experiment {name}: docs/{page} does not exist"
        row = [line for line in readme.splitlines() if line.startswith(f"| `{name}`")]
        assert row, f"README.md: no row for `{name}` in the experiments table"
        assert f"docs/{page}" in row[0], f"README.md: the row of `{name}` does not link docs/{page}"


def test_every_page_is_linked_from_the_readme():
    readme = (REPO / "README.md").read_text()
    for page in DOCS.glob("*.md"):
        assert f"(docs/{page.name}" in readme, f"README.md does not link docs/{page.name}"


def test_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 200


def _commands() -> list[tuple[str, list[str]]]:
    """(where, argv) for every `python3 main.py ...` in a fenced shell block; continuation lines joined,
    comments dropped, leading VAR=value assignments skipped, `a && b` split."""
    found = []
    for page in PAGES:
        for info, block in FENCE.findall(page.read_text()):
            if info.strip() not in SHELL_BLOCKS:
                continue
            text = block.replace("\\\n", " ")
            for line in text.splitlines():
                if "main.py" not in line:
                    continue
                tokens = shlex.split(line, comments=True)
                part: list[str] = []
                for token in [*tokens, ";"]:
                    if token not in SEPARATORS:
                        part.append(token)
                        continue
                    while part and re.match(r"^[A-Z_][A-Z0-9_]*=", part[0]):
                        part.pop(0)
                    if part[:2] == ["python3", "main.py"]:
                        found.append((f"{_rel(page)}: {' '.join(part)[:80]}", part[2:]))
                    part = []
    return found


COMMANDS = _commands()


# Pages that need not open with a command: the README has its own order, the option reference and the
# design page are references, not tasks.
NOT_TASK_PAGES = {"README.md", "options.md", "architecture.md"}


def test_every_page_opens_with_a_command():
    assert len(COMMANDS) >= 20
    for page in PAGES:
        if page.name in NOT_TASK_PAGES:
            continue
        text = page.read_text()
        first_block = FENCE.search(text)
        assert first_block, f"{_rel(page)} shows no command"
        first_section = text.find("\n## ")
        assert first_section < 0 or first_block.start() < first_section, f"{_rel(page)}: no opening command"


@pytest.mark.parametrize("argv", [argv for _, argv in COMMANDS], ids=[where for where, _ in COMMANDS])
def test_docs_command_parses(argv, monkeypatch, capsys):
    import main

    monkeypatch.chdir(REPO)
    rc = main.main([*argv, "--dry_run"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert '"run_folders"' in out


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_slug(m) for m in re.findall(r"^#+\s+(.*?)\s*$", text, re.M)}


def _markdown_files() -> list[Path]:
    files = []
    for path in REPO.rglob("*.md"):
        parts = path.relative_to(REPO).parts
        if any(p.startswith(".") or p in SKIP_DIRS for p in parts):
            continue
        files.append(path)
    return sorted(files)


@pytest.mark.parametrize("page", PAGES, ids=[_rel(p) for p in PAGES])
def test_links_and_images_exist(page):
    text = FENCE.sub("", page.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, fragment = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        assert where.exists(), f"{_rel(page)}: link to {target}: {where} does not exist"
        if fragment and where.suffix == ".md":
            assert fragment in _anchors(where), f"{_rel(page)}: link to {target}: no such heading"


# Folders whose code, too, must not cite issue numbers or design sections (every Markdown file is checked).
CODE_FOLDERS = ("tests", "benchmarks", "shell", ".ci")


def test_no_process_words():
    checked = _markdown_files()
    for folder in CODE_FOLDERS:
        checked += [p for p in (REPO / folder).rglob("*") if p.is_file() and p.suffix in (".py", ".sh", "")]
    words = re.compile("issue" + " [0-9]|DESIGN" + " §")  # split: this line must not match itself
    found = []
    for path in checked:
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if words.search(line):
                found.append(f"{_rel(path)}:{number}: {line.strip()[:80]}")
    assert not found, "process words (issue numbers, design-section citations):\n" + "\n".join(found)
