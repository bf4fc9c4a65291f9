"""pandas in and out: column names kept, feature names checked, DataFrames accepted everywhere."""

import numpy as np
import pytest

from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator, stack

from .conftest import fast_ratio, tiny_flow

pd = pytest.importorskip("pandas")

COLUMNS = ["height", "weight"]


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    X, y = stack(rng.normal(size=(150, 2)), rng.normal(size=(150, 2)) + 1.0)
    index = pd.RangeIndex(1000, 1000 + len(X))
    return pd.DataFrame(X, columns=COLUMNS, index=index), pd.Series(y, index=index), X, y


@pytest.fixture(scope="module")
def pandas_flow(frames):
    df, ys, _, _ = frames
    return tiny_flow(max_iter=0).set_output(transform="pandas").fit(df, ys)


def test_set_output_keeps_names_and_index(frames, pandas_flow):
    df, _, X, _ = frames
    array_flow = tiny_flow(max_iter=0).fit(*frames[2:])
    np.testing.assert_array_equal(pandas_flow.feature_names_in_, COLUMNS)
    for method, args in [("transform", ()), ("inverse_transform", ()), ("interpolate", (0.5,))]:
        out = getattr(pandas_flow, method)(df, *args)
        assert isinstance(out, pd.DataFrame), method
        assert list(out.columns) == COLUMNS and out.index.equals(df.index), method
        # same numbers as the same flow fitted on the bare arrays
        expected = getattr(array_flow, method)(X, *args)
        np.testing.assert_allclose(out.to_numpy(), expected, rtol=1e-5, atol=1e-6)
    # the round trip through two DataFrames recovers the rows
    back = pandas_flow.inverse_transform(pandas_flow.transform(df))
    np.testing.assert_allclose(back.to_numpy(), X, atol=1e-3)
    # trajectories stay a 3-D array
    assert isinstance(pandas_flow.interpolate(df, [0.0, 1.0]), np.ndarray)
    # the default output stays an ndarray
    assert isinstance(array_flow.inverse_transform(X), np.ndarray)


def test_feature_names_are_checked(frames, pandas_flow):
    df = frames[0]
    renamed = df.rename(columns={"height": "age"})
    for method in ("transform", "inverse_transform", "transport_cost"):
        with pytest.raises(ValueError, match="feature names"):
            getattr(pandas_flow, method)(renamed)
    with pytest.warns(UserWarning, match="valid feature names"):
        pandas_flow.transform(df.to_numpy())


def test_density_ratio_and_mutual_info_take_frames(frames):
    df, ys, X, y = frames
    ratio = InfinitesimalDensityRatio(**fast_ratio(flow=tiny_flow(max_iter=0))).fit(df, ys)
    np.testing.assert_array_equal(ratio.feature_names_in_, COLUMNS)
    assert ratio.predict_log_ratio(df).shape == (len(df),)
    with pytest.warns(UserWarning, match="valid feature names"):
        np.testing.assert_allclose(ratio.predict_log_ratio(df), ratio.predict_log_ratio(X))  # same numbers
    with pytest.raises(ValueError, match="feature names"):
        ratio.predict_log_ratio(df.rename(columns={"weight": "w"}))

    rng = np.random.default_rng(1)
    Xm = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    Ym = pd.DataFrame(Xm.to_numpy() + rng.normal(size=(200, 2)), columns=["c", "d"])
    mi = MutualInformationEstimator(**fast_ratio(flow=tiny_flow(max_iter=0))).fit(Xm, Ym)
    np.testing.assert_array_equal(mi.feature_names_in_, ["a", "b"])
    assert np.isfinite(mi.score(Xm, Ym))
    with pytest.raises(ValueError, match="feature names"):
        mi.score(Xm.rename(columns={"a": "z"}), Ym)
    # a Series as the target works like a column
    assert np.isfinite(mi.fit(Xm, Ym["c"]).mutual_info_)
