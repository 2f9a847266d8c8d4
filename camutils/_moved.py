"""Old import paths of modules that moved, kept working.

``import camutils.keras_apps`` (or ``from camutils.course_models import ...``) gives the
module at its new place, the very same module object, so that code and notebooks written
for the old layout run unchanged. The moved files themselves are gone from the old paths
(their history follows them: ``git log --follow``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__all__ = ["MOVED", "install"]

#: old module path -> new module path (a moved package's submodules follow it).
MOVED = {
    "camutils.efficientnet": "camutils.zoo.efficientnet",
    "camutils.keras_apps": "camutils.zoo.keras_apps",
    "camutils.imagenet": "camutils.zoo.imagenet",
    "camutils.torch_pickle": "camutils.zoo.torch_pickle",
    "camutils.course_models": "camutils.course.models",
    "camutils.datasets": "camutils.course.shapes",
    "camutils.exercises": "camutils.course.exercises",
}


def _new_name(name: str) -> str | None:
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return None


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path and hands back the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        if _new_name(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module(_new_name(spec.name))
        spec.loader_state = module.__spec__  # importlib now sets module.__spec__ = spec ...
        return module

    def exec_module(self, module):
        # ... so give the module back its own spec (relative imports read __spec__.parent);
        # it is already imported at its new path.
        module.__spec__ = module.__spec__.loader_state or module.__spec__

    def get_code(self, fullname):
        """For ``python -m <old path>``: run the module at its new path as ``__main__``."""
        return compile(f"import runpy\nrunpy.run_module({_new_name(fullname)!r}, "
                       "run_name='__main__', alter_sys=True)", f"<moved: {fullname}>", "exec")


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
