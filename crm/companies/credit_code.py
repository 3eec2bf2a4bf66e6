"""统一社会信用代码 (GB 32100-2015): 18 characters, the last a check character."""

from __future__ import annotations

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(first17: str) -> str:
    total = sum(CHARSET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def normalize(code: str) -> str:
    return code.strip().upper()


def credit_code_error(code: str) -> str | None:
    """A message in Chinese if `code` is not a valid credit code, else None."""
    code = normalize(code)
    if len(code) != 18:
        return "统一社会信用代码应为 18 位"
    if bad := sorted({c for c in code if c not in CHARSET}):
        return f"统一社会信用代码含有无效字符：{'、'.join(bad)}"
    if not code[8:17].isalnum():
        return "统一社会信用代码格式不正确"
    if check_character(code[:17]) != code[17]:
        return "统一社会信用代码校验位不正确，请核对"
    return None
