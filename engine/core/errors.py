"""Errors the engine raises for problems a user can fix."""


class InputError(ValueError):
    """Bad user input: the message says what is wrong and what is expected, in one line."""
