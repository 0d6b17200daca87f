"""`dbx-promote.yml`: frozen, validated settings.

Everything that can be wrong with the file is collected and reported in one error, so a
user fixes the file once instead of once per run. Credentials never live here: a key that
looks like one is refused. Auth is resolved elsewhere (`workspace.py`).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from dbx_promote.config_values import (
    read_bool,
    read_int,
    read_mapping,
    read_opt_str,
    read_str_tuple,
)
from dbx_promote.errors import ConfigError, UnknownEnvironment
from dbx_promote.pathchars import hidden_character_problem
from dbx_promote.permissions import Grant, parse_grants
from dbx_promote.yaml_loader import YamlRefused, load_yaml

DEFAULT_CONFIG_NAME = "dbx-promote.yml"
# A config is a few kilobytes; reading more is a mistake or an attack.
MAX_CONFIG_BYTES = 1024 * 1024
CONFIG_ENV_VAR = "DBX_PROMOTE_CONFIG"

# Keys that name a credential. Refused wherever they appear: a token in a file in Git is
# a token leaked to everyone who can read the repository.
CREDENTIAL_KEYS = frozenset(
    {
        "token",
        "pat",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "access_token",
        "api_key",
        "apikey",
        "personal_access_token",
        "sas_token",
        "account_key",
    }
)
_TOKEN_VALUE = re.compile(r"\bdapi[0-9a-f]{32}\b")

# The longest path accepted anywhere (the workspace's own limit is lower still).
MAX_PATH_CHARS = 4096
# Upper bounds of counts and rates, far above any real use (the service allows 30 imports/s).
MAX_KEEP = 1000
MAX_PARALLEL = 64
MAX_STALE_MINUTES = 7 * 24 * 60
MIN_IMPORT_RATE = 0.01
MAX_IMPORT_RATE = 10_000

# Folders that many people and jobs share: deploying "into" them would make the tool the
# owner of everything there. A root must sit strictly below them.
RESERVED_ROOTS = frozenset({"/", "/Shared", "/Users", "/Repos", "/Workspace"})

KNOWN_AUTH_MODES = frozenset(
    {
        "azure-pipelines",
        "pat",
        "azure-cli",
        "azure-client-secret",
        "azure-devops-oidc",
        "oauth-m2m",
        "env-oidc",
        "file-oidc",
        "databricks-cli",
        "github-oidc",
        "github-oidc-azure",
        "metadata-service",
        "external-browser",
    }
)

_TOP_KEYS = {"project", "source", "build", "environments"}
_BUILD_KEYS = {"include", "exclude", "strip_outputs", "allow_files"}
_ENV_KEYS = {
    "host",
    "profile",
    "auth",
    "root",
    "requires",
    "keep_releases",
    "parameters",
    "approval",
    "ado_environment",
    "lock_stale_minutes",
    "lock_timeout_minutes",  # the old name of lock_stale_minutes, still read
    "keep_backups",
    "restore_budget_minutes",
    "parallel",
    "import_rate",
    "tests",
    "permissions",
}
_TESTS_KEYS = {"notebooks", "compute", "timeout_minutes", "parallel", "parameters", "on_failure"}
_COMPUTE_KINDS = ("existing_cluster_id", "serverless", "new_cluster")
# Widgets dbx-promote sets itself on every test run; a config parameter may not shadow them.
TEST_BASE_PARAMETERS = ("env", "version", "digest")
ON_FAILURE = ("none", "rollback")
_APPROVAL_KEYS = {
    "approvers",
    "min_approvers",
    "instructions",
    "timeout_minutes",
    "branch_control",
    "requester_cannot_approve",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Approval:
    """The manual gate `ado ensure-environments` puts on an Azure DevOps environment."""

    approvers: tuple[str, ...]
    min_approvers: int = 1
    instructions: str = ""
    timeout_minutes: int = 43200
    requester_cannot_approve: bool = True
    # Refs allowed to deploy (Branch control check), e.g. ("refs/tags/v*",); empty = none.
    branch_control: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnvTestSettings:
    """An environment's `tests:`: which notebooks run as one-time job runs after a deploy.

    ``compute`` is exactly one of ``{"existing_cluster_id": id}``, ``{"serverless": True}``
    or ``{"new_cluster": {...}}`` (a cluster spec passed to the Jobs API as it is).
    """

    notebooks: tuple[str, ...]
    compute: Mapping[str, Any]
    timeout_minutes: int = 30
    parallel: int = 4
    parameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    on_failure: str = "none"

    @property
    def compute_kind(self) -> str:
        """``existing_cluster_id``, ``serverless`` or ``new_cluster``."""
        return next(iter(self.compute))


@dataclass(frozen=True)
class Environment:
    """One deployment target: a folder in a workspace."""

    name: str
    root: str
    host: str | None = None
    profile: str | None = None
    auth: str | None = None
    requires: str | None = None
    keep_releases: int = 5
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    approval: Approval | None = None
    ado_environment: str = ""
    # A lock whose heartbeat is older than this is stale (its deploy died).
    lock_stale_minutes: int = 3
    keep_backups: int = 10  # deploys whose backups are kept
    # How long a failed deploy's restore keeps retrying a throttled or failing workspace
    # (honouring Retry-After) before it leaves the folder reported as interrupted.
    restore_budget_minutes: float = 10.0
    parallel: int = 8
    # Imports per second the tool paces itself to (0: no pacing). The service allows
    # about 30 per workspace; sending faster only earns 429s.
    import_rate: float = 30.0
    tests: EnvTestSettings | None = None
    # Root's direct grants, exactly; None: permissions are not managed by dbx-promote.
    permissions: tuple[Grant, ...] | None = None

    def resolved_root(self, user: str) -> str:
        """The root with ``{user}`` expanded, validated again after expansion."""
        root = self.root.replace("{user}", user)
        problems = validate_root(root)
        if problems:
            raise ConfigError(f"environment '{self.name}': {problems[0]}")
        return normalize_workspace_path(root)


@dataclass(frozen=True)
class BuildSettings:
    include: tuple[str, ...] = ("**/*",)
    exclude: tuple[str, ...] = ()
    strip_outputs: bool = True
    allow_files: bool = True


@dataclass(frozen=True)
class Config:
    """The whole validated file."""

    path: Path
    base_dir: Path
    project: str
    source: Path
    build: BuildSettings
    environments: Mapping[str, Environment]

    def environment(self, name: str) -> Environment:
        """The environment called ``name``; `UnknownEnvironment` (exit 2) if none."""
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            raise UnknownEnvironment(
                f"unknown environment '{name}'; {self.path.name} defines: {known}"
            ) from None


def normalize_workspace_path(path: str) -> str:
    """Collapse slashes and drop the `/Workspace` alias, as the service does."""
    path = re.sub(r"/+", "/", path)
    if path == "/Workspace" or path.startswith("/Workspace/"):
        path = path[len("/Workspace") :] or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    return path


def validate_root(root: str) -> list[str]:
    """Problems with ``root`` as a deployment folder (empty list when it is fine)."""
    if not isinstance(root, str) or not root:
        return ["root must be a non-empty workspace path"]
    if len(root) > MAX_PATH_CHARS:
        return [f"root is {len(root)} characters long; at most {MAX_PATH_CHARS} are allowed"]
    if hidden := hidden_character_problem(root):
        # A newline or an invisible character makes a folder that looks like another one.
        return [f"root {root!r} {hidden}"]
    if not root.startswith("/"):
        return [f"root '{root}' must be an absolute workspace path (start with /)"]
    parts = root.split("/")
    if any(p in (".", "..") for p in parts):
        return [f"root '{root}' must not contain '.' or '..'"]
    norm = normalize_workspace_path(root)
    if norm in RESERVED_ROOTS:
        return [f"root '{root}' is a shared top-level folder; use a folder inside it"]
    segments = norm.strip("/").split("/")
    if segments[0] in ("Users", "Repos") and len(segments) < 3:
        return [f"root '{root}' is a home folder; use a folder inside it, e.g. {norm}/project"]
    if segments[0] == "Repos":
        return [f"root '{root}' is inside /Repos (Git folders); deploy to a normal folder"]
    return []


def find_config(path: str | os.PathLike[str] | None) -> Path:
    """The config file to read: explicit path, `DBX_PROMOTE_CONFIG`, else ./dbx-promote.yml."""
    chosen = path or os.environ.get(CONFIG_ENV_VAR)
    if chosen:
        p = Path(chosen).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        return p.resolve()
    p = Path.cwd() / DEFAULT_CONFIG_NAME
    if not p.is_file():
        raise ConfigError(
            f"no {DEFAULT_CONFIG_NAME} in {Path.cwd()}; pass --config or set {CONFIG_ENV_VAR}"
        )
    return p.resolve()


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the config file.

    Raises `ConfigError` (exit 2) listing every problem found.
    """
    cfg_path = find_config(path)
    try:
        # Read one byte more than we accept, so a huge file is refused unread.
        with cfg_path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{cfg_path.name} is larger than {MAX_CONFIG_BYTES // 1024} KiB")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {cfg_path}: {exc}") from None
    try:
        raw = load_yaml(text)
    except YamlRefused as exc:
        where = f" line {exc.line}" if exc.line else ""
        raise ConfigError(f"{cfg_path.name}{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        # Report only the position: the parser's message can quote the offending line,
        # and that line may hold a secret someone pasted by mistake.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{cfg_path.name} is not valid YAML{where}") from None
    return parse_config(raw, cfg_path)


def parse_config(raw: Any, cfg_path: Path) -> Config:
    """Validate an already-parsed document (see `load_config`)."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(f"{cfg_path.name} must be a mapping with project, source, environments")

    _find_credentials(raw, "", problems)

    _unknown_keys(raw, _TOP_KEYS, "", problems)

    project = raw.get("project")
    if not isinstance(project, str) or not _NAME.match(project):
        problems.append("project must be a name of letters, digits, '.', '_' or '-'")
        project = "project"

    source_raw = raw.get("source", "notebooks")
    if (
        not isinstance(source_raw, str)
        or not source_raw
        or len(source_raw) > MAX_PATH_CHARS
        or hidden_character_problem(source_raw)
    ):
        problems.append(
            f"source must be a folder path (no control characters, at most {MAX_PATH_CHARS})"
        )
        source_raw = "notebooks"
    base_dir = cfg_path.parent
    source = (base_dir / source_raw).resolve()

    build = _parse_build(raw.get("build") or {}, problems)

    envs_raw = raw.get("environments")
    environments: dict[str, Environment] = {}
    if not isinstance(envs_raw, dict) or not envs_raw:
        problems.append("environments must map at least one environment name to its settings")
    else:
        for name, env_raw in envs_raw.items():
            env = _parse_environment(str(name), env_raw, problems)
            if env is not None:
                environments[str(name)] = env
        _check_requires(environments, problems)
        _check_roots_apart(environments, problems)

    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        raise ConfigError(f"{cfg_path.name} has {len(problems)} {noun}: " + "; ".join(problems))

    return Config(
        path=cfg_path,
        base_dir=base_dir,
        project=str(project),
        source=source,
        build=build,
        environments=MappingProxyType(environments),
    )


def _find_credentials(node: Any, where: str, problems: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if str(key).lower() in CREDENTIAL_KEYS:
                problems.append(
                    f"'{here}' looks like a credential; credentials never go in this file "
                    "(use environment variables, a profile or a service connection)"
                )
                continue
            _find_credentials(value, here, problems)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _find_credentials(item, f"{where}[{i}]", problems)
    elif isinstance(node, str) and _TOKEN_VALUE.search(node):
        problems.append(f"'{where}' holds a Databricks token; remove it from the file")


def _parse_build(raw: Any, problems: list[str]) -> BuildSettings:
    if not isinstance(raw, dict):
        problems.append("build must be a mapping")
        return BuildSettings()
    _unknown_keys(raw, _BUILD_KEYS, "build", problems)
    include = read_str_tuple(raw.get("include", ["**/*"]), "build.include", problems)
    exclude = read_str_tuple(raw.get("exclude", []), "build.exclude", problems)
    strip = read_bool(raw.get("strip_outputs", True), "build.strip_outputs", problems)
    allow = read_bool(raw.get("allow_files", True), "build.allow_files", problems)
    return BuildSettings(include=include, exclude=exclude, strip_outputs=strip, allow_files=allow)


def _engine_settings(raw: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    """Retention, locking and pacing of one environment (the `Environment` fields)."""
    stale_key = "lock_stale_minutes" if "lock_stale_minutes" in raw else "lock_timeout_minutes"
    import_rate = raw.get("import_rate", 30)
    # NaN passes every comparison and infinity is no pace at all; a rate such as 1e-300
    # is an interval of 1e300 s that overflows the pacer mid-deploy: all are refused.
    if (
        isinstance(import_rate, bool)
        or not isinstance(import_rate, (int, float))
        or not (import_rate == 0 or MIN_IMPORT_RATE <= import_rate <= MAX_IMPORT_RATE)
    ):
        problems.append(
            f"{where}.import_rate must be 0 (no pacing) or from {MIN_IMPORT_RATE:g} to "
            f"{MAX_IMPORT_RATE:g} imports per second"
        )
        import_rate = 30
    return {
        "keep_releases": read_int(
            raw.get("keep_releases", 5), f"{where}.keep_releases", problems, 1, MAX_KEEP
        ),
        "lock_stale_minutes": read_int(
            raw.get(stale_key, 3), f"{where}.{stale_key}", problems, 1, MAX_STALE_MINUTES
        ),
        "keep_backups": read_int(
            raw.get("keep_backups", 10), f"{where}.keep_backups", problems, 1, MAX_KEEP
        ),
        "parallel": read_int(
            raw.get("parallel", 8), f"{where}.parallel", problems, 1, MAX_PARALLEL
        ),
        "import_rate": float(import_rate),
        "restore_budget_minutes": _budget_minutes(
            raw.get("restore_budget_minutes", 10), f"{where}.restore_budget_minutes", problems
        ),
    }


def _connection_settings(raw: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    """Where and how to sign in (the `Environment` fields host, profile and auth)."""
    host = read_opt_str(raw.get("host"), f"{where}.host", problems)
    if host and not re.match(r"^https?://[^/\s]+/?$", host):
        problems.append(f"{where}.host must look like https://adb-123.4.azuredatabricks.net")
    auth = read_opt_str(raw.get("auth"), f"{where}.auth", problems)
    if auth and auth not in KNOWN_AUTH_MODES:
        problems.append(
            f"{where}.auth '{auth}' is not one of: {', '.join(sorted(KNOWN_AUTH_MODES))}"
        )
    return {
        "host": host.rstrip("/") if host else None,
        "profile": read_opt_str(raw.get("profile"), f"{where}.profile", problems),
        "auth": auth,
    }


def _parse_root(raw: dict[str, Any], where: str, problems: list[str]) -> str:
    root = raw.get("root")
    if root is None:
        problems.append(f"{where}: root is required")
        return "/invalid"
    # `{user}` is expanded per caller (and validated again then, with the real name);
    # here the root is judged as written, so a refusal quotes what the user wrote.
    for problem in validate_root(str(root)):
        problems.append(f"{where}: {problem}")
    return str(root)


def _budget_minutes(value: Any, where: str, problems: list[str]) -> float:
    """A positive, finite number of minutes, at most a day (a restore must end)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value <= 24 * 60  # also refuses NaN
    ):
        problems.append(f"{where} must be a number of minutes > 0 and <= 1440")
        return 10.0
    return float(value)


def _parse_environment(name: str, raw: Any, problems: list[str]) -> Environment | None:
    where = f"environments.{name}"
    if not _NAME.match(name):
        problems.append(f"{where}: environment names are letters, digits, '.', '_' or '-'")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where} must be a mapping with at least 'root'")
        return None
    _unknown_keys(raw, _ENV_KEYS, where, problems)
    permissions = None
    if raw.get("permissions") is not None:
        permissions = parse_grants(raw["permissions"], f"{where}.permissions", problems)
    ado_env = read_opt_str(raw.get("ado_environment"), f"{where}.ado_environment", problems)
    return Environment(
        name=name,
        root=_parse_root(raw, where, problems),
        **_connection_settings(raw, where, problems),
        requires=read_opt_str(raw.get("requires"), f"{where}.requires", problems),
        parameters=MappingProxyType(
            read_mapping(raw.get("parameters"), f"{where}.parameters", problems)
        ),
        approval=_parse_approval(raw.get("approval"), f"{where}.approval", problems),
        ado_environment=ado_env or f"dbx-{name}",
        **_engine_settings(raw, where, problems),
        tests=_parse_tests(raw.get("tests"), f"{where}.tests", problems),
        permissions=permissions,
    )


