"""Error types the core raises for things a user can fix; pages show them with st.error."""


class StudioError(Exception):
    """A problem the user can act on; the message says what was expected and the fix."""


class DataError(StudioError):
    """Bad or unusable input data."""


class BackboneUnavailable(StudioError):
    """A backbone cannot be loaded (no network, incomplete cache, unknown name)."""


class TrainingError(StudioError):
    """Training could not run or diverged."""


class RunError(StudioError):
    """A run directory is missing, damaged or in the wrong state."""
