"""``python -m skqflow``: see :mod:`skqflow._cli`."""

from ._cli import main

__all__: list[str] = []

raise SystemExit(main())
