"""The package's shape: imports run one way (no cycle, counting imports inside functions too),
the file handling module needs nothing but the standard library, and the private Keras names
the package relies on (all in keras_effnet.keras_private) still exist."""

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = {"keras_effnet": os.path.join(ROOT, "keras_effnet"),
            "keras_effnet.cli": os.path.join(ROOT, "keras_effnet", "cli"),
            "keras_effnet.export": os.path.join(ROOT, "export")}


def import_graph():
    """{module: {package modules it imports anywhere in its file}}."""
    modules = {}
    for package, folder in PACKAGES.items():
        for name in os.listdir(folder):
            if name.endswith(".py"):
                module = package if name == "__init__.py" else f"{package}.{name[:-3]}"
                modules[module] = os.path.join(folder, name)
    graph = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        found = set()
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module and not module.startswith(name + "."):
                    found.add(name)  # a submodule importing its own package is not a cycle
        graph[module] = found
    return graph


def test_imports_form_no_cycle():
    graph = import_graph()
    assert {"keras_effnet.files", "keras_effnet.optim", "keras_effnet.recipe"} <= set(graph)
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path + [target]))
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # the library never imports its export layer, benchmarks or CLI; the CLI and the search
    # (whose latency budget times exported files) sit on top of both
    for module, targets in graph.items():
        if module.startswith("keras_effnet.") and not module.startswith("keras_effnet.export") \
                and not module.startswith("keras_effnet.cli") and module != "keras_effnet.search":
            assert not any(t.startswith(("keras_effnet.export", "keras_effnet.cli"))
                           for t in targets), (module, targets)


def test_file_handling_and_recipe_need_only_the_standard_library():
    code = ("import sys, keras_effnet.files, keras_effnet.recipe; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() in ("[]", "['numpy']"), done.stdout  # recipe -> data -> numpy


def test_the_one_walk_needs_no_tensorflow():
    """The spec, the blocks, the assembly and the profile are pure Python: counting any model
    walks the same assembly as `build`, with counting layers."""
    code = ("import sys, keras_effnet.scaling, keras_effnet.blocks, keras_effnet.assembly, "
            "keras_effnet.profile; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout
    graph = import_graph()
    assert "keras_effnet.assembly" in graph["keras_effnet.profile"]
    assert "keras_effnet.assembly" in graph["keras_effnet.model"]
    assert "keras_effnet.profile" not in graph["keras_effnet.assembly"]


def test_keras_classes_register_where_they_are_defined():
    """`import keras_effnet` installs no import hook and imports no Keras; importing the
    modules that define the Keras classes registers the model, optimizers and schedule."""
    code = ("import sys; finders = list(sys.meta_path); import keras_effnet; "
            "assert sys.meta_path == finders and 'keras' not in sys.modules; "
            "import keras_effnet.model, keras_effnet.optim, keras; "
            "print(all(keras.saving.get_registered_object(f'keras_effnet>{name}') for name in "
            "('EfficientNet', 'WarmupSchedule', 'RMSprop', 'SGD', 'AdamW')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr[-2000:]


def test_private_keras_names_still_exist():
    """Each private Keras name that keras_private overrides or reads is still there (as a
    method, or as an attribute the class's code sets): an upgrade that drops one fails here."""
    import inspect

    from keras_effnet.keras_private import PRIVATE_NAMES

    for owner, name in PRIVATE_NAMES:
        sources = "".join(inspect.getsource(c) for c in owner.__mro__
                          if c.__module__.startswith("keras"))
        assert hasattr(owner, name) or f"self.{name} =" in sources, (owner.__name__, name)
