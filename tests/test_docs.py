"""Examples that cannot rot: every Python block of README.md and docs/ runs, or, marked as a
fragment, has every gan_tf name it uses.

A block runs as written, in a fresh process in an empty folder. An HTML comment on the line
before it may say how a test runs it:

    <!-- doctest {"epochs=20": "epochs=1, steps_per_epoch=2"} -->   the same code at toy size
    <!-- doctest fragment: why -->                                   not run; its gan_tf names checked

Each replacement must find its text, so a directive cannot go stale silently.
"""

import ast
import importlib
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

DOCUMENTS = [pathlib.Path(REPO_ROOT, "README.md")] + sorted(pathlib.Path(REPO_ROOT, "docs").rglob("*.md"))
_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_DIRECTIVE = re.compile(r"<!-- doctest (.*?) -->\s*$")


def python_blocks(path):
    """`(line, code, directive)` of each Python block in a Markdown file."""
    text = path.read_text()
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        directive = _DIRECTIVE.match(before)
        blocks.append((text.count("\n", 0, match.start()) + 1, match.group(1), directive.group(1) if directive else None))
    return blocks


BLOCKS = [pytest.param(path, code, directive, id=f"{path.relative_to(REPO_ROOT)}:{line}")
          for path in DOCUMENTS for line, code, directive in python_blocks(path)]


def test_the_documents_have_python_blocks_and_each_is_run_or_marked():
    assert len(BLOCKS) >= 3
    assert python_blocks(pathlib.Path(REPO_ROOT, "README.md"))[0][2] is not None  # the API example, at toy size


def gan_tf_names(code):
    """Every `gan_tf` name a block uses: `(module, attribute)` pairs of its imports and of the
    attributes it reads from an imported gan_tf module."""
    modules, names = {}, []
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "gan_tf":
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else "gan_tf"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "gan_tf":
            for alias in node.names:
                names.append((node.module, alias.name))
                submodule = f"{node.module}.{alias.name}"
                if importlib.util.find_spec(node.module) and _is_module(submodule):
                    modules[alias.asname or alias.name] = submodule
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            names.append((modules[node.value.id], node.attr))
    return names


def _is_module(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_the_name_check_finds_a_missing_name():
    code = "import gan_tf\nfrom gan_tf.serving import client\ngan_tf.DCGAN\nclient.no_such_function\n"
    missing = [(m, a) for m, a in gan_tf_names(code) if not hasattr(importlib.import_module(m), a)]
    assert missing == [("gan_tf.serving.client", "no_such_function")]


@pytest.fixture(scope="module")
def classifier_cache(tmp_path_factory):
    """A one-epoch mnist_5k classifier in a cache of its own: blocks that evaluate need not train
    the real one."""
    from gan_tf.data import classifiers

    cache = str(tmp_path_factory.mktemp("classifier_cache"))
    model, accuracy = classifiers.train_classifier("mnist_5k", epochs=1)
    classifiers.save_classifier(model, "mnist_5k", accuracy, cache_dir=cache)
    return cache


@pytest.mark.parametrize("path, code, directive", BLOCKS)
def test_the_block_runs(path, code, directive, tmp_path, classifier_cache):
    if directive and directive.startswith("fragment"):
        ast.parse(code)
        missing = [f"{m}.{a}" for m, a in gan_tf_names(code) if not hasattr(importlib.import_module(m), a)]
        assert not missing, f"the fragment uses names gan_tf does not have: {missing}"
        return
    for old, new in (json.loads(directive) if directive else {}).items():
        assert old in code, f"the doctest directive replaces {old!r}, which the block no longer has"
        code = code.replace(old, new)
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "GAN_TF_CACHE": classifier_cache, "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]


def test_the_package_docstring_example_runs():
    import doctest

    import gan_tf

    results = doctest.testmod(gan_tf, optionflags=doctest.ELLIPSIS)
    assert results.attempted >= 5 and results.failed == 0
