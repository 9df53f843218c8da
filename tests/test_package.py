"""The package as a user and a contributor meet it: its public names, its floors, its wheel."""

import ast
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import gan_tf
from conftest import REPO_ROOT

PACKAGE = pathlib.Path(REPO_ROOT) / "gan_tf"

# The floors of the house, ground first: a part may import its own modules and parts on lower
# floors, never a part on its own floor or above (tests/test_package.py keeps it so).
FLOORS = {"nn": 0, "files": 0, "grids": 0, "data": 1, "serving": 2, "metrics": 2, "models": 3, "training": 4}


def test_every_registered_model_and_the_entry_points_are_public():
    for name, model_class in gan_tf.MODELS.items():
        assert getattr(gan_tf, model_class.__name__) is model_class, name
        assert model_class.__name__ in gan_tf.__all__
    for name in ("open_source", "train", "TrainConfig", "export_model", "GenerativeModel", "Evaluator",
                 "make_evaluator", "sample_local"):
        assert name in gan_tf.__all__
    missing = [name for name in gan_tf.__all__ if not hasattr(gan_tf, name)]
    assert not missing


def test_the_top_level_holds_the_parts_and_no_more_than_twelve_entries():
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert len(entries) <= 12, entries
    parts = {p.stem for p in PACKAGE.iterdir() if p.name not in ("__init__.py", "__pycache__")}
    assert parts == set(FLOORS)


def _imported_parts(path):
    """The parts of gan_tf that a module imports, with the line of each import."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        modules = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gan_tf"):
            modules = [node.module + "." + alias.name if node.module == "gan_tf" else node.module for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names if alias.name.startswith("gan_tf")]
        found += [(module.split(".")[1], node.lineno) for module in modules if module.count(".") >= 1]
    return found


def test_no_part_imports_a_part_on_its_own_floor_or_above():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts == ("__init__.py",):
            continue  # the package's face hands every part's names on
        part = relative.parts[0].removesuffix(".py")
        for imported, line in _imported_parts(path):
            if imported != part and FLOORS[imported] >= FLOORS[part]:
                wrong.append(f"gan_tf/{relative}:{line} ({part}, floor {FLOORS[part]}) imports {imported} "
                             f"(floor {FLOORS[imported]})")
    assert not wrong, "\n".join(wrong)


def test_the_floor_check_sees_an_import_that_runs_back_up(tmp_path):
    module = tmp_path / "layers.py"
    module.write_text("def f():\n    from gan_tf.training.run import train\n    return train\n")
    assert _imported_parts(module) == [("training", 2)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The package's wheel, built offline from a copy of the sources (nothing written in the repo)."""
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(PACKAGE, source / "gan_tf", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO_ROOT, name), source)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = out.glob("gan_tf-*.whl")
    return path


def test_the_wheel_holds_every_module_and_the_requirements(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(REPO_ROOT)) for p in PACKAGE.rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    metadata = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    required = {line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")}
    library = {line.strip() for line in pathlib.Path(REPO_ROOT, "requirements.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#") and not line.startswith(("pytest", "setuptools"))}
    assert {_normalized(r) for r in library} <= {_normalized(r) for r in required}
    assert "Requires-Python: >=3.10" in metadata


def _normalized(requirement):
    parsed = Requirement(requirement)
    return canonicalize_name(parsed.name), parsed.specifier


def test_the_installed_wheel_imports_from_anywhere(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    installed = subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    probe = subprocess.run([python, "-c", "import gan_tf; print(gan_tf.__file__); print(len(gan_tf.MODELS))"],
                           cwd=elsewhere, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True,
                           timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    path, count = probe.stdout.split()
    assert path.startswith(str(venv)) and int(count) == len(gan_tf.MODELS)
