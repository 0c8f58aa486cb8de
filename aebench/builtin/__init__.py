"""aebench's own plug-ins, one module per kind, registered like anyone's (see hookspecs)."""

MODULES = [
    "aebench.builtin.models",
    "aebench.builtin.corruptions",
    "aebench.builtin.regularizers",
    "aebench.builtin.schedules",
    "aebench.builtin.datasets",
    "aebench.builtin.evaluators",
    "aebench.builtin.callbacks",
    "aebench.builtin.optimizers",
    # the executors need the execution package (not the public API): registered from there,
    # through the same hook a third party implements
    "aebench.execution.executors",
]
