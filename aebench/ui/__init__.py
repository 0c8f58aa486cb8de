"""The notebook Workbench: ``from aebench.ui import Workbench; Workbench()``."""

from aebench.ui.workbench import Workbench

__all__ = ["Workbench"]
