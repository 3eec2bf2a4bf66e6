"""`make audit`, second half: known vulnerabilities in the pinned requirements (pip-audit).

Fails (exit 1) when pip-audit reports a vulnerability. When the vulnerability data cannot be
reached — no network, or a package index that serves packages but not PyPI's JSON API, which
pip-audit reads — it prints a clear warning and exits 0: a network outage must not fail CI,
and a run that audited nothing must not pass for a clean bill of health either.

    .venv/bin/python scripts/pip_audit.py [requirements.txt]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def warn(message: str) -> None:
    print(f"pip-audit: WARNING: {message}", file=sys.stderr)


def main() -> int:
    requirements = sys.argv[1] if len(sys.argv) > 1 else "requirements.txt"
    command = [
        os.environ.get("PIP_AUDIT", str(BIN / "pip-audit")),
        "-r",
        requirements,
        "--progress-spinner",
        "off",
        "--format",
        "json",
    ]
    print("pip-audit:", " ".join(command[1:]))
    result = subprocess.run(  # noqa: S603 - pip-audit with fixed arguments
        command, capture_output=True, text=True, timeout=1800
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        if any(
            word in tail for word in ("ConnectionError", "NameResolution", "Timeout", "SSLError")
        ):
            warn("the vulnerability service could not be reached; nothing was audited")
            warn(tail)
            return 0
        print(result.stdout, result.stderr, sep="\n", file=sys.stderr)
        return result.returncode or 1

    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    audited = len(dependencies) - len(skipped)
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(f"  {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
    if vulnerable:
        print(f"pip-audit: {len(vulnerable)} vulnerable package(s) of {len(dependencies)}")
        return 1
    if dependencies and audited == 0:
        warn(
            f"none of the {len(dependencies)} packages could be audited: the vulnerability "
            "data (PyPI's JSON API) is not reachable from here. Run `make audit` where "
            "pypi.org is reachable."
        )
        warn(f"first reason: {skipped[0]['skip_reason']}")
        return 0
    for dep in skipped:
        warn(f"not audited: {dep['name']} {dep['version']}: {dep['skip_reason']}")
    print(f"pip-audit: no known vulnerabilities in {audited} audited package(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
