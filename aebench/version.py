"""The version, in a module of its own: read by the package and by the modules it imports
(``import aebench`` from inside aebench would be an import cycle)."""

__version__ = "0.1.0"
