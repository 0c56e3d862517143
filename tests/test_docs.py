"""The project documents itself in docs/: the README's and the docs' links lead somewhere in the
repository, nothing points at documents outside it, and every registered protocol, monitor, game
and organism is described.

A clone is all a reader has, so a link to a file or a heading that does not exist in it is a
dead end; and a registry entry nobody wrote down is one a reader cannot find. These checks keep
both true as the code moves.
"""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from agents.organisms import ORGANISMS
from control.monitors import MONITORS
from control.protocols import PROTOCOLS
from sandbox.environments import ENVIRONMENTS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")

SELF = Path(__file__).resolve()
# Built from parts, so that this file does not itself hold what it looks for.
OUTSIDE_DOCS = ("../" + "shared", "shared/" + "DESIGN.md", "shared/" + "GAMES.md")
BARE_NAMES = ("DESIGN" + ".md", "GAMES" + ".md")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose_lines(text: str) -> Iterator[str]:
    """The lines of a markdown text outside fenced code blocks: what a renderer may turn into
    links and headings."""
    fence: str | None = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            continue
        if fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            continue
        yield line


def links(path: Path) -> list[str]:
    return [
        m.group(1)
        for line in prose_lines(path.read_text(encoding="utf-8"))
        for m in LINK.finditer(INLINE_CODE.sub("", line))
    ]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces
    as hyphens."""
    text = heading.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, repeated headings numbered as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """The links of `path` that lead nowhere in the repository `root`: a relative target that is
    not a file or directory under it, or an anchor that is not a heading of its file."""
    broken = []
    for target in links(path):
        if SCHEME.match(target):
            continue  # a web address: not this test's to check
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path.resolve()
        if not dest.is_relative_to(root.resolve()) or not dest.exists():
            broken.append(f"{target}: no such file in the repository")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(root.resolve())}")
    return broken


def tracked_texts() -> Iterator[tuple[str, str]]:
    """(path, text) of every file git tracks that reads as UTF-8 text, this file excepted."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no list of tracked files")
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if not name or path.resolve() == SELF or not path.is_file():
            continue
        try:
            yield name, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # an image


def docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


# --- the checks ----------------------------------------------------------------------------------


def test_the_docs_exist() -> None:
    names = {p.name for p in DOCS.glob("*.md")}
    assert {"architecture.md", "games.md", "protocols.md", "reading-output.md"} <= names


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_in_the_repository(path: Path) -> None:
    assert links(path), f"{path.name} links to nothing"  # the extraction itself works
    assert broken_links(path) == []


def test_a_broken_link_and_a_missing_heading_are_found(tmp_path: Path) -> None:
    """The link check itself, on a planted tree: dead files, missing headings and paths out of
    the repository are reported; links inside code are not links; good ones pass."""
    docs = tmp_path / "repo" / "docs"
    docs.mkdir(parents=True)
    (docs / "architecture.md").write_text("# Architecture\n## Adding a `protocol`\n")
    (docs / "games.md").write_text("# Games\n")
    (tmp_path / "outside.md").write_text("# Outside\n")
    probe = docs / "probe.md"
    probe.write_text(
        "# Title\n[ok](architecture.md#adding-a-protocol) [self](#title) [web](https://x.org)\n"
        "[gone](missing.md) [bad anchor](games.md#no-such-heading) [up](../../outside.md)\n"
        "`[code](not-a-link.md)`\n```\n[fenced](not-a-link.md)\n```\n[me](#no-title)\n",
        encoding="utf-8",
    )
    assert broken_links(probe, root=tmp_path / "repo") == [
        "missing.md: no such file in the repository",
        "games.md#no-such-heading: no heading #no-such-heading in docs/games.md",
        "../../outside.md: no such file in the repository",
        "#no-title: no heading #no-title in docs/probe.md",
    ]


def test_the_readme_answers_how_to_add_a_protocol_in_one_hop() -> None:
    """The issue's criterion: from the README, one link reaches the protocol recipe."""
    assert "docs/architecture.md#adding-a-protocol" in links(README)
    assert "adding-a-protocol" in anchors(DOCS / "architecture.md")


def lines_naming(needles: Sequence[str]) -> list[str]:
    """Every line of a tracked file holding one of `needles`, as `file:line: text`."""
    return [
        f"{name}:{n}: {line.strip()}"
        for name, text in tracked_texts()
        for n, line in enumerate(text.splitlines(), 1)
        if any(needle in line for needle in needles)
    ]


def test_no_tracked_file_points_outside_the_repository_for_its_documents() -> None:
    assert lines_naming(OUTSIDE_DOCS) == []


def test_no_tracked_file_names_the_design_documents_of_another_tree() -> None:
    """The design notes the project grew from are not in a clone; the docs/ pages are."""
    assert lines_naming(BARE_NAMES) == []


