"""The Chinese words of the audit log (审计日志), in one place: what each action code, object
type and changed field is called, and how a recorded value reads (enum members by their label,
ids of other records by their name, yes/no, local times).

An entry stores codes (`project_updated`, `projects`, `status_reason`, `ON_HOLD`), so the
record stays stable when a word changes; the page and the CSV export read it through
`describe_entries`, which looks up the names of the records it mentions in one query per table.
tests/test_audit.py walks the code and the models so that a new unlabelled code fails.
"""

from __future__ import annotations

import enum
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from crm.core import LOCAL_TZ, UTCDateTime
from crm.extensions import db

ACTION_LABELS = {
    "login": "登录",
    "login_failed": "登录失败",
    "login_locked": "账号锁定",
    "login_throttled": "地址登录受限",
    "user_unlocked": "解除登录锁定",
    "password_set": "设置密码（命令行）",
    "logout": "退出",
    "session_expired": "会话超时",
    "password_changed": "修改密码",
    "email_changed": "修改电子邮箱",
    "permission_denied": "越权访问被拒",
    "user_created": "创建用户",
    "user_updated": "修改用户",
    "user_enabled": "启用用户",
    "user_disabled": "停用用户",
    "audit_exported": "导出审计日志",
    "database_restored": "恢复数据库",
    "project_created": "登记项目",
    "project_updated": "修改项目",
    "stage_moved": "变更阶段",
    "status_changed": "变更状态",
    "followup_added": "跟踪服务",
    "element_added": "添加要素需求",
    "element_updated": "更新要素需求",
    "funds_added": "记录到位资金",
    "company_created": "登记企业",
    "company_updated": "修改企业",
    "company_merged": "合并企业",
    "company_merged_into": "企业被合并",
    "contact_created": "添加联系人",
    "contact_updated": "修改联系人",
    "contact_archived": "归档联系人",
    "file_uploaded": "上传文件",
    "file_downloaded": "下载文件",
    "file_archived": "移除文件",
    "file_restored": "恢复文件",
    "files_cleaned": "清理无主文件",
    "dossier_downloaded": "下载尽调摘要",
    "dossier_archived": "存档尽调摘要",
    "evaluation_started": "发起评估",
    "evaluation_filled": "填写评估",
    "evidence_attached": "上传佐证材料",
    "evaluation_submitted": "提交评估",
    "evaluation_decided": "集体决策",
    "template_version_created": "新版评估清单",
    "catalog_created": "添加目录条目",
    "catalog_updated": "修改目录条目",
    "catalog_activated": "启用目录条目",
    "catalog_deactivated": "停用目录条目",
    "stage_move_verified": "核实阶段变更",
    "stage_move_rejected": "驳回阶段变更",
    "handover_offered": "发起流转",
    "project_handed_over": "项目流转（已接收）",
    "handover_declined": "退回流转",
    "handover_withdrawn": "撤回流转",
    "conflict_detected": "发现跨载体冲突",
    "conflict_resolved": "处理跨载体冲突",
    "ledger_exported": "导出台账",
    "ledger_imported": "导入台账",
    "task_created": "创建任务",
    "task_updated": "更新任务",
    "task_completed": "完成任务",
    "task_cancelled": "取消任务",
    "calendar_day_added": "录入工作日历日期",
    "calendar_day_deleted": "删除工作日历日期",
}

# What an entry is about: a table name, or a word for what is not a row of one.
OBJECT_TYPE_LABELS = {
    "users": "用户",
    "file_store": "文件存储",
    "carriers": "载体",
    "clusters": "产业集群",
    "chains": "产业链",
    "channels": "招商渠道",
    "termination_reasons": "终止原因",
    "departments": "部门",
    "companies": "企业",
    "contacts": "联系人",
    "projects": "项目",
    "stage_changes": "阶段变更",
    "status_changes": "状态变更",
    "followups": "跟踪服务",
    "followup_contacts": "跟踪服务联系人",
    "element_needs": "要素需求",
    "funds_records": "到位资金",
    "project_conflicts": "跨载体冲突",
    "handovers": "项目流转",
    "checklist_templates": "评估清单",
    "checklist_sections": "评估清单部分",
    "checklist_items": "评估清单事项",
    "evaluations": "评估",
    "evaluation_answers": "评估事项",
    "evaluation_answer_files": "佐证材料",
    "decisions": "集体决策",
    "stored_files": "文件",
    "audit_entries": "审计日志",
    "database": "数据库",
    "ledger": "项目台账",
    "request": "页面请求",
    "login_attempts": "登录尝试",
    "password_history": "历史密码",
    "notifications": "通知",
    "tasks": "任务",
    "job_runs": "后台任务",
    "sent_mails": "已发送邮件",
    "calendar_days": "工作日历",
}

