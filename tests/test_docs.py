"""The docstrings of the public estimators document what the API reference shows.

For every public estimator class: each ``__init__`` parameter is in the
"Parameters" section, each public fitted attribute (found by fitting the
estimator on a tiny problem) is in the "Attributes" section, and each public
method documents its parameters and has a "Returns" (or "Yields") section
when it returns something. The numpydoc sections are parsed here, so the test
needs neither numpydoc nor a Sphinx build.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap

import numpy as np
import pytest
import sklearn

import skqflow
from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator, OTFlowTransformer, stack

from .conftest import FAST, fast_ratio

# ------------------------------------------------------------------ numpydoc parsing

_UNDERLINE = re.compile(r"^-{3,}\s*$")
# an entry line: "name : type", "name", "a, b : type", "*args", "**kwargs : dict"
_ENTRY = re.compile(r"^(\*{0,2}[A-Za-z_][\w]*(?:\s*,\s*\*{0,2}[A-Za-z_][\w]*)*)\s*(?::.*)?$")


def parse_sections(doc: str | None) -> dict[str, list[str]]:
    """Split a numpydoc docstring into ``{section title: body lines}``."""
    lines = inspect.cleandoc(doc or "").splitlines()
    sections: dict[str, list[str]] = {"": []}
    current = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and _UNDERLINE.match(nxt) and len(nxt.strip()) == len(line.strip()):
            current = line.strip()
            sections[current] = []
            i += 2
            continue
        sections[current].append(line)
        i += 1
    return sections


def documented_names(doc: str | None, section: str) -> set[str]:
    """Names of the entries of a Parameters-like section (unindented lines)."""
    names: set[str] = set()
    for line in parse_sections(doc).get(section, []):
        if not line.strip() or line[0].isspace():
            continue
        match = _ENTRY.match(line.strip())
        if match:
            names.update(n.strip().lstrip("*") for n in match.group(1).split(","))
    return names


def test_parser_on_a_known_docstring():
    doc = """Summary.

    Parameters
    ----------
    a : int
        First.
    t_start, t_end : float, default=0.0 and 1.0
        Both.
    **params : dict
        Rest.

    Returns
    -------
    out : float
    """
    assert documented_names(doc, "Parameters") == {"a", "t_start", "t_end", "params"}
    assert "Returns" in parse_sections(doc)
    assert documented_names(doc, "Attributes") == set()


# ------------------------------------------------------------------ the estimators

# one tiny configuration for every test (tests/conftest.py), a little smaller here
TINY_FLOW = {**FAST, "hidden_layer_sizes": (8,), "classifier_hidden_layer_sizes": (8,), "init_steps": 10}
TINY_RATIO = {k: v for k, v in fast_ratio(n_intervals=2, hidden_layer_sizes=(8,), n_epochs=1).items() if k != "flow"}


def _frame(X):
    """``X`` as a data frame with string column names (so feature_names_in_ is set)."""
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])


@pytest.fixture(scope="module")
def two_samples():
    rng = np.random.RandomState(0)
    return stack(rng.normal(size=(50, 2)), rng.normal(1.0, 1.0, size=(50, 2)))


def _fit_flow(X, y):
    return OTFlowTransformer(**TINY_FLOW).fit(_frame(X), y)


def _fit_ratio(X, y):
    return InfinitesimalDensityRatio(OTFlowTransformer(**TINY_FLOW), **TINY_RATIO).fit(_frame(X), y)


def _fit_mi(X, y):
    rng = np.random.RandomState(1)
    x = rng.normal(size=(100, 2))
    target = x[:, 0] + 0.5 * rng.normal(size=100)
    return MutualInformationEstimator(OTFlowTransformer(**TINY_FLOW), **TINY_RATIO).fit(_frame(x), target)


ESTIMATORS = {
    "OTFlowTransformer": (OTFlowTransformer, _fit_flow),
    "InfinitesimalDensityRatio": (InfinitesimalDensityRatio, _fit_ratio),
    "MutualInformationEstimator": (MutualInformationEstimator, _fit_mi),
}


def _import_da():
    """skqflow.da, or None without skada.

    Importing skada turns on scikit-learn's metadata routing for the whole
    process; the import happens inside ``config_context`` so that the other
    test modules keep scikit-learn's default configuration.
    """
    with sklearn.config_context():
        try:
            import skqflow.da as da
        except ImportError:
            return None
    return da


def _da_estimators():
    da = _import_da()
    if da is None:
        return {}

    def fit_adapter(cls, template):
        def fit(X, y):
            sample_domain = np.where(y == 0, 1, -2)
            with sklearn.config_context(enable_metadata_routing=True):
                return cls(template).fit(X, sample_domain=sample_domain)

        return fit

    found = {}
    for name in getattr(da, "__all__", []):
        obj = getattr(da, name)
        if not (inspect.isclass(obj) and issubclass(obj, sklearn.base.BaseEstimator)):
            continue
        if name == "OTFlowAdapter":
            found[name] = (obj, fit_adapter(obj, OTFlowTransformer(**TINY_FLOW)))
        elif name == "FlowDensityReweightAdapter":
            ratio = InfinitesimalDensityRatio(OTFlowTransformer(**TINY_FLOW), **TINY_RATIO)
            found[name] = (obj, fit_adapter(obj, ratio))
        else:  # a new adapter: its parameters and methods are still checked
            found[name] = (obj, None)
    return found


ESTIMATORS.update({f"da.{k}": v for k, v in _da_estimators().items()})
CLASSES = {name: cls for name, (cls, _) in ESTIMATORS.items()}


def test_the_public_estimators_are_all_checked():
    for name in skqflow.__all__:
        obj = getattr(skqflow, name)
        if inspect.isclass(obj) and issubclass(obj, sklearn.base.BaseEstimator):
            assert name in ESTIMATORS, f"add {name} to ESTIMATORS in {__file__}"


# ------------------------------------------------------------------ the checks


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_init_parameters_are_documented(name):
    cls = CLASSES[name]
    params = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    missing = sorted(set(params) - documented_names(cls.__doc__, "Parameters"))
    assert not missing, f"{name}: __init__ parameters missing from 'Parameters': {missing}"
    extra = sorted(documented_names(cls.__doc__, "Parameters") - set(params))
    assert not extra, f"{name}: 'Parameters' documents names that __init__ does not take: {extra}"


@pytest.fixture(scope="module")
def fitted(two_samples):
    cache = {}

    def get(name):
        if name not in cache:
            _, fit = ESTIMATORS[name]
            cache[name] = fit(*two_samples)
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(n for n, (_, fit) in ESTIMATORS.items() if fit is not None))
def test_fitted_attributes_are_documented(name, fitted):
    est = fitted(name)
    attributes = {k for k in vars(est) if k.endswith("_") and not k.startswith("_")}
    assert attributes, f"{name}: fitting set no public attribute"
    missing = sorted(attributes - documented_names(type(est).__doc__, "Attributes"))
    assert not missing, f"{name}: fitted attributes missing from 'Attributes': {missing}"


def _own_methods(cls):
    """Public methods of ``cls`` defined in skqflow (not those inherited from scikit-learn)."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("skqflow"):
            continue
        for attr, raw in vars(klass).items():
            if attr.startswith("_") or isinstance(raw, property):
                continue
            fn = getattr(raw, "fn", raw)  # sklearn's available_if descriptor
            fn = getattr(fn, "__func__", fn)  # staticmethod / classmethod
            if inspect.isfunction(fn):
                yield attr, fn


