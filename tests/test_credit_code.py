"""统一社会信用代码 (GB 32100-2015): 18 characters, the last a check character."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm.companies.credit_code import check_character, credit_code_error, normalize
from crm.companies.models import Company, Origin
from crm.companies.services import create_company
from crm.core import ServiceError

# An independent reading of GB 32100-2015, so the tests do not only echo the code under test:
# the 31 characters (0-9 and capitals without I, O, S, V, Z) and the weights 3^i mod 31.
_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = [pow(3, i, 31) for i in range(17)]


def reference_check(first17: str) -> str:
    total = sum(_CHARS.index(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHARS[-total % 31]


# Codes as published on business licences (national enterprise credit information system).
PUBLISHED = [
    "9144030071526726XG",  # 深圳市腾讯计算机系统有限公司
    "91330100716105852F",  # 阿里巴巴（中国）有限公司
    "91110108551385082Q",  # 小米科技有限责任公司
    "91110000600037341L",
]


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_are_valid(code):
    assert credit_code_error(code) is None
    assert reference_check(code[:17]) == code[17]


@pytest.mark.parametrize(
    "first17",
    [
        "91341600MA2T0000A",  # 亳州 (3416), a code with letters in the organisation part
        "12341600003025483",  # 机构编制 (1), 事业单位 (2)
        "52341600MAB1C2D3E",  # 民政 (5), 社会团体 (2)
        "93341623MA2NXJ7K4",  # 农民专业合作社 in 利辛县 (341623)
        "92341602MA2T0000A",  # 个体工商户 in 谯城区
        "N2341621MF0000001",  # 村级集体经济组织 (农业农村)
        "Y1341600MA0000001",  # 其他
    ],
)
def test_codes_built_with_their_check_character_pass(first17):
    check = check_character(first17)
    assert check == reference_check(first17)
    assert credit_code_error(first17 + check) is None


def test_every_check_value_round_trips():
    """Each of the 31 check characters is produced by some code and accepted with it."""
    seen = set()
    for n in range(2000):
        first17 = f"91341600{n:09d}"
        code = first17 + check_character(first17)
        assert credit_code_error(code) is None
        seen.add(code[17])
    assert seen == set(_CHARS)


@pytest.mark.parametrize("code", PUBLISHED)
def test_wrong_check_character_is_refused(code):
    for wrong in (c for c in _CHARS if c != code[17]):
        assert credit_code_error(code[:17] + wrong) == "统一社会信用代码校验位不正确，请核对"


def test_a_changed_digit_is_caught_by_the_check_character():
    code = PUBLISHED[0]
    typo = code[:5] + ("1" if code[5] != "1" else "2") + code[6:]
    assert credit_code_error(typo) == "统一社会信用代码校验位不正确，请核对"


@pytest.mark.parametrize(
    "code",
    ["", "9144030071526726X", "9144030071526726XGG", "91440300", "9144030071526726XG0000"],
)
def test_wrong_length_is_refused(code):
    assert credit_code_error(code) == "统一社会信用代码应为 18 位"


@pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z"])
def test_forbidden_letters_are_refused(letter):
    valid = PUBLISHED[1]
    in_body = valid[:10] + letter + valid[11:]
    as_check = valid[:17] + letter
    for code in (in_body, as_check):
        assert credit_code_error(code) == f"统一社会信用代码含有无效字符：{letter}"


@pytest.mark.parametrize(
    "pasted",
    [
        "9133-0100-7161-0585-2F",  # hyphens
        "9133 0100 7161 0585 2F",  # spaces
        "９１３３０１００７１６１０５８５２Ｆ",  # full-width digits and letter
        "9133０100 7161０585－2f",  # a mixture, full-width hyphen, lower case
        "91330100—71610585–2F",  # em and en dashes
    ],
)
def test_pasted_codes_are_normalised_and_accepted(pasted):
    assert normalize(pasted) == "91330100716105852F"
    assert credit_code_error(pasted) is None


@pytest.mark.parametrize("code", ["91330100.16105852F", "91330100/16105852F", "9133010071610585#F"])
def test_punctuation_is_refused_as_an_invalid_character(code):
    assert "无效字符" in credit_code_error(code)


def valid(first17: str) -> str:
    return first17 + reference_check(first17)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (valid("01341600MA2T0000A"), "第 1 位（登记管理部门代码）“0”无效"),
        (valid("B1341600MA2T0000A"), "第 1 位（登记管理部门代码）“B”无效"),
        (valid("94341600MA2T0000A"), "第 2 位（机构类别代码）“4”无效：登记管理部门为市场监管"),
        (valid("9A341600MA2T0000A"), "第 2 位（机构类别代码）“A”无效"),
        (valid("54341600MAB1C2D3E"), "登记管理部门为民政（5）时应为 1、2、3、9 之一"),
        (valid("Y2341600MA0000001"), "第 2 位（机构类别代码）“2”无效"),
        # Letters where the standard requires the administrative-division digits.
        (valid("91AB1600MA2T0000A"), "第 3–8 位（登记管理机关行政区划码）应为 6 位数字"),
        (valid("913416M0MA2T0000A"), "第 3–8 位（登记管理机关行政区划码）应为 6 位数字"),
        (valid("00000000000000000"), "第 1 位"),
        (valid("YYYYYYYYYYYYYYYYY"), "第 2 位"),
    ],
)
def test_each_part_of_the_structure_is_checked(code, message):
    """Codes with a correct check character that break the structure of GB 32100."""
    error = credit_code_error(code)
    assert error is not None and message in error


def test_the_form_accepts_a_pasted_code(world, login, db_session):
    client = login(world.officer_a)
    response = client.post(
        "/companies/new",
        data={
            "name": "阿里巴巴测试公司",
            "credit_code": "９１３３ ０１００-７１６１ ０５８５-２ｆ",
            "origin": "OUT_OF_PROVINCE",
        },
    )
    assert response.status_code == 302
    saved = db_session.scalar(sa.select(Company).where(Company.name == "阿里巴巴测试公司"))
    assert saved.credit_code == "91330100716105852F"


def test_the_form_says_which_part_is_wrong(world, login, db_session):
    client = login(world.officer_a)
    response = client.post(
        "/companies/new",
        data={
            "name": "错误代码公司",
            "credit_code": valid("91AB1600MA2T0000A"),
            "origin": "OUT_OF_PROVINCE",
        },
    )
    assert response.status_code == 400
    assert "第 3–8 位（登记管理机关行政区划码）应为 6 位数字" in response.get_data(as_text=True)
    assert db_session.scalar(sa.select(Company).where(Company.name == "错误代码公司")) is None


def test_lower_case_and_spaces_are_normalised():
    assert normalize("  9144030071526726xg ") == "9144030071526726XG"
    assert credit_code_error("9144030071526726xg") is None
    assert credit_code_error(" 91330100716105852f\t") is None


def test_a_company_is_saved_with_the_normalised_code(world):
    company = create_company(
        world.officer_a,
        {"name": "腾讯测试公司", "credit_code": " 9144030071526726xg ", "origin": Origin.OVERSEAS},
    )
    assert company.credit_code == "9144030071526726XG"


def test_an_invalid_code_saves_no_company(world, db_session):
    before = db_session.query(Company).count()
    with pytest.raises(ServiceError) as raised:
        create_company(
            world.officer_a,
            {
                "name": "错误代码公司",
                "credit_code": "9144030071526726XA",
                "origin": Origin.OVERSEAS,
            },
        )
    assert raised.value.errors == {"credit_code": "统一社会信用代码校验位不正确，请核对"}
    assert db_session.query(Company).count() == before


def test_the_same_code_cannot_be_registered_twice(world):
    values = {"name": "甲公司", "credit_code": PUBLISHED[2], "origin": Origin.IN_PROVINCE}
    create_company(world.officer_a, values)
    with pytest.raises(ServiceError) as raised:
        create_company(
            world.officer_b, {**values, "name": "乙公司", "credit_code": PUBLISHED[2].lower()}
        )
    assert "已登记" in raised.value.errors["credit_code"]


def test_a_company_without_a_code_is_allowed(world):
    company = create_company(
        world.officer_a, {"name": "境外某公司", "credit_code": "  ", "origin": Origin.OVERSEAS}
    )
    assert company.credit_code is None