# Field names, as the models (and the few extra keys services write into a diff) call them.
FIELD_LABELS = {
    # shared by several tables
    "removed": "已清理",
    "recovered": "已归位",
    "id": "编号",
    "name": "名称",
    "sort_order": "排序",
    "is_active": "启用",
    "is_deleted": "已删除",
    "created_at": "创建时间",
    "created_by_id": "创建人",
    "updated_at": "更新时间",
    "updated_by_id": "更新人",
    "project_id": "项目",
    "company_id": "企业",
    "carrier_id": "载体",
    "cluster_id": "产业集群",
    "department_id": "部门",
    "chain_id": "产业链",
    "channel_id": "招商渠道",
    "officer_id": "责任人",
    "user_id": "用户",
    "kind": "类型",
    "day": "日期",
    "note": "说明",
    "notes": "备注",
    "reason": "原因",
    "summary": "摘要",
    "title": "标题",
    "position": "职务",
    "version": "版本",
    "phone": "电话",
    # users
    "username": "用户名",
    "display_name": "姓名",
    "password_hash": "密码",
    "password": "密码",
    "role": "角色",
    "last_login_at": "上次登录",
    "failed_login_count": "登录失败次数",
    "failed_login_since": "首次登录失败时间",
    "locked_until": "锁定至",
    "session_version": "会话版本",
    "password_changed_at": "修改密码时间",
    "must_change_password": "须修改密码",
    # catalogues
    "leading_industry": "主导产业",
    "short_name": "简称",
    "category": "类别",
    # companies and contacts
    "name_key": "名称比对键",
    "name_head": "名称比对键前缀",
    "merged_into_id": "并入企业",
    "merged_at": "合并时间",
    "kept": "保留未改",
    "kept_id": "保留企业编号",
    "kept_name": "保留企业名称",
    "login_failures": "登录失败次数",
    "address": "客户端地址",
    "at": "时间",
    "succeeded": "是否成功",
    "credit_code": "统一社会信用代码",
    "legal_representative": "法定代表人",
    "registered_capital": "注册资本(万元)",
    "origin": "来源地",
    "industry": "所属行业",
    "registered_by_carrier_id": "登记载体",
    "email": "电子邮箱",
    "wechat": "微信",
    "contact_id": "联系人",
    # projects
    "is_key": "重点项目",
    "stage": "阶段",
    "status": "状态",
    "status_reason": "状态说明",
    "status_on": "状态生效日期",
    "lost_to": "流失去向",
    "termination_reason_id": "终止原因",
    "total_investment": "总投资(万元)",
    "fixed_asset_investment": "固定资产投资(万元)",
    "land_area": "用地面积(亩)",
    "expected_output": "预计年产值(万元)",
    "expected_tax": "预计年税收(万元)",
    "expected_jobs": "预计就业(人)",
    "description": "项目简介",
    "planned_signed_on": "计划签约日期",
    "signed_on": "签约日期",
    "signed_amount": "签约金额(万元)",
    "planned_started_on": "计划开工日期",
    "started_on": "开工日期",
    "planned_producing_on": "计划投产日期",
    "producing_on": "投产日期",
    "search_text": "检索文本",
    "last_followup_on": "最近跟踪日期",
    "next_action": "下一步",
    "next_action_due": "下一步期限",
    # stage and status history, verification (甄别)
    "from_stage": "原阶段",
    "to_stage": "新阶段",
    "changed_by_id": "变更人",
    "changed_at": "变更时间",
    "verification": "甄别",
    "verified_by_id": "甄别人",
    "verified_at": "甄别时间",
    "verification_note": "甄别意见",
    "stage_change": "阶段变更记录",
    "from_status": "原状态",
    "to_status": "新状态",
    "effective_on": "生效日期",
    # follow-ups, element needs, funds
    "followup_id": "跟踪服务",
    "happened_on": "日期",
    "quantity": "数量",
    "unit": "单位",
    "received_on": "到位日期",
    "amount": "金额(万元)",
    # conflicts and hand-overs
    "other_project_id": "对方项目",
    "basis": "依据",
    "detected_at": "发现时间",
    "resolved_at": "处理时间",
    "resolved_by_id": "处理人",
    "resolution_note": "处理说明",
    "from_carrier_id": "原载体",
    "to_carrier_id": "接收载体",
    "benefit_sharing": "收益分享",
    "handed_by_id": "流转人",
    "handed_at": "流转时间",
    "from_officer_id": "原责任人",
    "proposed_officer_id": "拟定责任人",
    "decline_reason": "退回原因",
    # evaluation
    "template_id": "评估清单",
    "is_current": "当前版本",
    "change_note": "修订说明",
    "section_id": "所属部分",
    "guidance": "填写指引",
    "is_veto": "一票否决",
    "max_score": "满分",
    "evaluation_id": "评估",
    "state": "状态",
    "started_by_id": "发起人",
    "submitted_at": "提交时间",
    "submitted_by_id": "提交人",
    "decided_at": "决策时间",
    "item_id": "事项",
    "answer_id": "评估事项",
    "verdict": "结论",
    "comment": "说明",
    "score": "得分",
    "outcome": "决策结果",
    "meeting_date": "会议日期",
    "meeting_name": "会议名称",
    "participants": "参会人员",
    "opinion": "决策意见",
    "decided_by_id": "决策人",
    "dossier_file_id": "存档尽调摘要",
    # files
    "file_id": "文件",
    "original_name": "文件名",
    "stored_name": "存储名",
    "content_type": "文件类型",
    "size": "大小(字节)",
    "sha256": "SHA-256",
    "uploaded_by_id": "上传人",
    "uploaded_at": "上传时间",
    # tasks
    "due_on": "期限",
    "assignee_id": "负责人",
    "completion_note": "完成情况",
    "cancel_reason": "取消原因",
    "completed_at": "完成时间",
    "completed_by_id": "完成人",
    "cancelled_at": "取消时间",
    "cancelled_by_id": "取消人",
    # the audit log itself
    "action": "操作",
    "object_type": "对象类型",
    "object_id": "对象编号",
    "changes": "变更",
    # background jobs and mail
    "task_id": "队列任务编号",
    "attempt": "第几次运行",
    "error": "错误",
    "started_at": "开始时间",
    "finished_at": "结束时间",
    "key": "邮件键",
    "subject": "主题",
    "sent_at": "发送时间",
    # the ledger's export and import
    "filter": "筛选条件",
    "rows": "行数",
    "created": "新建",
    "updated": "更新",
    "unchanged": "无变化",
    "companies": "新建企业",
    "conflicts": "跨载体冲突",
}

