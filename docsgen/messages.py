"""Every error message a user can meet from the CLI or the API, read from the code, and the ones
``docs/troubleshooting.md`` lacks.

The code is read, not run: each ``.py`` file under ``pipeline/``, ``service/`` and ``voiceid/``
is parsed, and a message is what reaches a *sink*:

- a call of one of the project's exception classes (every class of those packages that derives
  from an exception: ``VoiceIdError`` and its family, and any other), the argument its
  ``__init__`` calls ``message``, ``reason`` or ``detail``, else the first;
- a call in :data:`MESSAGE_ARGUMENTS` (``sys.exit``, ``argparse.ArgumentTypeError``, a parser's
  ``error``, a failed training job's ``_finish``, a request refused before its body is read, a
  WebSocket's close reason, ...; never a logger's method), the argument it names; when that
  is a ``{"detail": ...}`` dict, as ``JSONResponse`` takes, the value under ``detail``;
- a dict of a failed job, ``{"state": "failed", "detail": ...}``;
- ``problems.append(...)``: a part of a "does not check out" message.

The message expression is resolved to one or more templates: string literals and f-strings,
``+``, ``a if c else b``, ``TEMPLATE.format(...)`` (each ``{name}`` field a placeholder), module
constants, a local variable's assignments, and the ``return`` values of a function of these
packages that it calls. Anything else (a parameter, ``str(exc)``, a join) is a placeholder. A
template is found in the page when some code span of it matches with each placeholder standing
for any text (an example value, or the placeholder itself as this module prints it), so
``python -m docsgen.messages`` prints what to paste.
"""

from __future__ import annotations

import ast
import itertools
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "MESSAGE_ARGUMENTS",
    "SOURCES",
    "Template",
    "code_spans",
    "missing_from",
    "page_entries",
    "stale_in",
    "templates",
]

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pipeline", "service", "voiceid")  # the packages whose messages users meet
PAGE = ROOT / "docs" / "troubleshooting.md"
# A class deriving from one of these, or from a class of the project that does, is an exception.
EXCEPTION_BASES = {"Exception", "ValueError", "RuntimeError", "OSError", "LookupError"}
MESSAGE_PARAMETERS = ("message", "reason", "detail")  # an exception's message, by name
# Beside those: call name -> (position, keyword) of the argument that holds the message.
MESSAGE_ARGUMENTS: dict[str, tuple[int | None, str | None]] = {
    "exit": (0, None),  # sys.exit(message): the CLI or the server stops with it
    "SystemExit": (0, None),
    "ArgumentTypeError": (0, None),  # argparse prints it after the option's name
    "JSONResponse": (0, "content"),  # its {"detail": ...}
    "HTTPException": (1, "detail"),
    "_Refusal": (1, "detail"),  # a request refused before its body is read (service.auth)
    "RefusedClip": (None, "detail"),  # one file of a clip upload, refused
    "_finish": (2, "detail"),  # a failed training job's detail, GET /train/{id}
    "close": (None, "reason"),  # a WebSocket's close reason
    "WebSocketException": (1, "reason"),
    "WebSocketDisconnect": (1, "reason"),
    "error": (0, None),  # an argparse parser's error(): the command's usage, then the message
}
NOT_MESSAGES = ("log", "logger", "logging")  # log.error(...) and the like are no answers
PROBLEM_LISTS = ("problems",)  # lists of parts that a "does not check out" message joins
MAX_DEPTH = 6  # calls followed into functions, at most
MIN_WORD = 3  # a template needs a literal word this long to be recognisable
TODO = "TODO: say what it means and what to do"  # the page must hold none


class Hole:
    """A placeholder: text the code fills in when it raises (a value, another error's text)."""

    def __init__(self, label: str) -> None:
        self.label = label


Part = str | Hole


