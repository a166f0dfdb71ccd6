"""The documentation stays true to the repository: links resolve, shown verbs exist.

* every relative Markdown link in README.md and docs/*.md points at an existing file (http(s),
  mailto and pure ``#anchor`` links are skipped; a ``#fragment`` is stripped first), and a
  fragment into another Markdown page names one of its headings;
* every ``pipeline VERB`` shown in a fenced code block (``python -m pipeline VERB``,
  ``.venv/bin/python -m pipeline VERB``, ``cxr-pipeline VERB``, ``pipeline VERB`` at the start of
  a line), or at the start of an inline code span, is a verb of ``pipeline/cli.py``: ``python -m pipeline VERB --help`` must exit 0, so a
  verb the CLI does not know fails here;
* every repository path named in backticks (``classify/run/benchmark.py``, ``tests/...``) and
  every dotted module (``classify.results.types``) exists, so a module move cannot leave the
  docs pointing at the old place;
* the README stays short (<= 250 lines) and the topic pages exist (>= 5 under docs/).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250
MIN_DOC_PAGES = 5


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


_FENCE = re.compile(r"^\s*(```|~~~)")


def split_fenced(text: str) -> tuple[list[str], list[str]]:
    """(prose lines, fenced-code lines) of a Markdown text."""
    prose: list[str] = []
    code: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif match.group(1) == fence:
                fence = None
            continue
        (code if fence else prose).append(line)
    return prose, code


# ------------------------------------------------------------------------------------ links

_INLINE_CODE = re.compile(r"`+[^`]*`+")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_SKIP_SCHEMES = ("http://", "https://", "mailto:")


def relative_links(path: Path) -> list[str]:
    prose, _ = split_fenced(path.read_text(encoding="utf-8"))
    links: list[str] = []
    for line in prose:
        bare = _INLINE_CODE.sub("", line)
        links += _INLINE_LINK.findall(bare)
        ref = _REF_LINK.match(bare)
        if ref:
            links.append(ref.group(1))
    return [t for t in links if not t.startswith(_SKIP_SCHEMES) and not t.startswith("#")]


def heading_anchors(path: Path) -> set[str]:
    """GitHub-style anchors of a Markdown file's headings."""
    prose, _ = split_fenced(path.read_text(encoding="utf-8"))
    anchors: set[str] = set()
    for line in prose:
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        title = re.sub(r"[^\w\- ]", "", match.group(1).lower())
        anchors.add(title.replace(" ", "-"))
    return anchors


LINKS = [(doc, target) for doc in doc_files() for target in relative_links(doc)]


@pytest.mark.parametrize(("doc", "target"), LINKS, ids=[f"{_rel(d)}->{t}" for d, t in LINKS])
def test_relative_link_resolves(doc: Path, target: str) -> None:
    file_part, _, fragment = target.partition("#")
    resolved = (doc.parent / file_part).resolve()
    assert resolved.exists(), f"{_rel(doc)} links to {target!r}, but {resolved} does not exist"
    if fragment and resolved.suffix == ".md":
        anchors = heading_anchors(resolved)
        assert fragment in anchors, (
            f"{_rel(doc)} links to {target!r}, but {file_part} has no heading with that anchor; "
            f"its anchors: {sorted(anchors)}"
        )


def test_pages_link_back_to_readme() -> None:
    for page in sorted(DOCS.glob("*.md")):
        assert "../README.md" in relative_links(page), f"{_rel(page)} does not link back to README.md"


# ------------------------------------------------------------------------------------ verbs

_PROMPT = re.compile(r"^\s*(?:\$|>>>|#\s*\$)\s*")
_INVOCATION = re.compile(
    r"^(?:\S*python3?\s+-m\s+pipeline|\S*cxr-pipeline|pipeline)\s+(?P<verb>[^\s\\]+)"
)


def shown_verbs(path: Path) -> set[str]:
    """Verbs of every ``pipeline VERB`` invocation in the fenced code blocks of ``path``, and in
    inline code spans that start with one (the command tables)."""
    prose, code = split_fenced(path.read_text(encoding="utf-8"))
    spans = [m.strip("`") for line in prose for m in _INLINE_CODE.findall(line)]
    verbs: set[str] = set()
    for line in code + spans:
        for command in re.split(r"&&|\|\||;", line):
            match = _INVOCATION.match(_PROMPT.sub("", command).strip())
            verb = match.group("verb") if match else ""
            # placeholders (`pipeline <verb>`, `pipeline VERB`) and options are not verbs
            if verb and not verb.startswith(("-", "<", "[")) and not verb.isupper():
                verbs.add(verb)
    return verbs


VERBS = sorted(set().union(*(shown_verbs(doc) for doc in doc_files())))


def test_docs_show_verbs() -> None:
    # the collector itself works: the README and the pages show the main verbs
    assert {"data", "extract", "classify"} <= set(VERBS), VERBS


@pytest.mark.parametrize("verb", VERBS)
def test_shown_verb_exists(verb: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", verb, "--help"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, (
        f"the docs show `pipeline {verb}`, but `python -m pipeline {verb} --help` exited "
        f"{proc.returncode}:\n{proc.stderr[-2000:]}"
    )


# ------------------------------------------------------------------------ paths and modules

_PACKAGES = ("pipeline", "extract", "classify", "benchmarks", "tests", "experiments")
_REPO_PATH = re.compile(r"`((?:" + "|".join(_PACKAGES) + r")/[\w./-]*)`")
_DOTTED = re.compile(r"`((?:pipeline|extract|classify|benchmarks)(?:\.\w+)+)`")


def named_paths(path: Path) -> set[str]:
    prose, _ = split_fenced(path.read_text(encoding="utf-8"))
    return {m for line in prose for m in _REPO_PATH.findall(line)}


def named_modules(path: Path) -> set[str]:
    prose, _ = split_fenced(path.read_text(encoding="utf-8"))
    return {m for line in prose for m in _DOTTED.findall(line)}


def _module_exists(dotted: str) -> bool:
    """A package + module prefix of ``dotted`` is a file (the rest may be an attribute)."""
    parts = dotted.split(".")
    for n in range(len(parts), 1, -1):
        base = ROOT.joinpath(*parts[:n])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
    return False


PATHS = sorted({(doc, p) for doc in doc_files() for p in named_paths(doc)})
MODULES = sorted({(doc, m) for doc in doc_files() for m in named_modules(doc)})


@pytest.mark.parametrize(("doc", "named"), PATHS, ids=[f"{_rel(d)}:{p}" for d, p in PATHS])
def test_named_path_exists(doc: Path, named: str) -> None:
    assert (ROOT / named).exists(), f"{_rel(doc)} names `{named}`, which does not exist"


@pytest.mark.parametrize(("doc", "named"), MODULES, ids=[f"{_rel(d)}:{m}" for d, m in MODULES])
def test_named_module_exists(doc: Path, named: str) -> None:
    assert _module_exists(named), f"{_rel(doc)} names `{named}`, which is no module"


# ------------------------------------------------------------------------------------ shape


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines (at most {MAX_README_LINES})"


def test_docs_have_topic_pages() -> None:
    pages = sorted(DOCS.glob("*.md"))
    assert len(pages) >= MIN_DOC_PAGES, f"docs/ has {len(pages)} .md pages: {pages}"
