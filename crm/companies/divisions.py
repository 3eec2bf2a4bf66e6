"""Administrative divisions (行政区划) a company name may start with, for matching names.

Data only: `crm.companies.names` reads it. A name is listed without its suffix (安徽, not
安徽省), `SUFFIXES` gives the endings it may carry, `PARENTS` says which division contains
which (so the most specific place of 安徽省亳州市某某 is 亳州, as of 亳州某某).
Extend the lists freely: names of two characters or more, each with its parent if known.
"""

from __future__ import annotations

# Endings a division name may carry in a company name, per level: 安徽省, 亳州市, 谯城区.
# Only these: 合肥 + 市场营销 must not lose its 市, nor 安徽 + 区块链 its 区.
PROVINCE_SUFFIXES = (
    "省",
    "市",
    "自治区",
    "壮族自治区",
    "回族自治区",
    "维吾尔自治区",
    "特别行政区",
)
CITY_SUFFIXES = ("市", "地区", "自治州", "盟")
COUNTY_SUFFIXES = ("区", "县", "市", "自治县", "旗")

# 省级行政区: every province, autonomous region, municipality and SAR.
PROVINCES = (
    "北京",
    "天津",
    "河北",
    "山西",
    "内蒙古",
    "辽宁",
    "吉林",
    "黑龙江",
    "上海",
    "江苏",
    "浙江",
    "安徽",
    "福建",
    "江西",
    "山东",
    "河南",
    "湖北",
    "湖南",
    "广东",
    "广西",
    "海南",
    "重庆",
    "四川",
    "贵州",
    "云南",
    "西藏",
    "陕西",
    "甘肃",
    "青海",
    "宁夏",
    "新疆",
    "台湾",
    "香港",
    "澳门",
)

# 安徽省的地级市.
ANHUI_CITIES = (
    "合肥",
    "芜湖",
    "蚌埠",
    "淮南",
    "马鞍山",
    "淮北",
    "铜陵",
    "安庆",
    "黄山",
    "滁州",
    "阜阳",
    "宿州",
    "六安",
    "亳州",
    "池州",
    "宣城",
)

# 亳州市的区、县.
BOZHOU_COUNTIES = ("谯城", "涡阳", "蒙城", "利辛")

# Cities of other provinces that investors often come from (省会、计划单列市 and a few more).
OTHER_CITIES = {
    "石家庄": "河北",
    "太原": "山西",
    "呼和浩特": "内蒙古",
    "沈阳": "辽宁",
    "大连": "辽宁",
    "长春": "吉林",
    "哈尔滨": "黑龙江",
    "南京": "江苏",
    "苏州": "江苏",
    "无锡": "江苏",
    "常州": "江苏",
    "徐州": "江苏",
    "杭州": "浙江",
    "宁波": "浙江",
    "温州": "浙江",
    "绍兴": "浙江",
    "福州": "福建",
    "厦门": "福建",
    "泉州": "福建",
    "南昌": "江西",
    "济南": "山东",
    "青岛": "山东",
    "郑州": "河南",
    "商丘": "河南",
    "周口": "河南",
    "武汉": "湖北",
    "长沙": "湖南",
    "广州": "广东",
    "深圳": "广东",
    "佛山": "广东",
    "东莞": "广东",
    "南宁": "广西",
    "海口": "海南",
    "成都": "四川",
    "贵阳": "贵州",
    "昆明": "云南",
    "拉萨": "西藏",
    "西安": "陕西",
    "兰州": "甘肃",
    "西宁": "青海",
    "银川": "宁夏",
    "乌鲁木齐": "新疆",
}

# Division → the division containing it.
PARENTS: dict[str, str] = {
    **dict.fromkeys(ANHUI_CITIES, "安徽"),
    **dict.fromkeys(BOZHOU_COUNTIES, "亳州"),
    **OTHER_CITIES,
}

# Division → the endings it may carry.
SUFFIXES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(PROVINCES, PROVINCE_SUFFIXES),
    **dict.fromkeys((*ANHUI_CITIES, *OTHER_CITIES), CITY_SUFFIXES),
    **dict.fromkeys(BOZHOU_COUNTIES, COUNTY_SUFFIXES),
}
