"""scikit-learn's generic estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skqflow import OTFlowTransformer

from .conftest import FAST

EXPECTED_FAILED = {}


@parametrize_with_checks(
    [OTFlowTransformer(**FAST)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
