"""The shape of the code: no import circles, and dependencies between apps point one way.

Read from the source with `ast`, so an import inside a function (the usual way to dodge
a circle at run time) or under TYPE_CHECKING counts like any other.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# config and every app: each top-level package but the tests' and the benchmarks'.
PACKAGES = sorted(
    p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in ("tests", "bench")
)


def our_modules(root: Path, packages: list[str]) -> dict[str, tuple[Path, bool]]:
    """Dotted name → (file, is a package), migrations left out."""
    modules = {}
    for package in packages:
        for file in (root / package).rglob("*.py"):
            parts = list(file.relative_to(root).with_suffix("").parts)
            if "migrations" in parts:
                continue
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            modules[".".join(parts)] = (file, is_package)
    return modules


def import_graph(root: Path = ROOT, packages: list[str] = PACKAGES) -> dict[str, set[str]]:
    """Module → the modules of ours it imports, anywhere in its body."""
    modules = our_modules(root, packages)

    def ours(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, (file, is_package) in modules.items():
        package = module if is_package else module.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                targets.update(ours(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                    source = f"{base}.{node.module}" if node.module else base
                else:
                    source = node.module or ""
                for alias in node.names:
                    # `from . import services` names a module; `from .models import X` not.
                    name = f"{source}.{alias.name}"
                    targets.add(name if name in modules else ours(source))
        graph[module] = {t for t in targets if t and t != module}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each group of modules that import each other (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(path_around(graph, set(group)))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def path_around(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A readable circle inside a group of mutually importing modules: a → b → … → a."""
    start = min(group)
    paths = [[start]]
    while paths:
        path = paths.pop(0)
        for target in sorted(graph[path[-1]] & group):
            if target == start:
                return [*path, start]
            if target not in path:
                paths.append([*path, target])
    raise AssertionError(f"no circle in {group}")


def test_the_graph_sees_every_kind_of_import(tmp_path):
    app = tmp_path / "app"
    (app / "sub").mkdir(parents=True)
    for name in ("__init__", "models", "services", "sub/__init__", "sub/deep"):
        (app / f"{name}.py").touch()
    (app / "tasks.py").write_text(
        "from . import services\nfrom .models import Thing\ndef later():\n    import app.sub.deep\n"
    )
    (app / "sub" / "deep.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..tasks import later\n"
    )
    graph = import_graph(tmp_path, ["app"])
    assert graph["app.tasks"] == {"app.services", "app.models", "app.sub.deep"}
    assert graph["app.sub.deep"] == {"app.tasks"}
    assert circles(graph) == [["app.sub.deep", "app.tasks", "app.sub.deep"]]


def test_the_graph_covers_config_and_every_app():
    assert {"accounts", "bookings", "config", "payments"} <= set(PACKAGES)
    graph = import_graph()
    assert "bookings.models" in graph["payments.models"]


def test_no_module_of_ours_imports_itself_through_others():
    found = circles(import_graph())
    assert not found, "import circles: " + "; ".join(" → ".join(c) for c in found)


def test_the_booking_core_never_imports_payments():
    """README, Architecture: payments → bookings. The core reaches the payment provider
    only through bookings/payment_port.py, whose implementation settings name."""
    wrong = sorted(
        f"{module} → {target}"
        for module, targets in import_graph().items()
        if module.split(".")[0] == "bookings"
        for target in targets
        if target.split(".")[0] == "payments"
    )
    assert not wrong


def test_the_celery_app_depends_on_none_of_our_modules():
    assert import_graph()["config.celery_app"] == set()


def test_the_outbox_finds_its_delivery_task_by_name_before_anything_imported_it():
    """In a fresh process, as a web process is before its first email."""
    script = """
import sys, django
django.setup()
from bookings import notifications
from bookings.queueing import registered
assert "bookings.tasks" not in sys.modules
task = registered("bookings.tasks.deliver_notification")
assert task.name == "bookings.tasks.deliver_notification", task
assert task.run is sys.modules["bookings.tasks"].deliver_notification.run
assert notifications.deliver_notification.name == task.name
"""
    result = subprocess.run(  # noqa: S603 - our own code
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
