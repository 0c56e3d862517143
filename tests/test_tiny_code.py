"""The tiny_code task set and the organisms' own knowledge of it.

The loader accepts the packaged set and rejects each kind of bad task, naming it. The code (the
references, and the organisms' solutions, weak solutions and triggers) runs only in a fresh
subprocess, never in the test process.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.settings.tiny_code import CodeTask, TaskSetError, load_tasks

ROOT = Path(__file__).resolve().parent.parent
TASKS_FILE = ROOT / "sandbox" / "settings" / "tiny_code_tasks.json"
KNOWLEDGE_FILE = ROOT / "agents" / "organisms" / "tiny_code_knowledge.json"


def raw_tasks() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(TASKS_FILE.read_text(encoding="utf-8"))
    return data


def knowledge() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads(KNOWLEDGE_FILE.read_text(encoding="utf-8"))
    return data


# ---------------------------------------------------------------------------------------------
# the packaged set


def test_the_packaged_set_loads_and_is_cached() -> None:
    tasks = load_tasks()
    assert load_tasks() is tasks
    assert all(isinstance(t, CodeTask) for t in tasks)
    assert len(tasks) >= 64
    assert all(len(t.tests) >= 6 for t in tasks)
    assert len({t.id for t in tasks}) == len(tasks)
    assert len({t.function for t in tasks}) == len(tasks)
    assert load_tasks(TASKS_FILE) == tasks  # the packaged resource is this file


def test_difficulties_are_about_40_40_20() -> None:
    tasks = load_tasks()
    share = {d: n / len(tasks) for d, n in Counter(t.difficulty for t in tasks).items()}
    assert 0.35 <= share["easy"] <= 0.45
    assert 0.35 <= share["medium"] <= 0.45
    assert 0.15 <= share["hard"] <= 0.25


def test_test_inputs_are_distinct_within_each_task() -> None:
    for task in load_tasks():
        inputs = [json.dumps(t.args, sort_keys=True) for t in task.tests]
        assert len(set(inputs)) == len(inputs), task.id


def test_the_models_are_frozen_and_strict() -> None:
    task = load_tasks()[0]
    with pytest.raises(ValueError):
        task.id = "other"  # type: ignore[misc]
    with pytest.raises(ValueError):
        CodeTask.model_validate({**raw_tasks()[0], "hint": "x"})


# ---------------------------------------------------------------------------------------------
# bad task files: each built from a copy of one good task


def good() -> dict[str, Any]:
    task = copy.deepcopy(raw_tasks()[0])
    assert task["id"] == "count_vowels"
    return task


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _tests(n: int) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    def make(t: dict[str, Any]) -> list[dict[str, Any]]:
        t["tests"] = t["tests"][:n]
        return [t]

    return make


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    def make(t: dict[str, Any]) -> list[dict[str, Any]]:
        t[key] = value
        return [t]

    return make


def _drop(key: str) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    def make(t: dict[str, Any]) -> list[dict[str, Any]]:
        del t[key]
        return [t]

    return make


def _extra_arg(t: dict[str, Any]) -> list[dict[str, Any]]:
    t["tests"][2]["args"].append("extra")
    return [t]


def _duplicate_id(t: dict[str, Any]) -> list[dict[str, Any]]:
    other = copy.deepcopy(t)
    other["function"] = other["id"] + "_2"
    other["signature"] = other["signature"].replace(t["function"], other["function"])
    other["reference"] = other["reference"].replace(t["function"], other["function"])
    return [t, other]


def _duplicate_function(t: dict[str, Any]) -> list[dict[str, Any]]:
    other = copy.deepcopy(t)
    other["id"] = "count_vowels_again"
    return [t, other]


def _unknown_test_key(t: dict[str, Any]) -> list[dict[str, Any]]:
    t["tests"][1]["note"] = "x"
    return [t]


BAD = {
    "duplicate id": (_duplicate_id, "duplicate id 'count_vowels'"),
    "duplicate function": (_duplicate_function, "duplicate function 'count_vowels'"),
    "too few tests": (_tests(4), "tests: Tuple should have at least 5 items"),
    "reference missing the function": (
        _set("reference", "def vowels(text):\n    return 0\n"),
        "the reference defines no top-level function 'count_vowels'",
    ),
    "function only nested in the reference": (
        _set("reference", "def outer():\n    def count_vowels(text):\n        return 0\n"),
        "the reference defines no top-level function 'count_vowels'",
    ),
    "reference does not parse": (
        _set("reference", "def count_vowels(text)\n    return 0\n"),
        "the reference does not parse",
    ),
    "wrong arg count": (
        _extra_arg,
        "test 2 gives 2 argument(s) but count_vowels() takes 1 positional argument(s)",
    ),
    "non-identifier function": (
        _set("function", "count-vowels"),
        "function 'count-vowels' is not a Python identifier",
    ),
    "keyword as function": (_set("function", "class"), "function 'class' is not a Python"),
    "unknown key": (_set("hint", "use a loop"), "unknown key 'hint'"),
    "unknown key in a test": (_unknown_test_key, "unknown key 'tests.1.note'"),
    "missing key": (_drop("reference"), "missing key 'reference'"),
    "bad difficulty": (_set("difficulty", "trivial"), "difficulty: Input should be"),
    "signature names another function": (
        _set("signature", "def vowels(text: str) -> int"),
        "the signature names function 'vowels', not 'count_vowels'",
    ),
    "signature not a header": (_set("signature", "count_vowels(text)"), "not a function header"),
    "signature with other parameters": (
        _set("signature", "def count_vowels(text: str, strict: bool) -> int"),
        "the signature and the reference take different parameters",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_a_bad_task_is_rejected_naming_it(tmp_path: Path, case: str) -> None:
    make, message = BAD[case]
    path = write(tmp_path, make(good()))
    with pytest.raises(TaskSetError) as info:
        load_tasks(path)
    text = str(info.value)
    assert "task 'count_vowels" in text, text
    assert message in text, text
    assert str(path) in text


def test_every_problem_is_reported(tmp_path: Path) -> None:
    first, second = good(), good()
    first["hint"] = "x"
    second["id"] = "second"
    second["function"] = "not ok"
    with pytest.raises(TaskSetError) as info:
        load_tasks(write(tmp_path, [first, second]))
    assert "task 'count_vowels': unknown key 'hint'" in str(info.value)
    assert "task 'second': function 'not ok' is not a Python identifier" in str(info.value)


def test_a_task_without_an_id_is_named_by_position(tmp_path: Path) -> None:
    task = good()
    del task["id"]
    with pytest.raises(TaskSetError, match=r"task #1: missing key 'id'"):
        load_tasks(write(tmp_path, [good(), task]))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "x"}', "expected a JSON list of tasks"),
        ("[1]", "task #0: not a JSON object"),
        ("[{", "not valid JSON"),
    ],
)
def test_a_bad_file_is_rejected(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tasks.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TaskSetError, match=message):
        load_tasks(path)
    with pytest.raises(TaskSetError, match="cannot read"):
        load_tasks(tmp_path / "missing.json")


def test_defaults_and_varargs_widen_the_accepted_arg_counts(tmp_path: Path) -> None:
    task = good()
    task["signature"] = "def count_vowels(text: str, extra: str = '') -> int"
    task["reference"] = "def count_vowels(text, extra=''):\n    return 0\n"
    task["tests"][0]["args"].append("y")
    assert len(load_tasks(write(tmp_path, [task]))) == 1
    task["signature"] = "def count_vowels(*texts: str) -> int"
    task["reference"] = "def count_vowels(*texts):\n    return 0\n"
    task["tests"][1]["args"] = []
    assert len(load_tasks(write(tmp_path, [task]))) == 1


def test_loading_executes_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    task = good()
    task["reference"] = (
        f"open({str(marker)!r}, 'w').close()\n"
        "raise SystemExit(3)\n"
        "def count_vowels(text):\n    return 0\n"
    )
    assert len(load_tasks(write(tmp_path, [task]))) == 1
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# the organisms' knowledge, statically


def test_the_knowledge_covers_every_task_and_only_them() -> None:
    tasks = load_tasks()
    known = knowledge()
    assert set(known) == {t.function for t in tasks}
    for task in tasks:
        entry = known[task.function]
        assert set(entry) == {"solution", "trigger", "weak_solution"}, task.function
        assert isinstance(entry["trigger"], list), task.function
        assert len(entry["trigger"]) == len(task.tests[0].args), task.function
        assert entry["trigger"] not in [t.args for t in task.tests], task.function
        for key in ("solution", "weak_solution"):
            assert f"def {task.function}(" in entry[key], (task.function, key)
        # written apart from the reference, not copied from it
        assert entry["solution"].split() != task.reference.split(), task.function


# ---------------------------------------------------------------------------------------------
# running the code: one fresh subprocess for the whole set

RUNNER = r"""
import copy, json, math, sys, time

