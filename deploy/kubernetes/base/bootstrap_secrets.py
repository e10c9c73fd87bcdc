"""Create Breakwater's Secrets in the cluster unless they exist (the `bootstrap-secrets` Job).

- `token-keys`: a fresh Ed25519 pair, `token_ed25519.pem` (auth signs) and
  `token_ed25519.pub.pem` (every verifier mounts only this key);
- `<service>-db` for auth, product, cart and order: `username`, `password` (random),
  `database` and the SQLAlchemy `url` the service reads;
- `service-identity`: `order`, the secret order shares with auth for its service token.

An existing Secret is never changed, so Secrets created beforehand (real ones, from a vault)
win and a re-run is harmless. It talks to the API server with the pod's service-account
token over plain HTTPS: the image needs no Kubernetes client library.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.common.tokens import generate_keypair

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_KEYS = "token-keys"
SERVICE_IDENTITY = "service-identity"
PRIVATE_KEY, PUBLIC_KEY = "token_ed25519.pem", "token_ed25519.pub.pem"
# service -> (database and user name, host of its MySQL Service)
DATABASES = {
    "auth": ("auth", "auth-db"),
    "product": ("product", "product-db"),
    "cart": ("cart", "cart-db"),
    "order": ("orders", "order-db"),
}


def database_url(user: str, password: str, host: str, database: str) -> str:
    """The SQLAlchemy URL of a service's MySQL database."""
    return f"mysql+pymysql://{user}:{password}@{host}:3306/{database}?charset=utf8mb4"


def desired_secrets(
    make_password: Callable[[], str] = lambda: secrets.token_urlsafe(24),
    make_keypair: Callable[[], tuple[str, str]] = generate_keypair,
) -> list[dict[str, Any]]:
    """Every Secret the stack needs, freshly generated (only missing ones get created)."""
    private_pem, public_pem = make_keypair()
    documents = [_secret(TOKEN_KEYS, {PRIVATE_KEY: private_pem, PUBLIC_KEY: public_pem}),
                 _secret(SERVICE_IDENTITY, {"order": make_password()})]
    for service, (name, host) in DATABASES.items():
        password = make_password()
        documents.append(_secret(f"{service}-db", {
            "username": name, "password": password, "database": name,
            "url": database_url(name, password, host, name),
        }))
    return documents


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "breakwater",
                                              "app.kubernetes.io/managed-by": "bootstrap-secrets"}},
        "stringData": data,
    }


class Cluster:
    """The few API calls the job makes, as the pod's service account."""

    def __init__(self, account: Path = ACCOUNT) -> None:
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        self.base = f"https://{host}:{port}"
        self.namespace = (account / "namespace").read_text().strip()
        self.token = (account / "token").read_text().strip()
        self.context = ssl.create_default_context(cafile=str(account / "ca.crt"))

    def _call(self, method: str, path: str, body: Any = None) -> int:
        request = urllib.request.Request(
            self.base + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def secret_exists(self, name: str) -> bool:
        status = self._call("GET", f"/api/v1/namespaces/{self.namespace}/secrets/{name}")
        if status not in (200, 404):
            raise RuntimeError(f"reading secret {name} answered {status}")
        return status == 200

    def create_secret(self, document: dict[str, Any]) -> None:
        status = self._call("POST", f"/api/v1/namespaces/{self.namespace}/secrets", document)
        if status not in (201, 409):  # 409: another run created it meanwhile
            raise RuntimeError(f"creating secret {document['metadata']['name']} answered {status}")


def main() -> int:
    """Create whatever Secret is missing; say what was kept."""
    cluster = Cluster()
    for document in desired_secrets():
        name = document["metadata"]["name"]
        if cluster.secret_exists(name):
            print(f"secret {name}: exists, kept")
        else:
            cluster.create_secret(document)
            print(f"secret {name}: created")
    return 0


if __name__ == "__main__":
    sys.exit(main())
