"""统一社会信用代码 (GB 32100-2015): 18 characters in five parts.

    1     登记管理部门代码 (registration authority: 9 市场监管/工商, 1 机构编制, 5 民政, …)
    2     机构类别代码 (kind of organisation, allowed per authority)
    3–8   登记管理机关行政区划码 (administrative division of the registering office, 6 digits)
    9–17  主体标识码 (the organisation code, GB 11714)
    18    校验码 (check character, weights 3^i mod 31)

Every character is one of 0–9 and the capitals without I, O, S, V and Z. A code is normalised
before it is checked: a code pasted from a licence or a spreadsheet may carry full-width
characters, spaces, hyphens or lower-case letters.
"""

from __future__ import annotations

import re
import unicodedata

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

# 登记管理部门代码 → (its name, the 机构类别代码 it may issue), per GB 32100-2015 and the
# codes added since (A 中央军委改革和编制办公室, N 农业农村 for collective economic organisations).
AUTHORITIES: dict[str, tuple[str, str]] = {
    "1": ("机构编制", "1239"),  # 机关, 事业单位, 群众团体, 其他
    "2": ("外交", "19"),
    "3": ("司法行政", "123459"),  # 律师事务所, 公证处, 基层法律服务所, 司法鉴定, 仲裁委员会, 其他
    "4": ("文化", "19"),
    "5": ("民政", "1239"),  # 社会团体, 民办非企业单位, 基金会, 其他
    "6": ("旅游", "129"),
    "7": ("宗教", "129"),
    "8": ("工会", "19"),
    "9": ("市场监管（工商）", "123"),  # 企业, 个体工商户, 农民专业合作社
    "A": ("中央军委改革和编制办公室", "19"),
    "N": ("农业农村", "1239"),  # 组级, 村级, 乡镇级集体经济组织, 其他
    "Y": ("其他", "1"),
}

# Characters that only separate groups when a code is written or pasted.
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−_]+")


def check_character(first17: str) -> str:
    total = sum(CHARSET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def normalize(code: str) -> str:
    """Full-width folded (NFKC), upper case, without spaces and hyphens."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", code or "")).upper()


def _listing(chars: str) -> str:
    return "、".join(chars)


def credit_code_error(code: str) -> str | None:
    """A message in Chinese saying which part of `code` is wrong, or None if it is valid."""
    code = normalize(code)
    if len(code) != 18:
        return "统一社会信用代码应为 18 位"
    if bad := sorted({c for c in code if c not in CHARSET}):
        return f"统一社会信用代码含有无效字符：{'、'.join(bad)}"
    authority = AUTHORITIES.get(code[0])
    if authority is None:
        return (
            f"统一社会信用代码第 1 位（登记管理部门代码）“{code[0]}”无效，"
            f"应为 {_listing(''.join(AUTHORITIES))} 之一"
        )
    name, kinds = authority
    if code[1] not in kinds:
        return (
            f"统一社会信用代码第 2 位（机构类别代码）“{code[1]}”无效："
            f"登记管理部门为{name}（{code[0]}）时应为 {_listing(kinds)} 之一"
        )
    if not code[2:8].isdigit():
        return "统一社会信用代码第 3–8 位（登记管理机关行政区划码）应为 6 位数字"
    if check_character(code[:17]) != code[17]:
        return "统一社会信用代码校验位不正确，请核对"
    return None
