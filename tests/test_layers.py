"""The layers of docs/architecture.md as import-linter contracts (pyproject.toml): they hold on
this tree, they break when a forbidden import is planted in a copy of it, and they name every
module."""

from __future__ import annotations

import ast
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sandbox", "agents", "control")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONFIG: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
    "importlinter"
]
CONTRACTS: dict[str, dict[str, Any]] = {c["name"]: c for c in CONFIG["contracts"]}

GAMES = (
    "Games, protocols and metrics never import Ray, engines, the runner, the dispatcher or the CLI"
)
NO_MODEL = "Games and metrics never call a model: no agents, no model clients"
PURE_METRICS = "Metrics are pure statistics: control.metrics imports nothing of ours"
ORGANISMS = (
    "Organisms see only the context and message types "
    "(and the generic registry, seeding and signals)"
)
PROTOCOL_MODULES = (
    "A protocol's own module is imported only through control.protocols and its registry"
)
AGENTS = "Agents never import engines, the runner, the dispatcher, drivers or Ray"
CONFIG_LIGHT = "The config imports no registry-backed or heavy module"
LAYERS = "Layers, top-down: cli, run, review, protocols, engines and games, agents, core"
RUN_LAYERS = (
    "Inside sandbox/run: the runner, then drivers, dispatch, checks and scoring, then batching "
    "and stopping"
)
REVIEW_LAYERS = "Inside sandbox/review: report, export, logs and frames, then the tables they read"
RECORD_LAYERS = "Inside sandbox/record: the run directory, then the answer cache"
CORE_LAYERS = "Inside sandbox/core: episode, events, then the leaf types"
FOLDER_LAYERS = (RUN_LAYERS, REVIEW_LAYERS, RECORD_LAYERS, CORE_LAYERS)


def test_the_contracts_named_here_are_the_ones_in_pyproject() -> None:
    assert set(CONTRACTS) == {
        GAMES,
        NO_MODEL,
        PURE_METRICS,
        ORGANISMS,
        PROTOCOL_MODULES,
        AGENTS,
        CONFIG_LIGHT,
        LAYERS,
        *FOLDER_LAYERS,
    }


def copy_tree(dest: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def isolated_env(tree: Path) -> dict[str, str]:
    """The copy first on the path. lint-imports also puts its working directory first, and the
    editable install's finder comes after every path entry, so the copy is what gets analysed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tree)
    return env


def lint_imports(tree: Path) -> tuple[int, str, set[str]]:
    """lint-imports' exit status, its output with line wraps undone, and the broken contracts."""
    proc = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=isolated_env(tree),
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = " ".join((proc.stdout + proc.stderr).split())
    for name in CONTRACTS:
        assert f"{name} KEPT" in text or f"{name} BROKEN" in text, (name, text)
    return proc.returncode, text, {n for n in CONTRACTS if f"{n} BROKEN" in text}


def test_contracts_hold_on_an_unmodified_copy(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    spec = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('sandbox').origin)"],
        cwd=tree,
        env=isolated_env(tree),
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(spec.stdout.strip()).is_relative_to(tree)  # the copy, not the editable install
    code, text, broken = lint_imports(tree)
    assert (code, broken) == (0, set()), text
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in text


@pytest.mark.parametrize(
    ("path", "line", "expected", "named"),
    [
        (
            "sandbox/environments/base.py",
            "import ray",
            {GAMES},
            "sandbox.environments.base -> ray",
        ),
        (
            "agents/loop.py",
            "from sandbox.engines import ENGINES",
            {AGENTS, LAYERS},
            "agents.loop -> sandbox.engines",
        ),
        (
            "agents/organisms/scripted.py",
            "from sandbox.core.events import EventLog",
            {ORGANISMS},
            "agents.organisms.scripted -> sandbox.core.events",
        ),
        (
            "sandbox/config.py",
            "from sandbox.environments import ENVIRONMENTS",
            {CONFIG_LIGHT, LAYERS},
            "sandbox.config -> sandbox.environments",
        ),
        (
            "control/metrics/__init__.py",
            "from sandbox.core.context import Message",
            {PURE_METRICS},
            "control.metrics -> sandbox.core.context",
        ),
        (
            "sandbox/core/prompts.py",
            "import sandbox.review.display",
            # and, through display's import of sandbox.core.results, a leaf importing a leaf
            {LAYERS, CORE_LAYERS},
            "sandbox.core.prompts -> sandbox.review.display",
        ),
        (
            "sandbox/run/batching.py",
            "from sandbox.run import drivers",
            {RUN_LAYERS},
            "sandbox.run.batching -> sandbox.run.drivers",
        ),
        (
            "sandbox/review/attempts.py",
            "from sandbox.review import logs",
            {REVIEW_LAYERS},
            "sandbox.review.attempts -> sandbox.review.logs",
        ),
        (
            "sandbox/run/runner.py",
            "from control.protocols.builtin import DeferParams",
            {PROTOCOL_MODULES},
            "sandbox.run.runner -> control.protocols.builtin",
        ),
    ],
    ids=[
        "ray-in-a-game",
        "engine-in-agents",
        "events-in-organisms",
        "game-in-config",
        "metrics",
        "cycle",
        "inside-run",
        "inside-review",
        "protocol-module-in-the-runner",
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, path: str, line: str, expected: set[str], named: str
) -> None:
    tree = copy_tree(tmp_path)
    with (tree / path).open("a") as f:
        f.write(f"\n{line}\n")
    code, text, broken = lint_imports(tree)
    assert code != 0
    assert broken == expected, text
    assert named in text


def entries(layers: list[str], container: str = "") -> list[str]:
    prefix = f"{container}." if container else ""
    return [
        prefix + entry.strip().strip("()") for layer in layers for entry in re.split(r"[|:]", layer)
    ]


TOP_LEVEL = entries(CONTRACTS[LAYERS]["layers"])
"""The packages and modules the top-level layers contract places."""

INSIDE = {
    container: entries(CONTRACTS[name]["layers"], container)
    for name in FOLDER_LAYERS
    for container in CONTRACTS[name]["containers"]
}
"""Each folder with its own layers contract, with the modules that contract places."""


def submodules(package: str) -> list[str]:
    folder = ROOT / package.replace(".", "/")
    return [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(folder)])]


