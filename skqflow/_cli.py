"""Command line of skqflow: ``python -m skqflow [demo | transport] ...``.

``demo`` (the default) fits the optimal-transport flow from two moons to a
checkerboard (figure 2 of Xu, Cheng and Xie) and reports held-out metrics and
a picture of the trajectories (:func:`skqflow.plotting.plot_demo`).
``transport`` fits the flow between two samples stored in CSV or ``.npy``
files (read by numpy) and writes the transported rows.

This module holds only the parser and the commands; it is the only module
of the package that prints. Errors are one line on stderr (exit code 2;
130 on Ctrl-C).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["CLIError", "build_parser", "energy_distance", "main", "read_table", "write_table"]

# The demo's settings, printed with its output: pairs fixed once by exact
# assignments in blocks, a deeper field trained harder. They draw the
# checkerboard far more sharply than the defaults (about 90% of T(P) inside
# the squares against 62%, docs/benchmarks.md), which stay tuned for accuracy
# on small, smooth problems; ``--defaults`` shows what the defaults give.
DEMO_PARAMS: dict = {
    "init": "block_ot",
    "hidden_layer_sizes": (256, 256, 256, 256),
    "learning_rate_init": 1e-2,
    "init_steps": 4000,
}
DEMO_N_SAMPLES = 4000

# ``--quick``: a smoke-test setting that runs in a few seconds.
QUICK_PARAMS = {
    "hidden_layer_sizes": (32, 32),
    "init_steps": 30,
    "max_iter": 1,
    "refine_epochs": 1,
    "classifier_epochs": 1,
}
QUICK_N_SAMPLES = 300

DEMO_HEADING = "skqflow: optimal-transport flow, two moons -> checkerboard"
MAX_SEED = 2**32 - 2  # the test sample uses ``seed + 1``
_EXIT_ERROR = 2
_EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class CLIError(Exception):
    """A user error (bad file, bad data): reported on stderr with exit code 2."""


# --------------------------------------------------------------- metrics
def energy_distance(X, Y):
    """Energy distance between two samples (V-statistic).

    ``2 mean|X - Y| - mean|X - X'| - mean|Y - Y'|`` over all pairs of rows,
    with Euclidean norms; computed in float64 by the package's torch
    implementation (:func:`skqflow._torch.losses.energy_distance`).

    Parameters
    ----------
    X : array-like of shape (n_x, n_features)
    Y : array-like of shape (n_y, n_features)

    Returns
    -------
    distance : float
        Non-negative; zero when the two samples are equal.
    """
    import torch

    from ._torch.losses import energy_distance as _energy_distance

    X = torch.as_tensor(np.asarray(X, dtype=np.float64))
    Y = torch.as_tensor(np.asarray(Y, dtype=np.float64))
    with torch.no_grad():
        return float(_energy_distance(X, Y))


def _mean_squared_error(A, B):
    """``mean ||a - b||²`` over paired rows."""
    return float(np.mean(np.sum((np.asarray(A) - np.asarray(B)) ** 2, axis=1)))


def evaluate_flow(flow, X_p, X_q):
    """Held-out metrics of a fitted flow on samples of P and Q.

    Parameters
    ----------
    flow : OTFlowTransformer
        The fitted flow from P to Q.
    X_p, X_q : ndarray of shape (n, n_features)
        Test rows of P and Q (not used in training).

    Returns
    -------
    metrics : dict
        ``transport_cost``; ``energy_forward`` = D(T(X_p), X_q);
        ``energy_backward`` = D(T^{-1}(X_q), X_p); ``energy_baseline`` =
        D(X_p, X_q); ``inversion_error`` = mean ||T^{-1}(T(x)) - x||² over
        ``X_p``; and the arrays ``pushed`` = T(X_p), ``pulled`` = T^{-1}(X_q).
    """
    pushed = flow.transform(X_p)
    pulled = flow.inverse_transform(X_q)
    return {
        "transport_cost": flow.transport_cost(X_p),
        "energy_forward": energy_distance(pushed, X_q),
        "energy_backward": energy_distance(pulled, X_p),
        "energy_baseline": energy_distance(X_p, X_q),
        "inversion_error": _mean_squared_error(flow.inverse_transform(pushed), X_p),
        "pushed": pushed,
        "pulled": pulled,
    }


def format_metrics(metrics):
    """Lines of text reporting the output of :func:`evaluate_flow`."""
    base = metrics["energy_baseline"]
    return [
        f"transport cost (mean kinetic energy, W2^2 estimate): {metrics['transport_cost']:.4f}",
        "energy distance            untransported  transported",
        f"  D(T(X_p), X_q)           {base:13.4f}  {metrics['energy_forward']:11.4f}",
        f"  D(T^-1(X_q), X_p)        {base:13.4f}  {metrics['energy_backward']:11.4f}",
        f"inversion error (mean ||T^-1(T(x)) - x||^2 on P): {metrics['inversion_error']:.3e}",
    ]


# ------------------------------------------------------------- settings
def _estimator_params(args, base):
    """``base`` estimator settings overridden by the options given on the command line."""
    params = dict(base)
    for option in ("gamma", "init_steps", "max_iter", "refine_epochs"):
        value = getattr(args, option)
        if value is not None:
            params[option] = value
    return params


def _base_params(args, default):
    if args.quick:
        return QUICK_PARAMS
    return {} if getattr(args, "defaults", False) else default


def _make_flow(params, seed):
    from . import OTFlowTransformer

    return OTFlowTransformer(verbose=1, random_state=seed, **params)


def _fit(flow, X_p, X_q):
    """Fit ``flow`` from ``X_p`` to ``X_q``; return the wall time in seconds."""
    from . import stack

    start = time.perf_counter()
    flow.fit(*stack(X_p, X_q))
    return time.perf_counter() - start


def _describe(params):
    return ", ".join(f"{k}={v}" for k, v in params.items())


# ----------------------------------------------------------------- demo
def run_demo(args):
    """The ``demo`` subcommand: two moons to checkerboard; returns the exit code."""
    from .datasets import make_moons_checkerboard

    start = time.perf_counter()
    if not args.no_plot:
        _check_writable(Path(args.png))
    n = args.n_samples or (QUICK_N_SAMPLES if args.quick else DEMO_N_SAMPLES)
    params = _estimator_params(args, _base_params(args, DEMO_PARAMS))
    X_p, X_q = make_moons_checkerboard(n, random_state=args.seed)
    X_p_test, X_q_test = make_moons_checkerboard(n, random_state=args.seed + 1)
    print(f"skqflow demo: two moons (P) -> checkerboard (Q), {n} training and {n} test rows per side")
    print(f"OTFlowTransformer({_describe({**params, 'random_state': args.seed})}); other parameters default")
    sys.stdout.flush()  # before the progress bar on stderr
    flow = _make_flow(params, args.seed)
    fit_time = _fit(flow, X_p, X_q)
    print(f"fitted in {fit_time:.1f} s; metrics on the test rows:")
    metrics = evaluate_flow(flow, X_p_test, X_q_test)
    for line in format_metrics(metrics):
        print(line)
    for line in _crispness(metrics["pushed"], metrics["pulled"], X_p_test):
        print(line)
    if not args.no_plot:
        _report_picture(flow, X_p_test, X_q_test, metrics, Path(args.png))
    print(f"total time {time.perf_counter() - start:.1f} s")
    return 0


def _crispness(pushed, pulled, X_p):
    """How sharply the demo's flow draws the checkerboard and the moons (lines of text).

    The share of ``T(X_p)`` inside the checkerboard's filled squares, and the
    share of ``T^{-1}(X_q)`` near the moons' centre curves, beside the share of
    real rows of P that are that near (the moons are noisy: about 68% of them
    lie within 0.2 of the curves and 95% within 0.4).
    """
    from .datasets import checkerboard_contains, moons_distance

    inside = float(np.mean(checkerboard_contains(pushed)))
    d_pulled, d_real = moons_distance(pulled), moons_distance(X_p)
    lines = [f"  T(P) inside the checkerboard's filled squares: {inside:.1%}"]
    for radius in (0.2, 0.4):
        lines.append(
            f"  T^-1(Q) within {radius} of the moons' centre curves: {np.mean(d_pulled < radius):.1%} "
            f"(real rows of P: {np.mean(d_real < radius):.1%})"
        )
    return lines


def _report_picture(flow, X_p, X_q, metrics, path):
    """Draw the demo's picture (:func:`skqflow.plotting.plot_demo`) and say where it went (or why not)."""
    title = (
        f"{DEMO_HEADING}\ntest rows: transport cost {metrics['transport_cost']:.3f}, energy distance "
        f"D(T(X_P), X_Q) = {metrics['energy_forward']:.3f} (untransported {metrics['energy_baseline']:.3f})"
    )
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:
        print("matplotlib is not installed (pip install skqflow[plot]); no picture written")
        return
    from .plotting import plot_demo

    fig = plot_demo(flow, X_p, X_q, pulled=metrics["pulled"], title=title)
    FigureCanvasAgg(fig)  # PNG through Agg; the pyplot backend is left alone
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise CLIError(f"cannot write the picture {path}: {exc}") from exc
    print(f"wrote {path}")


