"""genet's development tools, kept out of the installed package: dev-cluster (``commands``,
``cluster``, ``netns``) and the test guest (``testguest``).

They run with the genet of this source tree: installed (a venv), or else loaded from ``lib/``.
"""
import importlib.util
import os
import sys

try:
    import genet  # noqa: F401
except ImportError:
    # setup.py maps the package "genet" to lib/
    _lib = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))), "lib")
    _spec = importlib.util.spec_from_file_location(
        "genet", os.path.join(_lib, "__init__.py"), submodule_search_locations=[_lib])
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["genet"] = _module
    _spec.loader.exec_module(_module)
