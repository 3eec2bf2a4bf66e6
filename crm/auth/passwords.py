"""What makes a password easy to guess: the lists and the strength estimate (口令复杂度).

- `COMMON_PASSWORDS`: the context-specific list (ASVS 5.0 6.1.2 / 6.2.11). Most of the
  world's top passwords already fail the length and character-class rules; this list keeps
  those that pass them (or nearly do) and that people here really use: keyboard walks,
  "Admin@123"-style defaults of Chinese systems and devices, pinyin phrases (woaini = 我爱你,
  1314 = 一生一世, 520 = 我爱你), the names of this office and city, and the published demo
  passwords. Bundled in code.
- `breached_passwords()`: 19,640 passwords most seen in breaches (ASVS 6.2.4 / 6.2.12), a data
  file shipped in `crm/auth/data/` (its README names the source and licence).
- `strength`: zxcvbn's estimate (0 to 4), which also knows both lists above and the user's own
  names, so "woaini1314A" or "Demo@2026x" rate as the list word they are.

The site is on an intranet: nothing here is looked up on the network.
"""

from __future__ import annotations

import gzip
import string
import threading
from functools import cache
from pathlib import Path

from zxcvbn import matching, zxcvbn

_WORDS = """
123456 123456789 12345678 1234567890 password 12345 1234567 qwerty 111111 123123 000000
11111111 88888888 66666666 87654321 147258369 123321 654321 666666 888888 112233 5201314
1314520 a123456 a12345678 a123456789 aa123456 abc123 abc12345 abc123456 qq123456 qwe123
qwer1234 1qaz2wsx 1q2w3e4r 1q2w3e4r5t 1qaz@wsx 1qaz@WSX3edc zaq12wsx qazwsx123 asd123456
asdf1234 zxcv1234 zxcvbnm123 qwertyuiop 1qazxsw2 q1w2e3r4 q1w2e3r4t5 !qaz2wsx 1qaz!qaz
woaini woaini520 woaini1314 woaini123 iloveyou iloveyou1 5201314a a5201314 aini1314
woaiwojia caonima wangyang zhangwei wang1234 zhang123 li123456 liu123456 chen123456
huang123 zhao123456 woshishui nihao123 nihao123456 wodemima mima123 mima1234 mima123456
zhongguo zhongguo123 china123 china1234 beijing beijing123 shanghai123 hefei123 anhui123
bozhou bozhou123 bozhou@123 Bozhou@2024 Bozhou@2025 Bozhou@2026 haozhou123 zhaoshang
zhaoshang123 Zhaoshang@123 shuangzhao Shuangzhao@123 zhengfu123 Zhengfu@123
password1 password12 password123 password1234 password! passw0rd passw0rd! p@ssw0rd
p@ssw0rd1 p@ssw0rd123 p@55w0rd p@$$w0rd pa$$w0rd pass1234 pass@123 pass@word1
admin admin123 admin1234 admin12345 admin888 admin@123 admin@1234 admin@12345 admin123!
admin#123 admin_123 admin!@# administrator root123 root@123 root1234 toor test123
test1234 test@123 guest123 user123 user@123 user1234 system123 system@123 sysadmin
abc@123 abc@1234 abc@123456 abc#123 abc!123 abcd1234 abcd@1234 abcd1234! aa@123456
qwe@123 qwe!@#123 qwe123!@# qwer@1234 qwer!234 qwerty123 qwerty@123 qwerty1! qaz@123
1qaz2wsx3edc 1234qwer 1234abcd 123qwe 123qwe!@# 123abc 123abc!@# 123456a 123456aa
123456abc 123456qq 123456@a a1234567 a1b2c3d4 a1b2c3d4e5 aa123123 as123456 zx123456
welcome welcome1 welcome123 welcome@123 letmein letmein1 changeme changeme123 default
default123 huawei@123 huawei123 Huawei12#$ h3c@123 h3capadmin ruijie@123 hikvision
hik12345 hik@12345 dahua123 sangfor sangfor@123 Sangfor123 topsec talent zhimakaimen
Aa123456 Aa123456! Aa@123456 Aa123456@ Aa12345678 Aa112233 Ab123456 Qq123456 Qaz123456
Admin@2023 Admin@2024 Admin@2025 Admin@2026 Passw0rd@2024 Passw0rd@2025 Passw0rd@2026
Password@123 Password@1 Password1! Password123! P@ssword1 P@ssword123 P@ssw0rd!
Welcome@123 Welcome1! Test@1234 Test@123456 Root@1234 Root@123456 Huawei@123
Woaini@1314 Woaini1314! Woaini@520 Zxcv@1234 Asdf@1234 Qwer@1234! 1Qaz2wsx! 1Qaz@2wsx
Demo@123 Demo@1234 demo123 Crm@123456 crm123456 Crm@2026 Sdsy@123 Zs@123456
Demo@2026 Demo@2025 Bench@2026
"""

COMMON_PASSWORDS: frozenset[str] = frozenset(word.lower() for word in _WORDS.split())

BREACHED_PASSWORDS_FILE = Path(__file__).parent / "data" / "breached-passwords.txt.gz"

# zxcvbn reads a password of at most this many characters; a longer one is rated by its start,
# which can only make the estimate lower.
ZXCVBN_MAX_LENGTH = 72

_zxcvbn_lock = threading.Lock()  # zxcvbn keeps the user's names in a module-level dictionary


@cache
def _breached_in_order() -> tuple[str, ...]:
    """The breached list, commonest first (the file's order)."""
    with gzip.open(BREACHED_PASSWORDS_FILE, "rt", encoding="utf-8") as fh:
        return tuple(line.strip() for line in fh if line.strip())


@cache
def breached_passwords() -> frozenset[str]:
    return frozenset(_breached_in_order())


def _variants(password: str) -> set[str]:
    """The password in lower case, and without the symbols and spaces around it: "Qwer1234!"
    is "qwer1234" with one symbol added, the commonest way to meet a character-class rule."""
    lower = password.strip().lower()
    return {lower, lower.strip(string.punctuation + string.whitespace)} - {""}


def is_common(password: str) -> bool:
    """On the Chinese list or the breached list, whatever the case, give or take the symbols
    at either end."""
    variants = _variants(password)
    return bool(variants & COMMON_PASSWORDS or variants & breached_passwords())


@cache
def _register_dictionaries() -> None:
    """Teach zxcvbn the Chinese list (ranked first: these are the likeliest here) and the
    breached list, once per process."""
    common = list(dict.fromkeys(word.lower() for word in _WORDS.split()))  # in list order
    matching.add_frequency_lists({"crm_common": common, "crm_breached": _breached_in_order()})


def strength(password: str, user_inputs: list[str]) -> int:
    """zxcvbn's score, 0 (guessed at once) to 4 (very hard), with the user's own names."""
    _register_dictionaries()
    with _zxcvbn_lock:
        result = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=[u for u in user_inputs if u])
    return result["score"]
