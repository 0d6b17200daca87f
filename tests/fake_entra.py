"""A local fake of the two endpoints ``AzurePipelinesCredential`` talks to.

* the Azure DevOps OIDC endpoint (``SYSTEM_OIDCREQUESTURI``): POST with the run's
  ``System.AccessToken`` as bearer → ``{"oidcToken": ...}``;
* the Entra ID token endpoint ``/<tenant>/oauth2/v2.0/token``: a client-credentials grant
  with the OIDC token as ``client_assertion`` → an access token.

azure-identity refuses a non-https authority, so the server speaks TLS with a self-signed
certificate made at start-up; the credential is pointed at it with ``authority=`` and
``connection_verify=<ca file>`` (both passed through to azure-core).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse


def make_self_signed(directory: Path) -> tuple[Path, Path]:
    """Write a certificate for 127.0.0.1 and its key; return (cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class FakeEntra:
    """Fake OIDC + token endpoints; every request is recorded in ``requests``."""

    system_access_token: str
    oidc_token: str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzYzovL29yZy9wcm9qL3NjIn0."
    expires_in: int = 3600
    fail_token_with: tuple[int, dict[str, Any]] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    issued: int = 0

    def start(self, directory: Path) -> None:
        self.cafile, key = make_self_signed(directory)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                url = urlparse(self.path)
                fake.requests.append(
                    {
                        "path": url.path,
                        "query": parse_qs(url.query),
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                if url.path == "/oidc":
                    if self.headers.get("Authorization") != f"Bearer {fake.system_access_token}":
                        return self._json(401, {"message": "bad System.AccessToken"})
                    return self._json(200, {"oidcToken": fake.oidc_token})
                if url.path.endswith("/oauth2/v2.0/token"):
                    form = {k: v[0] for k, v in parse_qs(body).items()}
                    if fake.fail_token_with:
                        return self._json(*fake.fail_token_with)
                    if form.get("client_assertion") != fake.oidc_token:
                        return self._json(400, {"error": "invalid_client"})
                    fake.issued += 1
                    return self._json(
                        200,
                        {
                            "token_type": "Bearer",
                            "access_token": f"entra-token-{fake.issued}",
                            "expires_in": fake.expires_in,
                        },
                    )
                self._json(404, {"error": "not_found"})

            def _json(self, status: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cafile, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def token_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/oauth2/v2.0/token")]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
