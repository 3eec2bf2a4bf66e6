"""The whole journey of one project in Chromium, by the labels and buttons a user sees.

One test, in order: an officer registers a company and a project (谋划), records a follow-up
and an element need and moves it to 招引; starts an evaluation; the task force of the cluster
completes it (one 不符合 on a non-veto item), attaches evidence and submits; the officer is
refused 签约 with the reason; the leader records 通过 (refused until the confirmation is
ticked); the officer uploads the agreement and moves to 签约; the task force verifies; the
officer downloads the dossier PDF; the leader's dashboard counts the project. Screenshots, layout and axe checks are taken on the way.
"""

from __future__ import annotations

import re
import subprocess
from datetime import date
from pathlib import Path

import pytest

from tests.e2e.conftest import have_pdftotext, login
from tests.e2e.helpers import check_page

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)"
).expect

COMPANY = "亳州本草堂药业有限公司"
PROJECT = "本草堂中药饮片智能工厂项目"

# A minimal valid one-page PDF (the evidence and the signed agreement).
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.fixture(scope="module")
def pdf_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("files") / "佐证材料.pdf"
    path.write_bytes(PDF_BYTES)
    return path


def open_project(page):
    page.get_by_role("link", name="项目", exact=True).click()
    page.get_by_role("link", name=PROJECT).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(PROJECT)


def move_stage(page, stage: str, **fields):
    page.locator("summary", has_text="变更阶段").click()
    form = page.locator("form", has=page.get_by_role("button", name="确认变更阶段"))
    form.get_by_label("变更为").select_option(label=stage)
    for label, value in fields.items():
        form.get_by_label(label).fill(value)
    form.get_by_role("button", name="确认变更阶段").click()
    page.wait_for_load_state()


