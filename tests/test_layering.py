"""The library's floors (docs/architecture.md): every import under ``pipeline/`` points down or stays on
its own layer, no import hides inside a function (except the CLI's), and the table covers every module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"
DOC = ROOT / "docs" / "architecture.md"
# Subcommands import their stage when they run: `ctxaug --help` starts without torch.
DEFERRED_IMPORTS_ALLOWED = {"cli"}


def floors() -> dict[str, tuple[str, int]]:
    """module or package name (relative to ``pipeline``) -> (layer, rank), from the doc's table."""
    table: dict[str, tuple[str, int]] = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\|\s*(\w+)\s*\|\s*(\d+)\s*\|(.*)\|\s*$", line)
        if m:
            for name in re.findall(r"`([\w.]+)`", m.group(3)):
                assert name not in table, f"{name} is on two floors of {DOC.name}"
                table[name] = (m.group(1), int(m.group(2)))
    return table


def modules() -> dict[str, Path]:
    """Every module of the package, as its dotted name relative to ``pipeline`` (``pipeline`` itself for
    the package's ``__init__``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts) or "pipeline"] = path
    return out


def floor_of(module: str, table: dict[str, tuple[str, int]]) -> tuple[str, int]:
    """The entry of the module, or of the nearest package above it."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in table:
            return table[name]
    raise KeyError(module)


def points_wrong_way(source: str, target: str, table: dict[str, tuple[str, int]]) -> bool:
    """An import from ``source`` of ``target`` goes up a floor, or across to another layer of its rank."""
    layer, rank = floor_of(source, table)
    other_layer, other_rank = floor_of(target, table)
    return other_rank > rank or (other_rank == rank and other_layer != layer)


def pipeline_imports(path: Path, package: tuple[str, ...] = ()) -> list[tuple[str, int, bool]]:
    """(imported module relative to ``pipeline``, line, at module level) for each import of the package;
    ``package``: the parts of the importing module's package below ``pipeline``, to resolve relative
    imports."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # imports under `if TYPE_CHECKING:` or `try:` at module level count as top level
        if isinstance(node, (ast.If, ast.Try)):
            top_level |= {id(n) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level > 0:  # from .x import y: resolve it
            base = ("pipeline", *package[: len(package) - node.level + 1])
            module = ".".join((*base, *([node.module] if node.module else [])))
            names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] if node.module != "pipeline" else [f"pipeline.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name == "pipeline" or name.startswith("pipeline."):
                relative = name.removeprefix("pipeline").removeprefix(".") or "pipeline"
                out.append((relative, node.lineno, id(node) in top_level))
    return out


def package_of(module: str, path: Path) -> tuple[str, ...]:
    """The parts of the package a module sits in, below ``pipeline`` (a package's ``__init__`` is in itself)."""
    parts = () if module == "pipeline" else tuple(module.split("."))
    return parts if path.name == "__init__.py" else parts[:-1]


def resolve(name: str, known: dict[str, Path]) -> str:
    """The module an import names: itself when it is one; else (``from pipeline import __version__``,
    ``from .models import x`` of a name) the module it is an attribute of."""
    if name in known:
        return name
    return name.rsplit(".", 1)[0] if "." in name else "pipeline"


def test_every_module_has_a_floor():
    table = floors()
    assert table, f"no floors table in {DOC}"
    missing = []
    for module in modules():
        try:
            floor_of(module, table)
        except KeyError:
            missing.append(module)
    assert not missing, f"modules on no floor of {DOC.name}: {missing}"


def test_imports_point_down_or_stay_on_their_layer():
    table, known = floors(), modules()
    wrong = []
    for module, path in known.items():
        for name, line, _ in pipeline_imports(path, package_of(module, path)):
            target = resolve(name, known)
            if points_wrong_way(module, target, table):
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({floor_of(module, table)[0]}) imports {target} "
                             f"({floor_of(target, table)[0]})")
    assert not wrong, "imports against the floors of docs/architecture.md:\n" + "\n".join(wrong)


def test_no_imports_inside_functions():
    deferred = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                for module, path in modules().items() if module not in DEFERRED_IMPORTS_ALLOWED
                for name, line, top in pipeline_imports(path) if not top]
    assert not deferred, "imports inside functions:\n" + "\n".join(deferred)


@pytest.mark.parametrize("source, target, wrong", [("insertion", "evaluation.where_quality", True),
                                                   ("appearance.learned", "renderer_training", True),
                                                   ("config", "models.blocks", True),
                                                   ("models.blocks", "config", False),
                                                   ("datasets.coco", "writers.coco_writer", False)])
def test_the_check_sees_a_wrong_way_import(tmp_path, source, target, wrong):
    """The rule and the walk themselves: an import up a floor or across the wings is caught, one down or
    within a layer is not, and a deferred import is seen as one (so the tests above can fail)."""
    assert points_wrong_way(source, target, floors()) == wrong
    fake = tmp_path / "m.py"
    fake.write_text(f"import os\n\n\ndef f():\n    from pipeline.{target} import x\n")
    assert pipeline_imports(fake) == [(target, 5, False)]


def test_relative_imports_are_resolved(tmp_path):
    """``from ..labels import X`` in a module of ``pipeline/models/`` is an import of ``labels``."""
    path = tmp_path / "m.py"
    path.write_text("from ..labels import BY_NAME\nfrom . import blocks\nfrom .affine import warp\n")
    found = [resolve(n, modules()) for n, _, _ in pipeline_imports(path, ("models",))]
    assert found == ["labels", "models.blocks", "models.affine"]


def test_every_cited_document_exists():
    """A markdown file named in a docstring, a comment or the README (``docs/formats.md``, or a bare name
    for a file in docs/) is a file of the repository."""
    cited = set()
    sources = [*PACKAGE.rglob("*.py"), *(ROOT / "stages").glob("*.py"), *(ROOT / "benchmarks").glob("*.py"),
               *(ROOT / "tests").glob("*.py"), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    for path in sources:
        for name in re.findall(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.md)\b", path.read_text()):
            cited.add((name, path.relative_to(ROOT)))
    missing = sorted(f"{where}: {name}" for name, where in cited
                     if not (ROOT / name).is_file() and not (ROOT / "docs" / name).is_file())
    assert not missing, "cited documents that are not in the repository:\n" + "\n".join(missing)
