"""The emulator's HTTP server: Workspace API 2.0, SCIM Me, host metadata and controls.

`Emulator` owns a `Store` (the tree), `Controls` (faults, latency, rate limit, stats) and a
`ThreadingHTTPServer`. Every response is JSON in the service's error shape when it fails;
an unexpected exception becomes a 500 ``INTERNAL_ERROR`` body, never a traceback.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import posixpath
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from dbx_promote.emulator.control import Controls, Fault, JobRule, jobs_control
from dbx_promote.emulator.jobs import Jobs, jobs_endpoint
from dbx_promote.emulator.permissions import PREFIX as PERMISSIONS_PREFIX
from dbx_promote.emulator.permissions import Acls
from dbx_promote.emulator.principals import ADMINS, Principal, Principals, parse_principal
from dbx_promote.emulator.store import (
    EXPORT_FORMATS,
    IMPORT_FORMATS,
    LANGUAGES,
    ApiError,
    ImportRequest,
    Store,
    WsPath,
    decode_b64,
    invalid,
    parse_path,
)

log = logging.getLogger("dbx_promote.emulator")

API_PREFIX = "/api/2.0/"
WORKSPACE_PREFIX = "/api/2.0/workspace/"
CLUSTERS_GET = "/api/2.1/clusters/get"  # what the SDK's clusters.get calls
CONTROL_PREFIX = "/_emulator/"
SCIM_ME = "preview/scim/v2/Me"
MAX_BODY_BYTES = 64 * 1024 * 1024

# endpoint -> allowed method
WORKSPACE_ENDPOINTS = {
    "get-status": "GET",
    "list": "GET",
    "export": "GET",
    "mkdirs": "POST",
    "import": "POST",
    "delete": "POST",
}


class Emulator:
    """A local Databricks workspace that the real SDK talks to over HTTP.

    ``state_dir`` keeps the tree in ``<state_dir>/workspace.db`` across restarts (in
    memory when None). ``user`` is the SCIM ``userName`` and names ``/Users/<user>``.
    ``clusters`` are the existing cluster ids one-time runs may use (serverless always
    works); runs stay PENDING for ``run_start_delay_s``; ``execute_notebooks=False``
    runs no notebook (every run follows the job rules, else SUCCESS).
    ``principals`` (`Principal` or ``TOKEN=NAME[:GROUP,...]``) makes each listed token a
    user or service principal and turns ACL enforcement on; without them every token is
    ``user``, an admin.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str] | None = None,
        user: str = "emulator@example.com",
        latency_ms: float = 0.0,
        import_rate_limit: float | None = None,
        workspace_id: str = "424242",
        clusters: Iterable[str] = (),
        run_start_delay_s: float = 0.0,
        execute_notebooks: bool = True,
        principals: Iterable[Principal | str] = (),
    ) -> None:
        self.user = user
        self.workspace_id = workspace_id
        self.store = Store(state_dir, user)
        self.controls = Controls(latency_ms, import_rate_limit)
        self.jobs = Jobs(
            self.store,
            user,
            lambda: self.url,
            workspace_id,
            clusters=clusters,
            start_delay_s=run_start_delay_s,
            execute=execute_notebooks,
        )
        self.principals = Principals()
        self.acls = Acls(self.store, self.principals)
        for principal in principals:
            self.add_principal(principal)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stop_requested = threading.Event()

    # --- lifecycle -----------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        """Bind ``host:port`` (0: a free port) and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        server = _Server((host, port), _Handler)
        server.emulator = self
        self._server = server
        self._stop_requested.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._server is None:
            raise RuntimeError("emulator not started")
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving and close the database; safe to call twice."""
        self._stop_requested.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.jobs.reset()
        self.store.close()

    def serve_forever(self, host: str = "127.0.0.1", port: int = 8765) -> None:
        """Serve until `request_stop` or `stop` is called (starting first if needed), then stop."""
        if self._server is None:
            self.start(host, port)
        try:
            while not self._stop_requested.wait(0.2):
                pass
        finally:
            self.stop()

    def request_stop(self) -> None:
        """Make `serve_forever` return; safe from a signal handler."""
        self._stop_requested.set()

    def __enter__(self) -> Emulator:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- controls ------------------------------------------------------------------------

    def reset(self, settings: bool = False) -> None:
        """Empty the tree (roots kept); clear faults, counters, log, runs and job rules.

        With ``settings``, also latency, rate limit, the jobs settings and the principals
        (back to every token being an admin).
        """
        if settings:
            self.clear_principals()
        self.jobs.reset(settings=settings)
        self.store.reset()
        self.controls.reset(settings=settings)

    # --- principals ----------------------------------------------------------------------

    def add_principal(self, principal: Principal | str) -> Principal:
        """Add a principal (or ``TOKEN=NAME[:GROUP,...]``); its ``/Users/NAME`` home is made.

        Raises ValueError for a malformed spec.
        """
        if isinstance(principal, str):
            principal = parse_principal(principal)
        self.principals.add(principal)
        self.store.set_homes([p.name for p in self.principals.all()])
        return principal

    def clear_principals(self) -> None:
        """Forget every principal: every token is an admin again."""
        self.principals.clear()
        self.store.set_homes([])

    def caller(self, token: str) -> Principal | None:
        """Who ``token`` is: a listed principal, the admin ``user`` in open mode, else None."""
        if not self.principals.enforcing:
            return Principal(token, self.user, (ADMINS,))
        return self.principals.lookup(token)

    def add_fault(self, fault: Fault) -> None:
        """Arm a `Fault`."""
        self.controls.add_fault(fault)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self.controls.clear_faults()

    def set_latency(self, ms: float) -> None:
        """Delay every counted request by ``ms`` milliseconds."""
        self.controls.set_latency(ms)

    def set_import_rate_limit(self, per_second: float | None) -> None:
        """Answer imports above ``per_second`` with 429 (None: no limit)."""
        self.controls.set_import_rate_limit(per_second)

    def set_directory_import(self, mode: str) -> None:
        """Accept directory imports, refuse them (400), or land them with one notebook
        missing (``accept``, ``refuse``, ``drop-one``)."""
        self.controls.set_directory_import(mode)

    def add_job_rule(self, rule: JobRule) -> None:
        """Arm a `JobRule` that scripts the outcome of matching notebook task runs."""
        self.jobs.add_rule(rule)

    def clear_job_rules(self) -> None:
        """Disarm every job rule."""
        self.jobs.clear_rules()

    def configure_jobs(
        self,
        start_delay_s: float | None = None,
        clusters: Iterable[str] | None = None,
        execute: bool | None = None,
    ) -> None:
        """Set the runs' start delay, the existing cluster ids, or notebook execution."""
        self.jobs.configure(start_delay_s, clusters, execute)

    def job_settings(self) -> dict[str, Any]:
        """``{"start_delay_s", "clusters", "execute"}`` as they are now."""
        return self.jobs.settings()

    def job_runs(self) -> list[dict[str, Any]]:
        """Every one-time run since the last reset, oldest first, as ``runs/get`` shows it."""
        return self.jobs.runs()

    def counters(self) -> dict[str, Any]:
        """Request counts since the last reset (Workspace API and SCIM only)."""
        return self.controls.counters()

    def request_log(self) -> list[dict[str, Any]]:
        """Every counted request since the last reset."""
        return self.controls.request_log()

    def tree(self, root: str = "/") -> dict[str, dict[str, Any]]:
        """Every object at or under ``root`` with type, language, id, size, sha256, times."""
        return self.store.tree(root)

    def read(self, path: str) -> bytes:
        """Stored bytes of a notebook or file; raises `ApiError` (404) if missing."""
        return self.store.read(path)

    def hand_edit(self, path: str, content: bytes | None = None) -> None:
        """Edit an object as a person in the UI would; raises `ApiError` (404) if missing."""
        self.store.hand_edit(path, content)

    def backdate(self, path: str, seconds: float) -> None:
        """Make ``path`` look last written ``seconds`` ago; raises `ApiError` (404) if missing."""
        self.store.backdate(path, seconds)

    def scim_me(self, caller: Principal | None = None) -> dict[str, Any]:
        """The SCIM ``Me`` document for ``caller`` (default: the configured user, an admin)."""
        return (caller or Principal("", self.user, (ADMINS,))).scim_me()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    emulator: Emulator


