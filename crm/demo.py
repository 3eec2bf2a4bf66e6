"""Demo data: accounts for every role and about sixty projects at every stage.

Everything is built through the real services (companies, projects, the lifecycle with its
签约 gate: an evaluation the leaders passed and the agreement on file; follow-ups, element
needs, funds), so the history and the audit log are what real use would leave. Afterwards the timestamps of the history rows are moved back so the timeline spans
months of work; stage history stays in order. The audit log keeps the real time of loading.

Names of companies and people are invented. `random.Random(2026)` makes the data the same on
every load (dates are relative to the day it is loaded).
"""

from __future__ import annotations

import io
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from crm.auth.models import Role, User
from crm.auth.services import create_user
from crm.catalog.models import Carrier, Chain, Channel, Cluster, TerminationReason
from crm.catalog.seed import seed_catalogues
from crm.companies.credit_code import CHARSET, check_character
from crm.companies.models import Company, Contact, Origin
from crm.companies.services import add_contact, create_company
from crm.core import LOCAL_TZ, local_today, utcnow
from crm.evaluation.models import (
    Decision,
    DecisionOutcome,
    Evaluation,
    EvaluationAnswer,
    Verdict,
)
from crm.evaluation.seed import seed_default_template
from crm.evaluation.services import (
    AnswerInput,
    decide,
    save_answers,
    start_evaluation,
    submit_evaluation,
)
from crm.extensions import db
from crm.files.models import DocumentKind
from crm.files.services import store_file
from crm.projects.conflicts import handover_project
from crm.projects.lifecycle import change_status, move_stage, reject_move, verify_move
from crm.projects.models import (
    ElementKind,
    ElementStatus,
    FollowUpKind,
    Project,
    ProjectConflict,
    StageChange,
)
from crm.projects.registration import create_project
from crm.projects.services import add_element_need, add_followup, add_funds
from crm.projects.stages import Stage, Status, Verification

DEMO_PASSWORD = "Demo@2026"

# (username, display name, role, scope: the 载体 or cluster name, or 全市)
DEMO_USERS: list[tuple[str, str, Role, str]] = [
    ("admin", "孙立群", Role.ADMIN, "全市"),
    ("leader", "王建华", Role.LEADER, "全市"),
    ("officer_qc", "李文博", Role.OFFICER, "谯城区"),
    ("officer_gx", "陈思雨", Role.OFFICER, "亳州高新区"),
    ("officer_wy", "张振宇", Role.OFFICER, "涡阳县"),
    ("officer_mc", "刘晓峰", Role.OFFICER, "蒙城县"),
    ("officer_lx", "赵静怡", Role.OFFICER, "利辛县"),
    ("officer_bw", "吴昊天", Role.OFFICER, "亳芜现代产业园区"),
    ("taskforce_zy", "孟庆华", Role.TASKFORCE, "现代中医药"),
    ("taskforce_xny", "何志刚", Role.TASKFORCE, "新能源"),
]

IN, OUT, ABROAD = Origin.IN_PROVINCE, Origin.OUT_OF_PROVINCE, Origin.OVERSEAS

# The rejected demo evaluation fails this veto item (一票否决).
REJECTED_VETO_ITEM = "产业政策与行业准入"
REJECTED_VETO_COMMENT = (
    "主要产品属于《产业结构调整指导目录》限制类，新增产能不符合行业准入条件，一票否决。"
)

# key: (name, short name, origin, 6-digit region code of the credit code or None, city,
#       legal representative, registered capital in 万元, industry)
COMPANIES: dict[str, tuple[str, str, Origin, str | None, str, str, int, str]] = {
    "qiyun": ("亳州谯韵本草饮片有限公司", "谯韵本草", IN, "341602", "亳州", "李建国", 5000, "中药饮片加工"),
    "huaxi": ("安徽华曦中药科技股份有限公司", "华曦中药", IN, "341600", "亳州", "王德明", 12000, "中成药制造"),
    "jinlan": ("江苏金澜生物医药有限公司", "金澜生物", OUT, "320505", "苏州", "陈志远", 30000, "生物医药"),
    "baicao": ("浙江百草源健康产业集团有限公司", "百草源集团", OUT, "330106", "杭州", "周文涛", 50000, "中医药大健康"),
    "shennong": ("亳州神农谷农业科技有限公司", "神农谷农业", IN, "341623", "利辛", "刘长海", 2000, "中药材种植"),
    "pubiao": ("上海谱标检测技术有限公司", "谱标检测", OUT, "310115", "上海", "邱立华", 3000, "检验检测"),
    "hanhan": ("华瀚国际投资（香港）有限公司", "华瀚国际", ABROAD, None, "香港", "黄伟文", 50000, "投资管理"),
    "woshui": ("安徽涡水酒业有限公司", "涡水酒业", IN, "341621", "涡阳", "张守仁", 8000, "白酒酿造"),
    "yajing": ("深圳市雅晶包装科技有限公司", "雅晶包装", OUT, "440300", "深圳", "黄志豪", 6000, "酒类包装"),
    "qiongzhi": ("山东琼芝保健酒业有限公司", "琼芝酒业", OUT, "370100", "济南", "孙立新", 10000, "保健酒"),
    "heyuan": ("河南禾丰源食品股份有限公司", "禾丰源食品", OUT, "410100", "郑州", "郭宏伟", 20000, "农产品精深加工"),
    "weijia": ("上海味嘉预制食品有限公司", "味嘉食品", OUT, "310115", "上海", "吴佳琪", 5000, "预制菜"),
    "chuanwei": ("四川川味源食品有限公司", "川味源", OUT, "510100", "成都", "何勇", 8000, "调味品及预制菜"),
    "shaoxiang": ("亳州芍香花草茶业有限公司", "芍香茶业", IN, "341602", "亳州", "赵秀兰", 1500, "花草茶"),
    "yishan": ("安徽益膳堂食品科技有限公司", "益膳堂", IN, "340100", "合肥", "钟浩", 3000, "药食同源食品"),
    "xinhe": ("安徽辛禾农业发展有限公司", "辛禾农业", IN, "341623", "利辛", "范春生", 6000, "畜禽屠宰及肉制品加工"),
    "caodu": ("安徽曹都文旅发展有限公司", "曹都文旅", IN, "341600", "亳州", "杨光辉", 30000, "文化旅游"),
    "songhe": ("北京松鹤康养投资有限公司", "松鹤康养", OUT, "110105", "北京", "马骏", 20000, "康养服务"),
    "jingyao": ("江苏晶曜光伏科技有限公司", "晶曜光伏", OUT, "320412", "常州", "徐海峰", 80000, "光伏组件及电池片"),
    "lingyuan": ("浙江锂源储能科技有限公司", "锂源储能", OUT, "330110", "杭州", "沈晓东", 50000, "储能系统"),
    "hengli": ("深圳市恒锂新能源电池有限公司", "恒锂新能源", OUT, "440300", "深圳", "林振华", 60000, "锂离子电池"),
    "fengqing": ("江苏风擎能源装备有限公司", "风擎能源", OUT, "320600", "南通", "朱国强", 40000, "风电装备"),
    "guyang": ("江苏固阳光伏配件有限公司", "固阳光伏", OUT, "320400", "常州", "施建伟", 8000, "光伏支架及边框"),
    "huarui": ("山东华锐新材料科技有限公司", "华锐新材料", OUT, "370300", "淄博", "韩立军", 25000, "化工新材料"),
    "shengyuan": ("安徽生源生物基材料有限公司", "生源生物基", IN, "340100", "合肥", "方志诚", 15000, "生物基材料"),
    "tongsheng": ("江西铜晟精密材料有限公司", "铜晟材料", OUT, "360100", "南昌", "罗永康", 18000, "铜合金材料"),
    "chicheng": ("安徽驰骋新能源汽车有限公司", "驰骋汽车", IN, "340100", "合肥", "钱卫东", 100000, "新能源专用车"),
    "hongchi": ("浙江宏驰汽车零部件有限公司", "宏驰零部件", OUT, "330300", "温州", "潘建华", 12000, "汽车零部件"),
    "zhijia": ("苏州智驾汽车电子有限公司", "智驾电子", OUT, "320505", "苏州", "许晨", 8000, "汽车电子"),
    "ruilian": ("芜湖瑞联汽车线束有限公司", "瑞联线束", IN, "340200", "芜湖", "葛志明", 6000, "汽车线束"),
    "jingzhun": ("上海精准智能装备有限公司", "精准智能", OUT, "310115", "上海", "冯伟", 15000, "工业机器人"),
    "fengnong": ("山东丰农机械装备有限公司", "丰农机械", OUT, "371300", "临沂", "董建军", 10000, "农机装备"),
    "jingyuan": ("江苏净源环保装备有限公司", "净源环保", OUT, "320200", "无锡", "谢磊", 9000, "节能环保装备"),
    "jingrui": ("芜湖精锐数控装备有限公司", "精锐数控", IN, "340200", "芜湖", "卢国栋", 10000, "精密传动部件"),
    "franken": ("德国弗兰肯精密机械有限公司", "弗兰肯精机", ABROAD, None, "德国斯图加特", "Markus Keller", 30000, "数控机床"),
    "jinxiu": ("浙江锦绣纺织科技有限公司", "锦绣纺织", OUT, "330600", "绍兴", "姚国平", 20000, "纺织面料"),
    "huafu": ("福建华服制衣有限公司", "华服制衣", OUT, "350500", "泉州", "蔡建明", 6000, "服装制造"),
    "mianxiang": ("江苏眠享家纺有限公司", "眠享家纺", OUT, "320600", "南通", "陆红", 5000, "家纺"),
    "xinlian": ("深圳市芯联电子元器件有限公司", "芯联电子", OUT, "440300", "深圳", "邓志强", 12000, "电子元器件"),
    "xindong": ("芜湖芯动微电子有限公司", "芯动微电子", IN, "340200", "芜湖", "戴文杰", 20000, "功率半导体"),
    "yungu": ("亳州云谷数字科技有限公司", "云谷数字", IN, "341600", "亳州", "孔祥瑞", 2000, "软件和信息服务"),
    "xingyun": ("北京智算星云科技有限公司", "智算星云", OUT, "110108", "北京", "曾凡宇", 50000, "算力服务"),
    "ruize": ("上海瑞泽生物制药有限公司", "瑞泽生物", OUT, "310115", "上海", "高瑞", 30000, "生物制药"),
    "kangrui": ("常州康睿医疗器械有限公司", "康睿医疗", OUT, "320400", "常州", "袁立", 6000, "医疗器械"),
    "hengtai": ("新加坡恒泰生物科技私人有限公司", "恒泰生物", ABROAD, None, "新加坡", "陈伟明", 20000, "植物提取"),
    "qingcheng": ("安徽氢程能源科技有限公司", "氢程能源", IN, "340100", "合肥", "傅强", 20000, "氢能装备"),
    "lvyuan": ("亳州绿源生物质能源有限公司", "绿源能源", IN, "341623", "利辛", "程建平", 5000, "生物质发电"),
    "hengxian": ("江苏恒纤高性能纤维有限公司", "恒纤纤维", OUT, "320500", "苏州", "彭伟", 30000, "碳纤维"),
    "xicai": ("常州烯材科技有限公司", "烯材科技", OUT, "320400", "常州", "曹阳", 8000, "石墨烯材料"),
    "yihang": ("深圳市翼航无人机科技有限公司", "翼航无人机", OUT, "440300", "深圳", "唐宇", 10000, "无人机制造"),
    "xiangyun": ("安徽翔云低空运营有限公司", "翔云低空", IN, "341600", "亳州", "魏东", 5000, "低空运营"),
    "tongyi": ("珠海通翼航空科技有限公司", "通翼航空", OUT, "440400", "珠海", "谭刚", 20000, "通用航空器"),
    "zhiyu": ("合肥智语人工智能科技有限公司", "智语科技", IN, "340100", "合肥", "严明", 5000, "人工智能"),
    "lingdong": ("杭州灵动机器人有限公司", "灵动机器人", OUT, "330108", "杭州", "邵杰", 8000, "智能机器人"),
    "liangheng": ("合肥量衡精密测量科技有限公司", "量衡科技", IN, "340100", "合肥", "秦思远", 5000, "量子精密测量"),
}  # fmt: skip

