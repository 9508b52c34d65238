"""Sphinx configuration: ``make docs`` builds docs/_build/html (warnings are errors)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from checkpoint import __version__  # noqa: E402

project = "checkpoint"
author = "the checkpoint developers"
copyright = "2026, the checkpoint developers"
version = release = __version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# the simulators are optional: their modules are documented without importing them
autodoc_mock_imports = ["brian2", "ANNarchy", "nest", "mpi4py"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_theme_options = {"description": "Save and restore neural network simulations", "fixed_sidebar": True}
