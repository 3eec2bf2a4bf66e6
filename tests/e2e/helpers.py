"""Checks shared by the browser tests: layout (no horizontal scrollbar, no text overflowing a
table cell), axe-core (no serious or critical violation) and screenshots at two widths."""

from __future__ import annotations

import itertools
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


# Records for the usability checks -----------------------------------------------------------

# An officer of a 载体 no other browser test uses, with more projects than one list page holds.
LIST_OFFICER = "e2e_lister"
LIST_CARRIER = "利辛县"
LIST_CLUSTER = "新能源"
LIST_PROJECTS = 55  # PAGE_SIZE is 50
KEYBOARD_PROJECT = "利辛储能电池模组生产线项目"  # in 招引, with an evaluation started
ENDING_PROJECT = "利辛光伏支架项目"  # to be 终止 in the browser


def seed_usability(password: str) -> None:
    """In the server's app (run by conftest.in_app): LIST_OFFICER, LIST_PROJECTS projects in
    谋划, and KEYBOARD_PROJECT with a contact, a follow-up, an element need and an evaluation,
    all through the services, as the pages would have made them."""
    from datetime import timedelta
    from decimal import Decimal

    import sqlalchemy as sa

    from crm.auth.models import Role
    from crm.auth.services import create_user
    from crm.catalog.models import Carrier, Channel, Cluster
    from crm.companies.models import Origin
    from crm.companies.services import add_contact, create_company
    from crm.core import local_today
    from crm.evaluation.services import start_evaluation
    from crm.extensions import db
    from crm.projects.models import ElementKind, ElementStatus, FollowUpKind
    from crm.projects.records import add_element_need, add_followup
    from crm.projects.registration import create_project
    from crm.projects.stages import Stage

    def one(model, name):
        return db.session.scalar(sa.select(model).where(model.name == name))

    carrier, cluster = one(Carrier, LIST_CARRIER), one(Cluster, LIST_CLUSTER)
    channel = db.session.scalars(
        sa.select(Channel).order_by(Channel.sort_order, Channel.id)
    ).first()
    officer = create_user(
        None,
        username=LIST_OFFICER,
        display_name="吴越",
        password=password,
        role=Role.OFFICER,
        carrier=carrier,
    )

    def project(name: str, company: str, stage: Stage = Stage.PLANNED, investment: int = 8000):
        company_ = create_company(officer, {"name": company, "origin": Origin.OUT_OF_PROVINCE})
        values = {
            "name": name,
            "carrier_id": carrier.id,
            "cluster_id": cluster.id,
            "channel_id": channel.id,
            "officer_id": officer.id,
            "is_key": False,
            "total_investment": Decimal(investment),
            "land_area": Decimal(60),
        }
        return create_project(officer, company_, values, stage)

    for i in range(1, LIST_PROJECTS + 1):
        project(
            f"利辛新能源配套项目{i:02d}", f"利辛{i:02d}号新能源科技有限公司", investment=1000 + i
        )
    project(ENDING_PROJECT, "合肥晶阳光伏支架有限公司")

    keyboard = project(KEYBOARD_PROJECT, "常州恒储新能源有限公司", Stage.ATTRACTING, 60000)
    contact = add_contact(
        officer,
        keyboard.company,
        {
            "name": "顾海峰",
            "position": "副总经理",
            "phone": "",
            "email": "",
            "wechat": "",
            "notes": "",
        },
    )
    add_followup(
        officer,
        keyboard,
        {
            "kind": FollowUpKind.VISIT,
            "happened_on": local_today() - timedelta(days=3),
            "summary": "赴常州总部洽谈，企业有意在利辛县建设电池模组生产线。",
            "next_action": "组织现场踏勘",
            "next_action_due": local_today() + timedelta(days=7),
        },
        [contact],
    )
    add_element_need(
        officer,
        keyboard,
        {"kind": ElementKind.LAND, "quantity": Decimal(120), "status": ElementStatus.RAISED},
    )
    start_evaluation(officer, keyboard)
    db.session.commit()


# Keyboard alone ------------------------------------------------------------------------------

