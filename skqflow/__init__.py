"""skqflow: optimal-transport flows between samples, with a scikit-learn API."""

from ._stack import stack
from ._transport import OTFlowTransformer

__all__ = ["OTFlowTransformer", "stack"]
__version__ = "0.1.0"
