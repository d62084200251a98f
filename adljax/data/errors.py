"""Errors raised by the data layer."""


class DatasetUnavailableError(RuntimeError):
    """A dataset exists but cannot be read here: it is not downloaded and may not be fetched.

    Raised instead of touching the network silently, or after a download failed. The message
    names the dataset, says that it needs the network once, and where it is (or would be) cached.
    """