QC, GX, WY, MC, LX, BW = "谯城区", "亳州高新区", "涡阳县", "蒙城县", "利辛县", "亳芜现代产业园区"
P, A, S, K, T = Stage.PLANNED, Stage.ATTRACTING, Stage.SIGNED, Stage.STARTED, Stage.PRODUCING


@dataclass
class DemoProject:
    company: str
    name: str
    carrier: str
    cluster: str
    chain: str
    channel: str
    stage: Stage
    total: int  # 总投资, 万元
    land: int | None  # 亩; None when the project uses existing buildings
    content: str
    key: bool = False
    stale: bool = False  # no follow-up for over a month
    hold: str = ""  # 暂缓, with this reason
    resumed: tuple[str, str] | None = None  # 暂缓 then back to 正常: (hold reason, resume reason)
    dropped: tuple[str, str] | None = None  # 终止: (catalogue reason, explanation)
    lost: tuple[str, str] | None = None  # 流失: (where to, explanation)
    detour: str = ""  # went back from 招引 to 谋划 once, with this reason
    # An evaluation (measure 22) left at 招引: "draft", "submitted", "returned" or "rejected".
    # Every project that reached 签约 went through a passed one and has its agreement on file.
    evaluation: str = ""
    opinion: str = ""  # the leaders' opinion on a returned or rejected evaluation
    # 甄别: every move into 签约, 开工 or 投产 is verified by the task force (the admin where
    # the cluster has none), except the last move of an `unverified` project (still 待核实)
    # and of a `rejected` one (rejected with this reason: the project went back a stage).
    unverified: bool = False
    rejected: str = ""
    handover: tuple[str, str, str] | None = None  # 流转: (to 载体, reason, 收益分享)


_p = DemoProject


