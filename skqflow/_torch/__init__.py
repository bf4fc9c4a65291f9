"""Torch-only internals: velocity field, ODE integration, couplings, losses, training
loops, the fitted flow and the density-ratio chains. Nothing here imports scikit-learn."""

__all__: list[str] = []
