"""Saving and loading estimators without pickle: :func:`save` and :func:`load`.

A file is one `safetensors <https://huggingface.co/docs/safetensors>`_ file.
Its tensors are the weights of the torch modules and the numeric arrays of
the estimators (on the CPU); its string metadata hold a JSON tree of
everything else (parameters, fitted scalars, lists and dicts, the classes and
constructor arguments of the modules), a format version, the versions of
skqflow, scikit-learn and torch, and a SHA-256 digest of the tree and the
tensors. Loading parses JSON and raw tensor bytes only: classes are looked
up by name in fixed tables of this module (never imported from a name found
in the file), and nothing is unpickled or evaluated.

The tree walks each estimator's ``__dict__``: constructor parameters (from
``get_params(deep=False)``) and every other attribute, so the private fitted
attributes need not be listed here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys

import numpy as np
import torch

__all__ = ["load", "save"]

FORMAT = "skqflow"
FORMAT_VERSION = 1

# numpy dtypes stored as safetensors tensors (name -> numpy dtype)
_NUMERIC = {
    name: np.dtype(name)
    for name in (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "float32", "float64",
    )
}
_TORCH_DTYPES = {
    name: getattr(torch, name)
    for name in (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "bfloat16", "float32", "float64",
    )
    if hasattr(torch, name)
}
_UNICODE = re.compile(r"^[<>=|]?U[0-9]{1,6}$")
_ATTR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _estimator_classes() -> dict[str, type]:
    """The estimators :func:`load` rebuilds: key in the file -> class."""
    from sklearn.frozen import FrozenEstimator

    from ._density_ratio import InfinitesimalDensityRatio
    from ._mutual_info import MutualInformationEstimator
    from ._transport import OTFlowTransformer

    table = {
        "OTFlowTransformer": OTFlowTransformer,
        "InfinitesimalDensityRatio": InfinitesimalDensityRatio,
        "MutualInformationEstimator": MutualInformationEstimator,
        "sklearn.frozen.FrozenEstimator": FrozenEstimator,
    }
    da = sys.modules.get("skqflow.da")  # the adapters, only once skada is imported
    if da is not None:
        table["da.OTFlowAdapter"] = da.OTFlowAdapter
        table["da.FlowDensityReweightAdapter"] = da.FlowDensityReweightAdapter
    return table


def _load_estimator_class(key: str) -> type | None:
    if key.startswith("da.") and key in ("da.OTFlowAdapter", "da.FlowDensityReweightAdapter"):
        from . import da  # noqa: F401  (a fixed module of skqflow; needs skada)
    return _estimator_classes().get(key)


def _module_classes() -> dict[str, type]:
    """The torch modules :func:`load` rebuilds: key in the file -> class."""
    from ._torch.nn import MLP, VelocityField
    from ._torch.ratio import TimeScoreNet

    return {"VelocityField": VelocityField, "MLP": MLP, "TimeScoreNet": TimeScoreNet}


def _key_of(obj, table: dict[str, type]) -> str | None:
    for key, cls in table.items():
        if type(obj) is cls:
            return key
    return None


def _type_name(value) -> str:
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}"


# ---------------------------------------------------------------- encoding
class _Encoder:
    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}
        self.memo: dict[int, int] = {}
        self.keep: list = []
        self.estimators = _estimator_classes()
        self.modules = _module_classes()

    def _tensor(self, t: torch.Tensor) -> str:
        name = f"t{len(self.tensors)}"
        # a copy of its own: safetensors refuses tensors that share memory
        self.tensors[name] = t.detach().to("cpu", copy=True).contiguous()
        return name

    def _remember(self, value) -> tuple[int, dict | None]:
        """(id, None) for a new object, or (id, reference node) for one already stored."""
        key = id(value)
        if key in self.memo:
            return self.memo[key], {"$": "ref", "id": self.memo[key]}
        self.memo[key] = len(self.memo)
        self.keep.append(value)  # alive until the end, so that its id is not reused
        return self.memo[key], None

    def encode(self, value, where: str):
        t = type(value)
        if value is None or t in (bool, int, str):
            return value
        if t is float:
            return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
        if isinstance(value, np.generic):
            return self._scalar(value, where)
        if t is list:
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if t is tuple:
            return {"$": "tuple", "v": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if t is dict:
            items = []
            for k, v in value.items():
                if k is not None and type(k) not in (bool, int, float, str):
                    raise TypeError(f"cannot save {where}: dict key {k!r} is not a str, int, float or bool")
                items.append([self.encode(k, where), self.encode(v, f"{where}[{k!r}]")])
            return {"$": "dict", "v": items}
        if isinstance(value, torch.dtype):
            name = str(value).removeprefix("torch.")
            if _TORCH_DTYPES.get(name) is not value:
                raise TypeError(f"cannot save {where}: torch dtype {value} is not supported")
            return {"$": "torch.dtype", "v": name}
        if t is torch.device:
            return {"$": "torch.device", "v": str(value)}
        if t is np.ndarray:
            return self._array(value, where)
        if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter):
            return self._torch_tensor(value, where)
        if t is np.random.RandomState:
            return self._random_state(value, where)
        if isinstance(value, torch.nn.Module):
            return self._module(value, where)
        if _key_of(value, self.estimators) is not None:
            return self._estimator(value, where)
        raise TypeError(self._refusal(value, where))

    @staticmethod
    def _refusal(value, where: str) -> str:
        hint = ""
        if isinstance(value, np.random.Generator):
            hint = " Use an int (or a numpy RandomState) as random_state."
        elif isinstance(value, torch.nn.Module):
            hint = " Only skqflow's own modules (VelocityField, MLP, TimeScoreNet) are stored."
        elif hasattr(value, "get_params"):
            hint = (
                " Only skqflow's estimators (and a FrozenEstimator wrapping one) are stored; "
                "a reference distribution such as a fitted GaussianMixture cannot be saved "
                "in the safe format (use reference=None, or pickle/joblib for files you trust)."
            )
        return (
            f"cannot save {where}: skqflow.save stores only plain values, arrays, tensors, "
            f"skqflow's torch modules and skqflow estimators, not a {_type_name(value)}.{hint}"
        )

    def _scalar(self, value: np.generic, where: str):
        dtype = value.dtype
        if dtype.name in _NUMERIC:
            item = value.item()
            return {"$": "npscalar", "dtype": dtype.name, "v": self.encode(item, where)}
        if dtype.kind == "U":
            return {"$": "npscalar", "dtype": "str", "v": str(value)}
        raise TypeError(f"cannot save {where}: numpy scalar of dtype {dtype} is not supported")

    def _array(self, value: np.ndarray, where: str):
        ident, ref = self._remember(value)
        if ref is not None:
            return ref
        shape = list(value.shape)
        dtype = value.dtype
        if dtype.name in _NUMERIC:
            arr = np.ascontiguousarray(value, dtype=dtype.newbyteorder("="))
            name = self._tensor(torch.from_numpy(arr.copy()))
            return {"$": "ndarray", "id": ident, "dtype": dtype.name, "shape": shape, "tensor": name}
        if dtype.kind == "U":
            return {"$": "ndarray", "id": ident, "dtype": "<U" + str(dtype.itemsize // 4),
                    "shape": shape, "v": [str(v) for v in value.reshape(-1)]}
        if dtype.kind == "O":
            items = []
            for i, v in enumerate(value.reshape(-1)):
                if not (v is None or type(v) in (bool, int, float, str) or isinstance(v, np.generic)):
                    raise TypeError(
                        f"cannot save {where}: object arrays may hold only None, bool, int, float "
                        f"and str (item {i} is a {_type_name(v)})"
                    )
                items.append(self.encode(v, f"{where}[{i}]"))
            return {"$": "ndarray", "id": ident, "dtype": "object", "shape": shape, "v": items}
        raise TypeError(f"cannot save {where}: numpy arrays of dtype {dtype} are not supported")

    def _torch_tensor(self, value: torch.Tensor, where: str):
        if str(value.dtype).removeprefix("torch.") not in _TORCH_DTYPES or value.layout != torch.strided:
            raise TypeError(f"cannot save {where}: tensors of dtype {value.dtype} / layout {value.layout}")
        ident, ref = self._remember(value)
        if ref is not None:
            return ref
        return {"$": "tensor", "id": ident, "tensor": self._tensor(value),
                "device": str(value.device), "requires_grad": bool(value.requires_grad)}

    def _random_state(self, value: np.random.RandomState, where: str):
        ident, ref = self._remember(value)
        if ref is not None:
            return ref
        _, keys, pos, has_gauss, cached = value.get_state(legacy=True)
        name = self._tensor(torch.from_numpy(keys.astype(np.int64)))  # torch < 2.3 has no uint32
        return {"$": "RandomState", "id": ident, "tensor": name, "pos": int(pos),
                "has_gauss": int(has_gauss), "cached_gaussian": self.encode(float(cached), where)}

    def _module(self, value: torch.nn.Module, where: str):
        key = _key_of(value, self.modules)
        if key is None:
            raise TypeError(self._refusal(value, where))
        ident, ref = self._remember(value)
        if ref is not None:
            return ref
        args = getattr(value, "init_args", None)
        if type(args) is not dict:
            raise TypeError(
                f"cannot save {where}: this {key} does not record its constructor arguments "
                "(it was built by an older skqflow); refit the estimator"
            )
        tensors = {}
        device = "cpu"
        for name, t in value.state_dict().items():
            tensors[name] = self._tensor(t)
            device = str(t.device)
        training = [name for name, m in value.named_modules() if m.training]
        return {"$": "module", "id": ident, "class": key, "args": self.encode(args, f"{where}.init_args"),
                "state": tensors, "device": device, "training": training}

    def _estimator(self, value, where: str):
        key = _key_of(value, self.estimators)
        ident, ref = self._remember(value)
        if ref is not None:
            return ref
        params = value.get_params(deep=False)
        node_params = {k: self.encode(v, f"{where}.{k}") for k, v in params.items()}
        attrs = {}
        for k, v in vars(value).items():
            if k in params:
                continue
            if not _ATTR.match(k) or k.startswith("__"):
                raise TypeError(f"cannot save {where}: attribute name {k!r}")
            attrs[k] = self.encode(v, f"{where}.{k}")
        return {"$": "estimator", "id": ident, "class": key, "params": node_params, "attrs": attrs}


def _tensor_bytes(t: torch.Tensor) -> bytes:
    return t.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()


def _digest(tree_json: str, tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the JSON tree and of every tensor (name, dtype, shape, bytes)."""
    h = hashlib.sha256(tree_json.encode("utf-8"))
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"\0{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
        h.update(_tensor_bytes(t))
    return h.hexdigest()