PROJECTS: list[DemoProject] = [
    # 谯城区
    _p("qiyun", "年产5万吨中药饮片生产线项目", QC, "现代中医药", "中药饮片", "链式招商", T, 60000, 120,
       "新建GMP标准厂房及净化车间4.2万平方米，购置切制、炒制、蒸煮、干燥等智能化饮片生产线12条", key=True),
    _p("qiyun", "中药饮片智能仓储物流中心项目", QC, "现代中医药", "中药饮片", "以商招商", A, 25000, 60,
       "建设中药饮片立体仓库、阴凉库及冷链仓储，配套追溯分拣中心，服务亳州中药材交易市场", stale=True),
    _p("baicao", "中医药大健康产业园项目", QC, "现代中医药", "中医药大健康", "资本招商", S, 150000, 300,
       "建设药食同源产品生产基地、中医药健康产品研发中心和体验展销中心", key=True, unverified=True),
    _p("pubiao", "中药材检验检测公共服务平台项目", QC, "现代中医药", "中医药大健康", "专业招商（委托）",
       P, 5000, 15, "建设中药材及饮片第三方检验检测实验室，开展农残、重金属及有效成分检测", stale=True),
    _p("hanhan", "亳州中药材国际交易中心项目", QC, "现代中医药", "中医药大健康", "资本招商", A, 200000, 180,
       "建设中药材国际交易大厅、仓储交割库及跨境电商服务中心", key=True,
       lost=("广西玉林市", "对方给予交易中心运营补贴，土地价格更具优势")),
    _p("qiongzhi", "年产2万千升保健酒项目", QC, "白酒及保健酒", "保健酒", "链式招商", K, 35000, 80,
       "建设保健酒浸泡、调配、灌装车间及成品库，引进全自动灌装线4条"),
    _p("yajing", "高端酒类包装材料生产项目", QC, "白酒及保健酒", "酒类包装及配套", "链式招商", S, 20000, 50,
       "建设高档酒盒、酒瓶彩印及异形包装生产线，为本地酒企就近配套"),
    _p("caodu", "亳州古城文化旅游综合体项目", QC, "文化旅游", "历史文化街区", "场景招商", A, 120000, 150,
       "对古城片区进行保护性开发，建设非遗展示街区、中医药文化体验馆及精品民宿", key=True,
       evaluation="submitted"),
    _p("songhe", "中医药康养旅居小镇项目", QC, "文化旅游", "中医药康养旅游", "专业招商（委托）", P, 80000, 200,
       "建设中医药康养中心、康养公寓及药用植物观光园",
       hold="企业正在调整年度投资计划，项目推迟至明年再议"),
    _p("shaoxiang", "芍花茶精深加工项目", QC, "高端绿色食品", "花草茶", "以商招商", K, 8000, 30,
       "建设花草茶清洁化加工车间、袋泡茶及代用茶生产线"),
    # 亳州高新区
    _p("huaxi", "中成药智能制造基地项目", GX, "现代中医药", "中成药", "链式招商", T, 85000, 150,
       "建设中成药前处理提取车间、固体制剂车间及智能立体库，年产片剂、胶囊、颗粒剂50亿粒(袋)", key=True),
    _p("huaxi", "中药配方颗粒二期扩产项目", GX, "现代中医药", "中成药", "以商招商", P, 30000, None,
       "在现有厂区内改扩建提取浓缩及配方颗粒生产线，新增品种300个", stale=True),
    _p("jinlan", "中药创新药研发及产业化项目", GX, "生命科学", "生物医药", "专业招商（委托）", S, 60000, 100,
       "建设中药创新药研发中心、中试平台及符合GMP要求的产业化车间", key=True),
    _p("ruize", "抗体药物中试及产业化基地项目", GX, "生命科学", "生物医药", "资本招商", A, 100000, 150,
       "建设抗体药物细胞培养、纯化及制剂车间，配套质量检验中心",
       dropped=("资金链问题", "企业B轮融资未能落地，无力推进新基地建设")),
    _p("kangrui", "高端医用耗材生产项目", GX, "生命科学", "医疗器械", "链式招商", K, 15000, 40,
       "建设十万级洁净车间，生产一次性输注器械、医用敷料等产品"),
    _p("hengtai", "植物提取物及天然药物研发生产项目", GX, "生命科学", "生物医药", "并购招商", A, 45000, 80,
       "并购本地提取企业并扩建植物提取生产线，产品主要出口东南亚市场", stale=True),
    _p("yungu", "中药材产业互联网平台项目", GX, "新一代信息技术", "软件和信息服务", "场景招商", K, 5000, None,
       "建设中药材产业互联网平台，提供在线交易、质量追溯和供应链金融服务"),
    _p("xingyun", "亳州智算中心项目", GX, "新一代信息技术", "算力及数据中心", "资本招商", S, 120000, 100,
       "建设算力规模500P的智算中心及配套液冷机房，服务中医药大数据和工业互联网应用", key=True,
       resumed=("企业融资方案调整，暂缓启动项目公司注册", "企业完成新一轮融资，项目恢复推进")),
    _p("zhiyu", "中医药人工智能辅助诊疗平台项目", GX, "人工智能", "人工智能应用", "场景招商", P, 6000, None,
       "依托本地中医院开展人工智能辅助辨证、处方推荐场景应用，建设区域研发中心"),
    _p("liangheng", "量子精密测量仪器研发生产项目", GX, "量子信息", "量子精密测量", "专业招商（委托）", P, 20000, 30,
       "建设量子磁力仪、量子重力仪研发中心及小批量生产线"),
    _p("xinlian", "片式电感及射频元件生产项目", GX, "新一代信息技术", "电子元器件", "链式招商", A, 30000, 60,
       "建设片式电感、射频滤波器生产线及可靠性实验室",
       lost=("江苏省宿迁市", "宿迁提供定制厂房代建及三年租金减免")),
    # 涡阳县
    _p("woshui", "年产1万千升原酒酿造及技改项目", WY, "白酒及保健酒", "白酒酿造", "以商招商", T, 40000, 120,
       "新建酿酒车间、陶坛酒库及智能化制曲车间，改造现有灌装线", unverified=True),
    _p("hongchi", "汽车轮毂及底盘零部件生产项目", WY, "汽车及零部件", "汽车零部件", "链式招商", K, 50000, 150,
       "建设铝合金轮毂低压铸造、旋压及机加工生产线，配套底盘结构件生产线", key=True),
    _p("zhijia", "汽车电子控制器生产项目", WY, "汽车及零部件", "汽车电子", "链式招商", S, 20000, 50,
       "建设车身控制器、电池管理系统控制板SMT贴片及总装测试线"),
    _p("fengnong", "智能农机装备制造项目", WY, "高端装备制造", "农机装备", "并购招商", A, 30000, 100,
       "建设大马力拖拉机、智能植保机械总装线及部件加工车间", stale=True, evaluation="draft"),
    _p("jingzhun", "工业机器人及自动化产线项目", WY, "高端装备制造", "智能制造装备", "专业招商（委托）", A, 25000, 60,
       "建设工业机器人本体及自动化集成产线生产基地",
       dropped=("要素保障无法满足", "项目要求的双回路供电及专用变电站短期内无法配套")),
    _p("franken", "精密数控机床生产项目", WY, "高端装备制造", "智能制造装备", "并购招商", P, 40000, 80,
       "引进德方五轴数控机床技术，建设整机装配及关键部件加工基地"),
    _p("huarui", "高性能工程塑料改性项目", WY, "新材料", "化工新材料", "链式招商", A, 35000, 90,
       "建设改性聚酰胺、聚碳酸酯等工程塑料造粒生产线",
       evaluation="rejected", opinion="项目能耗强度高，亩均税收低于园区准入标准，不予通过。",
       dropped=("不符合产业政策", "经集体决策否决：项目能耗强度高、亩均税收低于园区准入标准")),
    _p("tongsheng", "精密铜合金带材项目", WY, "新材料", "先进金属材料", "以商招商", T, 45000, 110,
       "建设熔铸、热轧、冷轧及分切生产线，年产高精度铜合金带材3万吨"),
    _p("heyuan", "年产30万吨优质专用面粉及制品项目", WY, "高端绿色食品", "农产品精深加工", "其他", S, 28000, 90,
       "建设小麦清理、制粉车间及挂面、速冻面食生产线，配套10万吨粮食仓储", stale=True),
    _p("jingyuan", "节能环保装备生产项目", WY, "高端装备制造", "节能环保装备", "以商招商", P, 12000, 40,
       "建设污水处理成套设备、VOCs治理设备生产车间", stale=True),
    # 蒙城县
    _p("jingyao", "10GW光伏组件项目", MC, "新能源", "光伏", "链式招商", T, 300000, 400,
       "建设10GW高效光伏组件智能化生产线及配套仓储物流设施", key=True),
    _p("jingyao", "5GW N型TOPCon电池片项目", MC, "新能源", "光伏", "以商招商", K, 250000, 300,
       "建设5GW N型TOPCon高效电池片生产线，与一期组件项目形成配套", key=True),
    _p("hengli", "年产6GWh锂离子电池项目", MC, "新能源", "新能源电池", "资本招商", S, 200000, 350,
       "建设磷酸铁锂储能电芯及动力电池PACK生产线", key=True, unverified=True),
    _p("chicheng", "新能源专用车整车项目", MC, "汽车及零部件", "新能源整车", "资本招商", A, 150000, 500,
       "建设冲压、焊装、涂装、总装四大工艺车间，年产新能源物流车、环卫车3万辆", key=True,
       hold="新能源专用车生产准入资质申报尚未获批，企业暂缓投资决策"),
    _p("hongchi", "汽车轻量化铝合金结构件项目", MC, "汽车及零部件", "汽车零部件", "链式招商", A, 40000, 120,
       "建设高压铸造铝合金电池托盘、副车架等轻量化结构件生产线", evaluation="returned",
       opinion="该企业已在涡阳县落地同类项目，请与涡阳县会商产能布局、避免重复招引后重新提交。"),
    _p("shengyuan", "年产10万吨聚乳酸项目", MC, "新材料", "生物基材料", "专业招商（委托）", P, 180000, 260,
       "以本地玉米、秸秆为原料，建设乳酸发酵、聚乳酸聚合及改性生产线", key=True),
    _p("qingcheng", "碱性电解槽制造项目", MC, "低碳能源", "氢能", "场景招商", P, 50000, 80,
       "建设碱性电解槽及制氢系统集成生产线，配套建设风光制氢示范场景"),
    _p("fengqing", "风电塔筒及叶片生产项目", MC, "新能源", "风电装备", "链式招商", A, 60000, 150,
       "建设风电塔筒、法兰及复合材料叶片生产线",
       lost=("河南省商丘市", "企业选择在靠近整机厂的商丘布局")),
    _p("lingyuan", "2GWh储能系统集成项目", MC, "新能源", "储能", "场景招商", K, 80000, 120,
       "建设储能变流器、电池簇及集装箱式储能系统集成生产线",
       rejected="现场核查：仅完成场地平整和围挡，主体工程尚未动工，不符合开工认定标准；实际开工后重新申报"),
    _p("hengxian", "高性能碳纤维及复合材料项目", MC, "先进材料", "高性能纤维", "链式招商", P, 120000, 200,
       "建设大丝束碳纤维原丝、碳化生产线及复合材料制品车间", stale=True,
       handover=(BW, "项目用地及配套需求与亳芜现代产业园区先进材料产业布局更契合，经市级协调流转",
                 "项目投产后前三年地方留成税收由蒙城县与亳芜现代产业园区按 4:6 分享")),
    # 利辛县
    _p("jinxiu", "高档纺织面料生产项目", LX, "轻纺服饰", "纺织面料", "链式招商", T, 50000, 150,
       "建设喷气织机、剑杆织机织造车间，年产高档服装面料8000万米"),
    _p("jinxiu", "高端面料印染配套项目", LX, "轻纺服饰", "纺织面料", "以商招商", P, 30000, 80,
       "建设数码印花及染整生产线，为一期织造项目配套",
       dropped=("环保或能耗不达标", "印染项目新增水污染物排放总量超出园区环境容量")),
    _p("huafu", "年产1200万件服装生产项目", LX, "轻纺服饰", "服装制造", "以商招商", K, 15000, 60,
       "建设智能吊挂生产线及服装设计打样中心，主要承接出口订单"),
    _p("mianxiang", "功能性家纺产品生产项目", LX, "轻纺服饰", "家纺", "以商招商", A, 12000, 50,
       "建设床品套件、功能性枕芯及被芯生产线",
       hold="企业受外贸订单下滑影响，扩产计划推迟"),
    _p("weijia", "预制菜中央厨房项目", LX, "高端绿色食品", "预制菜", "场景招商", S, 20000, 60,
       "建设预制菜中央厨房、速冻库及冷链配送中心，供应长三角团餐市场"),
    _p("chuanwei", "复合调味品及预制菜项目", LX, "高端绿色食品", "预制菜", "链式招商", A, 15000, 50,
       "建设复合调味料及川味预制菜生产线", stale=True),
    _p("yishan", "药食同源功能性食品生产项目", LX, "高端绿色食品", "功能性食品", "以商招商", A, 10000, 30,
       "以亳州道地药材为原料，生产代餐粉、固体饮料等药食同源产品",
       dropped=("其他", "企业被收购，新控股股东取消在亳投资计划")),
    _p("shennong", "万亩中药材GAP种植示范基地项目", LX, "现代中医药", "中药材种植", "其他", K, 12000, 50,
       "流转土地1万亩建设白芍、亳菊等道地药材GAP种植基地，配套建设产地加工中心"),
    _p("lvyuan", "农林生物质热电联产项目", LX, "低碳能源", "生物质能", "其他", T, 35000, 80,
       "建设2台130吨/小时生物质锅炉及30MW发电机组，为周边工业园区集中供热"),
    _p("xinhe", "肉牛屠宰及精深加工项目", LX, "高端绿色食品", "农产品精深加工", "其他", P, 20000, 80,
       "建设年屠宰10万头肉牛生产线及冷鲜肉、熟食制品加工车间", stale=True),
    # 亳芜现代产业园区
    _p("yihang", "工业级无人机研发生产基地项目", BW, "低空经济", "无人机制造", "链式招商", S, 30000, 60,
       "建设工业级无人机研发中心、总装线及试飞场", key=True),
    _p("xiangyun", "低空飞行服务站及运营中心项目", BW, "低空经济", "低空运营服务", "场景招商", A, 8000, 20,
       "建设低空飞行服务站、无人机物流及农林植保运营中心",
       detour="企业调整运营模式，需重新论证项目方案", evaluation="draft"),
    _p("tongyi", "通用航空器总装项目", BW, "低空经济", "通用航空", "资本招商", P, 100000, 300,
       "建设轻型通用飞机总装线、试飞跑道及维修保障中心", key=True),
    _p("lingdong", "智能巡检机器人生产项目", BW, "人工智能", "智能机器人", "场景招商", A, 15000, 40,
       "建设电力、管廊智能巡检机器人生产线及场景测试中心", stale=True),
    _p("xicai", "石墨烯导热膜项目", BW, "先进材料", "石墨烯及碳材料", "专业招商（委托）", K, 25000, 50,
       "建设石墨烯导热膜涂布、石墨化及压延生产线"),
    _p("jingrui", "精密减速器生产项目", BW, "高端装备制造", "智能制造装备", "以商招商", T, 30000, 80,
       "建设RV减速器、谐波减速器精密加工及装配生产线"),
    _p("ruilian", "新能源汽车线束及连接器项目", BW, "汽车及零部件", "汽车电子", "链式招商", K, 18000, 50,
       "建设高压线束、连接器注塑及装配生产线", unverified=True),
    _p("guyang", "光伏支架及边框项目", BW, "新能源", "光伏", "链式招商", S, 16000, 50,
       "建设光伏跟踪支架、铝合金边框生产线",
       hold="企业融资安排调整，开工时间推迟"),
    _p("xindong", "功率半导体封装测试项目", BW, "新一代信息技术", "电子元器件", "并购招商", A, 60000, 100,
       "建设IGBT、SiC功率模块封装测试生产线", key=True, evaluation="submitted"),
]  # fmt: skip

