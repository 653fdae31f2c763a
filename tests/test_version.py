"""The version has one source: pyproject.toml's ``[project] version``, read at run time from the installed metadata."""

import pathlib
import sys
from importlib import metadata

import testbed

ROOT = pathlib.Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tomli backport, a dependency on 3.10
    import tomli as tomllib


def pyproject_version():
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["version"]


def test_the_package_version_is_the_installed_distributions():
    assert testbed.__version__ == metadata.version("testbed")


def test_the_installed_version_is_pyprojects():
    assert metadata.version("testbed") == pyproject_version(), "reinstall (pip install -e .) after a version change"


def test_no_module_of_the_package_repeats_the_version():
    version = pyproject_version()
    repeats = [str(path.relative_to(ROOT)) for path in (ROOT / "testbed").rglob("*.py") if version in path.read_text()]
    assert repeats == []
