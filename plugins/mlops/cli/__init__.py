"""``python -m mlops <command>``: the package's commands, each building its storage and clients from
the environment and calling the core. ``main`` dispatches; one module per command group."""
