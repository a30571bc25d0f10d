"""Command lines of the package, apart from the library code they call."""
