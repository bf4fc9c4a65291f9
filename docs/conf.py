"""Sphinx configuration of the skqflow documentation.

Build with ``make -C docs html`` (runs every ``examples/plot_*.py``) or
``make -C docs html-noplot`` (gallery pages without running the examples).
Both treat warnings as errors.
"""

import os
import re
import sys
from pathlib import Path

# The package is imported from the checkout, so a build works without installing it.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# docs/ itself, for _gallery_reset (named by a string below so that the config
# stays picklable: Sphinx warns about functions in its cached configuration)
sys.path.insert(0, str(Path(__file__).resolve().parent))

import skqflow  # noqa: E402

# -- Project --------------------------------------------------------------------------------
project = "skqflow"
author = "skqflow developers"
copyright = "skqflow developers"
release = skqflow.__version__
version = ".".join(release.split(".")[:2])

# -- Extensions -----------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "auto_examples/*.md5"]
default_role = "literal"

# -- autodoc / autosummary / numpydoc -------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"
# The class template lists the methods itself; numpydoc must not add a second
# table (it would point at pages that autosummary does not generate).
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# numpydoc's docstring validation is not run during the build: tests/test_docs.py
# checks that every parameter and fitted attribute of the estimators is documented.

# -- Intersphinx ----------------------------------------------------------------------------
# Links to scikit-learn, torch, numpy and scipy need their objects.inv files,
# which Sphinx downloads at build time. A build without network access (CI
# here) would turn the failed downloads into errors under -W, so the
# mappings are only used when SKQFLOW_DOCS_INTERSPHINX=1 is set, e.g.
#
#     SKQFLOW_DOCS_INTERSPHINX=1 make -C docs html
#
# Without them, references to those projects render as plain code (they
# are not nitpicky errors: nitpicky is off).
INTERSPHINX_ENABLED = os.environ.get("SKQFLOW_DOCS_INTERSPHINX", "0") == "1"
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "scipy": ("https://docs.scipy.org/doc/scipy/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "torch": ("https://pytorch.org/docs/stable/", None),
        "matplotlib": ("https://matplotlib.org/stable/", None),
    }
    if INTERSPHINX_ENABLED
    else {}
)
intersphinx_timeout = 10
# Sphinx's default, stated: plain :doc: references never go to another project.
intersphinx_disabled_reftypes = ["std:doc"]

# -- sphinx-gallery -------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # every examples/plot_*.py is executed in a full build (html); html-noplot
    # passes -D plot_gallery=0 and only renders the code.
    "filename_pattern": re.escape(os.sep) + r"plot_.*\.py$",
    "ignore_pattern": r"(__init__|conftest)\.py$",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skqflow",),
    "backreferences_dir": "gen_modules/backreferences",
    "image_scrapers": ("matplotlib",),
    # each example starts from scikit-learn's default configuration, skada not
    # imported (skada turns metadata routing on for the whole process)
    "reset_modules": ("matplotlib", "_gallery_reset.reset_sklearn"),
    "remove_config_comments": True,
    "download_all_examples": False,
    "abort_on_example_error": True,
    "min_reported_time": 5,
}
# matplotlib draws without a display while the examples run
os.environ.setdefault("MPLBACKEND", "Agg")

# -- MyST (docs/benchmarks.md) --------------------------------------------------------------
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# -- HTML -----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skqflow {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_static_path = []
html_show_sourcelink = False
