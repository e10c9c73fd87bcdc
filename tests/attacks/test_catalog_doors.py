"""Attacks on catalog writes: an outsider or a shopper creating products, hostile images and
free products, admin rights by registration. Through the gateway and straight at product;
and no shipped configuration (compose, both Kubernetes overlays) opens the door again."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from tests.attacks.auth_stack import PASSWORD, attack_stack  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
SEED_FORM = "name=prod1&slug={slug}&image=product1.jpg&price=100"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _product(**changes: object) -> dict[str, object]:
    return {"name": "Loot", "slug": f"loot-{secrets.token_hex(3)}", "price": "9.99", **changes}


def test_nobody_writes_the_catalog_without_a_token(attack_stack):  # noqa: F811
    for base in (attack_stack.gateway, attack_stack.product):
        as_json = requests.post(f"{base}/api/v1/products", json=_product(), timeout=10)
        as_form = requests.post(f"{base}/api/v1/products", data=_product(), timeout=10)
        seed_form = requests.post(f"{base}/api/product/create", headers=FORM, timeout=10,
                                  data=SEED_FORM.format(slug=f"s-{secrets.token_hex(3)}"))
        assert [r.status_code for r in (as_json, as_form, seed_form)] == [401, 401, 401], base
        assert as_json.json()["error"]["code"] == "missing_token"


def test_a_shoppers_token_writes_nothing(attack_stack):  # noqa: F811
    token = attack_stack.shopper_token()
    for base in (attack_stack.gateway, attack_stack.product):
        answer = requests.post(f"{base}/api/v1/products", json=_product(), timeout=10,
                               headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "admin_only"


def test_an_admin_made_by_command_writes_the_catalog(attack_stack):  # noqa: F811
    headers = {"Authorization": f"Bearer {attack_stack.admin_token()}"}
    made = requests.post(f"{attack_stack.gateway}/api/v1/products", json=_product(), timeout=10,
                         headers=headers)
    assert made.status_code == 201, made.text
    legacy = requests.post(f"{attack_stack.gateway}/api/product/create", timeout=10,
                           headers={**headers, **FORM},
                           data=SEED_FORM.format(slug=f"s-{secrets.token_hex(3)}"))
    assert legacy.status_code == 201, legacy.text


@pytest.mark.parametrize("changes", [
    {"image": "javascript:alert(document.cookie)"},
    {"image": "data:text/html,<script>alert(1)</script>"},
    {"image": "//evil.example/p.jpg"},
    {"price": "0"},
    {"price": 0},
    {"price": "-5"},
])
def test_hostile_images_and_free_products_are_refused(attack_stack, changes):  # noqa: F811
    headers = {"Authorization": f"Bearer {attack_stack.admin_token()}"}
    for base in (attack_stack.gateway, attack_stack.product):
        answer = requests.post(f"{base}/api/v1/products", json=_product(**changes), timeout=10,
                               headers=headers)
        assert answer.status_code == 422, (base, answer.text)


def test_registering_never_makes_an_admin(attack_stack):  # noqa: F811
    for email in ("admin@breakwater.test", "operator+2@example.com", "root@localhost.test"):
        body = {"email": email, "password": PASSWORD, "name": "A", "membership": "admin"}
        refused = requests.post(f"{attack_stack.gateway}/api/v1/auth/register", json=body, timeout=10)
        assert refused.status_code == 422  # no such field
        body.pop("membership")
        # Even an admin's own call registers a shopper (its token only lifts the address limit).
        made = requests.post(f"{attack_stack.gateway}/api/v1/auth/register", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {attack_stack.admin_token()}"})
        assert made.status_code == 201 and made.json()["membership"] == "standard", made.text


def _kubectl() -> str:
    return str(Path(sys.executable).parent / "kubectl")


def _environments(documents: list[dict]) -> list[dict[str, str]]:
    envs = []
    for doc in documents:
        if doc.get("kind") == "ConfigMap":
            envs.append(doc.get("data") or {})
    return envs


@pytest.mark.parametrize("overlay", ["local", "production-like"])
def test_no_kubernetes_overlay_opens_catalog_writes_or_grants_admin_by_email(overlay):
    kubectl = _kubectl()
    if not Path(kubectl).exists():
        pytest.skip("kubectl is not installed in the virtualenv (make install)")
    rendered = subprocess.run([kubectl, "kustomize", str(ROOT / "deploy/kubernetes/overlays" / overlay)],
                              capture_output=True, text=True, timeout=120, check=True).stdout
    for env in _environments(list(yaml.safe_load_all(rendered))):
        assert "PRODUCT_ADMIN_ONLY_CREATE" not in env and "AUTH_ADMIN_EMAILS" not in env
        assert int(env.get("AUTH_TOKEN_TTL_SECONDS", "900")) <= 900


def test_compose_neither_opens_catalog_writes_nor_grants_admin_by_email():
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in document["services"].items():
        env = service.get("environment") or {}
        assert "PRODUCT_ADMIN_ONLY_CREATE" not in env and "AUTH_ADMIN_EMAILS" not in env, name
        assert int(str(env.get("AUTH_TOKEN_TTL_SECONDS", "900"))) <= 900, name
    assert "ADMIN_EMAILS" not in (ROOT / "deploy/compose/env.example").read_text()
