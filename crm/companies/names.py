"""Company names for matching: two ways of writing one company give the same key.

`split_name` folds a name (NFKC: full-width letters, digits and brackets become half-width),
drops spaces and punctuation, brackets (and what they hold when it is 中国 or a place), the
legal form (有限公司, 有限责任公司, 股份有限公司, 集团, Co., Ltd. …) and the administrative
divisions the name starts with (安徽省亳州市…, from `crm.companies.divisions`). What is left is
the key, stored in `Company.name_key` (indexed); the divisions found are the name's regions.

Two names are the same company when their keys are equal and their regions are compatible:
one names no place, or both name the same most specific place (the place a name carries is
the level of the office that registered it, so 安徽华佗药业 and 亳州华佗药业 are usually two
legal persons, a parent and its subsidiary). 安徽省亳州市华佗药业, 亳州华佗药业 and 华佗药业
match; 亳州市人民医院 and 蚌埠市人民医院 do not. `similarity` scores names that are merely alike
(rapidfuzz).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from crm.companies.divisions import PARENTS, SUFFIXES

# Legal-form endings that do not tell two companies apart, longest first.
LEGAL_FORMS = (
    "集团股份有限公司",
    "集团有限责任公司",
    "股份有限责任公司",
    "集团有限公司",
    "股份有限公司",
    "有限责任公司",
    "有限合伙企业",
    "有限公司",
    "集团公司",
    "股份公司",
    "有限合伙",
    "集团",
    "公司",
    "corporation",
    "limited",
    "co.,ltd.",
    "co.,ltd",
    "co.ltd.",
    "co.ltd",
    "co.",
    "ltd.",
    "ltd",
    "inc.",
    "inc",
    "corp.",
    "corp",
)
_LEGAL_FORMS = tuple(sorted(LEGAL_FORMS, key=len, reverse=True))

# Every written form of a division (亳州市, 亳州), longest first, with the division it names.
_DIVISION_FORMS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        (
            (form, division)
            for division, suffixes in SUFFIXES.items()
            for form in (division, *(division + s for s in suffixes))
        ),
        key=lambda pair: len(pair[0]),
        reverse=True,
    )
)
_DIVISION_BY_FORM = dict(_DIVISION_FORMS)

_BRACKETED = re.compile(
    r"[(\[{（【〔［｛《〈「『]([^()\[\]{}（）【】〔〕［］｛｝《》〈〉「」『』]*)[)\]}）】〕］｛》〉」』]"
)
_NOT_A_LETTER = re.compile(r"[^\w]|_", re.UNICODE)
_MIN_KEY = 2  # a prefix is not stripped if less would remain


@dataclass(frozen=True)
class NameParts:
    key: str  # the name without divisions, legal form, brackets, spaces and punctuation
    regions: tuple[str, ...]  # the divisions it named (亳州, 安徽), in order

    @property
    def normalised(self) -> str:
        """The key with its regions, as shown to users: 华佗药业（安徽·亳州）."""
        return f"{self.key}（{'·'.join(self.regions)}）" if self.regions else self.key


def _strip_legal_forms(text: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for form in _LEGAL_FORMS:
            if text.endswith(form) and len(text) > len(form):
                text = text[: -len(form)]
                stripped = True
                break
    return text


@lru_cache(maxsize=2**15)  # a ledger import asks for the same names several times
def split_name(name: str) -> NameParts:
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", name or "").lower())
    regions: list[str] = []

    def bracket(match: re.Match) -> str:
        inner = _NOT_A_LETTER.sub("", match.group(1))
        if inner == "中国":
            return ""
        if division := _DIVISION_BY_FORM.get(inner):
            regions.append(division)
            return ""
        return inner

    text = _BRACKETED.sub(bracket, text)
    text = _strip_legal_forms(text)
    text = _NOT_A_LETTER.sub("", text)
    text = _strip_legal_forms(text)
    leading: list[str] = []
    found = True
    while found:
        found = False
        for form, division in _DIVISION_FORMS:
            if text.startswith(form) and len(text) - len(form) >= _MIN_KEY:
                text = text[len(form) :]
                leading.append(division)
                found = True
                break
    return NameParts(text[:200], tuple(leading + regions))


def name_key(name: str) -> str:
    """The stored matching key of a company name (`Company.name_key`)."""
    return split_name(name).key


def _depth(division: str) -> int:
    """0 for a province, 1 for a city, 2 for a county (from `PARENTS`)."""
    depth = 0
    while (division := PARENTS.get(division)) and depth < 5:
        depth += 1
    return depth


def most_specific(regions: tuple[str, ...]) -> str | None:
    """The deepest place a name carries (亳州 in 安徽省亳州市…); the last one on a tie."""
    best = None
    for region in regions:
        if best is None or _depth(region) >= _depth(best):
            best = region
    return best


def regions_compatible(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether two names' places may name one company: one names none, or both name the same
    most specific place."""
    if not a or not b:
        return True
    return most_specific(a) == most_specific(b)


def same_company_name(a: NameParts, b: NameParts) -> bool:
    return bool(a.key) and a.key == b.key and regions_compatible(a.regions, b.regions)


def similarity(a: NameParts, b: NameParts) -> float:
    """0–100: 100 for the same company name; otherwise how alike the keys are (rapidfuzz's
    normalised Indel similarity), with the regions in the comparison when they disagree."""
    if same_company_name(a, b):
        return 100.0
    if regions_compatible(a.regions, b.regions):
        return round(fuzz.ratio(a.key, b.key), 1)
    return round(fuzz.ratio("".join(a.regions) + a.key, "".join(b.regions) + b.key), 1)