def test_every_module_has_a_layer() -> None:
    """A new module under sandbox/, agents/ or control/ must be placed in the layers contract,
    and a new module in a folder with its own layers (sandbox/run, review, record, core) in that
    folder's contract too."""
    modules = [m for p in PACKAGES for m in submodules(p)]
    assert "control.metrics" in modules and "sandbox.run" in modules
    assert [m for m in modules if m not in TOP_LEVEL] == []
    assert set(INSIDE) == {"sandbox.run", "sandbox.review", "sandbox.record", "sandbox.core"}
    for folder, placed in INSIDE.items():
        assert sorted(submodules(folder)) == sorted(placed), folder


def test_each_top_level_layer_is_a_folder_but_the_entry_points() -> None:
    """The folder tree is sandbox/'s architecture: its layers name packages, not loose modules,
    except the public entry points `sandbox.cli` and `sandbox.config`."""
    loose = [
        m
        for m in TOP_LEVEL
        if m.startswith("sandbox.") and not (ROOT / m.replace(".", "/")).is_dir()
    ]
    assert sorted(loose) == ["sandbox.cli", "sandbox.config"]


def test_organisms_are_forbidden_every_sandbox_module_but_the_context_types() -> None:
    allowed = {
        "sandbox.core.context",
        "sandbox.core.registry",
        "sandbox.core.seeding",
        "sandbox.core.signals",
    }
    forbidden = set(CONTRACTS[ORGANISMS]["forbidden_modules"])
    assert forbidden >= set(submodules("sandbox")) - {"sandbox.core"}
    assert forbidden >= set(submodules("sandbox.core")) - allowed
    assert not forbidden & allowed


def test_importing_the_config_loads_nothing_heavy() -> None:
    heavy = [
        "ray",
        "langgraph",
        "openai",
        "agents",
        "control",
        "sandbox.engines",
        "sandbox.environments",
    ]
    code = (
        "import sys, sandbox.config\n"
        f"heavy = {heavy!r}\n"
        "print(sorted(m for m in sys.modules for h in heavy if m == h or m.startswith(h + '.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# --- protocols are named only by control.protocols and its registry ------------------------------

PROTOCOLS_DIR = ROOT / "control" / "protocols"

PENDING_NAMES: set[tuple[str, str]] = set()
"""Protocol names still written outside control/protocols, each waiting on a change in a file
this contract's owner does not edit (display.py: read the summary's `positional_audits`). An
entry no longer needed fails the scan below, so the list only shrinks."""


def registering_modules() -> set[str]:
    """The modules under control/protocols/ that register a protocol."""
    return {
        f"control.protocols.{path.stem}"
        for path in PROTOCOLS_DIR.glob("*.py")
        if "@PROTOCOLS.register(" in path.read_text()
    }


def test_every_protocol_module_is_forbidden_outside_its_package() -> None:
    """A new protocol's module goes into the contract's list, or importing it from elsewhere
    would go unnoticed."""
    from control.protocols import PROTOCOLS

    modules = registering_modules()
    assert {"control.protocols.builtin", "control.protocols.untrusted"} <= modules
    assert set(CONTRACTS[PROTOCOL_MODULES]["forbidden_modules"]) == modules
    # and the registry's entries are all defined there
    factories = {PROTOCOLS.entry(name).factory.__module__ for name in PROTOCOLS}
    assert factories <= modules


def string_literals(path: Path) -> set[str]:
    """The module's string constants, but for those inside a `Literal[...]` type (a vocabulary
    such as the decisions, where `resample` is a decision, not the protocol)."""
    tree = ast.parse(path.read_text(), str(path))
    in_literal = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name | ast.Attribute)
        and (node.value.id if isinstance(node.value, ast.Name) else node.value.attr) == "Literal"
        for inner in ast.walk(node.slice)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in in_literal
    }


def test_no_source_outside_control_protocols_names_a_protocol() -> None:
    """Code outside control/protocols learns about a protocol from its declared interface
    (`PROTOCOLS.interface`, `PROTOCOLS.declared`), never by comparing its name: a string
    literal equal to a registered protocol's name is one. A name that is also a game's
    (`upfront_auditing`) may appear under sandbox/environments/, where it names the game."""
    from control.protocols import PROTOCOLS
    from sandbox.environments import ENVIRONMENTS

    names = set(PROTOCOLS)
    assert "upfront_auditing" in names and "untrusted_monitoring" in names
    found: set[tuple[str, str]] = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.is_relative_to(PROTOCOLS_DIR):
                continue
            rel = path.relative_to(ROOT).as_posix()
            for literal in string_literals(path) & names:
                if literal in ENVIRONMENTS and rel.startswith("sandbox/environments/"):
                    continue
                found.add((rel, literal))
    assert found == PENDING_NAMES


def test_the_protocol_name_scan_finds_a_planted_name(tmp_path: Path) -> None:
    """The scan reads string literals, so a comparison against a protocol's name is caught."""
    planted = tmp_path / "planted.py"
    planted.write_text(
        "from typing import Literal\n"
        "Decision = Literal['accept', 'resample']\n"
        "def f(d):\n    return d['protocol'] == 'defer_to_trusted'\n"
    )
    assert string_literals(planted) == {"defer_to_trusted", "protocol"}
