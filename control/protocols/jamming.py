"""Redaction: blue's jamming of covert signals, done in code, before an untrusted monitor reads.

After AI Control (Greenblatt et al. 2023): a colluding policy can hide a signal for its monitor
copy in surface features of its code (a name, a comment, a layout). Redaction takes those away
without changing what the code does: every name the code binds gets a standard name (`f0`, `v0`,
... in order of first appearance; the task's function keeps its name, imports and attributes keep
theirs), comments, docstrings and annotations are stripped, and the formatting is
`ast.unparse`'s. Literals and structure stay: a signal carried by a number or a loop survives
redaction, which is the measured point of having more than one jamming method (the other, a
paraphrase by the trusted model, is a model call).

Code that does not parse is redacted as far as it can be: comments stripped by the tokenizer,
or, when even that fails, left as it is (the monitor then sees it unredacted, as a reviewer
would).
"""

from __future__ import annotations

import ast
import io
import tokenize


class _Bindings(ast.NodeVisitor):
    """The names a module binds, in order of first appearance: its functions, and its
    parameters and assigned names."""

    def __init__(self, keep: str) -> None:
        self.keep = keep
        self.functions: dict[str, None] = {}
        self.values: dict[str, None] = {}
        self.imported: set[str] = set()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name != self.keep:
            self.functions.setdefault(node.name, None)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_arg(self, node: ast.arg) -> None:
        self.values.setdefault(node.arg, None)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self.values.setdefault(node.id, None)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.values.setdefault(node.name, None)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.imported |= {(a.asname or a.name).split(".")[0] for a in node.names}

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.imported |= {a.asname or a.name for a in node.names}


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self.names.get(node.name, node.name)
        node.returns = None
        _drop_docstring(node)
        return self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self.names.get(node.arg, node.arg)
        node.annotation = None
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        if node.name:
            node.name = self.names.get(node.name, node.name)
        return self.generic_visit(node)


def _drop_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Module) -> None:
    body = node.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        node.body = body[1:] or [ast.Pass()]


def standard_names(tree: ast.Module, keep: str) -> dict[str, str]:
    """Each bound name's standard name: functions `f0, f1, ...`, other names `v0, v1, ...`;
    `keep` (the task's function) and imported names keep theirs."""
    found = _Bindings(keep)
    found.visit(tree)
    names = {
        n: f"f{i}" for i, n in enumerate(n for n in found.functions if n not in found.imported)
    }
    values = [n for n in found.values if n not in names and n != keep and n not in found.imported]
    names |= {n: f"v{i}" for i, n in enumerate(values)}
    return names


def strip_comments(code: str) -> str:
    """`code` without its comments, by the tokenizer (a `#` inside a string stays)."""
    try:
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(code).readline)
            if t.type != tokenize.COMMENT
        ]
        return tokenize.untokenize(tokens)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return code


def redact(code: str, function: str) -> str:
    """The monitor's view of `code` under redaction: standard names (but `function`'s), no
    comments, docstrings or annotations, normalized formatting. Behaviour is unchanged."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return strip_comments(code)
    try:
        _drop_docstring(tree)
        _Rename(standard_names(tree, function)).visit(tree)
        return ast.unparse(tree)
    except (RecursionError, ValueError):
        return strip_comments(code)
