"""A token service on 127.0.0.1 for the real docker-registry's `auth: token` mode: the Bearer login of the
distribution spec (docs/spec/auth/token.md and jwt.md in distribution v2.8), which Docker Hub and ghcr.io use and
docker-registry's htpasswd mode cannot show. The registry answers 401 with `WWW-Authenticate: Bearer realm=...,
service=..., scope=...`; the client asks the realm for a token for that scope (anonymously, or with Basic
credentials); the registry checks the token's signature against the certificate it was configured with
(`rootcertbundle`), its issuer, audience, lifetime and the access it grants.

The tokens are JWTs signed with ES256 by a key whose self-signed certificate (made here with `cryptography`)
travels in the header's `x5c`, which distribution 2.8 verifies against that bundle (registry/auth/token/
token.go@v2.8.2, verifySigningKey). What it grants, as Docker Hub does: anyone may pull the repositories under
`public/`; USER with PASSWORD may pull and push everywhere; a wrong password is refused with 401; an anonymous
request for more than pull gets a token for what it may have (the registry then refuses the rest)."""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

SERVICE, ISSUER = "epbuild-test-registry", "epbuild-test-token-service"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    def __init__(self, folder: Path, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.bundle = folder / "token-root.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict[str, object]] = []
        """Each token request: the scopes asked for, the login used (None: anonymous), what was granted."""
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                status, body = service.answer(query, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def registry_settings(self) -> str:
        """The registry's `auth: token` settings, as a YAML flow mapping."""
        return (f"{{realm: 'http://127.0.0.1:{self.port}/token', service: {SERVICE}, issuer: {ISSUER}, "
                f"rootcertbundle: '{self.bundle}'}}")

    def answer(self, query: dict[str, list[str]], authorization: str | None) -> tuple[int, dict[str, object]]:
        login = None
        if authorization:
            scheme, _, encoded = authorization.partition(" ")
            user, _, password = base64.b64decode(encoded).decode().partition(":")
            if scheme.lower() != "basic" or (user, password) != (self.user, self.password):
                self.requests.append({"scopes": query.get("scope", []), "login": user, "granted": None})
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": f"wrong password for {user}"}]}
            login = user
        if query.get("service") != [SERVICE]:
            return 400, {"errors": [{"code": "DENIED", "message": f"unknown service {query.get('service')}"}]}
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":")
            allowed = set(actions.split(",")) if login else {"pull"} if name.startswith("public/") else set()
            granted = [a for a in actions.split(",") if a in allowed]
            if granted:
                access.append({"type": kind, "name": name, "actions": granted})
        self.requests.append({"scopes": query.get("scope", []), "login": login, "granted": access})
        token = self.token(login or "", access)
        return 200, {"token": token, "access_token": token, "expires_in": 300}

    def token(self, subject: str, access: list[dict[str, object]]) -> str:
        leaf = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        header = {"typ": "JWT", "alg": "ES256", "x5c": [leaf]}
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def stop(self) -> None:
        self.server.shutdown()
