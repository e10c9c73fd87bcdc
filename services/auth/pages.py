"""The browser page of the seed scenario: `GET/POST /register`, an HTML form with CSRF protection.

CSRF uses a signed double-submit: the form carries a token signed with auth's secret whose
payload is a random nonce also set in an HttpOnly, SameSite=Strict cookie. A post is accepted
only when the signature is valid, not older than the limit, and the nonce matches the cookie,
so another site can neither read nor forge the pair.

Every page answer carries a Content-Security-Policy (nothing but its own nonce-tagged style,
forms posting back here only, never framed: `frame-ancestors 'none'`) and `nosniff`; the cookie
is Secure when the client used HTTPS, whether to auth itself or to the trusted proxy in front.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import Blueprint, Response, current_app, g, render_template, request
from itsdangerous import BadData, URLSafeTimedSerializer
from marshmallow import ValidationError

from services.auth import domain, guard
from services.auth.routes import HASHER_KEY
from services.auth.schemas import RegisterSchema
from services.common.app import FORM_TYPES, accepts
from services.common.errors import Conflict, RateLimited

CSRF_COOKIE = "bw_register_csrf"
CSRF_FIELD = "csrf_token"
CSRF_SECRET_KEY = "auth.csrf_secret"
STALE_FORM = "This form has expired or did not come from this site. Please submit it again."

pages = Blueprint("pages", __name__, template_folder="templates")


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.extensions[CSRF_SECRET_KEY], salt="register-form")


def _csrf_valid(token: str, cookie: str) -> bool:
    max_age = current_app.config["SETTINGS"].csrf_max_age_seconds
    try:
        nonce = _serializer().loads(token, max_age=max_age)
    except BadData:
        return False
    return isinstance(nonce, str) and bool(cookie) and hmac.compare_digest(nonce, cookie)


def _csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


@pages.after_request
def _protect_page(response: Response) -> Response:
    """The page's CSP and sniffing rule, on every answer of this blueprint (errors too)."""
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'nonce-{_csp_nonce()}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _render_form(status: int, *, values: dict[str, str] | None = None,
                 errors: dict[str, list[str]] | None = None, notice: str = "",
                 retry_after: int | None = None) -> Response:
    nonce = secrets.token_urlsafe(32)
    body = render_template(
        "auth/register.html",
        csp_nonce=_csp_nonce(),
        values=values or {},
        errors=errors or {},
        notice=notice,
        csrf_token=_serializer().dumps(nonce),
        csrf_field=CSRF_FIELD,
    )
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    response.set_cookie(
        CSRF_COOKIE, nonce, httponly=True, samesite="Strict", path="/register",
        secure=request.is_secure or guard.caller_used_https(), max_age=current_app.config["SETTINGS"].csrf_max_age_seconds,
    )
    return response


@pages.get("/register")
def register_form() -> Response:
    """The empty sign-up form."""
    return _render_form(200)


@pages.post("/register")
@accepts(*FORM_TYPES)
def register_submit() -> Response:
    """Validate the form server-side; re-render it with messages, or welcome the new user."""
    form = request.form
    values = {name: form.get(name, "") for name in ("email", "name")}
    if not _csrf_valid(form.get(CSRF_FIELD, ""), request.cookies.get(CSRF_COOKIE, "")):
        return _render_form(400, values=values, notice=STALE_FORM)
    submitted: dict[str, Any] = {name: form.get(name, "") for name in ("email", "password", "name")}
    try:
        fields = RegisterSchema().load(submitted)
    except ValidationError as exc:
        errors = {name: list(messages) for name, messages in exc.normalized_messages().items()}
        return _render_form(422, values=values, errors=errors)
    try:
        guard.count_registration(fields["email"])
    except RateLimited as exc:
        notice = "Too many sign-ups from here or for this email. Please wait a little and try again."
        return _render_form(429, values=values, notice=notice, retry_after=exc.retry_after)
    try:
        user = domain.register_user(**fields, hasher=current_app.extensions[HASHER_KEY])
    except Conflict:
        errors = {"email": ["An account with this email already exists."]}
        return _render_form(409, values=values, errors=errors)
    body = render_template("auth/registered.html", user=user, csp_nonce=_csp_nonce())
    response = Response(body, status=201, mimetype="text/html")
    response.delete_cookie(CSRF_COOKIE, path="/register")
    return response