# What Tab may stop at, marked in document order with data-tab-seq by `mark_tab_stops`.
_MARK_TAB_STOPS = """() => {
    const selector = 'a[href], button, input, select, textarea, summary, iframe, [tabindex]';
    const stops = [];
    for (const el of document.querySelectorAll(selector)) {
        el.removeAttribute('data-tab-seq');
        if (el.disabled || el.tabIndex < 0 || el.type === 'hidden') continue;
        const closed = el.closest('details:not([open])');
        if (closed && el !== closed.querySelector(':scope > summary')) continue;
        const style = getComputedStyle(el);
        if (style.visibility === 'hidden' || el.getClientRects().length === 0) continue;
        if (el.tagName === 'SUMMARY' && el.parentElement.tagName !== 'DETAILS') continue;
        el.setAttribute('data-tab-seq', String(stops.length));
        stops.push(describe(el));
    }
    return stops;

    function describe(el) {
        const label = (el.labels && el.labels[0] && el.labels[0].innerText)
            || el.getAttribute('aria-label') || el.innerText || el.value || el.name || '';
        return `${el.tagName.toLowerCase()}${el.type ? '[' + el.type + ']' : ''} `
            + `"${label.trim().replace(/\\s+/g, ' ').slice(0, 40)}"`;
    }
}"""

_START_AT_TOP = """() => {
    const mark = document.createElement('span');
    mark.id = 'tab-start';
    mark.tabIndex = -1;
    document.body.prepend(mark);
    mark.focus();
    window.scrollTo(0, 0);
}"""

_FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body || el === document.documentElement) return null;
    const style = getComputedStyle(el);
    const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
    const shadow = style.boxShadow && style.boxShadow !== 'none';
    const rect = el.getBoundingClientRect();
    return {
        seq: el.hasAttribute('data-tab-seq') ? Number(el.getAttribute('data-tab-seq')) : null,
        what: el.outerHTML.slice(0, 120),
        indicator: outline || shadow,
        style: `outline: ${style.outlineStyle} ${style.outlineWidth}; box-shadow: ${style.boxShadow}`,
        onscreen: rect.width > 0 && rect.height > 0 && rect.bottom > 0 && rect.right > 0
            && rect.top < innerHeight && rect.left < innerWidth,
    };
}"""


def keyboard_problems(page) -> list[str]:
    """Press Tab from the top of the page until focus leaves it. A problem is a visible
    control or link Tab never reaches or reaches out of document order, a stop that is not
    a visible control, or a focused element without a visible focus indicator (a computed
    outline or box-shadow) or outside the viewport."""
    stops = page.evaluate(_MARK_TAB_STOPS)
    if not stops:
        return ["no visible control or link found"]
    # Start from the top: focus a mark Tab itself skips (tabindex -1) at the start of <body>.
    page.evaluate(_START_AT_TOP)
    problems: list[str] = []
    reached: list[int] = []
    last = None
    for _ in range(3 * len(stops) + 10):
        page.keyboard.press("Tab")
        focused = page.evaluate(_FOCUSED)
        if focused is None:
            break
        if focused["seq"] is None:
            problems.append(f"Tab stops at something not a visible control: {focused['what']}")
            continue
        if focused["seq"] == last:  # a date input's year, month and day are one control
            continue
        if reached and focused["seq"] == reached[0]:
            break  # round to the top again
        last = focused["seq"]
        reached.append(focused["seq"])
        where = stops[focused["seq"]]
        if not focused["indicator"]:
            problems.append(f"no visible focus indicator on {where} ({focused['style']})")
        if not focused["onscreen"]:
            problems.append(f"focused but off screen: {where}")
    page.evaluate("() => document.getElementById('tab-start')?.remove()")
    if reached != list(range(len(stops))):
        missing = [stops[i] for i in range(len(stops)) if i not in reached]
        out_of_order = [
            f"{stops[a]} before {stops[b]}" for a, b in itertools.pairwise(reached) if b < a
        ]
        problems += [f"never reached by Tab: {m}" for m in missing]
        problems += [f"out of document order: {o}" for o in out_of_order]
    return problems