# ------------------------------------------------------------ file I/O
_FORMATS = {".csv": "csv", ".txt": "csv", ".npy": "npy"}


def _format_of(path):
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise CLIError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; use .csv or .npy")
    return kind


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_header(row):
    """A first row is a header when one of its non-blank cells is not a number."""
    return any(cell.strip() and not _is_number(cell) for cell in row)


def _first_row(fh):
    """``(position, fields)`` of the first non-blank line of ``fh``; fields None at the end."""
    while True:
        position, line = fh.tell(), fh.readline()
        if not line:
            return position, None
        row = next(csv.reader([line]), [])
        if any(cell.strip() for cell in row):
            return position, row


def _read_csv(path):
    """Numeric CSV with an optional header row, read by :func:`numpy.loadtxt`.

    Returns ``(X, names or None)``. A UTF-8 byte-order mark is skipped.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            position, first = _first_row(fh)
            if first is None:
                raise CLIError(f"{path}: the file is empty")
            names = [cell.strip() for cell in first] if _is_header(first) else None
            if names is None:
                fh.seek(position)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                    lines = (line for line in fh if not line.isspace())  # blank rows are skipped
                    X = np.loadtxt(lines, delimiter=",", comments=None, quotechar='"', ndmin=2, dtype=np.float64)
            except UnicodeDecodeError:
                raise
            except ValueError as exc:
                raise CLIError(_diagnose(path, names) or f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path}: not a UTF-8 text file (undecodable byte at offset {exc.start})") from None
    if X.size == 0:
        raise CLIError(f"{path}: no data rows after the header" if names else f"{path}: no data rows")
    if (names is not None and X.shape[1] != len(names)) or not np.all(np.isfinite(X)):
        raise CLIError(_diagnose(path, names) or f"{path}: the data contain NaN or infinite values")
    return X, names


def _diagnose(path, names):
    """The first bad field of a CSV file that numpy refused, as an error message (None if not found).

    Run only on failure, so a few seconds on a large file do not matter.
    """
    width = None if names is None else len(names)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        rows = ((reader.line_num, row) for row in reader if any(cell.strip() for cell in row))
        if names is not None:
            next(rows, None)
        for line, row in rows:
            width = len(row) if width is None else width
            if len(row) != width:
                return f"{path}, line {line}: {len(row)} fields, expected {width}"
            for column, cell in enumerate(row, 1):
                where, text = f"{path}, line {line}, column {column}", cell.strip()
                if not text:
                    return f"{where}: missing value"
                try:
                    value = float(text)
                except ValueError:
                    return f"{where}: non-numeric value {text!r}"
                if math.isnan(value) or (math.isinf(value) and "inf" in text.lower()):
                    return f"{where}: NaN or infinite value {text!r}"
                if math.isinf(value):
                    return f"{where}: {text!r} overflows float64 (NaN or infinite values are not accepted)"
    return None


def _read_npy(path):
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise CLIError(f"{path}: not a readable .npy array ({exc})") from exc
    if data.ndim == 1:
        data = data.reshape(-1, 1)
    if data.ndim != 2:
        raise CLIError(f"{path}: expected a 2-D array (rows x columns), got shape {data.shape}")
    if data.dtype.kind not in "biuf":
        raise CLIError(f"{path}: non-numeric data (dtype {data.dtype})")
    return data.astype(np.float64), None


def read_table(path):
    """Load a sample from a ``.csv`` (or ``.txt``) or ``.npy`` file.

    A CSV file holds comma-separated numbers, one row per line, in UTF-8
    (a byte-order mark is skipped); when its first row is not all numeric
    it is taken as a header of column names. Files are parsed by
    :func:`numpy.loadtxt` (CSV) and :func:`numpy.load` (``.npy``).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    names : list of str or None
        Column names from the CSV header, if any.

    Raises
    ------
    CLIError
        Missing file, unsupported extension, undecodable text, ragged or
        non-numeric data, NaN, infinite or overflowing values, fewer than
        two rows.
    """
    path = Path(path)
    kind = _format_of(path)
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    X, names = _read_csv(path) if kind == "csv" else _read_npy(path)
    if not np.all(np.isfinite(X)):
        raise CLIError(f"{path}: the data contain NaN or infinite values")
    if len(X) < 2:
        raise CLIError(f"{path}: at least 2 rows are needed, found {len(X)}")
    return X, names


def write_table(path, X, names=None):
    """Write ``X`` to ``path`` (``.csv``/``.txt`` with an optional header, or ``.npy``).

    Parameters
    ----------
    path : path-like
    X : ndarray of shape (n_samples, n_features)
    names : list of str or None
        Header of a CSV file (ignored for ``.npy``).
    """
    path = Path(path)
    if _format_of(path) == "npy":
        np.save(path, X)
        return
    with open(path, "w", newline="", encoding="utf-8") as fh:
        if names is not None:
            csv.writer(fh, lineterminator="\n").writerow(names)
        np.savetxt(fh, X, delimiter=",", fmt="%.10g")


# ------------------------------------------------------------ transport
def _load_pair(args):
    X_p, names_p = read_table(args.p)
    X_q, names_q = read_table(args.q)
    if X_p.shape[1] != X_q.shape[1]:
        raise CLIError(
            f"{args.p} has {X_p.shape[1]} column(s) but {args.q} has {X_q.shape[1]}; "
            "both samples must have the same columns"
        )
    return X_p, names_p, X_q, names_q


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name the same file (same resolved path, or same inode)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _check_writable(path):
    """Fail early, before any training, when ``path`` cannot be written.

    Opening the file for appending tests the directory and the permissions
    without changing an existing file; a file created by the test is removed.
    """
    if path.is_dir():
        raise CLIError(f"{path} is a directory")
    if not path.parent.is_dir():
        raise CLIError(f"{path}: the directory {path.parent} does not exist")
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not existed:
        path.unlink(missing_ok=True)


def _check_output(path, inputs):
    """Refuse an output of unknown type, equal to one of ``inputs``, or not writable."""
    _format_of(path)
    for source in inputs:
        if _same_file(path, source):
            raise CLIError(f"--out {path} is the input file {source}; choose another output file")
    _check_writable(path)


def _transport(flow, X_p, X_q, inverse):
    """Fit ``flow`` and map the rows; return ``(source, mapped, back, transport cost)``."""
    _fit(flow, X_p, X_q)
    source = X_q if inverse else X_p
    forward, backward = flow.transform, flow.inverse_transform
    if inverse:
        forward, backward = backward, forward
    mapped = forward(source)
    if not np.all(np.isfinite(mapped)):
        raise CLIError(
            "the flow maps some rows to NaN or infinite values; the data are probably too large "
            f"(largest absolute value {np.abs(source).max():.3g}): rescale them"
        )
    return source, mapped, backward(mapped), flow.transport_cost(X_p)


def run_transport(args):
    """The ``transport`` subcommand: fit P -> Q from files, write mapped rows; returns the exit code."""
    out = Path(args.out)
    _check_output(out, (args.p, args.q))
    X_p, names_p, X_q, names_q = _load_pair(args)
    params = _estimator_params(args, _base_params(args, {}))
    flow = _make_flow(params, args.seed)
    try:
        source, mapped, back, cost = _transport(flow, X_p, X_q, args.inverse)
    except (ValueError, ArithmeticError) as exc:
        raise CLIError(f"cannot fit the flow: {exc}") from exc
    names = (names_q or names_p) if args.inverse else (names_p or names_q)
    try:
        write_table(out, mapped, names)
    except OSError as exc:
        raise CLIError(f"cannot write {out}: {exc}") from exc
    direction = f"{args.q} back to P" if args.inverse else f"{args.p} to Q"
    print(
        f"mapped {len(source)} rows x {source.shape[1]} columns of {direction} -> {out}; "
        f"transport cost {cost:.4g}; inversion error {_mean_squared_error(back, source):.3g}"
    )
    return 0


# --------------------------------------------------------------- parser
def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text}")
    return value


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _at_least_two(text):
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 2, got {text}")
    return value


def _seed(text):
    value = _non_negative_int(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"the seed must be at most {MAX_SEED}, got {text}")
    return value


def _non_negative_float(text):
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text}")
    return value


def _fit_options(defaults):
    """Options shared by both subcommands (estimator settings).

    ``defaults`` holds the settings of the subcommand that differ from the
    defaults of OTFlowTransformer; it only feeds the help text.
    """
    from . import OTFlowTransformer

    defaults = {**OTFlowTransformer().get_params(), **defaults}
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("flow settings")
    group.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    for option, kind, text in (
        ("gamma", _non_negative_float, "weight of the W2 path cost in the refinement"),
        ("init_steps", _positive_int, "optimizer steps of the initial flow (flow matching)"),
        ("max_iter", _non_negative_int, "refinement rounds (0 keeps the initial flow)"),
        ("refine_epochs", _non_negative_int, "flow epochs per direction and round"),
    ):
        flag = "--" + option.replace("_", "-")
        group.add_argument(flag, type=kind, help=f"{text} (default: {defaults[option]})")
    group.add_argument(
        "--quick", action="store_true",
        help="tiny setting for smoke tests (3 init epochs, 1 refinement round of 1 epoch, "
        "hidden layers (32, 32); the demo uses 300 rows)",
    )
    return parent


def _program_name():
    """The program as it was called: the console script's name, or ``python -m skqflow``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if name in ("", "-c", "-m", "__main__.py"):
        return "python -m skqflow"
    return name


