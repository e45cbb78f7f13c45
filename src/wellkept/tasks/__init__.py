"""Built-in task kinds, one module each. Their docstrings are the user's help."""
