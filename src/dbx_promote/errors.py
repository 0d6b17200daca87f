"""One error tree for the whole tool.

Every error carries the exit code the CLI uses for it and a message written for the person
who reads it: what happened, then what to do next. Exit code 2 means the input was wrong
(config, artifact, usage, credentials) and nothing was changed; exit code 1 means an
operation was attempted and did not succeed.
"""

from __future__ import annotations

from pathlib import Path


class DbxPromoteError(Exception):
    """Base class of every error dbx-promote raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- bad input: exit 2 -------------------------------------------------------------------


class BadInput(DbxPromoteError):
    """The user gave us something we cannot work with; nothing was changed."""

    exit_code = 2


class ConfigError(BadInput):
    """`dbx-promote.yml` is missing, malformed, or names something that does not exist."""


class UnknownEnvironment(ConfigError):
    """An environment name that the config does not define."""


class ArtifactError(BadInput):
    """An artifact is corrupt, tampered with, or not an artifact at all."""


class BuildError(BadInput):
    """The notebooks cannot be packaged; ``problems`` lists every reason found.

    ``source`` is the folder the problems' paths are relative to (when they name files), so
    a CI system can link each problem to its file.
    """

    def __init__(
        self, message: str, problems: list[str] | None = None, *, source: Path | None = None
    ) -> None:
        super().__init__(message)
        self.problems = list(problems or [])
        self.source = source


class CredentialsError(BadInput):
    """No usable credentials for a workspace, or they were refused."""


class ConnectionFailed(BadInput):
    """The workspace host cannot be reached (wrong host, no network)."""


class PlanFileError(BadInput):
    """A saved plan file cannot be read."""


class ReleaseNotFound(BadInput):
    """A rollback or promote names a release that the release store does not hold."""


class RecordCorrupt(BadInput):
    """A record file in the workspace cannot be parsed."""


class FolderOwned(BadInput):
    """The folder's record names another project or environment (hand it over: --adopt)."""


class LockoutRefused(BadInput):
    """The configured permissions would leave the deploying principal without CAN_MANAGE."""


# --- operation failed: exit 1 ------------------------------------------------------------


class OperationFailed(DbxPromoteError):
    """An operation ran and did not succeed."""

    exit_code = 1


class WorkspaceError(OperationFailed):
    """The workspace refused or failed a request that retries could not fix."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class ObjectNotFound(WorkspaceError):
    """The path does not exist in the workspace."""


class ObjectExists(WorkspaceError):
    """The path already exists (and overwrite was not asked for)."""


class PermissionDenied(WorkspaceError):
    """The principal may not do this in the workspace."""


class BulkImportRefused(WorkspaceError):
    """The workspace refused a directory import itself (not throttling, not a fault)."""


class LockHeld(OperationFailed):
    """Another deploy holds the folder's lock."""


class LockLost(OperationFailed):
    """While a deploy worked, its lock was taken over, or could not be refreshed for
    longer than the stale threshold: it must not commit."""


class RequiresNotMet(OperationFailed):
    """The artifact was not verified in the environment this one requires."""


class StalePlan(OperationFailed):
    """A reviewed plan no longer matches what the live folder would need."""


class DeployFailed(OperationFailed):
    """A deploy failed; ``restored`` says what the folder was put back to."""

    def __init__(self, message: str, *, restored: str | None = None) -> None:
        super().__init__(message)
        self.restored = restored


class DeployInterrupted(DeployFailed):
    """A deploy failed and its restore gave up too: the folder is reported interrupted
    (its lock stays as the intent) until the next deploy converges it."""


class VerificationFailed(DeployFailed):
    """After apply, the folder did not match the plan."""


class ChecksFailed(OperationFailed):
    """`doctor` found at least one problem (each is a failed check in its report)."""


class AzureDevOpsError(OperationFailed):
    """The Azure DevOps service refused or failed a request."""


class TestsFailed(OperationFailed):
    """An environment's tests ran and not all of them passed (or some could not start)."""

    __test__ = False  # not a pytest test class, whatever its name says


class TestsInterrupted(OperationFailed):
    """Ctrl-C or SIGTERM stopped the tests; the runs they started were cancelled."""

    __test__ = False
