"""The examples a reader copies run: the README's Python blocks and every docstring example (``>>>``).

Every module of the package whose source holds ``>>>`` is found here and its examples run with :mod:`doctest`, so a
new example runs in the normal ``python -m pytest -q`` without a list to update (an example doctest cannot reach,
such as one in a comment, fails the test). The README's ``python`` blocks run in order in one namespace, as a
reader pasting them would.
"""

import doctest
import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "testbed"
#: A fenced Python block of a Markdown file: its first line number and its code.
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def modules_with_examples():
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text():
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_search_finds_the_examples():
    assert {"testbed.optim", "testbed.rng", "testbed.activations"} <= set(modules_with_examples())


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    tests = [test for test in doctest.DocTestFinder().find(module) if test.examples]
    assert tests, f"{name} holds '>>>' but doctest finds no example in its docstrings"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_readme_python_blocks_run():
    readme = (ROOT / "README.md").read_text()
    blocks = list(PYTHON_BLOCK.finditer(readme))
    assert blocks, "the README has no python block"
    namespace = {"__name__": "readme"}
    for block in blocks:
        line = readme.count("\n", 0, block.start(1)) + 1
        # blank lines first, so that a traceback names the README's own line numbers
        code = compile("\n" * (line - 1) + block.group(1), str(ROOT / "README.md"), "exec")
        exec(code, namespace)
