"""`EmulatorControl`: the emulator's control API over HTTP, for an emulator in another process."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

from dbx_promote.emulator.control import Fault, JobRule
from dbx_promote.emulator.store import ApiError


class EmulatorControl:
    """Drive a running emulator's ``/_emulator/`` control API at ``url``.

    Methods mirror `Emulator`'s controls. A refused request raises `ApiError` with the
    status and ``error_code`` the emulator sent; an unreachable emulator raises `OSError`.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        # The emulator is local: never send control calls through an HTTP proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(
        self,
        method: str,
        name: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> bytes:
        url = f"{self.url}/_emulator/{name}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                err = json.loads(raw)
                raise ApiError(exc.code, err["error_code"], err["message"]) from None
            except (ValueError, KeyError, TypeError):
                raise ApiError(exc.code, "UNKNOWN", raw.decode(errors="replace")) from None

    def _json(self, method: str, name: str, **kwargs: Any) -> Any:
        return json.loads(self._call(method, name, **kwargs))

    def reset(self, settings: bool = False) -> None:
        """Empty the tree (roots kept); clear faults, counters and log; settings optional."""
        self._call("POST", "reset", {"settings": settings})

    def add_fault(self, fault: Fault) -> None:
        """Arm a `Fault`."""
        self._call("POST", "faults", fault.to_dict())

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self._call("DELETE", "faults")

    def set_latency(self, ms: float) -> None:
        """Delay every counted request by ``ms`` milliseconds."""
        self._call("POST", "settings", {"latency_ms": ms})

    def set_import_rate_limit(self, per_second: float | None) -> None:
        """Answer imports above ``per_second`` with 429 (None: no limit)."""
        self._call("POST", "settings", {"import_rate_limit": per_second})

    def set_directory_import(self, mode: str) -> None:
        """Accept directory imports, refuse them (400), or land them with one notebook
        missing (``accept``, ``refuse``, ``drop-one``)."""
        self._call("POST", "settings", {"directory_import": mode})

    def add_job_rule(self, rule: JobRule) -> None:
        """Arm a `JobRule` that scripts the outcome of matching notebook task runs."""
        self._call("POST", "jobs/rules", rule.to_dict())

    def clear_job_rules(self) -> None:
        """Disarm every job rule."""
        self._call("DELETE", "jobs/rules")

    def configure_jobs(
        self,
        start_delay_s: float | None = None,
        clusters: Iterable[str] | None = None,
        execute: bool | None = None,
    ) -> None:
        """Set the runs' start delay, the existing cluster ids, or notebook execution."""
        body: dict[str, Any] = {"start_delay_s": start_delay_s, "execute": execute}
        body["clusters"] = None if clusters is None else list(clusters)
        self._call("POST", "jobs/settings", body)

    def job_settings(self) -> dict[str, Any]:
        """``{"start_delay_s", "clusters", "execute"}`` as they are now."""
        return dict(self._json("GET", "jobs/settings"))

    def job_runs(self) -> list[dict[str, Any]]:
        """Every one-time run since the last reset, oldest first, as ``runs/get`` shows it."""
        return list(self._json("GET", "jobs/runs"))

    def counters(self) -> dict[str, Any]:
        """Request counts since the last reset."""
        return dict(self._json("GET", "counters"))

    def request_log(self) -> list[dict[str, Any]]:
        """Every counted request since the last reset."""
        return list(self._json("GET", "log"))

    def tree(self, root: str = "/") -> dict[str, dict[str, Any]]:
        """Every object at or under ``root`` with type, language, id, size, sha256, times."""
        return dict(self._json("GET", "tree", query={"root": root}))

    def read(self, path: str) -> bytes:
        """Stored bytes of a notebook or file; `ApiError` 404 if missing."""
        return self._call("GET", "read", query={"path": path})

    def hand_edit(self, path: str, content: bytes | None = None) -> None:
        """Edit an object as a person in the UI would; `ApiError` 404 if missing."""
        body: dict[str, Any] = {"path": path}
        if content is not None:
            body["content_b64"] = base64.b64encode(content).decode("ascii")
        self._call("POST", "hand-edit", body)

    def add_principal(self, spec: str) -> None:
        """Add a principal ``TOKEN=NAME[:GROUP,...]``; ACLs are enforced from then on."""
        self._call("POST", "principals", {"spec": spec})

    def principals(self) -> list[dict[str, Any]]:
        """The configured principals: name, kind (user or service_principal), groups."""
        return list(self._json("GET", "principals"))

    def clear_principals(self) -> None:
        """Forget every principal: every token is an admin again."""
        self._call("DELETE", "principals")