def _unknown_keys(raw: dict[str, Any], known: set[str], where: str, problems: list[str]) -> None:
    """One problem per key ``raw`` has beyond ``known`` (credential keys are reported apart)."""
    for key in sorted(set(map(str, raw)) - known):
        if key.lower() not in CREDENTIAL_KEYS:
            problems.append(f"{where}: unknown key '{key}'" if where else f"unknown key '{key}'")


def _parse_approval(raw: Any, where: str, problems: list[str]) -> Approval | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where} must be a mapping with approvers")
        return None
    _unknown_keys(raw, _APPROVAL_KEYS, where, problems)
    approvers = read_str_tuple(raw.get("approvers", []), f"{where}.approvers", problems)
    if not approvers:
        problems.append(f"{where}.approvers must name at least one user or group")
    min_approvers = read_int(raw.get("min_approvers", 1), f"{where}.min_approvers", problems, 1)
    if approvers and min_approvers > len(approvers):
        problems.append(f"{where}.min_approvers ({min_approvers}) exceeds the approvers listed")
    timeout = read_int(raw.get("timeout_minutes", 43200), f"{where}.timeout_minutes", problems, 1)
    branch = raw.get("branch_control", ())
    if branch is True:
        branch = ["refs/tags/v*"]
    elif branch is False or branch is None:
        branch = []
    return Approval(
        approvers=approvers,
        min_approvers=min_approvers,
        instructions=str(raw.get("instructions", "")),
        timeout_minutes=timeout,
        requester_cannot_approve=read_bool(
            raw.get("requester_cannot_approve", True), f"{where}.requester_cannot_approve", problems
        ),
        branch_control=read_str_tuple(branch, f"{where}.branch_control", problems),
    )