class _Drop(Exception):
    """Close the connection without a response."""


def _json_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(
            400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request"
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "MALFORMED_REQUEST",
            "Invalid JSON given in the body of the request - expected a map",
        )
    return data


def _parse_multipart(raw: bytes, content_type: str) -> tuple[dict[str, str], dict[str, bytes]]:
    """Split multipart/form-data into text fields and file parts (by field name)."""
    boundary = ""
    for piece in content_type.split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        raise ApiError(400, "MALFORMED_REQUEST", "multipart/form-data without a boundary")
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    delimiter = b"--" + boundary.encode("latin-1")
    for part in raw.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n")
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            raise ApiError(400, "MALFORMED_REQUEST", "Malformed multipart/form-data part")
        data = data.removesuffix(b"\r\n")
        name = filename = None
        for line in head.decode("latin-1").split("\r\n"):
            header, _, value = line.partition(":")
            if header.strip().lower() != "content-disposition":
                continue
            for item in value.split(";"):
                k, _, v = item.strip().partition("=")
                if k == "name":
                    name = v.strip('"')
                elif k == "filename":
                    filename = v.strip('"')
        if name is None:
            continue
        if filename is not None:
            files[name] = data
        else:
            fields[name] = data.decode("utf-8", errors="replace")
    return fields, files


