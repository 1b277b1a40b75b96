"""syncq's shared library: everything the functions in functions/ call into."""
