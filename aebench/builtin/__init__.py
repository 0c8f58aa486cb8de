"""aebench's own plug-ins, one module per kind, registered like anyone's (see hookspecs)."""

MODULES = [
    "aebench.builtin.models",
    "aebench.builtin.corruptions",
    "aebench.builtin.regularizers",
    "aebench.builtin.schedules",
    "aebench.builtin.datasets",
    "aebench.builtin.evaluators",
    "aebench.builtin.callbacks",
]