@dataclass(frozen=True)
class Template:
    """A message as the code writes it: literal text and placeholders; where it is raised."""

    parts: tuple[Part, ...]
    where: str  # path:line

    @property
    def shown(self) -> str:
        """The message with ``{name}`` for each placeholder, on one line."""
        text = "".join(p if isinstance(p, str) else "{" + p.label + "}" for p in self.parts)
        return " ".join(text.split())

    def pattern(self) -> re.Pattern[str]:
        """Matches the message in a code span: any text, the label included, for a hole."""
        pieces = [
            re.escape(" ".join(p.split(" "))).replace(r"\ ", " ") if isinstance(p, str) else ".*?"
            for p in self.parts
        ]
        return re.compile(re.sub(r"\s+", r"\\s+", "".join(pieces).strip()))

    def recognisable(self) -> bool:
        """Whether the literal text holds a word: ``{path}: {exc}`` passes on another error's
        message, and is documented where that one is."""
        literal = " ".join(p for p in self.parts if isinstance(p, str))
        return re.search(rf"[A-Za-z]{{{MIN_WORD},}}", literal) is not None


# -- reading the code ------------------------------------------------------------------------


@dataclass
class _Module:
    path: str
    tree: ast.Module
    constants: dict[str, ast.expr] = field(default_factory=dict)


@dataclass
class _Index:
    modules: list[_Module]
    functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]]
    errors: dict[str, int]  # an exception class of the project -> its message's position
    home: dict[int, _Module]  # a function's module, by the function node's id
    enclosing: dict[int, ast.FunctionDef | ast.AsyncFunctionDef | None]


def _python_files(root: Path, packages: Sequence[str]) -> Iterator[Path]:
    for package in packages:
        yield from sorted((root / package).rglob("*.py"))


def _read(root: Path, packages: Sequence[str]) -> _Index:
    modules: list[_Module] = []
    functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    classes: dict[str, ast.ClassDef] = {}
    home: dict[int, _Module] = {}
    enclosing: dict[int, ast.FunctionDef | ast.AsyncFunctionDef | None] = {}
    for path in _python_files(root, packages):
        tree = ast.parse(path.read_text(), filename=str(path))
        module = _Module(str(path.relative_to(root)), tree)
        for statement in tree.body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
                if isinstance(target, ast.Name):
                    module.constants[target.id] = statement.value
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.setdefault(node.name, []).append(node)
                home[id(node)] = module
                for inner in ast.walk(node):
                    enclosing[id(inner)] = node  # the innermost wins: walk goes outside in
            elif isinstance(node, ast.ClassDef):
                classes[node.name] = node
        modules.append(module)
    return _Index(modules, functions, _exceptions(classes), home, enclosing)


def _exceptions(classes: dict[str, ast.ClassDef]) -> dict[str, int]:
    """The exception classes among ``classes``, each with its message argument's position."""
    found: dict[str, int] = {}
    while True:
        more = {
            name: _message_position(node, found)
            for name, node in classes.items()
            if name not in found
            and any(b in EXCEPTION_BASES or b in found for b in map(_name_of, node.bases))
        }
        if not more:
            return found
        found |= more


def _message_position(node: ast.ClassDef, known: dict[str, int]) -> int:
    """Where the message goes in a call of ``node``: its ``__init__``'s parameter named in
    ``MESSAGE_PARAMETERS`` (the first, without one), else its base's position."""
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            names = [a.arg for a in item.args.posonlyargs + item.args.args][1:]  # less self
            return next((i for i, n in enumerate(names) if n in MESSAGE_PARAMETERS), 0)
    return next((known[b] for b in map(_name_of, node.bases) if b in known), 0)


def _name_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


# -- resolving an expression to templates ----------------------------------------------------


