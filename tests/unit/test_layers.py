"""The house rules, read from the code's own imports (``ast``; nothing is imported or run).

- ``core/`` is sans-I/O: no asyncio, socket, threading or sound card, and nothing of the
  package above it (only ``errors``).
- Each layer folder imports only the layers below it (README, "Layout"), so no import runs
  back up and a reader finds a change's place by what it is about.
- No module imports itself back through others: a cycle anywhere fails here, with its path.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest
from helpers import REPO

PACKAGE = REPO / "ser_daemon"

# Bottom to top. A module may import its own layer and any layer listed before it.
# "ground" are the top-level helper modules every layer may use.
GROUND = ("errors", "bounded", "os_defaults", "arguments", "log_once", "__init__")
LAYERS = ("core", "model", "audio", "net", "outputs", "vrchat", "profiles", "sessions", "app", "cluster", "training", "top")
CORE_FORBIDDEN = ("asyncio", "socket", "threading", "sounddevice", "selectors", "subprocess", "websockets", "pythonosc")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (at the top or inside functions)."""
    return _imports_of(path.read_text(encoding="utf-8"), path)


def _imports_of(code: str, path: Path) -> set[str]:
    """Absolute names of every module ``code`` (standing at ``path``) imports."""
    tree = ast.parse(code, str(path))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # ``from ser_daemon import x`` / ``from . import x`` may name a module.
            found.update(f"{module}.{alias.name}" for alias in node.names if _is_module(f"{module}.{alias.name}"))
    return found


def _is_module(dotted: str) -> bool:
    if not dotted.startswith("ser_daemon"):
        return False
    rel = Path(*dotted.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


@functools.lru_cache(maxsize=1)
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> str:
    """``ser_daemon.core.vad`` -> ``core``; a top-level module is ground or top."""
    parts = module.split(".")
    if len(parts) == 1:
        return "ground"  # the package's face
    if len(parts) > 2 or parts[1] in LAYERS:
        return parts[1]
    return "ground" if parts[1] in GROUND else "top"


def _own_imports(module: str, path: Path) -> set[str]:
    """The package modules ``module`` imports (submodules resolved to files)."""
    modules = _modules()
    out = set()
    for imported in _imports(path):
        if not imported.startswith("ser_daemon"):
            continue
        while imported not in modules and "." in imported:
            imported = imported.rpartition(".")[0]  # ``from pkg.mod import name``
        if imported in modules and imported != module:
            out.add(imported)
    return out


def test_the_layers_cover_every_folder_of_the_package() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders <= set(LAYERS), f"a new folder needs its place in LAYERS: {sorted(folders - set(LAYERS))}"


@pytest.mark.parametrize("module", [m for m in _modules() if _layer(m) == "core"])
def test_core_is_sans_io_and_imports_nothing_above_it(module: str) -> None:
    path = _modules()[module]
    for imported in _imports(path):
        root = imported.split(".")[0]
        assert root not in CORE_FORBIDDEN, f"{module} imports {imported}: the core has no I/O"
        if root == "ser_daemon":
            allowed = imported.startswith(("ser_daemon.core", "ser_daemon.errors")) or imported == "ser_daemon"
            assert allowed, f"{module} imports {imported}: the core imports only the core and errors"


def back_arrows(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a lower layer to a higher one."""
    order = {name: i for i, name in enumerate(("ground",) + LAYERS)}
    return [f"{m} ({_layer(m)}) -> {d} ({_layer(d)})"
            for m in sorted(graph) for d in sorted(graph[m]) if order[_layer(d)] > order[_layer(m)]]


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    """One path per cycle found by a depth-first walk (``a -> b -> a``)."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    stack: list[str] = []
    cycles: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return cycles


@functools.lru_cache(maxsize=1)
def _graph() -> dict[str, set[str]]:
    """The package's import graph, parsed once for the guards that read it (they do not change it)."""
    return {m: _own_imports(m, p) for m, p in _modules().items()}


def test_no_import_runs_back_up_a_layer() -> None:
    wrong = back_arrows(_graph())
    assert not wrong, "imports running back up:\n" + "\n".join(wrong)


def test_no_import_cycle() -> None:
    cycles = find_cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_guards_see_a_cycle_a_back_arrow_and_io_in_the_core(tmp_path: Path) -> None:
    """The checks above must find each fault, or they could pass on anything."""
    graph = {"ser_daemon.core.a": {"ser_daemon.app.b"}, "ser_daemon.app.b": {"ser_daemon.core.a"}}
    assert back_arrows(graph) == ["ser_daemon.core.a (core) -> ser_daemon.app.b (app)"]
    assert find_cycles(graph) == ["ser_daemon.app.b -> ser_daemon.core.a -> ser_daemon.app.b"]
    assert find_cycles({"x": {"y"}, "y": set()}) == []
    probe = PACKAGE / "core" / "vad.py"
    code = "import numpy\ndef f():\n    import socket\n    from ..app import daemon\n"
    tree_imports = _imports_of(code, probe)
    assert {"socket", "ser_daemon.app.daemon", "numpy"} <= tree_imports
