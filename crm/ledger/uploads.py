"""Keeping a parsed upload between its preview and its confirmation: a JSON file under a
random token, readable only by the user who uploaded it, for two hours."""

from __future__ import annotations

import json
import os
import re
import secrets
import time as time_module
from datetime import datetime, timedelta
from pathlib import Path

from crm.auth.models import User
from crm.core import utcnow
from crm.ledger.reading import RawRow

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
TOKEN_MAX_AGE = timedelta(hours=2)


def save_upload(folder: Path, user_id: int, filename: str, rows: list[RawRow]) -> str:
    """Keep the parsed rows for the user `user_id` under a random token; old uploads are
    removed. Touches no database (the upload is read outside any transaction)."""
    folder.mkdir(parents=True, exist_ok=True)
    _remove_old(folder)
    token = secrets.token_urlsafe(24)
    payload = {
        "user_id": user_id,
        "filename": filename[:200],
        "saved_at": utcnow().isoformat(),
        "rows": [
            {"row": r.row, "cells": r.cells, "formulas": r.formulas, "exported": r.exported}
            for r in rows
        ],
    }
    path = folder / f"{token}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, ensure_ascii=False)
    return token


def load_upload(folder: Path, user: User, token: str) -> tuple[str, list[RawRow]] | None:
    """The rows kept under `token`, if they are `user`'s and not expired."""
    if not TOKEN_PATTERN.match(token or ""):
        return None
    path = folder / f"{token}.json"
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    saved = datetime.fromisoformat(payload.get("saved_at", "2000-01-01T00:00:00+00:00"))
    if payload.get("user_id") != user.id or utcnow() - saved > TOKEN_MAX_AGE:
        return None
    rows = [
        RawRow(r["row"], r["cells"], r.get("formulas", []), r.get("exported"))
        for r in payload["rows"]
    ]
    return payload.get("filename", ""), rows


def discard_upload(folder: Path, token: str) -> None:
    if TOKEN_PATTERN.match(token or ""):
        (folder / f"{token}.json").unlink(missing_ok=True)


def _remove_old(folder: Path) -> None:
    limit = time_module.time() - TOKEN_MAX_AGE.total_seconds()
    for path in folder.glob("*.json"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            continue