# Days between entering a stage and the previous event, as (least, most).
STAGE_GAPS: dict[Stage, tuple[int, int]] = {
    Stage.ATTRACTING: (15, 90),
    Stage.SIGNED: (30, 150),
    Stage.STARTED: (20, 120),
    Stage.PRODUCING: (120, 300),
}

# How many follow-ups a project has, by its stage: (least, most).
FOLLOWUP_COUNTS: dict[Stage, tuple[int, int]] = {
    Stage.PLANNED: (3, 5),
    Stage.ATTRACTING: (3, 7),
    Stage.SIGNED: (4, 8),
    Stage.STARTED: (5, 10),
    Stage.PRODUCING: (6, 10),
}

# Follow-up texts by the stage the project was in: (kind, summary, next action).
FOLLOWUPS: dict[Stage, list[tuple[FollowUpKind, str, str]]] = {
    Stage.PLANNED: [
        (FollowUpKind.MEETING, "产业专班梳理{chain}产业链图谱，将{short}列为重点招引目标企业，明确由{officer}牵头对接。", "收集企业基本情况及投资意向"),
        (FollowUpKind.CALL, "电话联系{short}{contact}，初步介绍{carrier}{chain}产业基础，企业表示近期有扩产计划，同意进一步沟通。", "约定时间赴{city}上门拜访"),
        (FollowUpKind.MEETING, "召开项目谋划专题会，研究{short}项目可行性及{carrier}承接条件，初步明确拟选址片区。", "形成项目谋划报告报分管领导"),
        (FollowUpKind.CALL, "通过行业协会了解{short}近三年经营情况，营收稳定增长，具备对外投资能力。", "整理企业画像及投资能力分析"),
        (FollowUpKind.VISIT, "随市领导赴{city}开展小分队招商，与{short}{contact}会面，企业对亳州{cluster}产业基础有初步了解。", "寄送{carrier}招商推介材料"),
    ],
    Stage.ATTRACTING: [
        (FollowUpKind.VISIT, "赴{city}拜访{short}，与{contact}座谈，介绍亳州区位交通、{chain}配套及招商政策，企业对在亳布局产能兴趣较大。", "邀请企业高层来亳实地考察"),
        (FollowUpKind.VISIT, "{contact}一行来{carrier}实地考察拟选地块及周边配套，对交通条件和要素保障表示认可。", "提供地块规划条件及要素价格清单"),
        (FollowUpKind.NEGOTIATION, "与{short}就投资规模、建设内容、用地需求进行第一轮洽谈，企业提出分期建设、一期先行租赁标准化厂房。", "研究企业提出的分期建设方案"),
        (FollowUpKind.NEGOTIATION, "就投资协议主要条款进行磋商，双方在投资强度、达产税收及违约责任条款上基本达成一致。", "起草投资协议文本送司法局合法性审查"),
        (FollowUpKind.MEETING, "产业专班召开项目研判会，对{short}项目的产业导向、亩均效益、能耗及环保指标进行论证。", "补充尽职调查材料"),
        (FollowUpKind.CALL, "电话跟进企业内部决策进展，{contact}反馈项目已提交董事会审议。", "跟进董事会审议结果"),
        (FollowUpKind.NEGOTIATION, "企业提出设备购置补贴及人才公寓配套诉求，已对照市级政策逐项答复。", "报请领导研究个性化支持条款"),
    ],
    Stage.SIGNED: [
        (FollowUpKind.MEETING, "召开签约项目推进会，明确项目公司注册、立项备案、用地报批等前期手续责任分工。", "协助企业办理项目公司注册登记"),
        (FollowUpKind.VISIT, "协助{short}完成项目公司注册及投资项目备案，启动环评、能评编制。", "跟进环评报告编制进度"),
        (FollowUpKind.CALL, "与企业确认土地挂牌时间安排，{contact}表示首期资金已准备到位。", "协调自然资源部门确定挂牌时间"),
        (FollowUpKind.MEETING, "组织发改、自然资源、生态环境等部门召开会商会，集中解决项目开工前审批事项。", "督促企业提交施工图审查材料"),
    ],
    Stage.STARTED: [
        (FollowUpKind.VISIT, "现场查看项目建设进度，主体厂房钢结构吊装已完成约{pct}%。", "协调供电部门落实临时用电增容"),
        (FollowUpKind.VISIT, "项目建设现场调度，企业反映施工用水接入滞后，已现场协调住建、水务部门。", "跟进施工用水接入"),
        (FollowUpKind.MEETING, "参加{carrier}重点项目月度调度会，项目整体进度符合计划。", "督促企业报送本月固定资产投资数据"),
        (FollowUpKind.CALL, "了解设备采购进度，主要生产设备已完成招标，预计下月陆续进场。", "协助企业申报设备购置补贴"),
    ],
    Stage.PRODUCING: [
        (FollowUpKind.VISIT, "走访已投产企业，了解产能爬坡情况，当前产能利用率约{pct}%。", "协助企业对接本地上下游配套企业"),
        (FollowUpKind.CALL, "企业反映技术工人招聘困难，已对接人社部门组织专场招聘会。", "跟进专场招聘会落实情况"),
        (FollowUpKind.VISIT, "协助企业申报高新技术企业及省级专精特新企业。", "跟进申报材料提交"),
        (FollowUpKind.MEETING, "召开企业服务专题会，解决企业提出的物流通道及员工通勤问题。", "督办相关部门答复"),
        (FollowUpKind.NEGOTIATION, "与{contact}商谈二期扩产意向，企业计划追加投资扩建生产线。", "研究二期项目用地需求"),
    ],
}  # fmt: skip

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高梁郑谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余"
GIVEN_NAMES = [
    "伟", "芳", "娜", "敏", "静", "磊", "强", "洋", "勇", "军", "杰", "涛", "明", "超", "霞",
    "海波", "建华", "志强", "晓东", "文静", "丽娟", "俊杰", "雪梅", "国庆", "立新", "佳怡",
    "宏伟", "春燕", "子涵", "浩然", "思远", "慧敏",
]  # fmt: skip
POSITIONS = [
    "总经理",
    "副总经理",
    "投资发展部总监",
    "项目经理",
    "行政总监",
    "财务总监",
    "董事会秘书",
]
FUNDS_NOTES = [
    "企业自有资金",
    "银行项目贷款",
    "股东增资款",
    "设备购置款",
    "产业基金出资",
    "工程款支付",
]
VERIFY_NOTES: dict[Stage, list[str]] = {
    Stage.SIGNED: ["已核对投资协议原件及集体决策纪要", "协议已经司法局合法性审查，核实无误"],
    Stage.STARTED: [
        "已现场核查，主体工程已开工",
        "已核对施工许可证及现场照片",
        "已现场核查，桩基施工中",
    ],
    Stage.PRODUCING: ["已现场核查，生产线已试生产", "已核对首批产品销售发票及排污许可证"],
}
PHONE_PREFIXES = ["135", "136", "137", "138", "139", "150", "151", "158", "186", "187", "189"]