def _parse_tests(raw: Any, where: str, problems: list[str]) -> EnvTestSettings | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where} must be a mapping with notebooks and compute")
        return None
    _unknown_keys(raw, _TESTS_KEYS, where, problems)
    notebooks = read_str_tuple(raw.get("notebooks", []), f"{where}.notebooks", problems)
    if not notebooks and "notebooks" in raw:
        problems.append(f"{where}.notebooks must list at least one glob")
    elif not notebooks:
        problems.append(f"{where}.notebooks is required (globs such as tests/*)")
    for glob in notebooks:
        if glob.startswith("/") or ".." in glob.split("/") or not glob.strip():
            problems.append(f"{where}.notebooks: '{glob}' must be relative to the root")
    compute = _parse_compute(raw.get("compute"), f"{where}.compute", problems)
    timeout = read_int(raw.get("timeout_minutes", 30), f"{where}.timeout_minutes", problems, 1)
    parallel = read_int(raw.get("parallel", 4), f"{where}.parallel", problems, 1, MAX_PARALLEL)
    params = raw.get("parameters") or {}
    if not isinstance(params, dict) or not all(
        isinstance(v, (str, int, float, bool)) for v in params.values()
    ):
        problems.append(f"{where}.parameters must map widget names to strings or numbers")
        params = {}
    for name in sorted(set(map(str, params)) & set(TEST_BASE_PARAMETERS)):
        problems.append(f"{where}.parameters: '{name}' is set by dbx-promote; pick another name")
    on_failure = raw.get("on_failure", "none")
    if on_failure not in ON_FAILURE:
        problems.append(f"{where}.on_failure '{on_failure}' is not one of: rollback, none")
        on_failure = "none"
    if compute is None:
        return None
    return EnvTestSettings(
        notebooks=notebooks,
        compute=MappingProxyType(compute),
        timeout_minutes=timeout,
        parallel=parallel,
        # Widgets are strings; YAML `1000` or `true` would otherwise arrive as other types.
        parameters=MappingProxyType({str(k): _widget(v) for k, v in params.items()}),
        on_failure=str(on_failure),
    )