@pytest.mark.parametrize(
    "registry", [PROTOCOLS, MONITORS, ENVIRONMENTS, ORGANISMS], ids=lambda r: r.kind
)
def test_every_registered_entry_is_described_in_the_docs(registry: object) -> None:
    text = docs_text()
    missing = [name for name in registry if f"`{name}`" not in text]  # type: ignore[attr-defined]
    assert list(registry), "an empty registry proves nothing"  # type: ignore[call-overload]
    assert missing == []


def test_every_bench_extra_install_uses_the_pinned_constraints() -> None:
    """One install command for the `bench` extra everywhere: with the pinned set."""
    commands = [
        line
        for path in markdown_files()
        for line in path.read_text(encoding="utf-8").splitlines()
        if "pip install" in line and "[bench]" in line
    ]
    assert commands, "the README names no bench install"
    assert [c for c in commands if "-c constraints.txt" not in c] == []


def test_every_tracked_file_names_the_one_bench_install() -> None:
    """The same command in error messages, skips and scripts as in the README."""
    found = [
        f"{name}:{n}: {line.strip()}"
        for name, text in tracked_texts()
        for n, line in enumerate(text.splitlines(), 1)
        if "pip install" in line and "[bench]" in line and "-c constraints.txt" not in line
    ]
    assert found == []


def test_the_layers_table_is_the_layers_contract() -> None:
    """docs/architecture.md's tables of layers list, top-down, the packages of each layer of the
    import-linter contracts in pyproject.toml (the top-level one, then one per folder): the
    contracts move, the docs move with them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    (top,) = [c for c in contracts if "containers" not in c]
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    tables = section.split("\n\n")
    rows = [
        line
        for table in tables
        if table.startswith("| layer |")
        for line in table.splitlines()
        if line.startswith("| ") and "`" in line
    ]
    documented = [set(re.findall(r"`([\w.]+)`", row.split("|")[2])) for row in rows]
    assert documented == [{m.strip() for m in layer.split("|")} for layer in top["layers"]]
    folders = {
        line.split("|")[1].strip().strip("`"): [
            set(re.findall(r"`(\w+)`", part)) for part in line.split("|")[2].split(";")
        ]
        for table in tables
        if table.startswith("| folder |")
        for line in table.splitlines()
        if line.startswith("| `")
    }
    inside = {
        container.replace(".", "/") + "/": [
            {m.strip() for m in layer.split("|")} for layer in c["layers"]
        ]
        for c in contracts
        if "containers" in c
        for container in c["containers"]
    }
    assert folders == inside


def table_columns(source: str) -> set[str]:
    """Every column header a module's rich tables get: the string given to `add_column`, or each
    string of the tuple its enclosing loop's variable runs over (a literal, or a module-level
    constant)."""
    tree = ast.parse(source)
    constants = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    columns: set[str] = set()

    def strings(expr: ast.expr | None) -> set[str]:
        if isinstance(expr, ast.Name):
            expr = constants.get(expr.id)
        assert isinstance(expr, ast.Tuple | ast.List), "a column loop this test cannot read"
        return {e.value for e in expr.elts if isinstance(e, ast.Constant)}

    def visit(node: ast.AST, loops: dict[str, ast.expr]) -> None:
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            inner = {**loops, node.target.id: node.iter}
            for child in node.body:
                visit(child, inner)
            return
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_column"
            and node.args
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                columns.add(arg.value)
            else:
                assert isinstance(arg, ast.Name), f"add_column({ast.unparse(arg)}): not read"
                columns.update(strings(loops.get(arg.id)))
        for child in ast.iter_child_nodes(node):
            visit(child, loops)

    visit(tree, {})
    return columns


def test_every_column_the_terminal_prints_is_explained() -> None:
    """Every column of every table `sandbox run` and `sandbox show` print
    (sandbox/review/display.py) is named in docs/reading-output.md."""
    display = ROOT / "sandbox" / "review" / "display.py"
    columns = table_columns(display.read_text(encoding="utf-8"))
    assert {"model", "win", "verdict", "reading", "red wins"} <= columns  # the reader works
    text = (DOCS / "reading-output.md").read_text(encoding="utf-8")
    assert sorted(c for c in columns if f"`{c}`" not in text) == []


PATH_LIKE = re.compile(r"^\.?[\w-]+(?:/[\w.-]+)*/?$")


def test_every_path_the_docs_name_exists() -> None:
    """A file or folder named in code (`sandbox/run/dispatch.py`, `control/protocols/`) is where the
    docs send a reader who wants the source: it must be there. Patterns (`<name>.py`) and
    names outside the repository's top-level folders are not paths to check."""
    top = {p.name for p in ROOT.iterdir()}
    spans = {
        m.group(0).strip("`")
        for path in sorted(DOCS.glob("*.md"))
        for m in INLINE_CODE.finditer(path.read_text(encoding="utf-8"))
    }
    paths = sorted(s for s in spans if "/" in s and PATH_LIKE.match(s) and s.split("/")[0] in top)
    assert "sandbox/run/dispatch.py" in paths  # the reader works
    assert [p for p in paths if not (ROOT / p).exists()] == []
