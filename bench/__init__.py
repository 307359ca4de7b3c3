"""Benchmarks and fault scenarios; each module is also a script (see its docstring)."""