# Comments on checklist items of the default template; other items get a plain one.
CHECKLIST_COMMENTS: dict[str, str] = {
    "工商登记与股权结构": "已核查营业执照及公司章程，股权结构清晰，实际控制人明确。",
    "近三年财务状况": "近三年经审计财务报表显示营收稳步增长，资产负债率处于合理区间。",
    "信用与涉诉记录": "经查询信用中国、中国执行信息公开网，无失信被执行及重大诉讼记录。",
    "符合“4+6+6”产业体系": "属于我市“4+6+6”产业体系重点发展领域。",
    "符合载体主导产业": "与载体主导产业方向一致，可与园区现有企业形成配套。",
    "用地规模与亩均投资强度是否达到标准": "亩均固定资产投资强度达到园区准入标准。",
    "亩均税收与产出强度": "达产后亩均税收、亩均产值高于园区平均水平。",
    "环评类别与污染物排放": "环评类别为报告表，主要污染物排放总量可在区域内平衡。",
    "能耗与碳排放": "年综合能耗在节能审查权限内，单位产值能耗优于行业平均水平。",
    "水电气热等要素保障": "载体供水、供电、供气能力可满足项目需求。",
}
CHECKLIST_NOT_APPLICABLE: dict[str, str] = {
    "外商投资准入负面清单": "内资项目，不涉及外商投资准入负面清单。",
}
MOSTLY_COMMENTS = [
    "基本符合，部分数据待企业补充证明材料。",
    "基本符合，建议在协议中明确分期达产节点。",
    "基本符合，需载体进一步核实相关测算。",
    "基本符合，存在一定市场风险，建议设置对赌条款。",
]


@dataclass
class _Timeline:
    """When things happened to one demo project."""

    moves: list[tuple[Stage | None, Stage, date, str]]  # (from, to, on, reason); first = creation
    last_followup: date
    status_changes: list[tuple[Status, date]] = field(default_factory=list)

    @property
    def created_on(self) -> date:
        return self.moves[0][2]

    def reached(self, stage: Stage) -> date | None:
        return next((on for _f, to, on, _r in self.moves if to is stage), None)

    def stage_on(self, day: date) -> Stage:
        stage = self.moves[0][1]
        for _f, to, on, _r in self.moves:
            if on <= day:
                stage = to
        return stage