def _parse_compute(raw: Any, where: str, problems: list[str]) -> dict[str, Any] | None:
    choices = "{existing_cluster_id: ID}, {serverless: true} or {new_cluster: {...}}"
    if raw is None:
        problems.append(f"{where} is required: {choices}")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where} must be one of {choices}")
        return None
    unknown = sorted(set(map(str, raw)) - set(_COMPUTE_KINDS))
    for key in unknown:
        problems.append(f"{where}: unknown key '{key}' (use one of {choices})")
    kinds = [k for k in _COMPUTE_KINDS if k in raw]
    if len(kinds) != 1:
        if not unknown:
            problems.append(f"{where} must be exactly one of {choices}")
        return None
    kind, value = kinds[0], raw[kinds[0]]
    if kind == "existing_cluster_id" and (not isinstance(value, str) or not value.strip()):
        problems.append(f"{where}.existing_cluster_id must be a cluster id")
    elif kind == "serverless" and value is not True:
        problems.append(f"{where}.serverless must be true (or pick another compute)")
    elif kind == "new_cluster" and not (isinstance(value, dict) and "spark_version" in value):
        problems.append(f"{where}.new_cluster must be a cluster spec with at least spark_version")
    else:
        return {kind: value.strip() if isinstance(value, str) else value}
    return None


