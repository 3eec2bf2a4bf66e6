"""What a user must not be able to do, or must be told: another 载体's project, bad input,
an idle session."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import IDLE_MINUTES, PASSWORD, login

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)"
).expect


def register_project(page, company: str, project: str) -> str:
    """As the signed-in officer: a company and a project for it; returns the project's URL."""
    page.get_by_role("link", name="企业", exact=True).click()
    page.get_by_role("link", name="登记企业", exact=True).click()
    page.get_by_label("企业名称").fill(company)
    page.get_by_role("button", name="保存").click()
    page.get_by_role("link", name="为该企业新建项目").click()
    page.get_by_label("项目名称").fill(project)
    page.get_by_label("产业集群").select_option(label="现代中医药")
    page.get_by_label("招商渠道").select_option(index=1)
    page.get_by_label("总投资", exact=True).fill("8000")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(project)
    return page.url


def test_officer_of_another_carrier_gets_404(new_page):
    officer = login(new_page(), "e2e_officer")
    url = register_project(officer, "亳州华佗药材贸易有限公司", "华佗药材仓储物流项目")

    other = login(new_page(), "e2e_other")
    response = other.goto(url)
    assert response.status == 404
    expect(other.get_by_role("heading", level=1)).to_contain_text("404")
    expect(other.locator("main")).not_to_contain_text("华佗药材仓储物流项目")
    # nor does the project appear in that officer's list
    other.get_by_role("link", name="项目", exact=True).click()
    expect(other.get_by_role("link", name="华佗药材仓储物流项目")).to_have_count(0)


def test_bad_input_shows_messages_at_the_fields_and_keeps_the_input(new_page):
    page = login(new_page(), "e2e_officer")
    page.get_by_role("link", name="企业", exact=True).click()
    page.get_by_role("link", name="登记企业", exact=True).click()
    page.get_by_label("统一社会信用代码").fill("91341600ABC")
    page.get_by_label("法定代表人").fill("欧阳明")
    page.get_by_label("注册资本").fill("-5")
    page.get_by_role("button", name="保存").click()

    expect(page.get_by_role("alert")).to_contain_text("请修改标出的内容")
    for label, text in (("企业名称", "请填写企业名称"), ("注册资本", "注册资本应在")):
        control = page.get_by_label(label)
        expect(control).to_have_attribute("aria-invalid", "true")
        error_id = control.get_attribute("aria-describedby")
        expect(page.locator(f"#{error_id}")).to_contain_text(text)
        # the message sits in the same field block as the control
        field = page.locator(".field.has-error", has=control)
        expect(field).to_contain_text(text)
    # what was typed is still there
    expect(page.get_by_label("统一社会信用代码")).to_have_value("91341600ABC")
    expect(page.get_by_label("法定代表人")).to_have_value("欧阳明")
    expect(page.get_by_label("注册资本")).to_have_value(re.compile(r"^-5"))


def test_idle_session_returns_to_login(new_page):
    """The server runs with CRM_SESSION_IDLE_MINUTES=1; the test waits just past it. Saving a
    form after the timeout leads to the login page with 会话已超时: the input is lost, but
    not silently."""
    page = login(new_page(), "e2e_officer")
    page.get_by_role("link", name="企业", exact=True).click()
    page.get_by_role("link", name="登记企业", exact=True).click()
    page.get_by_label("企业名称").fill("超时测试企业")
    page.wait_for_timeout((IDLE_MINUTES * 60 + 2) * 1000)
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("button", name="登录")).to_be_visible()
    expect(page.locator("body")).to_contain_text("会话已超时")
    # and nothing was saved behind the user's back
    login(page, "e2e_officer")
    page.get_by_role("link", name="企业", exact=True).click()
    expect(page.get_by_role("link", name="超时测试企业")).to_have_count(0)


def test_keyboard_alone_signs_in_with_visible_focus(new_page):
    """Tab order on the login page (skip link, the brand, 用户名, 密码, 保持登录, 登录), a visible
    focus ring on each, and Enter submits."""
    page = new_page()
    page.goto("/")
    order = []
    for _ in range(6):
        page.keyboard.press("Tab")
        order.append(
            page.evaluate(
                """() => {
                    const el = document.activeElement;
                    const style = getComputedStyle(el);
                    const ring = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0
                        || style.boxShadow !== 'none';
                    const label = el.labels && el.labels[0] ? el.labels[0].innerText
                        : el.innerText.trim();
                    return [label, ring];
                }"""
            )
        )
    labels = [label for label, _ in order]
    assert labels == [
        "跳到正文",
        "双招双引项目管理",
        "用户名",
        "密码",
        "在此电脑上保持登录",
        "登录",
    ]
    assert all(ring for _, ring in order), order
    page.get_by_label("用户名").focus()
    page.keyboard.type("e2e_officer")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="退出")).to_be_visible()