class _DemoBuilder:
    def __init__(self, rng: random.Random, today: date):
        self.rng = rng
        # 甄别 and 流转 draw from their own sequence, so the rest of the data stays as it was.
        self.check_rng = random.Random(2027)  # noqa: S311 - not for secrets
        self.today = today
        self.now = utcnow()
        self.codes: set[str] = set()
        self.companies: dict[str, Company] = {}
        self.company_dates: dict[str, date] = {}
        self.carriers = {c.name: c for c in db.session.scalars(sa.select(Carrier))}
        self.clusters = {c.name: c for c in db.session.scalars(sa.select(Cluster))}
        self.chains = {(ch.cluster_id, ch.name): ch for ch in db.session.scalars(sa.select(Chain))}
        self.channels = {c.name: c for c in db.session.scalars(sa.select(Channel))}
        self.reasons = {r.name: r for r in db.session.scalars(sa.select(TerminationReason))}
        self.users: dict[str, User] = {}
        self.officers: dict[int, User] = {}  # by carrier id
        self.task_forces: dict[int, User] = {}  # by cluster id
        self.contacts: dict[str, list[Contact]] = {}  # by company key
        # (model, column) → [{"row_id": id, "moment": when}]: timestamps to move back
        self.backdates: defaultdict[tuple[type, str], list[dict]] = defaultdict(list)

    # Helpers ---------------------------------------------------------------------------

    def days_ago(self, least: int, most: int) -> date:
        return self.today - timedelta(days=self.rng.randint(least, most))

    def at(self, day: date, hour: int) -> datetime:
        """A moment of `day` in local time, never later than now."""
        moment = datetime.combine(day, time(hour, self.rng.randint(0, 59)), LOCAL_TZ)
        return min(moment.astimezone(UTC), self.now)

    def person_name(self) -> str:
        return self.rng.choice(SURNAMES) + self.rng.choice(GIVEN_NAMES)

    def phone(self) -> str:
        return self.rng.choice(PHONE_PREFIXES) + f"{self.rng.randint(0, 99999999):08d}"

    def credit_code(self, region: str) -> str:
        """A valid 统一社会信用代码 for an enterprise (登记管理部门 9, 类别 1) in `region`."""
        while True:
            if self.rng.random() < 0.5:  # codes issued since 2015 start with MA
                body = "MA" + "".join(self.rng.choice(CHARSET) for _ in range(6))
            else:
                body = "".join(self.rng.choice("0123456789") for _ in range(8))
            first17 = "91" + region + body + _organization_check(body)
            code = first17 + check_character(first17)
            if code not in self.codes:
                self.codes.add(code)
                return code

    # Building --------------------------------------------------------------------------

    def build(self) -> None:
        self.create_users()
        for spec in PROJECTS:
            self.create_project(spec)
        self.backdate_companies()
        self.write_backdates()

    def create_users(self) -> None:
        admin = None
        for username, display_name, role, scope in DEMO_USERS:
            user = create_user(
                admin,
                username=username,
                display_name=display_name,
                password=DEMO_PASSWORD,
                enforce_password_policy=False,  # the published demo password
                role=role,
                carrier=self.carriers.get(scope) if role is Role.OFFICER else None,
                cluster=self.clusters.get(scope) if role is Role.TASKFORCE else None,
                phone=self.phone(),
            )
            admin = admin or user
            self.users[username] = user
        self.officers = {u.carrier_id: u for u in self.users.values() if u.role is Role.OFFICER}
        self.task_forces = {
            u.cluster_id: u for u in self.users.values() if u.role is Role.TASKFORCE
        }

    def company_for(self, key: str, officer: User, created_on: date) -> Company:
        if key in self.companies:
            self.company_dates[key] = min(self.company_dates[key], created_on)
            return self.companies[key]
        name, _short, origin, region, _city, legal_rep, capital, industry = COMPANIES[key]
        company = create_company(
            officer,
            {
                "name": name,
                "credit_code": self.credit_code(region) if region else "",
                "legal_representative": legal_rep,
                "registered_capital": Decimal(capital),
                "origin": origin,
                "industry": industry,
            },
        )
        self.contacts[key] = []
        if self.rng.random() < 0.9:  # most companies have people on record
            self.add_contacts(key, officer, company, legal_rep)
        self.companies[key] = company
        self.company_dates[key] = created_on
        return company

    def add_contacts(self, key: str, officer: User, company: Company, legal_rep: str) -> None:
        people = [(legal_rep, "董事长", "企业决策人，重大事项需其拍板")]
        for position in self.rng.sample(POSITIONS, self.rng.randint(0, 2)):
            people.append((self.person_name(), position, ""))
        if self.rng.random() < 0.6:  # the day-to-day contact
            people.append((self.person_name(), "项目经理", "日常对接人，负责项目选址及手续办理"))
        for i, (name, position, notes) in enumerate(people, 1):
            contact = add_contact(
                officer,
                company,
                {
                    "name": name,
                    "position": position,
                    "phone": self.phone(),
                    "email": f"contact{i}@{key}.example.com",
                    "wechat": f"wx_{key}{self.rng.randint(100, 999)}" if i > 1 else "",
                    "notes": notes,
                },
            )
            self.contacts[key].append(contact)

    def timeline(self, spec: DemoProject) -> _Timeline:
        rng = self.rng
        status_changes: list[tuple[Status, date]] = []
        if spec.dropped or spec.lost or spec.hold:
            effective = self.days_ago(10, 150)
            last_followup = effective
            latest_move = effective - timedelta(days=rng.randint(15, 120))
            to = Status.DROPPED if spec.dropped else Status.LOST if spec.lost else Status.ON_HOLD
            status_changes.append((to, effective))
        elif spec.stale:
            last_followup = self.days_ago(35, 110)
            latest_move = last_followup - timedelta(days=rng.randint(5, 90))
        elif spec.resumed:
            latest_move = self.days_ago(150, 220)
            held = latest_move + timedelta(days=rng.randint(20, 40))
            resumed = held + timedelta(days=rng.randint(30, 60))
            status_changes += [(Status.ON_HOLD, held), (Status.ACTIVE, resumed)]
            last_followup = self.days_ago(0, 10)
        else:
            latest_move = self.days_ago(3, 200)
            last_followup = self.today - timedelta(
                days=rng.randint(0, min(20, (self.today - latest_move).days))
            )

        # The path of stages, oldest first, then its dates counted back from the latest move.
        registered_attracting = spec.stage.order >= 1 and not spec.detour and rng.random() < 0.35
        start = A if registered_attracting else P
        path: list[tuple[Stage | None, Stage, str]] = [(None, start, "")]
        stage = start
        while stage is not spec.stage:
            path.append((stage, stage.next, ""))
            stage = stage.next
            if spec.detour and stage is Stage.ATTRACTING:
                path += [(stage, P, spec.detour), (P, stage, "方案调整完成，重新进入招引")]
        dates = [latest_move]
        for _f, to, reason in reversed(path[1:]):
            least, most = (20, 60) if reason else STAGE_GAPS[to]
            dates.append(dates[-1] - timedelta(days=rng.randint(least, most)))
        dates.reverse()
        moves = [(f, to, on, reason) for (f, to, reason), on in zip(path, dates, strict=True)]
        return _Timeline(moves, last_followup, status_changes)

    def planned_dates(self, timeline: _Timeline) -> dict[str, date]:
        rng, today = self.rng, self.today

        def near(day: date) -> date:
            return day + timedelta(days=rng.randint(-30, 20))

        signed = timeline.reached(S)
        started = timeline.reached(K)
        producing = timeline.reached(T)
        if signed:
            planned_signed = near(signed)
        elif rng.random() < 0.2:  # planned date passed, not signed yet
            planned_signed = self.days_ago(5, 40)
        else:
            planned_signed = today + timedelta(days=rng.randint(20, 200))
        planned_started = (
            near(started) if started else planned_signed + timedelta(days=rng.randint(45, 150))
        )
        planned_producing = (
            near(producing)
            if producing
            else planned_started + timedelta(days=rng.randint(180, 420))
        )
        planned_started = max(planned_started, planned_signed)
        planned_producing = max(planned_producing, planned_started)
        return {
            "planned_signed_on": planned_signed,
            "planned_started_on": planned_started,
            "planned_producing_on": planned_producing,
        }

    def create_project(self, spec: DemoProject) -> Project:
        rng = self.rng
        carrier = self.carriers[spec.carrier]
        cluster = self.clusters[spec.cluster]
        officer = self.officers[carrier.id]
        timeline = self.timeline(spec)
        company = self.company_for(spec.company, officer, timeline.created_on)

        total = Decimal(spec.total)
        output = _round(spec.total * rng.uniform(0.8, 1.8), 100)
        values = {
            "name": spec.name,
            "carrier_id": carrier.id,
            "cluster_id": cluster.id,
            "chain_id": self.chains[cluster.id, spec.chain].id,
            "channel_id": self.channels[spec.channel].id,
            "officer_id": officer.id,
            "is_key": spec.key,
            "total_investment": total,
            "fixed_asset_investment": _round(spec.total * rng.uniform(0.7, 0.92), 100),
            "land_area": Decimal(spec.land) if spec.land else None,
            "expected_output": output,
            "expected_tax": _round(float(output) * rng.uniform(0.04, 0.08), 10),
            "expected_jobs": max(20, int(round(spec.total / rng.uniform(80, 220), -1))),
            "description": spec.content + "。",
            **self.planned_dates(timeline),
        }
        project = create_project(officer, company, values, stage=timeline.moves[0][1])

        # The lifecycle, in order; timestamps are moved back at the end.
        history: list[tuple[object, str, datetime]] = []
        moves: list[tuple[StageChange, date]] = []
        first = db.session.scalar(
            sa.select(StageChange).where(StageChange.project_id == project.id)
        )
        history.append((first, "changed_at", self.at(timeline.created_on, 9)))
        for _from, to, on, reason in timeline.moves[1:]:
            fields = {}
            if to is S:
                self.prepare_signing(spec, officer, project, timeline, on, history)
                fields = {"signed_amount": total, "signed_on": on}
            elif to is K:
                fields = {"started_on": on}
            elif to is T:
                fields = {"producing_on": on}
            change = move_stage(officer, project, to, reason=reason, fields=fields)
            history.append((change, "changed_at", self.at(on, 10)))
            moves.append((change, on))
        self.check_moves(spec, project, timeline, moves, history)
        if spec.evaluation:
            self.open_evaluation(spec, officer, project, timeline, history)
        self.change_statuses(spec, officer, project, timeline, history)

        self.add_followups(spec, officer, project, company, timeline, history)
        if spec.land and (project.stage.order >= 1 or rng.random() < 0.3) and rng.random() < 0.6:
            self.add_element_needs(spec, officer, project, timeline, history)
        if project.stage in (K, T):
            self.add_funds(officer, project, timeline, history)
        if spec.handover:
            self.hand_over(spec, project, timeline, history)
        for conflict in db.session.scalars(
            sa.select(ProjectConflict).where(ProjectConflict.project_id == project.id)
        ):
            history.append((conflict, "detected_at", history[0][2]))

        for row, attr, moment in history:
            self.backdate(row, attr, moment)
        self.backdate(project, "created_at", history[0][2])
        self.backdate(project, "updated_at", max(moment for _row, _attr, moment in history))
        return project

    # 甄别 (verification) and 流转 (hand-over) ---------------------------------------------------

    def checked_at(self, day: date) -> datetime:
        """A few days after `day`, in the afternoon; never later than now."""
        later = day + timedelta(days=self.check_rng.randint(2, 8))
        moment = datetime.combine(later, time(15, self.check_rng.randint(0, 59)), LOCAL_TZ)
        return min(moment.astimezone(UTC), self.now)

    def check_moves(self, spec, project, timeline, moves, history) -> None:
        """The task force (the admin where the cluster has none) verifies the claimed moves;
        the last one of an `unverified` project waits, that of a `rejected` one is rejected."""
        checker = self.task_forces.get(project.cluster_id) or self.users["admin"]
        waiting = [(c, on) for c, on in moves if c.verification is Verification.PENDING]
        for i, (change, on) in enumerate(waiting):
            last = i == len(waiting) - 1
            if last and spec.unverified:
                continue
            moment = self.checked_at(on)
            if last and spec.rejected:
                back = reject_move(checker, change, spec.rejected)
                history.append((back, "changed_at", moment))
                day = moment.astimezone(LOCAL_TZ).date()
                timeline.moves.append((change.to_stage, back.to_stage, day, spec.rejected))
            else:
                verify_move(checker, change, self.check_rng.choice(VERIFY_NOTES[change.to_stage]))
            history.append((change, "verified_at", moment))

    def hand_over(self, spec, project, timeline, history) -> None:
        to_name, reason, sharing = spec.handover
        carrier = self.carriers[to_name]
        handover = handover_project(
            self.users["leader"], project, carrier, self.officers[carrier.id], reason, sharing
        )
        day = min(
            timeline.last_followup + timedelta(days=self.check_rng.randint(1, 10)), self.today
        )
        moment = datetime.combine(day, time(11, self.check_rng.randint(0, 59)), LOCAL_TZ)
        history.append((handover, "handed_at", min(moment.astimezone(UTC), self.now)))

    # Evaluation (measure 22) and the agreement: the 签约 gate -------------------------------

    def evaluate(self, spec, officer, project, days, outcome, opinion, history):
        """Start, fill and submit an evaluation on days[0] and days[1]; with an outcome, the
        leaders decide it on days[2]. The task force fills it (the admin where none exists)."""
        filler = self.task_forces.get(project.cluster_id) or self.users["admin"]
        evaluation = start_evaluation(officer, project)
        answers = db.session.scalars(
            sa.select(EvaluationAnswer)
            .where(EvaluationAnswer.evaluation_id == evaluation.id)
            .order_by(EvaluationAnswer.id)
        ).all()
        given = {a.id: self.answer(spec, a.item, outcome) for a in answers}
        if outcome is None and len(days) < 2:  # a draft: filled in part
            given = dict(list(given.items())[: len(given) // 2])
        save_answers(filler, evaluation, given)
        history.append((evaluation, "created_at", self.at(days[0], 10)))
        for answer in answers:
            if answer.id in given:
                history.append((answer, "updated_at", self.at(days[0], 16)))
        if len(days) < 2:
            return evaluation
        submit_evaluation(filler, evaluation)
        history.append((evaluation, "submitted_at", self.at(days[1], 11)))
        if outcome is None:
            return evaluation
        meeting_on = days[2]
        decision = decide(
            self.users["leader"],
            evaluation,
            outcome,
            meeting_date=meeting_on,
            meeting_name=f"{meeting_on.year}年{meeting_on.month}月市重大招商项目集体决策会",
            participants=(
                f"{self.users['leader'].display_name}（市政府分管领导）、市投资促进中心、"
                f"市发展改革委、市自然资源和规划局、市生态环境局、{spec.cluster}产业专班、"
                f"{spec.carrier}"
            ),
            opinion=opinion,
        )
        history.append((evaluation, "decided_at", self.at(meeting_on, 15)))
        history.append((decision, "decided_at", self.at(meeting_on, 15)))
        return evaluation

    def answer(self, spec, item, outcome) -> AnswerInput:
        rng = self.rng
        overseas = COMPANIES[spec.company][2] is Origin.OVERSEAS
        if item.title in CHECKLIST_NOT_APPLICABLE and not overseas:
            return AnswerInput(Verdict.NOT_APPLICABLE, CHECKLIST_NOT_APPLICABLE[item.title])
        if outcome is DecisionOutcome.REJECTED and item.title == REJECTED_VETO_ITEM:
            return AnswerInput(Verdict.FAILS, REJECTED_VETO_COMMENT, Decimal(0))
        mostly = rng.random() < (0.45 if outcome is DecisionOutcome.REJECTED else 0.2)
        if mostly and not item.is_veto:
            verdict, comment = Verdict.MOSTLY, rng.choice(MOSTLY_COMMENTS)
            factor = rng.choice([0.5, 0.6, 0.7, 0.8])
        else:
            verdict = Verdict.CONFORMS
            comment = CHECKLIST_COMMENTS.get(item.title, "经核查，符合要求。")
            factor = 1.0
        score = None
        if item.max_score is not None:
            score = (item.max_score * Decimal(str(factor))).quantize(Decimal("0.1"))
        return AnswerInput(verdict, comment, score)

    def prepare_signing(self, spec, officer, project, timeline, signed_on, history) -> None:
        """What the 签约 gate asks: a passed evaluation, then the signed agreement on file."""
        rng = self.rng
        attracting = timeline.reached(A)
        started = max(
            attracting + timedelta(days=2), signed_on - timedelta(days=rng.randint(20, 28))
        )
        submitted = started + timedelta(days=rng.randint(4, 8))
        decided = min(submitted + timedelta(days=rng.randint(2, 6)), signed_on)
        self.evaluate(
            spec,
            officer,
            project,
            [started, submitted, decided],
            DecisionOutcome.PASSED,
            "同意签约。请载体按评估意见完善协议条款，落实要素保障。",
            history,
        )
        stored = store_file(
            officer,
            project,
            io.BytesIO(_agreement_pdf(project, signed_on)),
            f"{project.name}投资协议.pdf",
            DocumentKind.AGREEMENT,
            Path(current_app.config["UPLOAD_FOLDER"]),
            current_app.config["MAX_UPLOAD_BYTES"],
        )
        history.append((stored, "uploaded_at", self.at(signed_on, 11)))

    def open_evaluation(self, spec, officer, project, timeline, history) -> None:
        """An evaluation still under way at 招引, or returned, or rejected."""
        rng = self.rng
        end = timeline.status_changes[0][1] if timeline.status_changes else timeline.last_followup
        first = timeline.reached(A) + timedelta(days=1)
        started = min(max(first, end - timedelta(days=rng.randint(12, 25))), end)
        submitted = min(started + timedelta(days=rng.randint(3, 7)), end)
        decided = min(submitted + timedelta(days=rng.randint(2, 5)), end)
        if spec.evaluation == "draft":
            self.evaluate(spec, officer, project, [started], None, "", history)
        elif spec.evaluation == "submitted":
            self.evaluate(spec, officer, project, [started, submitted], None, "", history)
        else:
            outcome = {"returned": DecisionOutcome.RETURNED, "rejected": DecisionOutcome.REJECTED}
            days = [started, submitted, decided]
            self.evaluate(
                spec, officer, project, days, outcome[spec.evaluation], spec.opinion, history
            )

    def change_statuses(self, spec, officer, project, timeline, history) -> None:
        for to, on in timeline.status_changes:
            kwargs = {"effective_on": on}
            if to is Status.DROPPED:
                reason_name, text = spec.dropped
                kwargs |= {"reason": text, "termination_reason": self.reasons[reason_name]}
            elif to is Status.LOST:
                lost_to, text = spec.lost
                kwargs |= {"reason": text, "lost_to": lost_to}
            elif to is Status.ON_HOLD:
                kwargs["reason"] = spec.hold or spec.resumed[0]
            else:
                kwargs["reason"] = spec.resumed[1]
            change = change_status(officer, project, to, **kwargs)
            history.append((change, "changed_at", self.at(on, 15)))

    def add_followups(self, spec, officer, project, company, timeline, history) -> None:
        rng = self.rng
        start, end = timeline.created_on, timeline.last_followup
        span = (end - start).days
        count = rng.randint(*FOLLOWUP_COUNTS[project.stage])  # longer history, more contacts
        days = sorted(start + timedelta(days=rng.randint(0, span)) for _ in range(count - 1))
        days.append(end)
        contacts = self.contacts[spec.company]
        short, city = COMPANIES[spec.company][1], COMPANIES[spec.company][4]
        task_force = self.task_forces.get(project.cluster_id)
        used: set[str] = set()
        for i, day in enumerate(days):
            last = i == len(days) - 1
            stage = timeline.stage_on(day)
            choices = [t for t in FOLLOWUPS[stage] if t[1] not in used] or FOLLOWUPS[stage]
            kind, summary, next_action = rng.choice(choices)
            used.add(summary)
            contact = (
                rng.choice(contacts) if contacts and kind is not FollowUpKind.MEETING else None
            )
            due = day + timedelta(days=rng.randint(7, 21))
            if last:
                summary, next_action, due = self.last_followup(spec, summary, next_action, day)
            text = {
                "short": short,
                "city": city,
                "carrier": spec.carrier,
                "cluster": spec.cluster,
                "chain": spec.chain,
                "officer": officer.display_name,
                "contact": f"{contact.position}{contact.name}" if contact else "企业负责人",
                "pct": rng.choice([30, 45, 60, 70, 85]),
            }
            author = (
                task_force
                if task_force and kind is FollowUpKind.MEETING and rng.random() < 0.6
                else officer
            )
            followup = add_followup(
                author,
                project,
                {
                    "kind": kind,
                    "happened_on": day,
                    "summary": summary.format(**text),
                    "next_action": next_action.format(**text),
                    "next_action_due": due if next_action else None,
                },
                [contact] if contact else [],
            )
            history.append((followup, "created_at", self.at(day, 17)))

    def last_followup(self, spec, summary, next_action, day) -> tuple[str, str, date | None]:
        """The latest follow-up sets the project's next action: due this week, overdue, later,
        or none for a project that left 正常."""
        rng, today = self.rng, self.today
        if spec.dropped:
            return f"与企业最终沟通确认：{spec.dropped[1]}，经研判终止项目。", "", None
        if spec.lost:
            return f"获悉企业已落户{spec.lost[0]}，{spec.lost[1]}。", "", None
        if spec.hold:
            return (
                f"{{contact}}告知：{spec.hold}，项目暂缓推进。",
                "保持联系，每季度回访一次",
                day + timedelta(days=90),
            )
        if spec.stale:
            return summary, next_action, day + timedelta(days=rng.randint(7, 20))
        week_end = today + timedelta(days=6 - today.weekday())
        roll = rng.random()
        if roll < 0.35:
            due = today + timedelta(days=rng.randint(0, (week_end - today).days))
        elif roll < 0.5 and day < today:
            due = day + timedelta(days=rng.randint(0, (today - day).days - 1))
        else:
            due = today + timedelta(days=rng.randint(8, 40))
        return summary, next_action, due

    def add_element_needs(self, spec, user, project, timeline, history) -> None:
        rng = self.rng
        if project.stage in (K, T):
            status = ElementStatus.SECURED
        elif project.stage is S:
            status = rng.choice([ElementStatus.CONSULTING, ElementStatus.SECURED])
        else:
            status = rng.choice([ElementStatus.RAISED, ElementStatus.CONSULTING])
        needs = [
            (ElementKind.LAND, Decimal(spec.land), "纳入年度新增建设用地计划统筹保障"),
            (
                ElementKind.ENERGY,
                _round(spec.total * rng.uniform(0.02, 0.12), 10),
                "需开展固定资产投资项目节能审查",
            ),
            (
                ElementKind.WATER,
                _round(rng.uniform(5000, 300000), 100),
                "生产及生活用水，接入园区供水管网",
            ),
        ]
        if rng.random() < 0.5:
            needs.append(
                (
                    ElementKind.ENVIRONMENT,
                    _round(rng.uniform(2, 60), 1),
                    "化学需氧量(COD)排放总量指标",
                )
            )
        if spec.cluster == "文化旅游" or rng.random() < 0.1:
            needs.append(
                (
                    ElementKind.FOREST,
                    _round(rng.uniform(5, 40), 1),
                    "选址涉及部分林地，需办理使用林地审核",
                )
            )
        on = timeline.reached(A) or timeline.created_on
        for kind, quantity, note in needs:
            need = add_element_need(
                user,
                project,
                {"kind": kind, "quantity": quantity, "status": status, "note": note},
            )
            moment = self.at(on + timedelta(days=rng.randint(1, 20)), 11)
            history.append((need, "updated_at", moment))

    def add_funds(self, user, project, timeline, history) -> None:
        rng = self.rng
        signed_on = timeline.reached(S)
        share = rng.uniform(0.6, 1.0) if project.stage is T else rng.uniform(0.15, 0.6)
        count = rng.randint(3, 6) if project.stage is T else rng.randint(1, 3)
        total = float(project.signed_amount) * share
        weights = [rng.uniform(0.5, 1.5) for _ in range(count)]
        span = (self.today - signed_on).days
        days = sorted(signed_on + timedelta(days=rng.randint(10, max(10, span))) for _ in weights)
        for day, weight in zip(days, weights, strict=True):
            day = min(day, self.today)
            funds = add_funds(
                user,
                project,
                {
                    "received_on": day,
                    "amount": _round(total * weight / sum(weights), 10),
                    "note": rng.choice(FUNDS_NOTES),
                },
            )
            history.append((funds, "created_at", self.at(day, 16)))

    def backdate_companies(self) -> None:
        """Companies, their contacts and the users existed before the first project."""
        for key, company in self.companies.items():
            moment = self.at(self.company_dates[key] - timedelta(days=self.rng.randint(1, 10)), 9)
            self.backdate(company, "created_at", moment)
            self.backdate(company, "updated_at", moment)
            for contact in self.contacts[key]:
                self.backdate(contact, "created_at", moment)
        earliest = min(self.company_dates.values()) - timedelta(days=30)
        for user in self.users.values():
            self.backdate(user, "created_at", self.at(earliest, 9))

    def backdate(self, row, attr: str, moment: datetime) -> None:
        self.backdates[type(row), attr].append({"row_id": row.id, "moment": moment})

    def write_backdates(self) -> None:
        """Move the timestamps back: one UPDATE per table and column, by primary key."""
        for (model, attr), rows in self.backdates.items():
            table = model.__table__
            db.session.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("row_id"))
                .values({attr: sa.bindparam("moment")}),
                rows,
            )
        db.session.expire_all()  # the objects in the session still hold the loading time


