"""The public API keeps its type hints and its numpydoc ``Parameters`` sections (CONTRIBUTING.md, issue 14).

For every module of :data:`MODULES`, a public function or class is a name without a leading underscore defined
in that module (re-exports are checked where they are defined). The rules:

- every parameter of a public function, of a public class's hand-written ``__init__`` and ``__call__`` and of its
  public methods and properties carries an annotation, and so does the return (``-> None`` for ``__init__``);
- the docstring of a public function that takes parameters has a numpydoc ``Parameters`` section, and so has the
  docstring of a public class whose hand-written ``__init__`` takes parameters, and of each method of
  :data:`DOCUMENTED_METHODS`.

Numba kernels (``testbed/rules``, ``testbed/kernels``) are out of scope: Numba reads their signatures. Type hints
have no exception; a ``Parameters`` section may be left out only through :data:`ALLOWED`, each with its reason.
"""

import importlib
import inspect
import re
import typing

import pytest

MODULES = (
    "testbed.init",
    "testbed.optim",
    "testbed.nn.mlp",
    "testbed.nn.experiments",
    "testbed.montecarlo",
    "testbed.landscapes",
    "testbed.rng",
    "testbed.data",
    "testbed.results",
    "testbed.train",
    "testbed.spectra",
    "testbed.curvature",
)

#: Methods whose docstrings must carry a Parameters section (the ones the README and CONTRIBUTING show users).
DOCUMENTED_METHODS = (
    "testbed.nn.mlp.MLP.initialize",
    "testbed.nn.mlp.MLP.forward",
    "testbed.nn.mlp.MLP.backward",
    "testbed.optim.Optimizer.init",
    "testbed.optim.Optimizer.step",
    "testbed.results.Result.save",
    "testbed.montecarlo.EscapeResult.quantile",
)

_RAISED_ONLY = (
    "raised by the library, never built by a user: the class docstring names the attributes a handler reads "
    "(the constructor's arguments), so a Parameters section would repeat them"
)

#: "module.Class.method" (or a function's label) -> why its docstring has no Parameters section.
ALLOWED = {
    "testbed.optim.NonFiniteError.__init__": _RAISED_ONLY,
    "testbed.nn.mlp.NonFiniteSignalError.__init__": _RAISED_ONLY,
    "testbed.train.DivergenceError.__init__": _RAISED_ONLY,
}

_PARAMETERS = re.compile(r"^Parameters\n-{10,}$", re.MULTILINE)


def _defined_here(module, obj):
    return getattr(obj, "__module__", None) == module.__name__


def _public_members(module):
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or not _defined_here(module, obj):
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield name, obj


def _hand_written(cls, name, module):
    """The function ``name`` defined in ``cls``'s own body (not one dataclasses generated, not inherited)."""
    function = cls.__dict__.get(name)
    if not inspect.isfunction(function):
        return None
    return function if function.__code__.co_filename == module.__file__ else None


def _callables():
    """(label, function, skip_first, owner) for every public callable of MODULES; owner is the object whose
    docstring must hold the Parameters section (the function, or the class for its __init__), or None."""
    found = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, obj in _public_members(module):
            label = f"{module_name}.{name}"
            if inspect.isfunction(obj):
                found.append((label, obj, False, obj))
                continue
            for special in ("__init__", "__call__"):
                function = _hand_written(obj, special, module)
                if function is not None:
                    found.append((f"{label}.{special}", function, True, obj if special == "__init__" else None))
            for attribute, member in vars(obj).items():
                if attribute.startswith("_"):
                    continue
                method_label = f"{label}.{attribute}"
                if isinstance(member, property):
                    member, skip_first = member.fget, True
                elif isinstance(member, staticmethod):
                    member, skip_first = member.__func__, False
                elif isinstance(member, classmethod):
                    member, skip_first = member.__func__, True
                elif inspect.isfunction(member):
                    skip_first = True
                else:
                    continue
                found.append((method_label, member, skip_first, member if method_label in DOCUMENTED_METHODS else None))
    return found


CALLABLES = _callables()


def _parameters(function, skip_first):
    parameters = list(inspect.signature(function).parameters.values())
    return parameters[1:] if skip_first else parameters


_LABELS = [entry[0] for entry in CALLABLES]