def _write_file(path, tree, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tree`` (JSON-able) and ``tensors`` as a skqflow file (no checks on ``tree``)."""
    import sklearn
    from safetensors.torch import save_file

    from . import __version__

    tree_json = json.dumps(tree, allow_nan=False, separators=(",", ":"))
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "skqflow_version": __version__,
        "sklearn_version": sklearn.__version__,
        "torch_version": torch.__version__,
        "tree": tree_json,
        "sha256": _digest(tree_json, tensors),
    }
    save_file(tensors, os.fspath(path), metadata=metadata)


def _read_file(path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The metadata and tensors of a safetensors file, with unreadable files as ValueError."""
    from safetensors import SafetensorError, safe_open

    path = os.fspath(path)
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except SafetensorError as exc:
        raise ValueError(
            f"{path!r} is not a readable skqflow file (damaged, truncated or another format): {exc}"
        ) from None
    return metadata, tensors


# ---------------------------------------------------------------- decoding
class _Decoder:
    def __init__(self, tensors: dict[str, torch.Tensor], device):
        self.tensors = tensors
        self.used: set[str] = set()
        self.objects: dict[int, object] = {}
        self.device = None if device is None else torch.device(device)
        self.modules = _module_classes()

    def _place(self, recorded: str) -> torch.device:
        if self.device is not None:
            return self.device
        try:
            dev = torch.device(recorded)
            if dev.type == "cuda" and not (
                torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()
            ):
                return torch.device("cpu")
            torch.empty(0, device=dev)
            return dev
        except (RuntimeError, ValueError, TypeError, AssertionError):
            return torch.device("cpu")

    def _tensor(self, name) -> torch.Tensor:
        if type(name) is not str or name not in self.tensors:
            raise ValueError(f"the tree names a tensor {name!r} that the file does not hold")
        if name in self.used:
            raise ValueError(f"tensor {name!r} is used twice")
        self.used.add(name)
        return self.tensors[name]

    def _store(self, node, obj):
        ident = node.get("id")
        if type(ident) is not int or ident in self.objects:
            raise ValueError(f"bad or repeated object id {ident!r}")
        self.objects[ident] = obj
        return obj

    @staticmethod
    def _shape(node) -> tuple[int, ...]:
        shape = node["shape"]
        if type(shape) is not list or not all(type(s) is int and s >= 0 for s in shape):
            raise ValueError(f"bad shape {shape!r}")
        return tuple(shape)

    def decode(self, node):
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is list:
            return [self.decode(v) for v in node]
        if type(node) is not dict:
            raise ValueError(f"unexpected JSON value {node!r}")
        kind = node.get("$")
        if kind == "float":
            if node["v"] not in ("inf", "-inf", "nan"):
                raise ValueError(f"bad float {node['v']!r}")
            return float(node["v"])
        if kind == "tuple":
            return tuple(self.decode(v) for v in _list(node["v"]))
        if kind == "dict":
            return {self.decode(k): self.decode(v) for k, v in _list(node["v"])}
        if kind == "torch.dtype":
            if node["v"] not in _TORCH_DTYPES:
                raise ValueError(f"unknown torch dtype {node['v']!r}")
            return _TORCH_DTYPES[node["v"]]
        if kind == "torch.device":
            return torch.device(_str(node["v"]))
        if kind == "npscalar":
            return self._scalar(node)
        if kind == "ndarray":
            return self._array(node)
        if kind == "tensor":
            t = self._tensor(node["tensor"])
            t = t.to(self._place(_str(node["device"])))
            return self._store(node, t.requires_grad_(bool(node["requires_grad"])))
        if kind == "RandomState":
            return self._random_state(node)
        if kind == "module":
            return self._module(node)
        if kind == "estimator":
            return self._estimator(node)
        if kind == "ref":
            if node["id"] not in self.objects or type(node["id"]) is not int:
                raise ValueError(f"reference to unknown object {node['id']!r}")
            return self.objects[node["id"]]
        raise ValueError(f"unknown node type {kind!r}")

    def _scalar(self, node):
        dtype, v = node["dtype"], self.decode(node["v"])
        if dtype == "str":
            return np.str_(_str(v))
        if dtype not in _NUMERIC or type(v) not in (bool, int, float):
            raise ValueError(f"bad numpy scalar {dtype!r}")
        return _NUMERIC[dtype].type(v)

    def _array(self, node):
        dtype, shape = node["dtype"], self._shape(node)
        if dtype in _NUMERIC:
            t = self._tensor(node["tensor"])
            arr = t.numpy()
            if arr.dtype != _NUMERIC[dtype] or arr.shape != shape:
                raise ValueError(f"array stored as {arr.dtype}{arr.shape}, the tree says {dtype}{shape}")
            return self._store(node, arr.copy())
        items = _list(node["v"])
        if len(items) != math.prod(shape):
            raise ValueError(f"{len(items)} items for an array of shape {shape}")
        if type(dtype) is str and _UNICODE.match(dtype):
            arr = np.array([_str(v) for v in items], dtype=dtype)
        elif dtype == "object":
            arr = np.empty(len(items), dtype=object)
            for i, v in enumerate(items):
                v = self.decode(v)
                if not (v is None or type(v) in (bool, int, float, str) or isinstance(v, np.generic)):
                    raise ValueError("object arrays hold only scalars")
                arr[i] = v
        else:
            raise ValueError(f"unsupported array dtype {dtype!r}")
        return self._store(node, arr.reshape(shape))

    def _random_state(self, node):
        keys = self._tensor(node["tensor"]).numpy()
        if keys.dtype != np.int64 or keys.shape != (624,) or keys.min() < 0 or keys.max() >= 2**32:
            raise ValueError("bad RandomState key")
        cached = self.decode(node["cached_gaussian"])
        if type(node["pos"]) is not int or type(node["has_gauss"]) is not int or type(cached) is not float:
            raise ValueError("bad RandomState state")
        rs = np.random.RandomState(0)
        rs.set_state(("MT19937", keys.astype(np.uint32), node["pos"], node["has_gauss"], cached))
        return self._store(node, rs)

    def _module(self, node):
        key = node["class"]
        cls = self.modules.get(key) if type(key) is str else None
        if cls is None:
            raise ValueError(
                f"the file names a torch module class {key!r} that skqflow does not load; "
                f"known: {sorted(self.modules)}"
            )
        args = self.decode(node["args"])
        if type(args) is not dict or not all(type(k) is str for k in args):
            raise ValueError(f"bad constructor arguments for {key}")
        state = node["state"]
        if type(state) is not dict:
            raise ValueError(f"bad state of {key}")
        tensors = {_str(name): self._tensor(t) for name, t in state.items()}
        with torch.device("meta"):  # no memory, no random draws: the weights come from the file
            module = cls(**args)
        expected = {name: tuple(t.shape) for name, t in module.state_dict().items()}
        found = {name: tuple(t.shape) for name, t in tensors.items()}
        if found != expected:
            raise ValueError(f"the weights of {key} do not fit its constructor arguments {args}")
        module.load_state_dict(tensors, strict=True, assign=True)
        if any(t.is_meta for t in (*module.parameters(), *module.buffers())):
            raise ValueError(f"the file does not hold every tensor of {key}")
        training = set(_list(node["training"]))
        for name, m in module.named_modules():
            m.training = name in training
        return self._store(node, module.to(self._place(_str(node["device"]))))

    def _estimator(self, node):
        key = node["class"]
        cls = _load_estimator_class(key) if type(key) is str else None
        if cls is None:
            raise ValueError(
                f"the file names an estimator class {key!r} that skqflow does not load; "
                f"known: {sorted(_estimator_classes())}"
            )
        params, attrs = node["params"], node["attrs"]
        if type(params) is not dict or type(attrs) is not dict:
            raise ValueError(f"bad parameters of {key}")
        ident = node.get("id")
        if type(ident) is not int or ident in self.objects:
            raise ValueError(f"bad or repeated object id {ident!r}")
        est = cls(**{_str(k): self.decode(v) for k, v in params.items()})
        self.objects[ident] = est
        for name, v in attrs.items():
            if type(name) is not str or not _ATTR.match(name) or name.startswith("__") or name in params:
                raise ValueError(f"bad attribute name {name!r} of {key}")
            if hasattr(cls, name):  # a method or property of the class: a file may not shadow it
                raise ValueError(f"attribute {name!r} of {key} would shadow a class member")
            setattr(est, name, self.decode(v))
        return est


def _list(v) -> list:
    if type(v) is not list:
        raise ValueError(f"expected a list, got {type(v).__name__}")
    return v


def _str(v) -> str:
    if type(v) is not str:
        raise ValueError(f"expected a str, got {type(v).__name__}")
    return v


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


# ---------------------------------------------------------------- public
def save(estimator, path) -> None:
    """Save an estimator to a file that is safe to load, without pickle.

    The file is a single `safetensors <https://huggingface.co/docs/safetensors>`_
    file: tensors (network weights and numeric arrays, moved to the CPU)
    plus, in its metadata, a JSON tree of the parameters and the other
    fitted attributes, a format version, the skqflow version and a SHA-256
    digest. :func:`load` rebuilds the estimator from data only, so loading a
    file from someone else cannot run their code, unlike a pickle (or
    joblib) file.

    Parameters
    ----------
    estimator : estimator
        An :class:`OTFlowTransformer`, :class:`InfinitesimalDensityRatio`,
        :class:`MutualInformationEstimator` or an adapter of
        :mod:`skqflow.da`, fitted or not. Its parameters and attributes may
        hold None, bool, int, float (infinite and NaN included), str, numpy
        arrays (numeric, or of str, or of objects that are such scalars),
        numpy scalars, lists, tuples and dicts of these, torch tensors,
        dtypes and devices, skqflow's torch modules, numpy ``RandomState``
        objects (saved with their state, so a refit after loading draws the
        same numbers) and other skqflow estimators, bare or wrapped in
        :class:`sklearn.frozen.FrozenEstimator`.
    path : str or path-like
        File to write (overwritten if it exists).

    Raises
    ------
    TypeError
        If ``estimator`` is not one of skqflow's estimators, or a parameter
        or attribute holds anything else, e.g. a ``reference`` that is a
        fitted ``GaussianMixture`` or a ``numpy.random.Generator``; the
        message names it.

    See Also
    --------
    load : read the file back.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> import skqflow
    >>> flow = skqflow.OTFlowTransformer(init_steps=20, max_iter=0, random_state=0)
    >>> flow = flow.fit(np.random.default_rng(0).normal(size=(50, 2)))
    >>> path = os.path.join(tempfile.mkdtemp(), "flow.skqflow")
    >>> skqflow.save(flow, path)
    >>> same = skqflow.load(path)
    >>> bool(np.array_equal(same.transform([[0.0, 1.0]]), flow.transform([[0.0, 1.0]])))
    True
    """
    encoder = _Encoder()
    if _key_of(estimator, encoder.estimators) is None:
        raise TypeError(
            f"skqflow.save saves skqflow's estimators; got a {_type_name(estimator)}"
        )
    tree = encoder.encode(estimator, type(estimator).__name__)
    _write_file(path, tree, encoder.tensors)


def load(path, device=None):
    """Load an estimator saved by :func:`save`.

    Only data are read: estimator and torch-module classes come from a fixed
    list of skqflow's classes, looked up by name; the file cannot make
    skqflow import, evaluate or unpickle anything. Numeric outputs of the
    loaded estimator are bit-identical to those of the saved one on the
    same device.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    device : str, torch.device or None, default=None
        Where to put the torch modules and tensors. ``None`` puts each on
        the device it was saved from when that device exists here, and on
        the CPU otherwise (a model fitted on a GPU loads on a CPU-only
        machine). When predicting, the estimators still move their modules
        to their fitted device (``device_``) if it is available.

    Returns
    -------
    estimator : estimator
        The estimator, fitted if it was saved fitted.

    Raises
    ------
    ValueError
        If the file is damaged, truncated or altered (its digest does not
        match), is not a skqflow file, has an unsupported format version,
        or names a class that is not one of skqflow's.
    FileNotFoundError
        If ``path`` does not exist.

    See Also
    --------
    save : write the file.

    Notes
    -----
    The digest detects damage and accidental edits, not a deliberate
    forgery (whoever edits a file can recompute it); a forged file can hold
    wrong numbers but cannot run code. Files are tied to a format version,
    not to a skqflow version: the saved versions are recorded in the file
    for information.
    """
    metadata, tensors = _read_file(path)
    where = repr(os.fspath(path))
    if metadata.get("format") != FORMAT or "tree" not in metadata:
        raise ValueError(f"{where} is a safetensors file but not one written by skqflow.save")
    version = metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        raise ValueError(
            f"{where} has format version {version!r}; this skqflow reads version {FORMAT_VERSION} "
            f"(the file was written by skqflow {metadata.get('skqflow_version')!r})"
        )
    if metadata.get("sha256") != _digest(metadata["tree"], tensors):
        raise ValueError(f"{where} is damaged or was altered: its SHA-256 digest does not match")
    decoder = _Decoder(tensors, device)
    try:
        tree = json.loads(metadata["tree"], parse_constant=_reject_constant)
        estimator = decoder.decode(tree)
    except ValueError as exc:
        raise ValueError(f"{where} cannot be loaded: {exc}") from None
    except (KeyError, TypeError, IndexError, AttributeError, RuntimeError, RecursionError,
            OverflowError) as exc:
        raise ValueError(f"{where} is malformed: {type(exc).__name__}: {exc}") from None
    if decoder.used != set(tensors):
        raise ValueError(f"{where} holds tensors that its tree does not use")
    if _key_of(estimator, _estimator_classes()) is None:
        raise ValueError(f"{where} does not hold an estimator")
    return estimator