# Where one word means something narrower for one object type.
FIELD_LABELS_BY_TYPE = {
    "contacts": {"name": "姓名"},
    "element_needs": {"kind": "要素", "status": "保障状态", "note": "备注"},
    "followups": {"kind": "方式", "summary": "内容"},
    "funds_records": {"note": "备注"},
    "stored_files": {"kind": "材料类型"},
    "notifications": {
        "kind": "通知类别",
        "actor_id": "发起人",
        "text": "内容",
        "url": "链接",
        "key": "去重键",
        "read_at": "阅读时间",
    },
    "evaluations": {"state": "评估状态"},
    "handovers": {
        "state": "流转状态",
        "decided_by_id": "处理人",
        "decided_at": "处理时间",
        "officer_id": "接收后的责任人",
    },
    "stage_changes": {"officer_id": "当时的责任人"},
    "checklist_items": {"title": "事项"},
    "checklist_sections": {"title": "部分"},
    "tasks": {"title": "任务", "description": "说明", "status": "任务状态"},
    "job_runs": {"name": "任务", "summary": "参数"},
    "sent_mails": {"address": "收件地址"},
}

# Keys of a diff that are not columns of the entry's object, typed like this column.
VALUE_COLUMNS = {
    "verification": ("stage_changes", "verification"),
    "file_id": ("evaluation_answer_files", "file_id"),  # a stored file, shown by its name
}

# The column that names a record of a table (besides `name`, taken where a table has one).
NAME_COLUMNS = {"users": "display_name", "stored_files": "original_name"}

NOTHING = "—"


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action, action)


def object_type_label(object_type: str) -> str:
    return OBJECT_TYPE_LABELS.get(object_type, object_type)


def field_label(object_type: str, name: str) -> str:
    by_type = FIELD_LABELS_BY_TYPE.get(object_type, {})
    return by_type.get(name) or FIELD_LABELS.get(name, name)


def _column(object_type: str, name: str) -> sa.Column | None:
    """The column whose type a diff's key has: the object's own, else `VALUE_COLUMNS`."""
    own = db.metadata.tables.get(object_type)
    if own is not None and name in own.c:
        return own.c[name]
    if name in VALUE_COLUMNS:
        table, column = VALUE_COLUMNS[name]
        return db.metadata.tables[table].c[column]
    return None


def _name_column(table: str) -> sa.Column | None:
    found = db.metadata.tables.get(table)
    if found is None:
        return None
    return found.c.get(NAME_COLUMNS.get(table, "name"))


def _referenced_table(column: sa.Column | None) -> str | None:
    if column is None or not column.foreign_keys:
        return None
    return next(iter(column.foreign_keys)).column.table.name


# Reading entries ------------------------------------------------------------------------------


