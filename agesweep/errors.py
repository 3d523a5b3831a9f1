"""Domain exceptions. Their class names are the error names the state machine catches."""

from __future__ import annotations


class AgesweepError(Exception):
    """Base class of every error agesweep raises on purpose."""


class ManifestInvalid(AgesweepError):
    """The manifest breaks the schema or a limit; carries every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class SettingsInvalid(AgesweepError):
    """The stack's settings (the env vars of its Lambdas, or of the CLI's shell) are unusable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) + " (fix the environment variables)")


class InputMissing(AgesweepError):
    """An input the manifest names does not exist."""


class PreflightFailed(AgesweepError):
    """A resource the manifest names (queue, job definition, image) is not usable."""