def _widget(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_requires(envs: dict[str, Environment], problems: list[str]) -> None:
    for env in envs.values():
        if env.requires and env.requires not in envs:
            problems.append(
                f"environments.{env.name}.requires names unknown environment '{env.requires}'"
            )
    reported: set[frozenset[str]] = set()
    for start in sorted(envs):
        seen = [start]
        current = envs[start].requires
        while current and current in envs:
            if current in seen:
                loop = seen[seen.index(current) :]
                if frozenset(loop) not in reported:
                    reported.add(frozenset(loop))
                    problems.append(f"'requires' forms a cycle: {' -> '.join([*loop, current])}")
                break
            seen.append(current)
            current = envs[current].requires


def _check_roots_apart(envs: dict[str, Environment], problems: list[str]) -> None:
    """Two environments in one folder, or one inside another, would delete each other's
    notebooks as unowned leftovers; refuse it (unless they sit in different workspaces)."""

    from dbx_promote.ownership import USER, roots_may_meet

    items = sorted(envs.values(), key=lambda e: e.name)
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            if environment_host(a) != environment_host(b):
                continue
            ra, rb = normalize_workspace_path(a.root), normalize_workspace_path(b.root)
            if roots_may_meet(ra, rb):
                some = f" for some {USER}" if USER in ra + rb else ""
                problems.append(
                    f"environments '{a.name}' and '{b.name}' share a folder{some} ({ra}, {rb}); "
                    "give each its own root"
                )


def environment_host(env: Environment) -> str | None:
    """The environment's workspace host: ``host`` in the file, else `DBX_PROMOTE_<ENV>_HOST`
    (a pipeline variable, for Test and Prod in different workspaces); None: the SDK decides.
    """
    return env.host or os.environ.get(env_var_name(env.name, "HOST"))


def env_var_name(env_name: str, what: str) -> str:
    """`DBX_PROMOTE_<ENV>_<WHAT>`: e.g. DBX_PROMOTE_TEST_HOST for environment `test`."""
    return f"DBX_PROMOTE_{re.sub(r'[^A-Za-z0-9]', '_', env_name).upper()}_{what}"


def relative_to_root(root: str, path: str) -> str | None:
    """``path`` relative to ``root``, or None when it is not inside it."""
    root = normalize_workspace_path(root)
    path = normalize_workspace_path(path)
    if path == root:
        return ""
    if path.startswith(root + "/"):
        return path[len(root) + 1 :]
    return None


def join_workspace(root: str, rel: str) -> str:
    """``root/rel`` as a normalised workspace path; ``rel`` may never leave ``root``."""
    if not rel:
        return root
    if rel.startswith("/") or any(part in (".", "..") for part in rel.split("/")):
        raise ValueError(f"{rel!r} is not a path inside {root}")
    return normalize_workspace_path(posixpath.join(root, rel))