@pytest.mark.parametrize(("label", "function", "skip_first"), [entry[:3] for entry in CALLABLES], ids=_LABELS)
def test_public_callable_is_annotated(label, function, skip_first):
    missing = [p.name for p in _parameters(function, skip_first) if p.annotation is inspect.Parameter.empty]
    assert not missing, f"{label}: parameters without a type hint: {', '.join(missing)}"
    assert inspect.signature(function).return_annotation is not inspect.Signature.empty, (
        f"{label}: no return annotation"
    )


def _checking_only_names():
    """The names that modules import under ``typing.TYPE_CHECKING`` only (to keep their imports lazy or acyclic)."""
    from testbed import nn, optim

    return {"Optimizer": optim.Optimizer, "Newton": optim.Newton, "MLP": nn.MLP}


@pytest.mark.parametrize(("label", "function"), [entry[:2] for entry in CALLABLES], ids=_LABELS)
def test_annotations_name_real_types(label, function):
    """Every annotation evaluates (``from __future__ import annotations`` keeps them as strings, so a misspelt
    name would otherwise go unnoticed until a user's type checker or ``typing.get_type_hints`` met it)."""
    typing.get_type_hints(function, localns=_checking_only_names())


_DOCUMENTED = [entry for entry in CALLABLES if entry[3] is not None and entry[0] not in ALLOWED]


@pytest.mark.parametrize(("label", "function", "skip_first", "owner"), _DOCUMENTED, ids=[e[0] for e in _DOCUMENTED])
def test_public_callable_has_a_parameters_section(label, function, skip_first, owner):
    if not _parameters(function, skip_first):
        return  # nothing to document: a function or constructor of no arguments
    doc = inspect.getdoc(owner) or ""
    assert _PARAMETERS.search(doc), f"{label}: the docstring of {owner.__qualname__} has no numpydoc Parameters section"


def test_the_walk_finds_the_public_api():
    """The walk is not vacuous: it reaches the functions, constructors and methods the README shows."""
    labels = {label for label, *_ in CALLABLES}
    for expected in (
        "testbed.init.he_normal",
        "testbed.init.initialize",
        "testbed.optim.Adam.__init__",
        "testbed.optim.Optimizer.step",
        "testbed.nn.mlp.MLP.__init__",
        "testbed.nn.mlp.MLP.forward",
        "testbed.nn.experiments.propagate",
        "testbed.montecarlo.escape_times",
        "testbed.landscapes.saddle",
        "testbed.rng.normal",
        "testbed.data.load",
        "testbed.results.load",
        "testbed.results.Result.save",
        "testbed.train.fit",
        "testbed.spectra.jacobian_singular_values",
        "testbed.curvature.hvp",
    ):
        assert expected in labels
    documented = {label for label, *_ in _DOCUMENTED}
    assert {"testbed.optim.Adam.__init__", "testbed.nn.mlp.MLP.forward"} <= documented
    assert all(method in labels for method in DOCUMENTED_METHODS)


def test_the_checks_catch_a_missing_hint_and_a_missing_section():
    """The three rules fail on a function that breaks them (so a passing run means something)."""

    def bare(a, b: int = 0):
        """One line, no sections."""

    def hinted(a: int) -> int:
        """Sum.

        Parameters
        ----------
        a : int
        """
        return a

    def misspelt(a: "ndarary") -> None:  # noqa: F821 (the misspelling is the point)
        """One line."""

    with pytest.raises(AssertionError, match="without a type hint: a"):
        test_public_callable_is_annotated("bare", bare, False)
    with pytest.raises(AssertionError, match="no numpydoc Parameters section"):
        test_public_callable_has_a_parameters_section("bare", bare, False, bare)
    with pytest.raises(NameError):
        test_annotations_name_real_types("misspelt", misspelt)
    test_public_callable_is_annotated("hinted", hinted, False)
    test_public_callable_has_a_parameters_section("hinted", hinted, False, hinted)


def test_allowed_names_exist_and_give_a_reason():
    """Every exemption names a callable the walk finds (a renamed or removed one must leave the list) and says why."""
    labels = {label for label, *_ in CALLABLES}
    for label, reason in ALLOWED.items():
        assert label in labels, f"{label} is exempt but no longer exists"
        assert isinstance(reason, str) and len(reason) > 20, label