def _agreement_pdf(project: Project, signed_on: date) -> bytes:
    """A one-page placeholder PDF standing in for a signed investment agreement."""
    lines = [
        "DEMO - placeholder for a signed investment agreement",
        f"Project no. {project.id}, signed on {signed_on.isoformat()}",
        f"Agreed investment: {project.signed_amount or project.total_investment} (10k CNY)",
    ]
    text = "".join(
        f"BT /F1 12 Tf 72 {760 - 24 * i} Td ({line}) Tj ET\n" for i, line in enumerate(lines)
    ).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%sendstream" % (len(text), text),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _organization_check(body: str) -> str:
    """The check character of an 8-character organization code (GB 11714)."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(
        (int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, weights, strict=True)
    )
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def _round(value: float, step: int) -> Decimal:
    return Decimal(max(step, round(value / step) * step))


def load_demo() -> bool:
    """Load the demo accounts and projects, unless the demo admin exists; True if loaded.

    Seeds the catalogues first. Flushes, does not commit: the caller commits.
    """
    admin_name = DEMO_USERS[0][0]
    if db.session.scalar(sa.select(User.id).where(User.username == admin_name)):
        return False
    seed_catalogues()
    seed_default_template()
    # Rendering a dossier at each of the ~40 demo decisions would take most of a minute: the
    # demo archives the latest few only, as they would have been archived when decided.
    archive = current_app.config["DOSSIER_ARCHIVE"]
    current_app.config["DOSSIER_ARCHIVE"] = False
    try:
        _DemoBuilder(random.Random(2026), local_today()).build()  # noqa: S311 - not for secrets
    finally:
        current_app.config["DOSSIER_ARCHIVE"] = archive
    db.session.flush()
    if archive:
        _archive_latest_decisions(DEMO_ARCHIVED_DOSSIERS)
    return True


DEMO_ARCHIVED_DOSSIERS = 3


def _archive_latest_decisions(count: int) -> None:
    from crm.reports.dossier import archive_dossier

    decisions = db.session.scalars(
        sa.select(Decision).order_by(Decision.decided_at.desc(), Decision.id.desc()).limit(count)
    ).all()
    for decision in decisions:
        evaluation = db.session.get(Evaluation, decision.evaluation_id)
        stored = archive_dossier(decision.decided_by, decision, evaluation)
        stored.uploaded_at = decision.decided_at
    db.session.flush()
