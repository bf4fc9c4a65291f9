"""skqflow: optimal-transport flows between samples, density ratios and mutual information."""

from ._density_ratio import InfinitesimalDensityRatio
from ._mutual_info import MutualInformationEstimator
from ._persist import load, save
from ._stack import stack
from ._transport import OTFlowTransformer

__all__ = ["InfinitesimalDensityRatio", "MutualInformationEstimator", "OTFlowTransformer", "load", "save", "stack"]
__version__ = "0.1.0"
