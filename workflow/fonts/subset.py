"""Regenerate the bundled flowchart font: Noto Sans CJK SC Regular, cut down to our texts.

The glyph set is every character of every ``bot/locales/*.json`` file, plus printable ASCII
and common CJK and Latin punctuation, so any label the flowchart can show has its glyph.
The subset is renamed (the OFL asks modified versions to be told apart from the original)
and keeps the upstream copyright and licence fields.

    apt-get download fonts-noto-cjk          # Debian's package; no install needed
    .venv/bin/python workflow/fonts/subset.py --source fonts-noto-cjk_*.deb

``--source`` may also be ``NotoSansCJK-Regular.ttc`` or any single-face OpenType file.
fontTools is a dev dependency: it is needed here only, never at run time.
"""

from __future__ import annotations

import argparse
import io
import json
import string
import subprocess
import sys
import tarfile
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LOCALES = ROOT / "bot" / "locales"
OUT = HERE / "AftersalesSansCJK-Regular.otf"
FAMILY = "Aftersales Sans CJK"
TTC_MEMBER = "NotoSansCJK-Regular.ttc"
SC_FACE = "Noto Sans CJK SC"
PUNCTUATION = "，。、；：？！“”‘’（）《》〈〉【】「」『』—–…·→←↑↓×÷±％＋－／＝～￥・ ¥€£°●○■□"


def glyph_text(locales: Path = LOCALES) -> str:
    """Every character the flowchart may have to draw, sorted (one string)."""
    chars = set(string.printable) - set(string.whitespace) | {" "} | set(PUNCTUATION)
    for path in sorted(locales.glob("*.json")):
        for text in json.loads(path.read_text(encoding="utf-8")).values():
            chars.update(text)
    return "".join(sorted(chars))


def _ttc_from_deb(deb: Path) -> bytes:
    data = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            if member.name.endswith("/" + TTC_MEMBER):
                handle = archive.extractfile(member)
                assert handle is not None
                return handle.read()
    raise SystemExit(f"{deb} holds no {TTC_MEMBER}")


def load_source(source: Path) -> TTFont:
    raw = _ttc_from_deb(source) if source.suffix == ".deb" else source.read_bytes()
    if raw[:4] != b"ttcf":
        return TTFont(io.BytesIO(raw))
    for font in TTCollection(io.BytesIO(raw)).fonts:
        if font["name"].getDebugName(1) == SC_FACE:
            return font
    raise SystemExit(f"{source} has no {SC_FACE} face")


def _rename(font: TTFont) -> None:
    name = font["name"]
    upstream = name.getDebugName(4) or SC_FACE
    version = name.getDebugName(5) or ""
    for record in list(name.names):
        if record.nameID in (1, 2, 3, 4, 6, 16, 17, 21, 22):
            name.removeNames(nameID=record.nameID)
    name.setName(FAMILY, 1, 3, 1, 0x409)
    name.setName("Regular", 2, 3, 1, 0x409)
    name.setName(f"{FAMILY} Regular; subset of {upstream} {version}", 3, 3, 1, 0x409)
    name.setName(f"{FAMILY} Regular", 4, 3, 1, 0x409)
    name.setName(FAMILY.replace(" ", "") + "-Regular", 6, 3, 1, 0x409)
    if "CFF " in font:
        cff = font["CFF "].cff
        cff.fontNames = [FAMILY.replace(" ", "") + "-Regular"]
        top = cff.topDictIndex[0]
        top.FamilyName = FAMILY
        top.FullName = f"{FAMILY} Regular"


def build(source: Path, out: Path = OUT) -> tuple[str, str]:
    """Write the subset; return (characters kept, characters the source has no glyph for)."""
    font = load_source(source)
    wanted = glyph_text()
    cmap = font.getBestCmap()
    missing = "".join(c for c in wanted if ord(c) not in cmap)
    options = subset.Options()
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.hinting = False
    # Horizontal Chinese text only: no vertical forms, no Japanese/Korean/Traditional shapes.
    options.layout_features = [
        f for f in options.layout_features if f not in ("locl", "vert", "vrt2", "vkrn")
    ]
    options.drop_tables += ["VORG", "vhea", "vmtx"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=wanted)
    subsetter.subset(font)
    _rename(font)
    font.save(out)
    return "".join(c for c in wanted if ord(c) in cmap), missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help=".deb, .ttc or .otf")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    kept, missing = build(args.source, args.out)
    print(f"{args.out}: {len(kept)} characters, {args.out.stat().st_size} bytes")
    if missing:
        print(f"not in the source font (emoji and symbols; never used in labels): {missing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
