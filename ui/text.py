"""User text (labels, class names, paths, run names) inside Markdown-rendered elements, as plain text.

Streamlit renders captions, markdown, info and error boxes as Markdown (with its colour, emoji and
icon directives and LaTeX). A label written into a CSV manifest such as ``![x](http://host/x.png)``
would then be an image fetched from that host; escaped, it is the text it is.
"""

from __future__ import annotations

import re

# what starts Markdown or a Streamlit directive anywhere in a line: emphasis, code, links and images,
# HTML, tables, strikethrough, LaTeX, :emoji:/:material/icon:/:color[...]:, braces of attributes
_INLINE = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|~$:!{}#"})
_LINE_START = re.compile(r"^(\s*\d*)([-+>=.)])")  # a list, quote, heading underline or numbered item
# GFM's autolinks (``http://…``, ``www.…``, ``a@b.c``) are found in the text after escapes are resolved: no
# backslash stops them. A word joiner (U+2060, invisible, zero width) after ``:``, ``www`` or ``@`` does.
_AUTOLINK = re.compile(r"(?i)(\\:)(?=//)|(\bwww)(?=\\?\.)|(@)(?=\w)")
WORD_JOINER = "\u2060"


def plain(text: object) -> str:
    """``text`` with what Markdown would interpret backslash-escaped (CommonMark escapes), autolinks broken by an
    invisible word joiner and newlines as spaces: it renders as itself, with no link or image, wherever Streamlit
    renders Markdown."""
    s = " ".join(str(text).split()).translate(_INLINE)
    s = _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, s)
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), s)