def _bool(value: Any, name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid(f"Field '{name}' must be a boolean.")


def _enum(value: Any, allowed: tuple[str, ...], name: str, default: str | None) -> str | None:
    if value is None or value == "":
        return default
    if not isinstance(value, str) or value not in allowed:
        raise invalid(
            f"Invalid value for '{name}': {value!r}; expected one of {', '.join(allowed)}."
        )
    return value


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dbx-promote-emulator"
    # A client that stalls mid-request must not hold a thread forever.
    timeout = 60
    server: _Server
    # (method, endpoint, path) of a counted request whose response is not yet sent.
    _pending: tuple[str, str, str | None, float] | None = None
    _fault: bool = False
    # An `after` fault: the request is applied, and its real answer thrown away.
    _discard: bool = False
    _jobs_endpoint: str | None = None

    # --- plumbing ----------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle plus delayed
        # ACKs add ~40 ms to keep-alive requests.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise _Drop()
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length_header = self.headers.get("Content-Length")
        if not length_header:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise _Drop() from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise _Drop()
        return self.rfile.read(length)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        if self._discard:
            return
        # Count the request before the client can see the response, so a test that
        # reads the counters right after a call always sees that call.
        self._flush_record(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _flush_record(self, status: int) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            method, endpoint, path, started = pending
            self.server.emulator.controls.record(
                method, endpoint, path, status, self._fault, started
            )

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), headers=headers)

    # --- dispatch ----------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        self._pending = None
        self._fault = False
        emu = self.server.emulator
        url = urlsplit(self.path)
        route = url.path
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            body = self._read_body()
        except (_Drop, ValueError):
            self.close_connection = True
            return
        if route.startswith(CONTROL_PREFIX):
            self._control(emu, method, route[len(CONTROL_PREFIX) :], query, body)
            return
        if route == "/.well-known/databricks-config":
            # oidc_endpoint makes the SDK set discovery_url; PAT auth never fetches it.
            self._send_json(
                200, {"workspace_id": emu.workspace_id, "oidc_endpoint": f"{emu.url}/oidc"}
            )
            return
        if (
            not route.startswith(API_PREFIX)
            and jobs_endpoint(route) is None
            and route != CLUSTERS_GET
        ):
            self._send_json(
                404,
                {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for '{route}'"},
            )
            return
        self._api(emu, method, route, query, body)

    def _api(
        self, emu: Emulator, method: str, route: str, query: dict[str, str], body: bytes
    ) -> None:
        self._jobs_endpoint = jobs_endpoint(route)
        endpoint = self._endpoint_name(route)
        call = _Call(emu, method, endpoint, query, body, self.headers.get("Content-Type", ""))
        counted, path = self._count_key(call)
        self._pending = (method, counted, path, time.time())
        try:
            if emu.controls.latency_ms > 0:
                time.sleep(emu.controls.latency_ms / 1000.0)
            caller = self._authenticate(emu)
            injected = emu.controls.fault_for(counted, path, method)
            if injected is not None:
                self._inject(injected, caller, call)
                return
            self._endpoint(caller, call)
        except _Drop:
            self.close_connection = True
        except ApiError as exc:
            headers = {"Retry-After": "1"} if exc.status == 429 else None
            self._send_json(exc.status, exc.body(), headers=headers)
        except Exception as exc:  # never a traceback or a hung connection
            log.exception("emulator: internal error on %s %s", method, route)
            self._send_json(
                500,
                {
                    "error_code": "INTERNAL_ERROR",
                    "message": f"Emulator internal error: {type(exc).__name__}",
                },
            )
        finally:
            self._flush_record(0)  # only still pending when no response was sent

    def _endpoint_name(self, route: str) -> str:
        """The endpoint a route names: ``jobs/runs/get``, ``clusters/get``, ``list``..."""
        if self._jobs_endpoint is not None:
            return "jobs/" + self._jobs_endpoint
        if route == CLUSTERS_GET:
            return "clusters/get"
        if route.startswith(WORKSPACE_PREFIX):
            return route[len(WORKSPACE_PREFIX) :]
        return route[len(API_PREFIX) :]

    def _count_key(self, call: _Call) -> tuple[str, str | None]:
        """(endpoint as counted, workspace path or None) of a request, for counters and faults."""
        if call.endpoint.startswith(PERMISSIONS_PREFIX):
            return call.emu.acls.route_key(call.endpoint)
        if self._jobs_endpoint:
            return call.endpoint, None
        return call.endpoint, _peek_path(call.method, call.query, call.body, call.content_type)

    def _authenticate(self, emu: Emulator) -> Principal:
        auth = self.headers.get("Authorization", "").strip()
        if not auth or auth.lower() in ("bearer", "basic"):
            raise ApiError(
                401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type"
            )
        caller = emu.caller(auth.split(" ", 1)[-1].strip())
        if caller is None:
            raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")
        return caller

    def _inject(self, injected: Fault, caller: Principal, call: _Call) -> None:
        """Answer with an armed fault (after applying the request, when it says so)."""
        self._fault = True
        if injected.after:
            self._apply_then_discard(caller, call)
        if injected.drop:
            raise _Drop()
        extra = {}
        if injected.retry_after is not None:
            extra["Retry-After"] = str(injected.retry_after)
        self._send_json(
            injected.status,
            {"error_code": injected.error_code, "message": injected.message},
            headers=extra,
        )

    def _apply_then_discard(self, caller: Principal, call: _Call) -> None:
        """Handle the request for real but send nothing: "it landed, the answer was lost"."""
        self._discard = True
        try:
            self._endpoint(caller, call)
        except ApiError:
            pass
        finally:
            self._discard = False

    def _endpoint(self, caller: Principal, call: _Call) -> None:
        emu, method, endpoint, body = call.emu, call.method, call.endpoint, call.body
        if self._jobs_endpoint is not None:
            data = _json_body(body) if method == "POST" else {}
            self._send_json(200, emu.jobs.handle(method, self._jobs_endpoint, call.query, data))
        elif endpoint == "clusters/get":
            self._send_json(200, _cluster(emu, method, call.query.get("cluster_id", "")))
        elif endpoint == SCIM_ME:
            if method != "GET":
                raise _method_not_allowed(method, endpoint)
            self._send_json(200, emu.scim_me(caller))
        elif endpoint.startswith(PERMISSIONS_PREFIX):
            data = _json_body(body) if method in ("PUT", "PATCH") else {}
            self._send_json(200, emu.acls.handle(caller, method, endpoint, data))
        else:
            self._workspace(caller, call)

    def _workspace(self, caller: Principal, call: _Call) -> None:
        """The Workspace API: one handler per endpoint, after the method is checked."""
        method, endpoint = call.method, call.endpoint
        allowed = WORKSPACE_ENDPOINTS.get(endpoint)
        if allowed is None:
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /{endpoint}'")
        if method != allowed and not (allowed == "GET" and method == "HEAD"):
            raise _method_not_allowed(method, endpoint)
        handlers = {
            "get-status": self._get_status,
            "list": self._list,
            "export": self._export,
            "mkdirs": self._mkdirs,
            "delete": self._delete,
        }
        handlers.get(endpoint, self._import)(caller, call)

    def _get_status(self, caller: Principal, call: _Call) -> None:
        ws = parse_path(call.query.get("path"))
        call.emu.acls.check_read(caller, ws)
        self._send_json(200, call.emu.store.get_status(ws))

    def _list(self, caller: Principal, call: _Call) -> None:
        after = call.query.get("notebooks_modified_after")
        try:
            after_ms = int(after) if after not in (None, "") else None
        except ValueError:
            raise invalid(f"Invalid value for 'notebooks_modified_after': {after!r}") from None
        ws = parse_path(call.query.get("path"))
        call.emu.acls.check_read(caller, ws)
        objects = call.emu.store.list(ws, after_ms)
        self._send_json(200, {"objects": objects} if objects else {})

    def _export(self, caller: Principal, call: _Call) -> None:
        ws = parse_path(call.query.get("path"))
        fmt = _enum(call.query.get("format"), EXPORT_FORMATS, "format", "SOURCE")
        direct = _bool(call.query.get("direct_download"), "direct_download")
        call.emu.acls.check_read(caller, ws)
        content, file_type = call.emu.store.export(ws, cast(str, fmt))
        if direct:
            self._send(200, content, "application/octet-stream")
            return
        out: dict[str, Any] = {"content": base64.b64encode(content).decode("ascii")}
        if file_type:
            out["file_type"] = file_type
        self._send_json(200, out)

    def _mkdirs(self, caller: Principal, call: _Call) -> None:
        ws = parse_path(_json_body(call.body).get("path"))
        call.emu.acls.check_mkdirs(caller, ws)
        call.emu.store.mkdirs(ws, (caller.principal_key, caller.name))
        self._send_json(200, {})

    def _delete(self, caller: Principal, call: _Call) -> None:
        data = _json_body(call.body)
        ws = parse_path(data.get("path"))
        recursive = _bool(data.get("recursive"), "recursive")
        call.emu.acls.check_write(caller, ws)
        call.emu.store.delete(ws, recursive)
        self._send_json(200, {})

    def _import(self, caller: Principal, call: _Call) -> None:
        emu = call.emu
        request = _import_request(call.body, call.content_type)
        stem = posixpath.splitext(request.path.canonical)[0]
        emu.acls.check_write(caller, request.path, [stem] if request.format == "AUTO" else [])
        if not emu.controls.allow_import():
            raise ApiError(
                429,
                "REQUEST_LIMIT_EXCEEDED",
                f"Rate limit exceeded for workspace import "
                f"({emu.controls.import_rate_limit:g} requests per second).",
            )
        creator = (caller.principal_key, caller.name)
        emu.store.import_(request, emu.controls.directory_import, creator)
        self._send_json(200, {})

    # --- control API ---------------------------------------------------------------------

    def _control(
        self, emu: Emulator, method: str, name: str, query: dict[str, str], body: bytes
    ) -> None:
        try:
            data = _json_body(body) if method == "POST" else {}
            self._control_call(emu, method, name, query, data)
        except ApiError as exc:
            self._send_json(exc.status, exc.body())
        except Exception as exc:
            log.exception("emulator: internal error in control API")
            self._send_json(
                500, {"error_code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"}
            )

    def _control_call(
        self, emu: Emulator, method: str, name: str, query: dict[str, str], data: dict[str, Any]
    ) -> None:
        key = (method, name)
        reads: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "principals"): lambda: [_principal_json(p) for p in emu.principals.all()],
            ("GET", "counters"): emu.counters,
            ("GET", "log"): emu.request_log,
            ("GET", "tree"): lambda: emu.tree(query.get("root") or "/"),
        }
        changes: dict[tuple[str, str], Callable[[], Any]] = {
            ("POST", "reset"): lambda: emu.reset(settings=bool(data.get("settings", False))),
            ("POST", "faults"): lambda: _add_fault(emu, data),
            ("DELETE", "faults"): emu.clear_faults,
            ("POST", "settings"): lambda: _settings(emu, data),
            ("POST", "principals"): lambda: _add_principal(emu, data),
            ("DELETE", "principals"): emu.clear_principals,
            ("POST", "hand-edit"): lambda: _hand_edit(emu, data),
        }
        if key in reads:
            self._send_json(200, reads[key]())
        elif key == ("GET", "read"):
            self._send(200, emu.read(query.get("path", "")), "application/octet-stream")
        elif name.startswith("jobs/"):
            self._send_json(200, jobs_control(emu.jobs, method, name[5:], data))
        elif key in changes:
            changes[key]()
            self._send_json(200, {})
        else:
            raise ApiError(
                404, "ENDPOINT_NOT_FOUND", f"No control API found for '{method} /{name}'"
            )


