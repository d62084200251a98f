"""Writes ``docs/api.md``, the API reference, from the public names' source and docstrings.

Synopsis::

    python docs/gen_api.py            # rewrite docs/api.md
    python docs/gen_api.py --check    # exit 1 if docs/api.md is out of date

A module's public names are its ``__all__``, else its explicit re-exports
(``from x import name as name``) and its own top-level definitions that do not start with
``_``, in source order. Signatures and annotations are taken from the source text (with
``ast``), not from the evaluated objects, so the page reads as the code is written and does
not change with the versions of JAX, Flax or Optax installed. A name re-exported by several
modules is documented once, where it first appears, and linked from the others.
"""

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import sys
import textwrap
import types
from pathlib import Path

MODULES = (
    "adljax",
    "adljax.data",
    "adljax.models",
    "adljax.training",
    "adljax.model_summary",
    "adljax.diagnostics",
    "adljax.from_scratch",
    "adljax.losses",
    "adljax.metrics",
    "adljax.backprop",
    "adljax.tasks",
    "adljax.checkpoint",
    "adljax.representations",
    "adljax.plots",
    "adljax.transfer",
    "adljax.models.torch_weights",
    "adljax.models.recurrent",
    "adljax.models.torch_recurrent",
    "adljax.data.sequences",
    "adljax.data.imdb",
    "adljax.ops",
    "adljax.detection",
    "adljax.models.detector",
    "adljax.data.shapes",
    "adljax.data.voc",
    "adljax.gan",
    "adljax.models.gan",
    "adljax.models.matmul_conv",
    "adljax.models.shallow_conv",
    "adljax.data.mixtures",
    "adljax.serving",
    "adljax.serving.service",
    "adljax.serving.loadgen",
)
OUTPUT = Path(__file__).with_name("api.md")
# Dataclass fields every Flax module has, describing its place in a tree, not its config.
_MODULE_PLUMBING = ("parent", "name")
_ONE_LINE = 88


@dataclasses.dataclass(frozen=True)
class Entry:
    """One documented name: its heading, signature (may be empty) and docstring."""

    qualified: str
    signature: str
    doc: str | None
    members: tuple["Entry", ...] = ()


