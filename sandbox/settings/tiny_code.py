"""The `tiny_code` task set: small pure Python functions a deployment's policy is asked to write.

Each task names a function, shows its signature and a statement, and carries a reference
solution and tests (positional arguments and the expected result, all JSON). The set ships as
`sandbox/settings/tiny_code_tasks.json`; `load_tasks()` reads and validates it once per process.

Loading never executes code: it checks the schema, that ids and function names are unique, that
`function` is an identifier, that the reference parses and defines a top-level function of that
name taking as many positional arguments as every test gives, and that the signature names the
same function. Whether the reference really passes its tests is for the test suite (in a
subprocess) and the code checker to find out.
"""

from __future__ import annotations

import ast
import functools
import json
import keyword
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PACKAGE = "sandbox.settings"
DEFAULT_FILE = "tiny_code_tasks.json"
MIN_TESTS = 5

Difficulty = Literal["easy", "medium", "hard"]


class TaskSetError(ValueError):
    """The task file is unreadable or holds an invalid task; the message names each task and
    what is wrong with it."""


class CodeTest(BaseModel):
    """One test: the function called with `args` (positionally) must return `expected`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    args: list[Any]
    expected: Any


class CodeTask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    function: str
    signature: str
    statement: str = Field(min_length=1)
    difficulty: Difficulty
    reference: str
    tests: tuple[CodeTest, ...] = Field(min_length=MIN_TESTS)

    @model_validator(mode="after")
    def _check_code(self) -> CodeTask:
        if not self.function.isidentifier() or keyword.iskeyword(self.function):
            raise ValueError(f"function {self.function!r} is not a Python identifier")
        low, high = _arity(_reference_def(self.reference, self.function), "the reference")
        signed = _signature_def(self.signature)
        if signed.name != self.function:
            raise ValueError(f"the signature names function {signed.name!r}, not {self.function!r}")
        if _arity(signed, "the signature") != (low, high):
            raise ValueError("the signature and the reference take different parameters")
        for i, test in enumerate(self.tests):
            if not low <= len(test.args) <= high:
                wanted = str(low) if low == high else f"{low} to {high}"
                raise ValueError(
                    f"test {i} gives {len(test.args)} argument(s) but {self.function}() takes "
                    f"{wanted} positional argument(s)"
                )
        return self


def _reference_def(source: str, name: str) -> ast.FunctionDef:
    try:
        module = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"the reference does not parse: {exc.msg} (line {exc.lineno})") from None
    found = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == name]
    if not found:
        raise ValueError(f"the reference defines no top-level function {name!r}")
    return found[-1]  # the definition that binds the name last


def _signature_def(signature: str) -> ast.FunctionDef:
    try:
        module = ast.parse(signature.strip().removesuffix(":") + ":\n    pass\n")
    except SyntaxError:
        raise ValueError(f"the signature {signature!r} is not a function header") from None
    if len(module.body) != 1 or not isinstance(module.body[0], ast.FunctionDef):
        raise ValueError(f"the signature {signature!r} is not a function header")
    return module.body[0]


def _arity(fn: ast.FunctionDef, what: str) -> tuple[int, float]:
    """How many positional arguments the function accepts: (fewest, most)."""
    spec = fn.args
    if any(d is None for d in spec.kw_defaults):
        raise ValueError(f"{what} has a keyword-only parameter without a default")
    total = len(spec.posonlyargs) + len(spec.args)
    return total - len(spec.defaults), float("inf") if spec.vararg else total


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key {where!r}"
    if error["type"] == "missing":
        return f"missing key {where!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def parse_tasks(data: Any, source: str = "tasks") -> tuple[CodeTask, ...]:
    """Validate decoded JSON (a list of task objects). Every problem is reported, each line
    naming its task (by id, or by position when it has none)."""
    if not isinstance(data, list):
        raise TaskSetError(f"{source}: expected a JSON list of tasks, got {type(data).__name__}")
    problems: list[str] = []
    tasks: list[CodeTask] = []
    for i, raw in enumerate(data):
        label = f"task #{i}"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            label = f"task {raw['id']!r}"
        if not isinstance(raw, dict):
            problems.append(f"{label}: not a JSON object")
            continue
        try:
            tasks.append(CodeTask.model_validate(raw))
        except ValidationError as exc:
            problems.extend(f"{label}: {_describe(dict(e))}" for e in exc.errors())
    problems.extend(_duplicates(tasks))
    if problems:
        raise TaskSetError(f"{source}: " + "; ".join(problems))
    return tuple(tasks)


def _duplicates(tasks: Sequence[CodeTask]) -> list[str]:
    problems = []
    for attr in ("id", "function"):
        seen: dict[str, str] = {}
        for task in tasks:
            value = getattr(task, attr)
            if value in seen:
                problems.append(
                    f"task {task.id!r}: duplicate {attr} {value!r} (also task {seen[value]!r})"
                )
            else:
                seen[value] = task.id
    return problems


def load_tasks(path: Path | None = None) -> tuple[CodeTask, ...]:
    """The task set in `path`, or the packaged `tiny_code` set (read once, then cached)."""
    if path is None:
        return _packaged()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TaskSetError(f"cannot read task file {path}: {exc}") from None
    return _parse_text(text, str(path))


@functools.cache
def _packaged() -> tuple[CodeTask, ...]:
    text = resources.files(PACKAGE).joinpath(DEFAULT_FILE).read_text(encoding="utf-8")
    return _parse_text(text, f"{PACKAGE}/{DEFAULT_FILE}")


def _parse_text(text: str, source: str) -> tuple[CodeTask, ...]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskSetError(
            f"{source}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    return parse_tasks(data, source)
