"""Sample generators with known ground truth, for tests, benchmarks and examples.

Standalone: numpy, scipy and scikit-learn only.
"""

from ._convex_map import ConvexMapPair, make_convex_map_pair
from ._gaussian_ot import GaussianPair, make_gaussian_pair
from ._mixtures import GaussianMixturePair, make_gaussian_mixture_pair
from ._mutual_info import (
    MutualInfoPair,
    TransformedMutualInfoPair,
    make_low_mutual_info_tasks,
    make_mutual_info_pair,
)
from ._toy import checkerboard_contains, make_checkerboard, make_moons_checkerboard, make_two_moons, moons_distance

__all__ = [
    "ConvexMapPair",
    "GaussianMixturePair",
    "GaussianPair",
    "MutualInfoPair",
    "TransformedMutualInfoPair",
    "checkerboard_contains",
    "make_checkerboard",
    "make_convex_map_pair",
    "make_gaussian_mixture_pair",
    "make_gaussian_pair",
    "make_low_mutual_info_tasks",
    "make_moons_checkerboard",
    "make_mutual_info_pair",
    "make_two_moons",
    "moons_distance",
]
