"""scikit-learn's generic estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator, OTFlowTransformer

from .conftest import fast_ratio, tiny_flow

EXPECTED_FAILED = {}

# OTFlowTransformer draws its training batches at random, weighted rows in
# proportion to their weights (InfinitesimalDensityRatio resamples its rows
# in proportion to them): integer weights equal repeated rows in
# distribution, not to the last bit, which is what this check asks.
# tests/test_sample_weight.py and tests/test_density_ratio_weights.py check
# the equivalence in distribution.
FLOW_EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": (
        "a stochastic trainer: integer sample weights equal repeated rows in distribution "
        "(tested in test_sample_weight.py), not exactly"
    ),
}


def _expected_failed(estimator):
    if isinstance(estimator, (OTFlowTransformer, InfinitesimalDensityRatio)):
        return {**EXPECTED_FAILED, **FLOW_EXPECTED_FAILED}
    return EXPECTED_FAILED


@parametrize_with_checks(
    [
        tiny_flow(),
        InfinitesimalDensityRatio(**fast_ratio()),
        MutualInformationEstimator(**fast_ratio()),
    ],
    expected_failed_checks=_expected_failed,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
