"""``python -m skqflow``: see :mod:`skqflow._cli`."""

from ._cli import main

raise SystemExit(main())
