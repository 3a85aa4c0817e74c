"""Operators: thin, one per task kind; each creates its hooks and calls a stage function of the core.

No operator imports another: what they share (the base classes, XCom names and readers, the
training record) lives in ``base`` and ``train_run``.
"""
