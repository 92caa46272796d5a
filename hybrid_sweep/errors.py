"""The one error type users see: a single line naming the field or file at fault."""


class HybridSweepError(Exception):
    """A user-facing error; the CLI prints ``str(err)`` on one line and exits non-zero."""


class ConfigError(HybridSweepError):
    """A config value is invalid. The message starts with the dotted key."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


class DataError(HybridSweepError):
    """A data file is missing or malformed. The message starts with the file path."""

    def __init__(self, path, message: str):
        super().__init__(f"{path}: {message}")
        self.path = str(path)
