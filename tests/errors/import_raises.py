"""A model file whose import fails (used by the error suite)."""

raise ImportError("this module is broken on purpose")
