"""scikit-learn's generic estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator, OTFlowTransformer

from .conftest import FAST, fast_ratio

EXPECTED_FAILED = {}


@parametrize_with_checks(
    [
        OTFlowTransformer(**FAST),
        InfinitesimalDensityRatio(**fast_ratio()),
        MutualInformationEstimator(**fast_ratio()),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
