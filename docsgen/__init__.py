"""Tools that build parts of the documentation from the code, and check it against the code."""