def test_whole_journey(new_page, screenshot_dir, pdf_file, tmp_path):
    problems: list[str] = []

    # -- login page ------------------------------------------------------------------------
    page = new_page()
    page.goto("/")
    expect(page.get_by_role("button", name="登录")).to_be_visible()
    check_page(page, "01-login", screenshot_dir, problems)

    # -- (1) the officer: company, project in 谋划, follow-up, element need, 招引 ----------
    login(page, "e2e_officer")
    page.get_by_role("link", name="企业", exact=True).click()
    page.get_by_role("link", name="登记企业", exact=True).click()
    page.get_by_label("企业名称").fill(COMPANY)
    page.get_by_label("法定代表人").fill("黄志远")
    page.get_by_label("注册资本").fill("5000")
    page.get_by_label("所属行业").fill("中药饮片")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(COMPANY)

    page.get_by_role("link", name="为该企业新建项目").click()
    page.get_by_label("项目名称").fill(PROJECT)
    expect(page.get_by_label("登记阶段")).to_have_value(re.compile(".+"))
    page.get_by_label("登记阶段").select_option(label="谋划")
    page.get_by_label("产业集群").select_option(label="现代中医药")
    page.get_by_label("招商渠道").select_option(index=1)
    page.get_by_label("总投资", exact=True).fill("30000")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(PROJECT)
    project_url = page.url

    page.locator("summary", has_text="记录跟踪服务").click()
    followup = page.locator("form", has=page.get_by_label("情况记录"))
    followup.get_by_label("情况记录").fill("赴企业总部洽谈，企业有意在谯城区新建饮片生产线。")
    followup.get_by_role("button", name="保存").click()
    expect(page.get_by_text("赴企业总部洽谈")).to_be_visible()

    page.locator("summary", has_text="添加要素需求").click()
    need = page.locator("form", has=page.get_by_role("button", name="添加"))
    need.get_by_label("要素").select_option(label="用地")
    need.get_by_label("数量").fill("120")
    need.get_by_role("button", name="添加").click()
    page.wait_for_load_state()

    move_stage(page, "招引")
    expect(page.locator("main")).to_contain_text("招引")

    # -- (2) evaluation: the officer starts it and fills some items ------------------------
    page.get_by_role("button", name="发起评估").click()
    page.wait_for_load_state()
    expect(page.get_by_role("button", name="保存填写")).to_be_visible()
    items = page.locator(".checklist-item")
    items.nth(0).get_by_label("结论").select_option(label="符合")
    page.get_by_role("button", name="保存填写").click()
    page.wait_for_load_state()
    evaluation_url = page.url
    officer = page

    # the task force completes it
    tf = login(new_page(), "e2e_taskforce")
    open_project(tf)
    tf.get_by_role("link", name=re.compile(r"评估 #")).first.click()
    assert tf.url == evaluation_url
    items = tf.locator(".checklist-item")
    count = items.count()
    assert count > 3
    failed_title = None
    for i in range(count):
        item = items.nth(i)
        is_veto = item.locator(".badge", has_text="一票否决").count() > 0
        if failed_title is None and not is_veto:
            item.get_by_label("结论").select_option(label="不符合")
            item.get_by_label("说明").fill("环评批复尚未取得，需企业补充材料。")
            failed_title = item.locator("strong").first.inner_text()
        else:
            item.get_by_label("结论").select_option(label="符合")
        score = item.get_by_label("得分")
        if score.count():
            score.fill("1")
    tf.get_by_role("button", name="保存填写").click()
    tf.wait_for_load_state()
    expect(tf.locator("main")).to_contain_text("环评批复尚未取得")

    evidence = tf.locator("#evidence")
    evidence.get_by_label("所属事项").select_option(index=1)
    evidence.locator("input[type=file]").set_input_files(str(pdf_file))
    evidence.get_by_role("button", name="上传").click()
    tf.wait_for_load_state()
    expect(tf.get_by_role("link", name="佐证材料.pdf")).to_be_visible()
    check_page(tf, "04-evaluation", screenshot_dir, problems)
    tf.locator("#submit").get_by_label("确认提交").check()
    tf.get_by_role("button", name="提交领导集体决策").click()
    tf.wait_for_load_state()

    # -- (3) the officer is told why not 签约 ---------------------------------------------
    open_project(officer)
    assert officer.url == project_url
    gate = officer.locator(".flash-warning", has_text="暂不能进入")
    expect(gate).to_be_visible()
    gate_text = gate.inner_text()
    assert "签约" in gate_text

    # -- (4) the leader decides 通过 -------------------------------------------------------
    leader = login(new_page(), "e2e_leader")
    leader.get_by_role("link", name="待决策", exact=True).click()
    expect(leader.locator("main")).to_contain_text(PROJECT)
    check_page(leader, "05-decision-queue", screenshot_dir, problems)
    leader.get_by_role("link", name="查看并决策").first.click()
    decision = leader.locator("#decision")
    decision.get_by_label("决策结果").select_option(label="通过")
    decision.get_by_label("会议日期").fill(date.today().isoformat())
    decision.get_by_label("会议名称或编号").fill("市招商引资项目评审会第 12 次会议")
    decision.get_by_label("参会人员").fill("王建华、郑国强、孙芳")
    decision.get_by_label("决策意见").fill("同意签约，环评批复在开工前补齐。")
    # Without the confirmation ticked, the server refuses and says so at the box; the input
    # stays. No JavaScript dialog is involved.
    decision.get_by_role("button", name="确认记录决策").click()
    leader.wait_for_load_state()
    decision = leader.locator("#decision")
    confirm = decision.get_by_label("确认记录决策：决策一经记录不能修改")
    expect(confirm).not_to_be_checked()
    expect(leader.locator("#" + confirm.get_attribute("aria-describedby"))).to_contain_text(
        "请勾选确认"
    )
    expect(decision.get_by_label("会议名称或编号")).to_have_value(
        "市招商引资项目评审会第 12 次会议"
    )
    expect(leader.get_by_text("尚未决策。")).to_be_visible()
    confirm.check()
    decision.get_by_role("button", name="确认记录决策").click()
    leader.wait_for_load_state()
    expect(leader.get_by_role("heading", name="决策记录")).to_be_visible()
    expect(leader.locator("main")).to_contain_text("已记录决策：通过")

    # -- (5) agreement, 签约 with amount and date; the task force verifies ------------------
    open_project(officer)
    officer.locator("summary", has_text="上传文件").click()
    upload = officer.locator("form", has=officer.get_by_label("文件类别"))
    upload.get_by_label("文件类别").select_option(label="投资协议")
    upload.locator("input[type=file]").set_input_files(str(pdf_file))
    upload.get_by_role("button", name="上传").click()
    officer.wait_for_load_state()
    move_stage(officer, "签约", **{"签约金额": "28000", "签约日期": date.today().isoformat()})
    expect(officer.locator("main")).to_contain_text("待核实")

    open_project(tf)
    tf.get_by_role("button", name="核实通过").click()
    tf.wait_for_load_state()
    expect(tf.get_by_role("heading", name="待核实的阶段变更（甄别）")).to_have_count(0)

    # -- (6) the dossier PDF and the dashboard ---------------------------------------------
    open_project(officer)
    check_page(officer, "03-project-detail", screenshot_dir, problems)
    with officer.expect_download() as info:
        officer.get_by_role("link", name="下载尽调摘要 (PDF)").first.click()
    download = info.value
    assert re.search(r"[\u4e00-\u9fff]", download.suggested_filename), download.suggested_filename
    assert download.suggested_filename.endswith(".pdf")
    saved = tmp_path / "dossier.pdf"
    download.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
    if have_pdftotext():
        text = subprocess.run(
            ["pdftotext", str(saved), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert PROJECT in re.sub(r"\s+", "", text)

    officer.get_by_role("link", name="项目", exact=True).click()
    expect(officer.get_by_role("link", name=PROJECT)).to_be_visible()
    check_page(officer, "02-project-list", screenshot_dir, problems)

    leader.get_by_role("link", name="统计", exact=True).click()
    signed = leader.locator("section.stat", has=leader.get_by_role("heading", name="本年签约"))
    expect(signed.locator(".big")).to_have_text(re.compile(r"^\s*1\s*项"))
    expect(signed).to_contain_text("签约金额 2.80 亿元")  # 28000 万元
    check_page(leader, "06-dashboard", screenshot_dir, problems)

    assert not problems, "\n".join(problems)