@dataclass(frozen=True)
class _Call:
    """One Workspace/Jobs/Permissions API request, as the handlers need it."""

    emu: Emulator
    method: str
    endpoint: str
    query: dict[str, str]
    body: bytes
    content_type: str


def _add_fault(emu: Emulator, data: dict[str, Any]) -> None:
    try:
        emu.add_fault(Fault.from_dict(data))
    except (TypeError, ValueError) as exc:
        raise invalid(f"Bad fault: {exc}") from None


def _settings(emu: Emulator, data: dict[str, Any]) -> None:
    try:
        if "latency_ms" in data:
            emu.set_latency(float(data["latency_ms"]))
        if "import_rate_limit" in data:
            limit = data["import_rate_limit"]
            emu.set_import_rate_limit(None if limit is None else float(limit))
        if "directory_import" in data:
            emu.set_directory_import(str(data["directory_import"]))
    except (TypeError, ValueError) as exc:
        raise invalid(f"Bad settings: {exc}") from None


def _add_principal(emu: Emulator, data: dict[str, Any]) -> None:
    try:
        emu.add_principal(data.get("spec") or _principal_spec(data))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise invalid(f"Bad principal: {exc}") from None


def _hand_edit(emu: Emulator, data: dict[str, Any]) -> None:
    raw = data.get("content_b64")
    emu.hand_edit(data.get("path", ""), None if raw is None else decode_b64(raw))