def _returns_and_yields(fn):
    """Whether ``fn`` itself (not a nested function) returns a value and whether it yields."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    returns = yields = False
    stack_ = list(ast.iter_child_nodes(tree.body[0]))
    while stack_:
        node = stack_.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                returns = True
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            yields = True
        stack_.extend(ast.iter_child_nodes(node))
    return returns, yields


METHODS = sorted(
    {(name, attr) for name, cls in CLASSES.items() for attr, _ in _own_methods(cls)}
)


@pytest.mark.parametrize("name, method", METHODS, ids=[f"{n}.{m}" for n, m in METHODS])
def test_public_methods_are_documented(name, method):
    _check_function(dict(_own_methods(CLASSES[name]))[method], f"{name}.{method}")


def _public_functions():
    """Public functions, and public methods of the public non-estimator classes
    (the datasets' pairs), of every module the API reference shows."""
    import skqflow.datasets
    import skqflow.plotting

    modules = [skqflow, skqflow.datasets, skqflow.plotting]
    da = _import_da()
    if da is not None:
        modules.append(da)
    found = {}
    for module in modules:
        prefix = module.__name__.removeprefix("skqflow").lstrip(".")
        for name in module.__all__:
            obj = getattr(module, name)
            qual = f"{prefix}.{name}".lstrip(".")
            if inspect.isfunction(obj):
                found[qual] = obj
            elif inspect.isclass(obj) and not issubclass(obj, sklearn.base.BaseEstimator):
                for attr, fn in _own_methods(obj):
                    found[f"{qual}.{attr}"] = fn
    return found


FUNCTIONS = _public_functions()


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_public_functions_are_documented(name):
    _check_function(FUNCTIONS[name], name)


def _check_function(fn, where):
    assert fn.__doc__ and fn.__doc__.strip(), f"{where} has no docstring"
    sections = parse_sections(fn.__doc__)
    params = [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.name not in ("self", "cls")
    ]
    missing = sorted(set(params) - documented_names(fn.__doc__, "Parameters"))
    assert not missing, f"{where}: parameters missing from 'Parameters': {missing}"
    returns, yields = _returns_and_yields(fn)
    if yields:
        assert "Yields" in sections, f"{where} yields values but has no 'Yields' section"
    elif returns:
        assert "Returns" in sections, f"{where} returns a value but has no 'Returns' section"
        assert any(line.strip() for line in sections["Returns"]), f"{where}: empty 'Returns'"