@dataclass
class _Resolver:
    index: _Index
    module: _Module
    depth: int = 0

    def resolve(self, node: ast.expr, scope: ast.AST | None) -> list[tuple[Part, ...]]:
        """The templates ``node`` may evaluate to; a placeholder where it cannot tell."""
        if isinstance(node, ast.Constant):
            return [(node.value,)] if isinstance(node.value, str) else []
        if isinstance(node, ast.JoinedStr):
            return self._product([self._piece(v, scope) for v in node.values])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self._product([self.resolve(node.left, scope), self.resolve(node.right, scope)])
        if isinstance(node, ast.IfExp):
            return self.resolve(node.body, scope) + self.resolve(node.orelse, scope)
        if isinstance(node, ast.Name):
            return self._name(node, scope)
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        return [(Hole(_label(node)),)]

    def _piece(self, node: ast.expr, scope: ast.AST | None) -> list[tuple[Part, ...]]:
        if isinstance(node, ast.FormattedValue):
            plain = node.conversion == -1 and node.format_spec is None
            if plain and isinstance(node.value, ast.Name) and self._is_text(node.value, scope):
                return self._name(node.value, scope)
            return [(Hole(_label(node.value)),)]
        return self.resolve(node, scope)

    def _assigned(self, node: ast.Name, scope: ast.AST | None) -> list[ast.expr]:
        """What the variable is given in ``scope``, else as a module constant."""
        values = [
            a.value
            for a in (ast.walk(scope) if scope is not None else ())
            if isinstance(a, ast.Assign | ast.AnnAssign) and a.value is not None
            and any(isinstance(t, ast.Name) and t.id == node.id for t in _targets(a))
        ]  # fmt: skip
        if not values and node.id in self.module.constants:
            values = [self.module.constants[node.id]]
        return values

    def _is_text(self, node: ast.Name, scope: ast.AST | None) -> bool:
        """Whether every value the variable is given is written as text (an f-string's part)."""
        values = self._assigned(node, scope)
        return bool(values) and all(_written_as_text(v) for v in values)

    def _name(self, node: ast.Name, scope: ast.AST | None) -> list[tuple[Part, ...]]:
        values = self._assigned(node, scope)
        if not values:
            return [(Hole(node.id),)]
        return [t for value in values for t in self.resolve(value, scope)]

    def _call(self, node: ast.Call, scope: ast.AST | None) -> list[tuple[Part, ...]]:
        name = _name_of(node.func)
        if name == "format" and isinstance(node.func, ast.Attribute):
            return [_formatted(t) for t in self.resolve(node.func.value, scope)]
        defined = self.index.functions.get(name or "", [])
        if not defined or self.depth >= MAX_DEPTH:
            return [(Hole(_label(node)),)]
        found = []
        for function in defined:
            inner = _Resolver(self.index, self.index.home[id(function)], self.depth + 1)
            for ret in ast.walk(function):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    found += inner.resolve(ret.value, function)
        return found or [(Hole(_label(node)),)]

    @staticmethod
    def _product(choices: list[list[tuple[Part, ...]]]) -> list[tuple[Part, ...]]:
        if any(not c for c in choices):
            return []
        return [_merge(sum(combo, ())) for combo in itertools.product(*choices)]


