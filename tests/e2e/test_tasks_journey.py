"""待办 in Chromium, by the labels a user sees: an officer gives the task force a task on a
project, the task force finds it on its 待办 and completes it, the officer is notified."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from crm.core import local_today
from tests.e2e.conftest import login
from tests.e2e.test_negative import register_project

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)"
).expect

TASK = "核实企业环评批复文件"


def unread_count(page) -> int:
    """The top bar's unread count (0 when it shows none)."""
    found = re.search(r"\d+", page.get_by_role("link", name="通知").inner_text())
    return int(found.group()) if found else 0


def test_a_task_goes_to_the_task_force_and_its_completion_comes_back(new_page):
    officer = login(new_page(), "e2e_officer")
    register_project(officer, "亳州药都饮片有限公司", "药都饮片扩产项目")
    officer.get_by_role("link", name="新建任务").click()
    officer.get_by_label("任务", exact=True).fill(TASK)
    officer.get_by_label("说明").fill("请在签约前核实原件")
    officer.get_by_label("期限").fill((local_today() + timedelta(days=2)).isoformat())
    officer.get_by_label("负责人").select_option(label="孙芳（产业专班 · 现代中医药专班）")
    officer.get_by_role("button", name="创建任务").click()
    expect(officer.locator("section#tasks")).to_contain_text(TASK)  # the project page's 任务
    unread = unread_count(officer)  # other tests of the run may have told this officer things

    taskforce = login(new_page(), "e2e_taskforce")
    expect(taskforce.get_by_role("heading", level=1)).to_contain_text("孙芳的待办")
    mine = taskforce.locator("section#tasks")
    expect(mine).to_contain_text("药都饮片扩产项目")
    expect(taskforce.get_by_role("navigation", name="主导航")).to_contain_text("待办 1")
    mine.get_by_role("link", name="药都饮片扩产项目").click()
    expect(taskforce.get_by_role("heading", level=1)).to_contain_text(TASK)
    taskforce.locator("summary", has_text="完成任务").click()
    taskforce.get_by_label("完成情况").fill("已核实环评批复原件")
    taskforce.get_by_label("确认完成").check()
    taskforce.get_by_role("button", name="完成任务").click()
    expect(taskforce.get_by_role("heading", level=1)).to_contain_text("已完成")
    taskforce.get_by_role("link", name="待办", exact=False).first.click()
    expect(taskforce.locator("section#tasks")).to_contain_text("没有待办的任务。")

    officer.reload()
    assert unread_count(officer) == unread + 1
    officer.get_by_role("link", name="通知").click()
    expect(officer.locator("main")).to_contain_text("任务完成")
    expect(officer.locator("main")).to_contain_text(TASK)
    officer.get_by_role("button", name="查看并标为已读").first.click()
    expect(officer.get_by_role("heading", level=1)).to_contain_text(TASK)
    expect(officer.locator("main")).to_contain_text("已核实环评批复原件")
