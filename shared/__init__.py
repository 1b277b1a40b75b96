"""syncq's shared library: everything the functions in functions/ call into."""

__version__ = "0.1.0"