def _written_as_text(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    return isinstance(node, ast.JoinedStr | ast.IfExp)


def _formatted(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    """``parts`` as ``str.format`` fills them: each ``{name}`` of the literal text a placeholder."""
    pieces: list[Part] = []
    for part in parts:
        if isinstance(part, Hole):
            pieces.append(part)
            continue
        for i, text in enumerate(re.split(r"\{(\w*)\}", part)):
            pieces.append(Hole(text or "…") if i % 2 else text)
    return _merge(tuple(pieces))


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def _merge(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    """Adjacent literals joined into one."""
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return tuple(merged)


def _label(node: ast.expr) -> str:
    """A placeholder's name: the variable or attribute it shows, else ``…``."""
    if isinstance(node, ast.Name | ast.Attribute):
        return ast.unparse(node)
    return "…"


# -- the sinks -------------------------------------------------------------------------------


def _message_arguments(node: ast.AST, errors: dict[str, int]) -> Iterator[ast.expr]:
    """The expressions that hold a message at ``node``, when it is a sink."""
    if isinstance(node, ast.Call):
        name = _name_of(node.func)
        if name in errors:
            at = errors[name]
            named = [k.value for k in node.keywords if k.arg in MESSAGE_PARAMETERS]
            yield from node.args[at : at + 1] or named
        elif name in MESSAGE_ARGUMENTS and not _is_log(node.func):
            position, keyword = MESSAGE_ARGUMENTS[name]
            values = [k.value for k in node.keywords if k.arg == keyword]
            if position is not None and len(node.args) > position:
                values.append(node.args[position])
            for value in values:
                yield _detail(value) if isinstance(value, ast.Dict) else value
        elif name == "append" and isinstance(node.func, ast.Attribute) and node.args:
            yield from node.args[:1] if _name_of(node.func.value) in PROBLEM_LISTS else ()
    elif isinstance(node, ast.Dict) and _is_failed_job(node):
        yield _detail(node)


def _is_log(func: ast.expr) -> bool:
    """Whether ``func`` is a logger's method: ``log.error(...)`` writes a log line."""
    return isinstance(func, ast.Attribute) and _name_of(func.value) in NOT_MESSAGES


def _entry(node: ast.Dict, key: str) -> ast.expr | None:
    for k, v in zip(node.keys, node.values, strict=True):
        if isinstance(k, ast.Constant) and k.value == key:
            return v
    return None


def _is_failed_job(node: ast.Dict) -> bool:
    state = _entry(node, "state")
    return isinstance(state, ast.Constant) and state.value == "failed"


def _detail(node: ast.Dict) -> ast.expr:
    return _entry(node, "detail") or ast.Constant(None)


def templates(root: Path = ROOT, packages: Sequence[str] = SOURCES) -> list[Template]:
    """Every recognisable message template of ``packages`` under ``root``, once each, in the
    order of the files and lines that raise them."""
    index = _read(root, packages)
    found: dict[str, Template] = {}
    for module in index.modules:
        for node in ast.walk(module.tree):
            for expr in _message_arguments(node, index.errors):
                scope = index.enclosing.get(id(node))
                for parts in _Resolver(index, module).resolve(expr, scope):
                    template = Template(parts, f"{module.path}:{getattr(node, 'lineno', 0)}")
                    if template.recognisable():
                        found.setdefault(template.shown, template)
    return sorted(found.values(), key=lambda t: _place(t.where))


def _place(where: str) -> tuple[str, int]:
    path, _, line = where.rpartition(":")
    return path, int(line)


# -- the page --------------------------------------------------------------------------------

_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)


def code_spans(markdown: str) -> list[str]:
    """The text of each inline code span and each line of a fenced block, whitespace joined."""
    spans, prose = [], []
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif fenced:
            spans.append(line.strip())
        else:
            prose.append(line)
    spans += [" ".join(m.group(2).split()) for m in _SPAN.finditer("\n".join(prose))]
    return spans


_ENTRY = re.compile(r"^- (`+)(?!`)(.+?)(?<!`)\1(?:\s|$)", re.MULTILINE)


def page_entries(markdown: str) -> list[str]:
    """The messages the page lists: each list item that starts with a code span."""
    return [" ".join(m.group(2).split()) for m in _ENTRY.finditer(markdown)]


def stale_in(page: str, known: Sequence[Template]) -> list[str]:
    """The page's listed messages that no template of the code matches (reworded or gone)."""
    return [e for e in page_entries(page) if not any(t.pattern().search(e) for t in known)]


def missing_from(page: str, wanted: Sequence[Template]) -> list[Template]:
    """The templates no code span of ``page`` holds."""
    spans = code_spans(page)
    return [t for t in wanted if not any(t.pattern().search(s) for s in spans)]


def code_span(text: str) -> str:
    """``text`` as a Markdown code span: fenced with more backticks than it holds in a row."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    padded = f" {text} " if "`" in text else text
    return f"{fence}{padded}{fence}"


def paste_form(missing: Sequence[Template]) -> str:
    """``missing`` as entries of the troubleshooting page, to paste under the right heading and
    complete: each a list item, and where the code raises it."""
    return "\n".join(f"- {code_span(t.shown)} ({t.where}: {TODO})" for t in missing)


def main() -> int:
    page, known = PAGE.read_text(), templates()
    missing, stale = missing_from(page, known), stale_in(page, known)
    name = PAGE.relative_to(ROOT)
    if missing:
        print(f"{len(missing)} messages missing from {name}: paste each under the heading it "
              "belongs to, or a new one, with what it means and what to do:\n")  # fmt: skip
        print(paste_form(missing) + "\n")
    if stale:
        print(f"{len(stale)} messages of {name} that the code no longer gives (reworded or "
              "gone): update or remove them:\n")  # fmt: skip
        print("\n".join(f"- {code_span(e)}" for e in stale))
    if not missing and not stale:
        print(f"{name} holds every message of {', '.join(SOURCES)}, and no other")
    return 1 if missing or stale else 0


if __name__ == "__main__":
    sys.exit(main())