def build_parser(prog=None):
    """The argument parser with the ``demo`` and ``transport`` subcommands.

    Parameters
    ----------
    prog : str or None, default=None
        Program name of the usage line and of the error messages; ``None``
        takes the name it was called by (``skqflow`` for the console
        script, ``python -m skqflow`` for the module).

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=_program_name() if prog is None else prog,
        description="Optimal-transport flows between two samples (Q-flow).",
    )
    parser.add_argument("--version", action="version", version=f"skqflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{demo,transport}")
    demo = sub.add_parser(
        "demo", parents=[_fit_options(DEMO_PARAMS)], help="two moons -> checkerboard example (the default)",
        description="Fit the flow from two moons to a checkerboard (paper figure 2), print "
        "held-out metrics and draw the trajectories.",
    )
    demo.add_argument("--n-samples", type=_at_least_two, help=f"rows per sample (default: {DEMO_N_SAMPLES})")
    demo.add_argument(
        "--png", default="skqflow_demo.png", help="picture to write (default: skqflow_demo.png)"
    )
    demo.add_argument("--no-plot", action="store_true", help="do not draw the picture")
    demo.add_argument(
        "--defaults", action="store_true",
        help="fit OTFlowTransformer at its defaults instead of the demo's settings "
        f"({_describe(DEMO_PARAMS)})",
    )
    demo.set_defaults(run=run_demo)
    transport = sub.add_parser(
        "transport", parents=[_fit_options({})], help="fit P -> Q from files and write the mapped rows",
        description="Fit the flow from the sample in P to the sample in Q (.csv or .npy) and "
        "write the rows of P mapped to Q (or, with --inverse, the rows of Q mapped to P).",
    )
    transport.add_argument("p", metavar="P", help="sample of P (.csv or .npy)")
    transport.add_argument("q", metavar="Q", help="sample of Q (.csv or .npy)")
    transport.add_argument("--out", required=True, help="output file (.csv or .npy)")
    transport.add_argument("--inverse", action="store_true", help="write the rows of Q mapped back to P")
    transport.set_defaults(run=run_transport)
    return parser


def _with_default_command(argv):
    """Insert ``demo`` when no subcommand is named (``python -m skqflow [--quick ...]``)."""
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        return ["demo", *argv]
    return argv


def main(argv=None, *, prog=None):
    """Run the command line.

    Parameters
    ----------
    argv : list of str or None
        Arguments without the program name; ``None`` reads ``sys.argv``. No
        arguments run the demo.
    prog : str or None, default=None
        Program name shown in the usage line and the error messages; see
        :func:`build_parser`.

    Returns
    -------
    code : int
        ``0`` on success, ``2`` on a usage or data error and ``130`` when
        interrupted (Ctrl-C); errors are reported on stderr in one line.
    """
    argv = _with_default_command(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else _EXIT_ERROR
    try:
        return args.run(args)
    except CLIError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return _EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
