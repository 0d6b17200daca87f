"""A module without the header: a workspace file."""

X = 1
