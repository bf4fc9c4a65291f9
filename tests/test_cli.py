"""The command line: ``python -m skqflow [demo | transport]``."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import skqflow._cli as cli
from skqflow._cli import energy_distance, main, read_table

ROOT = Path(__file__).resolve().parents[1]


def _write_csv(path, X, header=None):
    with open(path, "w") as fh:
        if header is not None:
            fh.write(",".join(header) + "\n")
        np.savetxt(fh, X, delimiter=",")
    return path


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def samples():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 2)), rng.normal(2.0, 0.5, size=(50, 2))


def test_demo_quick(tmp_path, capsys):
    png = tmp_path / "d.png"
    assert main(["demo", "--quick", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    expected = ("transport cost", "energy distance", "D(T(X_p), X_q)", "D(T^-1(X_q), X_p)", "inversion error")
    for words in expected:
        assert words in out
    # the crispness of the picture, in numbers: shares in percent, the moons' ceiling beside them
    import re

    inside = re.search(r"T\(P\) inside the checkerboard's filled squares: ([0-9.]+)%", out)
    near = re.findall(r"within (0\.[24]) of the moons' centre curves: ([0-9.]+)% \(real rows of P: ([0-9.]+)%\)", out)
    assert inside and 0 <= float(inside.group(1)) <= 100
    assert [r for r, _, _ in near] == ["0.2", "0.4"]
    assert all(float(real) > 50 for _, _, real in near)  # the noisy moons' own share
    pytest.importorskip("matplotlib")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_is_the_default_command(tmp_path, capsys):
    png = tmp_path / "none.png"
    assert main(["--quick", "--no-plot", "--n-samples", "60", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "60 training" in out and "inversion error" in out
    assert not png.exists()


def test_demo_settings_and_defaults_flag(capsys, monkeypatch):
    from skqflow import _cli

    fitted = []
    monkeypatch.setattr(_cli, "_fit", lambda flow, X_p, X_q: fitted.append(flow.get_params()) or 0.0)
    monkeypatch.setattr(_cli, "evaluate_flow", lambda *a: (_ for _ in ()).throw(SystemExit(0)))
    for argv in (["demo", "--no-plot"], ["demo", "--no-plot", "--defaults"]):
        with pytest.raises(SystemExit):
            main(argv)
    demo, defaults = fitted
    assert {k: demo[k] for k in _cli.DEMO_PARAMS} == _cli.DEMO_PARAMS  # the demo's sharper settings
    assert demo["init"] == "block_ot"
    from skqflow import OTFlowTransformer

    expected = {**OTFlowTransformer().get_params(), "verbose": 1, "random_state": 0}
    assert defaults == expected  # --defaults: the estimator exactly as a user gets it
    out = capsys.readouterr().out
    assert "OTFlowTransformer(random_state=0); other parameters default" in out
    assert "init=block_ot" in out


def test_transport_csv_keeps_header(tmp_path, capsys, samples):
    X_p, X_q = samples
    p = _write_csv(tmp_path / "p.csv", X_p, header=["x1", "x2"])
    q = _write_csv(tmp_path / "q.csv", X_q)  # no header: detected as data
    out = tmp_path / "mapped.csv"
    assert main(["transport", str(p), str(q), "--out", str(out), "--quick"]) == 0
    summary = capsys.readouterr().out
    assert "40 rows" in summary and "transport cost" in summary and "inversion error" in summary
    assert out.read_text().splitlines()[0] == "x1,x2"
    mapped = np.loadtxt(out, delimiter=",", skiprows=1, ndmin=2)
    assert mapped.shape == X_p.shape
    assert np.all(np.isfinite(mapped))


@pytest.mark.parametrize("inverse", [False, True])
def test_transport_npy(tmp_path, capsys, samples, inverse):
    X_p, X_q = samples
    np.save(tmp_path / "p.npy", X_p)
    np.save(tmp_path / "q.npy", X_q)
    out = tmp_path / "mapped.npy"
    argv = ["transport", str(tmp_path / "p.npy"), str(tmp_path / "q.npy"), "--out", str(out), "--quick"]
    assert main(argv + (["--inverse"] if inverse else [])) == 0
    mapped = np.load(out)
    assert mapped.shape == (X_q if inverse else X_p).shape
    assert np.all(np.isfinite(mapped))
    assert "transport cost" in capsys.readouterr().out


def test_transport_mismatched_columns(tmp_path, capsys):
    p = _write_csv(tmp_path / "p.csv", np.zeros((5, 2)) + np.arange(5)[:, None])
    q = _write_csv(tmp_path / "q.csv", np.ones((5, 3)))
    out = tmp_path / "out.csv"
    assert main(["transport", str(p), str(q), "--out", str(out), "--quick"]) == 2
    err = capsys.readouterr().err
    assert "2 column(s)" in err and "3" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ("a,b\n1,2\n3,oops\n", "non-numeric value 'oops'"),
        ("1,2\n3\n", "line 2: 1 fields, expected 2"),
        ("a,b\n", "no data rows"),
        ("1,,2\n3,4,5\n", "line 1, column 2: missing value"),
        ("1,2\nnan,3\n", "NaN or infinite"),
    ],
)
def test_transport_bad_csv(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    good = _write_csv(tmp_path / "good.csv", np.arange(8.0).reshape(4, 2))
    assert main(["transport", str(bad), str(good), "--out", str(tmp_path / "o.csv")]) == 2
    assert message in capsys.readouterr().err


def test_transport_missing_file_and_bad_extension(tmp_path, capsys):
    good = _write_csv(tmp_path / "good.csv", np.arange(8.0).reshape(4, 2))
    assert main(["transport", str(tmp_path / "nope.csv"), str(good), "--out", str(tmp_path / "o.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["transport", str(good), str(good), "--out", str(tmp_path / "o.parquet")]) == 2
    assert "unsupported file type" in capsys.readouterr().err


def test_usage_error_returns_2(capsys):
    assert main(["transport", "only_one.csv"]) == 2
    assert "usage" in capsys.readouterr().err


def test_read_table_header_detection(tmp_path):
    X = np.array([[1.0, -2.5], [3.0, 4e-3]])
    data, names = read_table(_write_csv(tmp_path / "h.csv", X, header=["u", "v"]))
    assert names == ["u", "v"]
    np.testing.assert_array_equal(data, X)
    data, names = read_table(_write_csv(tmp_path / "n.csv", X))
    assert names is None
    np.testing.assert_array_equal(data, X)


def test_energy_distance():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(300, 2)), rng.normal(1.0, size=(200, 2))
    assert energy_distance(X, X) == pytest.approx(0.0, abs=1e-12)
    assert energy_distance(X, Y) == pytest.approx(energy_distance(Y, X))
    assert energy_distance(X, Y) > energy_distance(X, rng.normal(size=(200, 2))) > 0


def test_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "skqflow", "--version"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("skqflow ")


def test_demo_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)  # import fails
    png = tmp_path / "d.png"
    assert main(["--quick", "--n-samples", "60", "--png", str(png)]) == 0
    assert "matplotlib is not installed (pip install skqflow[plot])" in capsys.readouterr().out
    assert not png.exists()


def test_demo_png_directory_checked_before_fitting(tmp_path, capsys):
    assert main(["--quick", "--png", str(tmp_path / "missing" / "d.png")]) == 2
    captured = capsys.readouterr()
    assert "does not exist" in captured.err and "transport cost" not in captured.out


# ------------------------------------------------------------- robustness
def _no_fit(monkeypatch):
    """Make any fit fail loudly: the checks under test must come before it."""

    def fail(*args):
        raise AssertionError("the flow was fitted")

    monkeypatch.setattr(cli, "_fit", fail)


def _one_line_error(captured):
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_utf8_bom_does_not_eat_the_first_row(tmp_path):
    X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    plain = tmp_path / "bom.csv"
    plain.write_bytes(b"\xef\xbb\xbf1,2\n3,4\n5,6\n")
    data, names = read_table(plain)
    assert names is None
    np.testing.assert_array_equal(data, X)
    header = tmp_path / "bom_header.csv"
    header.write_bytes(b"\xef\xbb\xbfx,y\n1,2\n3,4\n5,6\n")
    data, names = read_table(header)
    assert names == ["x", "y"]
    np.testing.assert_array_equal(data, X)


def test_out_equal_to_an_input_is_refused(tmp_path, capsys, monkeypatch, samples):
    _no_fit(monkeypatch)
    p = _write_csv(tmp_path / "p.csv", samples[0])
    q = _write_csv(tmp_path / "q.csv", samples[1])
    before = p.read_bytes()
    (tmp_path / "sub").mkdir()
    for out in (p, tmp_path / "sub" / ".." / "p.csv", q):
        assert main(["transport", str(p), str(q), "--out", str(out), "--quick"]) == 2
        assert "is the input file" in _one_line_error(capsys.readouterr())
    assert p.read_bytes() == before


@pytest.mark.parametrize(
    "content, message",
    [
        (bytes(range(256)) * 4, "not a UTF-8 text file"),
        (b"1,2\n1e400,3\n5,6\n", "line 2, column 1: '1e400' overflows float64"),
    ],
    ids=["binary", "1e400"],
)
def test_undecodable_or_overflowing_csv_is_a_one_line_error(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    good = _write_csv(tmp_path / "good.csv", np.arange(8.0).reshape(4, 2))
    assert main(["transport", str(bad), str(good), "--out", str(tmp_path / "o.csv"), "--quick"]) == 2
    assert message in _one_line_error(capsys.readouterr())


def test_data_too_large_for_the_fit_is_a_one_line_error(tmp_path, capsys, samples):
    p = _write_csv(tmp_path / "p.csv", samples[0] * 1e200)  # finite, but squares overflow
    q = _write_csv(tmp_path / "q.csv", samples[1])
    out = tmp_path / "o.csv"
    assert main(["transport", str(p), str(q), "--out", str(out), "--quick"]) == 2
    _one_line_error(capsys.readouterr())
    assert not out.exists()


def test_ctrl_c_exits_130_without_traceback(tmp_path, capsys, monkeypatch, samples):
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_fit", interrupt)
    p = _write_csv(tmp_path / "p.csv", samples[0])
    q = _write_csv(tmp_path / "q.csv", samples[1])
    out = tmp_path / "o.csv"
    try:
        assert main(["transport", str(p), str(q), "--out", str(out), "--quick"]) == 130
        assert "interrupted" in _one_line_error(capsys.readouterr())
        assert not out.exists()
        assert main(["--quick", "--no-plot", "--n-samples", "60"]) == 130  # the demo too
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main")


def _read_only_directory(tmp_path):
    if os.name != "posix" or os.geteuid() == 0:
        pytest.skip("permissions are not enforced for root (or off POSIX)")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return locked / "o.csv"


@pytest.mark.parametrize(
    "where, message",
    [
        (lambda tmp: tmp / "missing" / "o.csv", "does not exist"),
        (lambda tmp: tmp / "p.csv" / "o.csv", "does not exist"),
        (lambda tmp: (tmp / "dir.csv").mkdir() or tmp / "dir.csv", "is a directory"),
        (_read_only_directory, "cannot write"),
    ],
    ids=["missing directory", "under a file", "a directory", "read-only directory"],
)
def test_unwritable_out_is_refused_before_the_fit(tmp_path, capsys, monkeypatch, samples, where, message):
    _no_fit(monkeypatch)
    p = _write_csv(tmp_path / "p.csv", samples[0])
    q = _write_csv(tmp_path / "q.csv", samples[1])
    out = where(tmp_path)
    assert main(["transport", str(p), str(q), "--out", str(out), "--quick"]) == 2
    assert message in _one_line_error(capsys.readouterr())


def test_writable_check_leaves_no_file_behind(tmp_path, capsys, monkeypatch, samples):
    def stop(*args):
        raise cli.CLIError("stopped before the fit")

    monkeypatch.setattr(cli, "_fit", stop)
    p = _write_csv(tmp_path / "p.csv", samples[0])
    q = _write_csv(tmp_path / "q.csv", samples[1])
    assert main(["transport", str(p), str(q), "--out", str(tmp_path / "o.csv"), "--quick"]) == 2
    assert "stopped before the fit" in capsys.readouterr().err
    assert sorted(f.name for f in tmp_path.iterdir()) == ["p.csv", "q.csv"]


@pytest.mark.parametrize(
    "argv0, prog",
    [("/usr/local/bin/skqflow", "skqflow"), ("/site-packages/skqflow/__main__.py", "python -m skqflow")],
)
def test_usage_names_the_program_as_called(capsys, monkeypatch, argv0, prog):
    monkeypatch.setattr(sys, "argv", [argv0])
    assert main(["--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: {prog} [-h]")
    assert main(["transport", "p.csv", "q.csv", "--out", "o.parquet"]) == 2
    assert _one_line_error(capsys.readouterr()).startswith(f"{prog} transport: error:")
    assert main(["transport"], prog="myflow") == 2
    assert "usage: myflow transport" in capsys.readouterr().err


def test_blank_and_whitespace_rows_are_skipped(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("x,y\n1,2\n3,4\n   \n5,6\n\n")
    X, names = read_table(str(path))
    np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
    assert names == ["x", "y"]
