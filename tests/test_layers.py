"""Imports point one way: lower layers never import higher ones, and no two
subpackages import each other (parsed with ast, so a lazy import inside a
function counts too)."""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tfrl")
# Each layer may import only layers listed before it.
LAYERS = [{"errors", "checks"},
          {"envs", "networks", "replay", "drivers", "agents", "rudder"},
          {"train"}, {"distributed"}, {"experiments"}]


def layer_of(subpackage):
  for level, names in enumerate(LAYERS):
    if subpackage in names:
      return level
  raise AssertionError(f"tfrl.{subpackage} has no layer in tests/test_layers.py")


def imported_subpackages(path):
  """tfrl subpackages named by the imports of one file."""
  tree = ast.parse(open(path).read())
  for node in ast.walk(tree):
    names = []
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names = [node.module]
      if node.module == "tfrl":  # from tfrl import envs, train
        names = [f"tfrl.{a.name}" for a in node.names]
    for name in names:
      parts = name.split(".")
      if parts[0] == "tfrl" and len(parts) > 1:
        yield parts[1]


def edges(root=PACKAGE):
  """{(importing subpackage, imported subpackage): [files]}."""
  found = {}
  for dirpath, _, files in os.walk(root):
    for f in files:
      if not f.endswith(".py"):
        continue
      path = os.path.join(dirpath, f)
      rel = os.path.relpath(path, root).split(os.sep)
      source = rel[0][:-3] if len(rel) == 1 else rel[0]
      if source == "__init__":
        continue  # the package's own __init__ imports everything
      for target in imported_subpackages(path):
        if target != source:
          found.setdefault((source, target), []).append(os.path.relpath(path, root))
  return found


def problems(found):
  bad = []
  for (source, target), files in sorted(found.items()):
    if layer_of(target) > layer_of(source):
      bad.append(f"upward {source} -> {target}: {files}")
    if (target, source) in found and source < target:
      bad.append(f"cycle {source} <-> {target}")
  return bad


def test_imports_point_one_way():
  assert problems(edges()) == []


@pytest.mark.parametrize("source, target", [("train", "distributed"), ("replay", "train"),
                                            ("agents", "train")])
def test_an_upward_import_would_be_found(tmp_path, source, target):
  (tmp_path / source).mkdir()
  (tmp_path / source / "x.py").write_text(f"from tfrl.{target} import something\n")
  (tmp_path / target).mkdir()
  assert problems(edges(str(tmp_path))) == [f"upward {source} -> {target}: ['{source}/x.py']"]