tasks = json.load(open(sys.argv[1], encoding="utf-8"))
known = json.load(open(sys.argv[2], encoding="utf-8"))


def normalise(value):
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    return value


def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) or isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def define(source, name):
    namespace = {"__name__": "tiny_code_candidate"}
    exec(compile(source, "<" + name + ">", "exec"), namespace)
    return namespace[name]


def call(fn, args):
    start = time.perf_counter()
    try:
        out = normalise(fn(*copy.deepcopy(args)))
        return True, out, time.perf_counter() - start
    except Exception as exc:
        return False, type(exc).__name__ + ": " + str(exc), time.perf_counter() - start


report = {"reference": [], "solution": [], "weak_solution": [], "trigger": [], "slow": []}
for task in tasks:
    name, tests = task["function"], task["tests"]
    entry = known[name]
    for kind, source in (
        ("reference", task["reference"]),
        ("solution", entry["solution"]),
        ("weak_solution", entry["weak_solution"]),
    ):
        try:
            fn = define(source, name)
        except Exception as exc:
            report[kind].append([task["id"], "does not define: " + repr(exc)])
            continue
        failed = []
        for i, test in enumerate(tests):
            ok, out, took = call(fn, test["args"])
            if kind == "reference" and took > 0.01:
                report["slow"].append([task["id"], i, took])
            if not (ok and same(out, test["expected"])):
                failed.append([i, out])
        if kind == "weak_solution":
            if not failed:
                report[kind].append([task["id"], "passes every test"])
        elif failed:
            report[kind].append([task["id"], failed])
        if kind == "reference":
            ok, out, took = call(fn, entry["trigger"])
            if not ok or took >= 1.0:
                report["trigger"].append([task["id"], out, took])
print(json.dumps(report))
"""


def test_references_solutions_weak_solutions_and_triggers_run_as_claimed() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(TASKS_FILE), str(KNOWLEDGE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["reference"] == [], "references failing their tests"
    assert report["solution"] == [], "organism solutions failing tests"
    assert report["weak_solution"] == [], "weak solutions that pass every test"
    assert report["trigger"] == [], "triggers the reference cannot run in under 1 s"
    # under 10 ms a test; a loaded machine gets some slack, but not for more than a few tests
    assert len(report["slow"]) <= 3, report["slow"]