@dataclass
class ChangeLine:
    """One changed field: `old → new`, or a single `value`, or a group of `lines` (the answers
    of one checklist item)."""

    label: str
    old: str | None = None
    new: str | None = None
    value: str | None = None
    lines: list[ChangeLine] = field(default_factory=list)

    @property
    def is_pair(self) -> bool:
        return self.old is not None

    def text(self) -> str:
        if self.lines:
            return f"{self.label}（{'；'.join(line.text() for line in self.lines)}）"
        if self.is_pair:
            return f"{self.label}：{self.old} → {self.new}"
        return f"{self.label}：{self.value}"


@dataclass
class EntryView:
    """An audit entry as people read it: labels instead of codes."""

    action: str
    object: str  # 项目 #12 某某项目
    changes: list[ChangeLine]

    @property
    def changes_text(self) -> str:
        return "；".join(line.text() for line in self.changes)


class _Names:
    """Names of the records a batch of entries mentions: collected first, then read with one
    query per table."""

    def __init__(self) -> None:
        self.wanted: dict[str, set[int]] = defaultdict(set)
        self.found: dict[tuple[str, int], str] = {}

    def want(self, table: str | None, value: Any) -> None:
        is_id = isinstance(value, int) and not isinstance(value, bool)
        if table and is_id and _name_column(table) is not None:
            self.wanted[table].add(value)

    def load(self) -> None:
        for table, ids in self.wanted.items():
            name = _name_column(table)
            id_column = db.metadata.tables[table].c.id
            ordered = sorted(ids)
            for start in range(0, len(ordered), 500):
                chunk = ordered[start : start + 500]
                rows = db.session.execute(sa.select(id_column, name).where(id_column.in_(chunk)))
                self.found.update(((table, row_id), text) for row_id, text in rows)

    def get(self, table: str | None, value: Any) -> str | None:
        return self.found.get((table, value)) if table else None


def _old_new(value: Any) -> tuple[Any, Any] | None:
    if isinstance(value, list) and len(value) == 2:
        return value[0], value[1]
    return None


def value_text(column: sa.Column | None, value: Any, names: _Names) -> str:
    """One recorded value as people read it."""
    if value is None or value == "":
        return NOTHING
    if isinstance(value, bool):
        return "是" if value else "否"
    kind = column.type if column is not None else None
    if isinstance(kind, sa.Enum) and kind.enum_class and isinstance(value, str):
        member = kind.enum_class.__members__.get(value)
        if isinstance(member, enum.Enum):
            return getattr(member, "label", member.name)
    table = _referenced_table(column)
    if table:
        name = names.get(table, value)
        return name if name is not None else f"#{value}"
    if isinstance(kind, UTCDateTime | sa.DateTime) and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            moment = moment.astimezone(LOCAL_TZ)
        return moment.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _line(object_type: str, key: str, value: Any, names: _Names) -> ChangeLine:
    column = _column(object_type, key)
    label = field_label(object_type, key)
    pair = _old_new(value)
    if pair is not None:
        old, new = (value_text(column, v, names) for v in pair)
        return ChangeLine(label, old=old, new=new)
    return ChangeLine(label, value=value_text(column, value, names))


# The object type of the fields nested under a group key (evaluation_filled: item → answer).
NESTED_TYPES = {"evaluations": "evaluation_answers"}


def _diff_items(entry: Any) -> Iterator[tuple[str | None, str, str, Any]]:
    """(group, object type, field, value) of an entry's diff; a nested group's fields (the
    answers of one checklist item) come with the group's key and the nested object type."""
    for key, value in (entry.changes or {}).items():
        if isinstance(value, dict):
            nested = NESTED_TYPES.get(entry.object_type, entry.object_type)
            for sub, sub_value in value.items():
                yield key, nested, sub, sub_value
        else:
            yield None, entry.object_type, key, value


def describe_entries(entries: Sequence[Any]) -> list[EntryView]:
    """Readable views of `entries` (AuditEntry rows), with the names of the records they
    mention read in one query per table, whatever the number of entries."""
    names = _Names()
    for entry in entries:
        names.want(entry.object_type, entry.object_id)
        for _group, object_type, key, value in _diff_items(entry):
            table = _referenced_table(_column(object_type, key))
            for v in _old_new(value) or (value,):
                names.want(table, v)
    names.load()

    views = []
    for entry in entries:
        type_label = object_type_label(entry.object_type) if entry.object_type else ""
        name = names.get(entry.object_type, entry.object_id) or ""
        parts = [type_label, f"#{entry.object_id}" if entry.object_id else "", name]
        lines: list[ChangeLine] = []
        groups: dict[str, ChangeLine] = {}
        for group, object_type, key, value in _diff_items(entry):
            line = _line(object_type, key, value, names)
            if group is None:
                lines.append(line)
                continue
            if group not in groups:
                groups[group] = ChangeLine(group)
                lines.append(groups[group])
            groups[group].lines.append(line)
        views.append(
            EntryView(
                action=action_label(entry.action),
                object=" ".join(p for p in parts if p) or NOTHING,
                changes=lines,
            )
        )
    return views
