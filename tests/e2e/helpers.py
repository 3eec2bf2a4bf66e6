"""Checks shared by the browser tests: layout (no horizontal scrollbar, no text overflowing a
table cell), axe-core (no serious or critical violation) and screenshots at two widths."""

from __future__ import annotations

import json
from pathlib import Path

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
DESKTOP = (1366, 768)
NARROW = (390, 844)

# Axe runs in the page. The app's CSP (script-src 'self') blocks an inline <script>, which is
# what page.add_script_tag(path=...) inserts; page.evaluate runs through the DevTools
# protocol, which the CSP does not govern, so the file's text is evaluated instead.
_AXE_SOURCE: str | None = None


def _axe_source() -> str:
    global _AXE_SOURCE
    if _AXE_SOURCE is None:
        _AXE_SOURCE = AXE.read_text(encoding="utf-8")
    return _AXE_SOURCE


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source() + "\n;undefined")
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)
            }));
        }"""
    )
    return [v for v in result if v["impact"] in impacts]


def layout_problems(page) -> list[str]:
    """A horizontal scrollbar on the page, or text wider than its table cell."""
    return page.evaluate(
        """() => {
            const out = [];
            const de = document.documentElement;
            if (de.scrollWidth > de.clientWidth) {
                out.push(`page scrolls sideways: ${de.scrollWidth} > ${de.clientWidth}`);
            }
            for (const cell of document.querySelectorAll('td, th')) {
                if (cell.scrollWidth > cell.clientWidth + 1) {
                    out.push(`cell overflows (${cell.scrollWidth} > ${cell.clientWidth}): `
                             + cell.innerText.slice(0, 60));
                }
            }
            return out;
        }"""
    )


def check_page(page, name: str, folder: Path, problems: list[str]) -> None:
    """Screenshots at desktop and narrow width; layout checked at desktop, axe at both."""
    for label, (w, h) in (("desktop", DESKTOP), ("narrow", NARROW)):
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(50)
        page.screenshot(path=str(folder / f"{name}-{label}-{w}x{h}.png"), full_page=True)
        if label == "desktop":
            problems.extend(f"{name}: {p}" for p in layout_problems(page))
        for v in axe_violations(page):
            problems.append(
                f"{name} ({label}) axe {v['impact']}: {json.dumps(v, ensure_ascii=False)}"
            )
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
