"""Build the dossier's font: Noto Sans CJK SC from the system (Debian's fonts-noto-cjk), cut to
ASCII, Latin-1, the GB 2312 characters and the punctuation a Chinese document uses.

    .venv/bin/python scripts/build_dossier_font.py   # run by `make setup` (scripts/setup.sh)

WeasyPrint subsets the font it embeds on every render, and the time that takes grows with the
font it starts from: the whole Noto collection (65,000 glyphs) costs about a fifth of a render.
The dossier names this smaller font first and Noto Sans CJK SC from the system after it, so a
character outside GB 2312 (a rare name, 𠀀) is still drawn, from the full font. The file is
built here, not kept in git: it is derived from the system's font, under the SIL Open Font
License like it, and takes about 20 s. Nothing is done when it is newer than the system font.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

SYSTEM_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
FAMILY = "Noto Sans CJK SC"
TARGET = Path(__file__).resolve().parent.parent / "crm" / "static" / "fonts" / "dossier-sc.otf"


def characters() -> str:
    chars = {chr(c) for c in range(0x20, 0x7F)} | {chr(c) for c in range(0xA0, 0x100)}
    for first in range(0xA1, 0xF8):
        for second in range(0xA1, 0xFF):
            with contextlib.suppress(UnicodeDecodeError):  # the unassigned codes
                chars.add(bytes([first, second]).decode("gb2312"))
    for start, end in ((0x2000, 0x206F), (0x3000, 0x303F), (0xFF00, 0xFFEF)):  # punctuation
        chars |= {chr(c) for c in range(start, end + 1)}
    return "".join(sorted(chars))


def main() -> int:
    from fontTools import subset
    from fontTools.ttLib import TTCollection

    if not SYSTEM_FONT.exists():
        print(f"build_dossier_font: {SYSTEM_FONT} is missing; the dossier uses the system font")
        return 0
    if TARGET.exists() and TARGET.stat().st_mtime >= SYSTEM_FONT.stat().st_mtime:
        return 0
    collection = TTCollection(str(SYSTEM_FONT), lazy=True)
    number = next(
        i for i, font in enumerate(collection.fonts) if font["name"].getDebugName(1) == FAMILY
    )
    options = subset.Options()
    options.font_number = number
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    font = subset.load_font(str(SYSTEM_FONT), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=characters())
    subsetter.subset(font)
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    partial = TARGET.with_suffix(".part")
    subset.save_font(font, str(partial), options)
    partial.replace(TARGET)
    print(f"build_dossier_font: {TARGET.relative_to(TARGET.parent.parent.parent)} "
          f"({TARGET.stat().st_size // 1024} KB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
