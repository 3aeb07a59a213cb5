"""The dependency rules of the layout, read from the source (every import statement, those inside
functions included): the trainer library `xmtf` never imports the data package (`xp3_tasks`,
`mixtures`), and no project module imports itself back through others (no import circles)."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("xmtf", "xp3_tasks", "benchmarks", "launch")
DATA_PACKAGES = ("xp3_tasks", "mixtures")


def _modules() -> dict[str, pathlib.Path]:
  """Dotted name -> file of every project module (packages by their __init__)."""
  found = {"mixtures": ROOT / "mixtures.py"}
  for package in PACKAGES:
    for path in sorted((ROOT / package).rglob("*.py")):
      parts = path.relative_to(ROOT).with_suffix("").parts
      name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
      found[name] = path
  return found


def _is_main_guard(node: ast.AST) -> bool:
  return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
          and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _walk(tree: ast.AST):
  """ast.walk without the `if __name__ == "__main__":` blocks: what they import runs only when
  the file is the program, as a module `__main__` that nothing imports back."""
  for child in ast.iter_child_nodes(tree):
    if not _is_main_guard(child):
      yield child
      yield from _walk(child)


def _imports(name: str, path: pathlib.Path, modules: dict[str, pathlib.Path]) -> set[str]:
  """The project modules `name` imports: `from p import m` counts as importing p.m when that is
  a module, else p."""
  is_package = path.name == "__init__.py"
  out = set()
  for node in _walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      targets = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        anchor = name.split(".")[:len(name.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join(anchor + ([base] if base else []))
      targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                 for alias in node.names]
    else:
      continue
    for target in targets:
      while target and target not in modules:
        target = target.rpartition(".")[0]  # `import a.b.c` of a module a.b: its module
      if target and target != name:
        out.add(target)
  return out


def _graph() -> dict[str, set[str]]:
  modules = _modules()
  return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_the_trainer_never_imports_the_data_package():
  graph = _graph()
  offenders = {name: sorted(t for t in targets if t.split(".")[0] in DATA_PACKAGES)
               for name, targets in graph.items() if name.split(".")[0] == "xmtf"}
  assert {k: v for k, v in offenders.items() if v} == {}
  assert "xmtf.train" in graph and "xmtf.evaluation" in graph  # the walk saw the library


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected components with more than one module (Tarjan's algorithm)."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for succ in sorted(graph.get(node, ())):
      if succ not in index:
        visit(succ)
        low[node] = min(low[node], low[succ])
      elif succ in on_stack:
        low[node] = min(low[node], index[succ])
    if low[node] == index[node]:
      component = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == node:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return out


def test_no_import_circles():
  assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
  graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
  assert _cycles(graph) == [["a", "b", "c"]]
  assert _cycles({"a": {"b"}, "b": set()}) == []