def _cluster(emu: Emulator, method: str, cluster_id: str) -> dict[str, Any]:
    """`clusters/get` of one of the clusters one-time runs may use: always RUNNING."""
    if method != "GET":
        raise _method_not_allowed(method, "clusters/get")
    if cluster_id not in emu.jobs.clusters:
        # The service's shape; the SDK maps it to ResourceDoesNotExist.
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
    return {"cluster_id": cluster_id, "cluster_name": cluster_id, "state": "RUNNING"}


def _principal_spec(data: dict[str, Any]) -> str:
    groups = data.get("groups") or []
    if not isinstance(groups, list):
        raise TypeError("groups must be a list")
    return f"{data['token']}={data['name']}:{','.join(str(g) for g in groups)}"


def _principal_json(p: Principal) -> dict[str, Any]:
    # The token is the caller's secret: the control API never echoes it back.
    kind = "service_principal" if p.is_service_principal else "user"
    return {"name": p.name, "kind": kind, "groups": list(p.groups)}


def _method_not_allowed(method: str, endpoint: str) -> ApiError:
    return ApiError(405, "METHOD_NOT_ALLOWED", f"Method {method} is not allowed on /{endpoint}")


def _peek_path(method: str, query: dict[str, str], body: bytes, content_type: str) -> str | None:
    """The canonical workspace path of a request, for faults and the log; None if absent."""
    raw: Any = query.get("path")
    if raw is None and method == "POST" and body:
        try:
            if content_type.startswith("multipart/form-data"):
                raw = _parse_multipart(body, content_type)[0].get("path")
            else:
                parsed = json.loads(body)
                raw = parsed.get("path") if isinstance(parsed, dict) else None
        except (ApiError, ValueError, UnicodeDecodeError):
            return None
    try:
        return parse_path(raw).canonical
    except ApiError:
        return None


def _import_request(body: bytes, content_type: str) -> ImportRequest:
    """Parse a JSON or multipart import body; raise `ApiError` 400 for bad input."""
    if content_type.startswith("multipart/form-data"):
        fields, files = _parse_multipart(body, content_type)
        data: dict[str, Any] = dict(fields)
        if "content" in files:
            content = files["content"]
        elif "content" in fields:
            content = fields["content"].encode("utf-8")
        else:
            raise invalid("Missing required field: content")
    else:
        data = _json_body(body)
        if "content" not in data:
            raise invalid("Missing required field: content")
        content = decode_b64(data["content"])
    path: WsPath = parse_path(data.get("path"))
    fmt = _enum(data.get("format"), IMPORT_FORMATS, "format", "SOURCE")
    language = _enum(data.get("language"), LANGUAGES, "language", None)
    return ImportRequest(
        path=path,
        content=content,
        format=cast(str, fmt),
        language=language,
        overwrite=_bool(data.get("overwrite"), "overwrite"),
    )
