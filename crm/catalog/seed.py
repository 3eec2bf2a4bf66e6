"""The starting catalogues: Bozhou's 载体, the 4+6+6 clusters and their chains, the 招商渠道,
the reasons for 终止 and the 部门.

The data lives here, in code, so a fresh installation gets it without any file. Seeding only
inserts what is missing (matched by name), so it is safe to run again after the admin has
added, reordered or deactivated entries; it never changes or removes an existing entry.
"""

from __future__ import annotations

import sqlalchemy as sa

from crm.catalog.models import (
    Carrier,
    Chain,
    Channel,
    Cluster,
    ClusterCategory,
    Department,
    TerminationReason,
)
from crm.extensions import db

# 载体 and their leading industries (measure 2: each 载体 picks one or two 主导产业).
CARRIERS: list[tuple[str, str]] = [
    ("谯城区", "现代中医药、白酒及保健酒、文化旅游"),
    ("涡阳县", "汽车及零部件、高端装备制造、白酒及保健酒"),
    ("蒙城县", "新能源、汽车及零部件、新材料"),
    ("利辛县", "轻纺服饰、高端绿色食品、生物质能"),
    ("亳州高新区", "现代中医药、生命科学、新一代信息技术"),
    ("亳芜现代产业园区", "高端装备制造、新能源、低空经济"),
]

# The "4+6+6" clusters, each with its chains (产业链).
CLUSTERS: list[tuple[str, ClusterCategory, list[str]]] = [
    (
        "现代中医药",
        ClusterCategory.TRADITIONAL,
        ["中药材种植", "中药饮片", "中成药", "中医药大健康"],
    ),
    ("白酒及保健酒", ClusterCategory.TRADITIONAL, ["白酒酿造", "保健酒", "酒类包装及配套"]),
    (
        "高端绿色食品",
        ClusterCategory.TRADITIONAL,
        ["农产品精深加工", "预制菜", "功能性食品", "花草茶"],
    ),
    ("文化旅游", ClusterCategory.TRADITIONAL, ["中医药康养旅游", "历史文化街区", "文化创意"]),
    ("新能源", ClusterCategory.EMERGING, ["光伏", "储能", "新能源电池", "风电装备"]),
    ("新材料", ClusterCategory.EMERGING, ["化工新材料", "生物基材料", "先进金属材料"]),
    ("汽车及零部件", ClusterCategory.EMERGING, ["新能源整车", "汽车零部件", "汽车电子"]),
    (
        "高端装备制造",
        ClusterCategory.EMERGING,
        ["智能制造装备", "农机装备", "中药装备", "节能环保装备"],
    ),
    ("轻纺服饰", ClusterCategory.EMERGING, ["纺织面料", "服装制造", "家纺"]),
    (
        "新一代信息技术",
        ClusterCategory.EMERGING,
        ["电子元器件", "软件和信息服务", "算力及数据中心"],
    ),
    ("生命科学", ClusterCategory.FUTURE, ["生物医药", "医疗器械", "合成生物"]),
    ("低碳能源", ClusterCategory.FUTURE, ["氢能", "新型储能", "生物质能"]),
    ("先进材料", ClusterCategory.FUTURE, ["高性能纤维", "石墨烯及碳材料", "新型显示材料"]),
    ("低空经济", ClusterCategory.FUTURE, ["无人机制造", "低空运营服务", "通用航空"]),
    ("人工智能", ClusterCategory.FUTURE, ["智能终端", "人工智能应用", "智能机器人"]),
    ("量子信息", ClusterCategory.FUTURE, ["量子通信", "量子计算", "量子精密测量"]),
]

# 招商渠道 (measures 15–19).
CHANNELS: list[str] = [
    "链式招商",
    "并购招商",
    "资本招商",
    "场景招商",
    "专业招商（委托）",
    "以商招商",
    "其他",
]

TERMINATION_REASONS: list[str] = [
    "企业投资意向变化",
    "资金链问题",
    "要素保障无法满足",
    "不符合产业政策",
    "环保或能耗不达标",
    "落户其他地区",
    "其他",
]

# 部门: every 牵头 or 配合单位 of 亳政〔2025〕38号 (the 30 measures) that is a department, in the
# order the text first names it, those of measure 28 (要素保障) first: the 载体 (县区人民政府,
# 管委会) and the 各产业专班办公室 it also names are users of their own kind, not 部门.
DEPARTMENTS: list[str] = [
    # measure 28: 要素会商 (用地、用林、用能、用水、环境容量)
    "市发展改革委",
    "市自然资源和规划局",
    "市生态环境局",
    "市住房城乡建设局",
    "市城市管理局",
    "市应急局",
    "市投资促进中心",
    # the other measures
    "市工业和信息化局",
    "市科技局",
    "市农业农村局",
    "市文化旅游体育局",
    "市中医药管理局",
    "市数据资源局",
    "市商务局",
    "亳州海关",
    "市外事办",
    "市机关事务管理局",
    "市委人才工作局",
    "市人力资源社会保障局",
    "市财政局",
    "亳州金融监管分局",
    "人行亳州市分行",
    "市营商环境办",
    "市公安局",
    "市司法局",
    "市市场监管局",
]


def seed_catalogues() -> bool:
    """Insert the catalogue entries that are missing, by name; True if anything was added.

    Flushes, does not commit.
    """
    added = 0
    carriers = _existing(Carrier)
    for order, (name, leading_industry) in enumerate(CARRIERS, 1):
        if name not in carriers:
            db.session.add(Carrier(name=name, leading_industry=leading_industry, sort_order=order))
            added += 1

    clusters = _existing(Cluster)
    for order, (name, category, chain_names) in enumerate(CLUSTERS, 1):
        cluster = clusters.get(name)
        if cluster is None:
            cluster = Cluster(name=name, category=category, sort_order=order)
            db.session.add(cluster)
            added += 1
            have = set()
        else:
            have = {chain.name for chain in cluster.chains}
        for chain_order, chain_name in enumerate(chain_names, 1):
            if chain_name not in have:
                db.session.add(Chain(cluster=cluster, name=chain_name, sort_order=chain_order))
                added += 1

    for model, names in (
        (Channel, CHANNELS),
        (TerminationReason, TERMINATION_REASONS),
        (Department, DEPARTMENTS),
    ):
        have = _existing(model)
        for order, name in enumerate(names, 1):
            if name not in have:
                db.session.add(model(name=name, sort_order=order))
                added += 1

    if added:
        db.session.flush()
    return added > 0


def _existing(model) -> dict:
    return {entry.name: entry for entry in db.session.scalars(sa.select(model))}
