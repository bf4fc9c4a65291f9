"""Reset of scikit-learn's global configuration before each gallery example.

sphinx-gallery runs every example in the Sphinx process, one after the other.
Importing skada (through ``skqflow.da``) turns on scikit-learn's metadata
routing for the whole process, and an example may switch pandas output on
globally; without this reset every later example, and the API pages (which
import ``skqflow.da``), would run in that modified configuration. Each
example therefore starts with scikit-learn's defaults and with skada not yet
imported, as it does when run on its own with ``python examples/plot_*.py``.
"""

import sys


def reset_sklearn(gallery_conf, fname):
    """Restore scikit-learn's defaults and forget skada (sphinx-gallery ``reset_modules`` hook)."""
    import sklearn

    sklearn.set_config(enable_metadata_routing=False, transform_output="default")
    for name in list(sys.modules):
        if name == "skada" or name.startswith("skada.") or name == "skqflow.da":
            del sys.modules[name]