def public_names(module: types.ModuleType) -> list[str]:
    """The names ``module`` exports, in source order (see the module docstring)."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    names = []
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.ImportFrom):
            names += [alias.asname for alias in node.names if alias.asname == alias.name]
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [name for name in names if not name.startswith("_")]


def _definition_node(obj: object) -> ast.FunctionDef | ast.ClassDef | None:
    """The ``def``/``class`` node of a function or class, or None without source."""
    try:
        source = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        return None
    node = ast.parse(source).body[0]
    return node if isinstance(node, ast.FunctionDef | ast.ClassDef) else None


def _constant_node(module_name: str, name: str) -> tuple[ast.stmt, str | None] | None:
    """The assignment of ``name`` (following re-exports) and its attribute docstring."""
    module = importlib.import_module(module_name)
    body = ast.parse(inspect.getsource(module)).body
    for i, node in enumerate(body):
        if isinstance(node, ast.ImportFrom) and any(a.asname == name for a in node.names):
            package = module_name if hasattr(module, "__path__") else module.__package__
            source = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            return _constant_node(source, name)
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", 0)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            following = body[i + 1] if i + 1 < len(body) else None
            doc = None
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                doc = inspect.cleandoc(str(following.value.value))
            return node, doc
    return None


def _argument(arg: ast.arg, default: ast.expr | None, prefix: str = "") -> str:
    text = prefix + arg.arg
    if arg.annotation is not None:
        text += f": {ast.unparse(arg.annotation)}"
    if default is not None:
        text += (" = " if arg.annotation is not None else "=") + ast.unparse(default)
    return text


def _parameters(args: ast.arguments, *, drop_first: bool) -> list[str]:
    """The parameters of a ``def`` as written, without ``self``/``cls`` if ``drop_first``."""
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    parts = []
    for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        if not (drop_first and i == 0):
            parts.append(_argument(arg, default))
        if args.posonlyargs and i == len(args.posonlyargs) - 1:
            parts.append("/")
    if args.vararg is not None:
        parts.append(_argument(args.vararg, None, "*"))
    elif args.kwonlyargs:
        parts.append("*")
    parts += [
        _argument(arg, default)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    if args.kwarg is not None:
        parts.append(_argument(args.kwarg, None, "**"))
    return parts


def _format_call(prefix: str, parameters: list[str], returns: str = "") -> str:
    """``prefix(p1, p2) -> returns``, one parameter per line when it is long."""
    suffix = f" -> {returns}" if returns else ""
    line = f"{prefix}({', '.join(parameters)}){suffix}"
    if len(line) <= _ONE_LINE:
        return line
    inner = "".join(f"    {p},\n" for p in parameters)
    return f"{prefix}(\n{inner}){suffix}"


def _function_signature(name: str, node: ast.FunctionDef, *, method: bool) -> str:
    decorators = {ast.unparse(d) for d in node.decorator_list}
    drop_first = method and "staticmethod" not in decorators
    returns = ast.unparse(node.returns) if node.returns is not None else ""
    return _format_call(name, _parameters(node.args, drop_first=drop_first), returns)


def _field_default(field: dataclasses.Field, value: ast.expr | None) -> str | None:
    if field.default is not dataclasses.MISSING:
        if value is not None and not isinstance(value, ast.Call):
            return ast.unparse(value)
        default = field.default
        if callable(default) and hasattr(default, "__qualname__"):  # no memory address
            if "<locals>" in default.__qualname__:  # a closure: not importable by name
                return f"<{default.__qualname__.replace('.<locals>', '')}>"
            return f"{default.__module__}.{default.__qualname__}"
        return repr(default)
    if field.default_factory is not dataclasses.MISSING:
        return f"{field.default_factory.__name__}()"
    return None


def _class_signature(cls: type, node: ast.ClassDef) -> str:
    """``class Name(fields or __init__ parameters)``; just ``class Name`` for protocols."""
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            return _format_call(f"class {cls.__name__}", _parameters(item.args, drop_first=True))
    if not dataclasses.is_dataclass(cls):
        return f"class {cls.__name__}"
    written = {}
    for klass in reversed(cls.__mro__):
        klass_node = node if klass is cls else _definition_node(klass)
        if isinstance(klass_node, ast.ClassDef) and klass.__module__.startswith("adljax"):
            for item in klass_node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    written[item.target.id] = item
    parameters = []
    for field in dataclasses.fields(cls):
        if not field.init or field.name in _MODULE_PLUMBING:
            continue
        item = written.get(field.name)
        text = field.name
        if item is not None:
            text += f": {ast.unparse(item.annotation)}"
        default = _field_default(field, item.value if item is not None else None)
        if default is not None:
            text += f" = {default}"
        parameters.append(text)
    return _format_call(f"class {cls.__name__}", parameters)


def _members(cls: type, node: ast.ClassDef, qualified: str) -> tuple[Entry, ...]:
    """The public methods and properties a class defines itself (and ``__call__``)."""
    members = []
    for item in node.body:
        if not isinstance(item, ast.FunctionDef):
            continue
        if item.name.startswith("_") and item.name != "__call__":
            continue
        decorators = {ast.unparse(d) for d in item.decorator_list}
        if "property" in decorators:
            signature = f"property {item.name}"
            if item.returns is not None:
                signature += f": {ast.unparse(item.returns)}"
        else:
            signature = _function_signature(item.name, item, method=True)
        members.append(Entry(f"{qualified}.{item.name}", signature, ast.get_docstring(item)))
    return tuple(members)


def describe(module_name: str, name: str, obj: object) -> Entry:
    """The entry for ``module_name.name``, read from the source that defines ``obj``."""
    qualified = f"{module_name}.{name}"
    node = _definition_node(obj) if inspect.isclass(obj) or inspect.isfunction(obj) else None
    if isinstance(node, ast.ClassDef):
        signature = _class_signature(obj, node)
        return Entry(qualified, signature, ast.get_docstring(node), _members(obj, node, qualified))
    if isinstance(node, ast.FunctionDef):
        signature = _function_signature(name, node, method=False)
        return Entry(qualified, signature, ast.get_docstring(node))
    found = _constant_node(module_name, name)
    if found is None:
        return Entry(qualified, name, None)
    assignment, doc = found
    signature = name
    if isinstance(assignment, ast.AnnAssign):
        signature += f": {ast.unparse(assignment.annotation)}"
    value = ast.unparse(assignment.value) if assignment.value is not None else ""
    if value and "\n" not in value and len(signature) + len(value) <= _ONE_LINE:
        signature += f" = {value}"
    return Entry(qualified, signature, doc)


Item = Entry | tuple[str, str]


def collect() -> list[tuple[types.ModuleType, list[Item]]]:
    """For each module, its entries; a module or an object documented earlier is given as
    ``(qualified name here, qualified name where it is documented)``."""
    seen: dict[int, str] = {}
    sections = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        items: list[Item] = []
        for name in public_names(module):
            obj = getattr(module, name)
            here = f"{module_name}.{name}"
            if isinstance(obj, types.ModuleType):
                items.append((here, obj.__name__))
            elif id(obj) in seen:
                items.append((here, seen[id(obj)]))
            else:
                seen[id(obj)] = here
                items.append(describe(module_name, name, obj))
        sections.append((module, items))
    return sections


def missing_docstrings() -> list[str]:
    """Qualified public names (not methods) that have no docstring."""
    return [
        item.qualified
        for _, items in collect()
        for item in items
        if isinstance(item, Entry) and not item.doc
    ]


def _entries(items: list) -> list[Entry]:
    """The entries of ``items`` and their members, depth first (each has an anchor)."""
    found = []
    for item in items:
        if isinstance(item, Entry):
            found += [item, *_entries(list(item.members))]
    return found


def _anchor(qualified: str) -> str:
    return qualified.replace(".", "-")  # case kept: `Callback` and `callback` differ


def _render_doc(doc: str | None) -> list[str]:
    """The summary paragraph as text, the rest (args, examples) as a preformatted block."""
    if not doc:
        return ["*(no docstring)*", ""]
    summary, _, rest = doc.partition("\n\n")
    lines = [" ".join(summary.split()), ""]
    if rest.strip():
        lines += ["```text", *rest.rstrip().splitlines(), "```", ""]
    return lines


def _render_entry(entry: Entry, level: str) -> list[str]:
    lines = [
        f'<a id="{_anchor(entry.qualified)}"></a>',
        "",
        f"{level} `{entry.qualified}`",
        "",
        "```python",
        entry.signature,
        "```",
        "",
        *_render_doc(entry.doc),
    ]
    for member in entry.members:
        lines += _render_entry(member, level + "#")
    return lines


def render() -> str:
    """The whole of ``docs/api.md``."""
    sections = collect()
    lines = [
        "# API reference",
        "",
        "Generated by `python docs/gen_api.py` from the source and docstrings; do not edit by",
        "hand (`tests/examples/test_docs.py` fails when this page is out of date).",
        "",
    ]
    lines += [f"- [`{m.__name__}`](#{_anchor(m.__name__)})" for m, _ in sections]
    lines.append("")
    documented = {m.__name__ for m, _ in sections} | {
        e.qualified for _, items in sections for e in _entries(items)
    }
    for module, items in sections:
        lines += [f'<a id="{_anchor(module.__name__)}"></a>', "", f"## `{module.__name__}`", ""]
        lines += _render_doc(inspect.getdoc(module))
        for item in items:
            if isinstance(item, Entry):
                lines += _render_entry(item, "###")
                continue
            here, there = item
            kind = (
                "the module" if there in MODULES or there in sys.modules else "the same object as"
            )
            target = f"[`{there}`](#{_anchor(there)})" if there in documented else f"`{there}`"
            if lines[-1] == "" and lines[-2].startswith("- "):
                lines.pop()  # keep consecutive links in one list
            lines += [f"- `{here}`: {kind} {target}.", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    """Writes ``docs/api.md`` (or, with ``--check``, only compares it); returns the status."""
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
