#!/usr/bin/env bash
# The shared install step of `make run` and `make test` (`make setup`).
#
#   1. system packages (fonts and libraries for WeasyPrint and the PDF tests), as root only,
#      and only those that are missing: a machine that has them does no apt work at all;
#      Debian's `chromium` for the browser tests (tests/e2e) likewise, unless
#      CRM_SKIP_BROWSER=1 (it is large; without it those tests are skipped). Playwright drives
#      that Chromium: never `playwright install`, which downloads a browser of its own;
#   2. the virtualenv .venv, made with python3.11 when it is missing or broken;
#   3. `pip install -r requirements-dev.txt`, only when the requirement files changed since
#      the last successful install (a checksum stamp inside .venv);
#   4. the dossier's font, Noto Sans CJK SC cut to GB 2312 (scripts/build_dossier_font.py),
#      once.
#
# Quiet when there is nothing to do; a failing step prints its full output.
# Environment: PYTHON (default python3.11), VENV (default .venv).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
STAMP="$VENV/.requirements.sha256"
REQUIREMENT_FILES=(requirements.txt requirements-dev.txt)
# wrk: the load generator of `make bench` (a small C program; Python threads would share the
# two cores with the server they measure).
SYSTEM_PACKAGES=(fonts-noto-cjk libharfbuzz-subset0 poppler-utils libpango-1.0-0 libpangoft2-1.0-0 wrk)
CHROMIUM=/usr/bin/chromium

say() { printf 'setup: %s\n' "$*"; }
warn() { printf 'setup: WARNING: %s\n' "$*" >&2; }
die() {
    printf 'setup: ERROR: %s\n' "$*" >&2
    exit 1
}

# Run a command with its output in a log; show the log only if the command fails.
quietly() {
    local log status=0
    log=$(mktemp)
    "$@" >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        cat "$log" >&2
        rm -f "$log"
        die "failed ($status): $*"
    fi
    rm -f "$log"
}

# 1. System packages -----------------------------------------------------------------------
is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

system_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        warn "not a Debian-based system; make sure these are installed: ${SYSTEM_PACKAGES[*]}"
        return
    fi
    local missing=() pkg
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if [ ! -x "$CHROMIUM" ] && [ "${CRM_SKIP_BROWSER:-0}" != 1 ]; then
        missing+=(chromium)
    fi
    [ "${#missing[@]}" -eq 0 ] && return
    if [ "$(id -u)" -ne 0 ]; then
        warn "missing system packages: ${missing[*]}"
        warn "PDF export, the browser tests (chromium) and their tests need them; install them as root with:"
        warn "  apt-get update && apt-get install -y ${missing[*]}"
        return
    fi
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get -o DPkg::Lock::Timeout=300 update
    quietly apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"
}

# 2. The virtualenv ------------------------------------------------------------------------
virtualenv() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
        return
    fi
    command -v "$PYTHON" >/dev/null 2>&1 \
        || die "$PYTHON not found; install Python 3.11 or set PYTHON=/path/to/python3.11"
    if [ -e "$VENV" ]; then
        say "$VENV is broken; making it anew"
        rm -rf "$VENV"
    fi
    say "creating $VENV with $("$PYTHON" --version 2>&1)"
    quietly "$PYTHON" -m venv "$VENV"
}

# 3. Python packages -----------------------------------------------------------------------
requirements_checksum() {
    cat "${REQUIREMENT_FILES[@]}" | sha256sum | cut -d' ' -f1
}

python_packages() {
    local want
    want=$(requirements_checksum)
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        return
    fi
    say "installing Python packages from requirements-dev.txt into $VENV"
    quietly "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
        -r requirements-dev.txt
    printf '%s\n' "$want" >"$STAMP"
}

# 4. The dossier's font -----------------------------------------------------------------------
# Noto Sans CJK SC from fonts-noto-cjk cut to GB 2312 (crm/static/fonts/, not in git; ~10 s,
# once): the PDF renders faster and lighter. Without it the dossier uses the full system font.
dossier_font() {
    "$VENV/bin/python" scripts/build_dossier_font.py
}

system_packages
virtualenv
python_packages
dossier_font
