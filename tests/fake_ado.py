"""A local fake Azure DevOps organization for the endpoints ``ado ensure-environments`` uses.

It speaks exactly what the ``azure-devops`` 7.1.0b4 client sends, discovery included:

* ``OPTIONS <area url>/_apis`` — the API resource locations (route templates, versions);
* ``GET <org>/_apis/ResourceAreas`` — where each area lives (identities on a separate
  ``/vssps/<org>`` host path, as on dev.azure.com, so discovery really matters);
* environments (``distributedtask/environments``), check configurations
  (``pipelines/checks/configurations``) and identities (``identities?searchFilter=General``).

Environments and checks live in memory; every request is recorded (method, path, query,
parsed JSON body) so tests can assert what the client really sent.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

LOCATION_AREA = "e81700f7-3be2-46de-8624-2eb35882fcaa"
AREAS = {
    "task_agent": "a85b8835-c1a1-4aac-ae97-1c3d0ba72dbd",
    "pipelines_checks": "4a933897-0488-45af-bd82-6fd3ad33f46a",
    "identity": "8a3d49b8-91f0-46ef-b33d-dda338c25db3",
}
LOCATIONS = [
    (LOCATION_AREA, "Location", "ResourceAreas", "_apis/{resource}/{areaId}"),
    (
        "8572b1fc-2482-47fa-8f74-7e3ed53ee54b",
        "distributedtask",
        "environments",
        "{project}/_apis/{area}/{resource}/{environmentId}",
    ),
    (
        "86c8381e-5aee-4cde-8ae4-25c0c7f5eaea",
        "PipelinesChecks",
        "configurations",
        "{project}/_apis/pipelines/checks/{resource}/{id}",
    ),
    ("28010c54-d0c0-4c89-a5b0-1c9e188b9fb7", "IMS", "Identities", "_apis/{resource}/{identityId}"),
]
# The body dev.azure.com sends with a 401 when X-TFS-FedAuthRedirect is suppressed.
UNAUTHORIZED = {
    "$id": "1",
    "innerException": None,
    "message": "TF400813: The user '' is not authorized to access this resource.",
    "typeName": "Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException, "
    "Microsoft.TeamFoundation.Framework.Server",
    "typeKey": "UnauthorizedRequestException",
    "errorCode": 0,
    "eventId": 3000,
}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeAzureDevOps:
    """The fake organization. ``url`` is the organization URL to hand to the client."""

    org: str = "contoso"
    project: str = "sales"
    pat: str | None = "fake-pat-0123456789abcdef"
    bearer: str | None = None
    identities: dict[str, str] = field(
        default_factory=lambda: {
            "data-leads@example.com": "6f1f6a3e-0000-4000-8000-000000000001",
            "ann@example.com": "6f1f6a3e-0000-4000-8000-000000000002",
        }
    )
    environments: dict[int, dict[str, Any]] = field(default_factory=dict)
    checks: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    # -- lifecycle --

    def start(self) -> FakeAzureDevOps:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PATCH = do_OPTIONS = do_DELETE = _handle

        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.host}/{self.org}"

    @property
    def vssps_url(self) -> str:
        return f"{self.host}/vssps/{self.org}"

    # -- test helpers --

    def writes(self) -> list[Recorded]:
        """Requests that would change something."""
        return [r for r in self.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]

    def add_environment(self, name: str) -> dict[str, Any]:
        env = {"id": len(self.environments) + 1, "name": name, "description": ""}
        self.environments[env["id"]] = env
        return env

    # -- dispatch --

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        path = unquote(url.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self._lock:
            self.requests.append(Recorded(h.command, path, query, body))
            if not self._authorized(h.headers.get("Authorization", "")):
                return _send(h, 401, UNAUTHORIZED)
            status, payload = self._route(h.command, path, query, body)
        _send(h, status, payload)

    def _authorized(self, header: str) -> bool:
        if self.bearer is not None and header == f"Bearer {self.bearer}":
            return True
        if self.pat is not None:
            basic = base64.b64encode(f":{self.pat}".encode()).decode()
            return header == f"Basic {basic}"
        return False

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        org, project = self.org, self.project
        if method == "OPTIONS" and path in (f"/{org}/_apis", f"/vssps/{org}/_apis"):
            return 200, _collection([_location(*loc) for loc in LOCATIONS])
        if method == "GET" and path == f"/{org}/_apis/ResourceAreas":
            areas = [
                {"id": AREAS["task_agent"], "name": "distributedtask", "locationUrl": self.url},
                {
                    "id": AREAS["pipelines_checks"],
                    "name": "PipelinesChecks",
                    "locationUrl": self.url,
                },
                {"id": AREAS["identity"], "name": "IMS", "locationUrl": self.vssps_url},
            ]
            return 200, _collection(areas)
        if path == f"/{org}/{project}/_apis/distributedtask/environments":
            if method == "GET":
                name = query.get("name")
                found = [
                    e
                    for e in self.environments.values()
                    if name is None or e["name"].lower() == name.lower()
                ]
                return 200, _collection(found)
            if method == "POST":
                if any(
                    e["name"].lower() == body["name"].lower() for e in self.environments.values()
                ):
                    return 409, {"message": "Environment already exists"}
                env = self.add_environment(body["name"])
                env["description"] = body.get("description", "")
                return 200, env
        if path == f"/{org}/{project}/_apis/pipelines/checks/configurations":
            if method == "GET":
                found = [
                    _with_settings(c, query.get("$expand") == "settings")
                    for c in self.checks.values()
                    if c["resource"]["type"] == query.get("resourceType")
                    and str(c["resource"]["id"]) == query.get("resourceId")
                ]
                return 200, _collection(found)
            if method == "POST":
                check = dict(body, id=len(self.checks) + 1)
                self.checks[check["id"]] = check
                return 200, check
        m = re.fullmatch(rf"/{org}/{project}/_apis/pipelines/checks/configurations/(\d+)", path)
        if m and method == "PATCH":
            check_id = int(m.group(1))
            if check_id not in self.checks:
                return 404, {"message": "check not found"}
            self.checks[check_id] = dict(body, id=check_id)
            return 200, self.checks[check_id]
        if method == "GET" and path == f"/vssps/{org}/_apis/Identities":
            who = query.get("filterValue", "")
            ident = self.identities.get(who)
            found = [{"id": ident, "providerDisplayName": who, "isActive": True}] if ident else []
            return 200, _collection(found)
        return 404, {"message": f"fake Azure DevOps has no {method} {path}"}


def _location(loc_id: str, area: str, resource: str, template: str) -> dict[str, Any]:
    return {
        "id": loc_id,
        "area": area,
        "resourceName": resource,
        "routeTemplate": template,
        "resourceVersion": 1,
        "minVersion": "1.0",
        "maxVersion": "7.1",
        "releasedVersion": "7.0",
    }


def _collection(items: list[Any]) -> dict[str, Any]:
    return {"count": len(items), "value": items}


def _with_settings(check: dict[str, Any], expand: bool) -> dict[str, Any]:
    return check if expand else {k: v for k, v in check.items() if k != "settings"}


def _send(h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json; charset=utf-8")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)
