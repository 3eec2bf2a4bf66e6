"""The default checklist (评估清单) for measure 22: the four procedures and the six core
questions, with items drawn from how counties and parks vet projects (团风县's 100-point
准入评价, 汕尾's 前置研判, 新平县's 评审论证, Anhui's 亩均效益 standards). Scores total 100;
veto items (一票否决) are marked. The admin revises it by making a new version."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from crm.evaluation.models import ChecklistTemplate
from crm.evaluation.services import ItemSpec, SectionSpec, create_template_version
from crm.extensions import db

DEFAULT_TEMPLATE_NAME = "重大招商项目评估清单"


def _i(title: str, guidance: str, score: int | None = None, veto: bool = False) -> ItemSpec:
    return ItemSpec(title, guidance, veto, Decimal(score) if score else None)


DEFAULT_SECTIONS = [
    SectionSpec(
        "一、尽职调查",
        [
            _i(
                "工商登记与股权结构",
                "核查营业执照、公司章程、股权结构及实际控制人；附国家企业信用信息公示系统截图。",
                4,
            ),
            _i(
                "近三年财务状况",
                "审阅近三年经审计的财务报表：营业收入、利润、资产负债率、现金流；判断出资能力。",
                5,
            ),
            _i(
                "信用与涉诉记录",
                "查询信用中国、中国执行信息公开网、裁判文书网：失信被执行人、重大诉讼、行政处罚。投资主体为失信被执行人的一票否决。",
                4,
                True,
            ),
            _i(
                "投资方实力与业绩",
                "同类项目的建设与运营业绩、行业地位、技术团队；附实地考察报告（考察报告）。",
                4,
            ),
        ],
    ),
    SectionSpec(
        "二、项目论证",
        [
            _i(
                "市场前景",
                "产品市场容量、竞争格局、目标客户与订单情况；引用行业研究或第三方报告。",
                4,
            ),
            _i(
                "技术水平与工艺路线",
                "技术来源、先进性与成熟度，是否属于国家鼓励类；核心专利与研发投入强度。",
                5,
            ),
            _i(
                "投资计划与资金来源",
                "总投资构成（固定资产、设备、流动资金）、分期计划、自有资金与融资比例；附可行性研究报告。",
                4,
            ),
            _i("建设内容与建设周期", "建设规模、主要建设内容、开工与投产计划是否合理可行。", 3),
        ],
    ),
    SectionSpec(
        "三、合法性审查",
        [
            _i(
                "投资协议条款合法合规",
                "由司法部门或法律顾问审查协议文本：权利义务、违约责任、争议解决、退出条款。",
                None,
            ),
            _i(
                "优惠政策合规性",
                "承诺的奖补、税收、土地等优惠是否符合国家和省市政策（措施二十三），有无违规返还、变相减免。",
                None,
                True,
            ),
        ],
    ),
    SectionSpec(
        "四、集体决策准备",
        [
            _i(
                "部门联审意见",
                "发改、自然资源、生态环境、住建、税务等部门的书面意见是否齐备，有无反对或保留意见（参考联审会制度）。",
                None,
            ),
            _i(
                "决策材料完整性",
                "尽调报告、可研报告、考察报告、合法性审查意见、协议文本是否已齐备并提交决策会议。",
                None,
            ),
        ],
    ),
    SectionSpec(
        "五、产业导向",
        [
            _i("符合“4+6+6”产业体系", "项目所属产业集群与产业链环节，是否补链、延链、强链。", 6),
            _i(
                "符合载体主导产业",
                "与落地载体的主导产业、园区规划是否契合（措施十三，避免内卷式招商）。",
                4,
            ),
        ],
    ),
    SectionSpec(
        "六、政策取向",
        [
            _i(
                "产业政策与行业准入",
                "对照《产业结构调整指导目录》：鼓励类 / 允许类 / 限制类 / 淘汰类；淘汰类和禁止类一票否决。",
                4,
                True,
            ),
            _i(
                "外商投资准入负面清单",
                "外资项目对照现行外商投资准入负面清单（措施九）；内资项目填“不适用”并说明。",
                None,
            ),
        ],
    ),
    SectionSpec(
        "七、土地指标",
        [
            _i(
                "用地规模与亩均投资强度是否达到标准",
                "用地规模是否合理；亩均固定资产投资强度对照省建设用地使用标准与载体门槛。",
                8,
            ),
            _i(
                "亩均税收与产出强度",
                "达产后亩均税收、亩均营业收入对照载体标准（参考安徽亩均效益评价）。",
                8,
            ),
            _i(
                "国土空间规划与选址",
                "选址是否符合国土空间规划、用地性质与规划条件；是否占用永久基本农田或生态保护红线（占用的一票否决）。",
                4,
                True,
            ),
        ],
    ),
    SectionSpec(
        "八、环境保护",
        [
            _i(
                "环评类别与污染物排放",
                "环境影响评价类别（报告书 / 报告表 / 登记表），主要污染物与治理措施；属于禁止准入的高污染行业的一票否决。",
                5,
                True,
            ),
            _i(
                "能耗与碳排放",
                "年综合能耗（吨标准煤）、单位产值能耗、碳排放强度，是否需节能审查与能耗指标（措施十、十一）。",
                5,
            ),
            _i("安全生产", "危险化学品、重大危险源、安全评价要求。", 2),
        ],
    ),
    SectionSpec(
        "九、综合效益",
        [
            _i("税收贡献", "达产后年税收及其测算依据。", 8),
            _i("产值与带动作用", "达产后年产值，对上下游企业的带动。", 5),
            _i("就业安置", "新增就业人数与本地用工比例。", 3),
        ],
    ),
    SectionSpec(
        "十、承载能力",
        [
            _i(
                "水电气热等要素保障",
                "用水、用电、用气、用热需求与载体供给能力；需新建配套的，说明方案与时限。",
                3,
            ),
            _i("交通与配套条件", "道路、物流、污水处理、员工生活配套等建设条件。", 2),
        ],
    ),
]


def seed_default_template() -> bool:
    """Create the default checklist if no template exists yet. Idempotent."""
    if db.session.scalar(sa.select(ChecklistTemplate.id).limit(1)) is not None:
        return False
    create_template_version(None, DEFAULT_TEMPLATE_NAME, DEFAULT_SECTIONS, "默认清单")
    return True
