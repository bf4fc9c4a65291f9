"""scikit-learn's generic estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator

from .conftest import fast_ratio, tiny_flow

EXPECTED_FAILED = {}


@parametrize_with_checks(
    [
        tiny_flow(),
        InfinitesimalDensityRatio(**fast_ratio()),
        MutualInformationEstimator(**fast_ratio()),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
