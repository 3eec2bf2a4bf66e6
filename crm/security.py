"""Web hardening: the production start-up check and the security headers of every response.

- `check_production_config`: with `CRM_ENV=production` the app refuses to start while DEBUG is
  on, SECRET_KEY is missing, short or a known default, or a cookie lacks Secure, HttpOnly or
  SameSite.
- `add_security_headers`: a Content-Security-Policy without inline script or style, no
  sniffing, no framing, same-origin referrers, HSTS over HTTPS, and `Cache-Control: no-store`
  on everything but the static files (pages, PDFs and downloads carry confidential data).
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ]
)

HSTS = "max-age=31536000; includeSubDomains"
SECRET_KEY_MIN_LENGTH = 32

# Keys that have been published (examples, tests, tutorials): never a production key.
KNOWN_SECRET_KEYS = frozenset(
    {
        "testing-only-not-secret",
        "dev",
        "development",
        "secret",
        "secret-key",
        "secret_key",
        "changeme",
        "change-me",
        "please-change-me",
        "your-secret-key",
        "super-secret-key",
        "you-will-never-guess",
        "not-a-secret",
        "crm",
    }
)


def production_config_problems(config) -> list[str]:
    """What makes `config` unfit for production; [] when nothing does."""
    problems = []
    if config.get("DEBUG"):
        problems.append("DEBUG is on (unset FLASK_DEBUG)")
    if config.get("TESTING"):
        problems.append("TESTING is on")
    key = config.get("SECRET_KEY") or ""
    if not key:
        problems.append("SECRET_KEY is not set")
    elif key.strip().lower() in KNOWN_SECRET_KEYS or len(set(key)) < 8:
        problems.append("SECRET_KEY is a known or trivial value")
    elif len(key) < SECRET_KEY_MIN_LENGTH:
        problems.append(f"SECRET_KEY is shorter than {SECRET_KEY_MIN_LENGTH} characters")
    for cookie in ("SESSION_COOKIE", "REMEMBER_COOKIE"):
        if not config.get(f"{cookie}_SECURE"):
            problems.append(f"{cookie}_SECURE is off")
        if not config.get(f"{cookie}_HTTPONLY"):
            problems.append(f"{cookie}_HTTPONLY is off")
        if str(config.get(f"{cookie}_SAMESITE") or "").capitalize() not in ("Lax", "Strict"):
            problems.append(f"{cookie}_SAMESITE is not Lax or Strict")
    return problems


def check_production_config(app: Flask) -> None:
    """Raise RuntimeError, naming every problem, if a production app is not configured safely."""
    if not app.config.get("PRODUCTION"):
        return
    if problems := production_config_problems(app.config):
        raise RuntimeError(
            "refusing to start in production mode (CRM_ENV=production): " + "; ".join(problems)
        )


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.endpoint not in ("static", "main.favicon"):
        # Pages of signed-in users, PDFs and downloads: never kept by a browser or proxy.
        headers["Cache-Control"] = "no-store"
        headers.setdefault("Pragma", "no-cache")
    return response


def init_app(app: Flask) -> None:
    check_production_config(app)
    if count := app.config.get("PROXY_COUNT"):
        # Behind a reverse proxy that terminates HTTPS: trust its X-Forwarded-* headers, so
        # request.is_secure (HSTS) and the client address (audit) are right.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    app.after_request(add_security_headers)
