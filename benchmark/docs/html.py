"""A hand-written Markdown → HTML converter for the subset the docs use."""

from __future__ import annotations

import html
import posixpath
import re
import typing

from benchmark.docs.formatting import MARKER
from benchmark.docs.output import HTML

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;background:#fff;line-height:1.45}
main{max-width:1200px;margin:0 auto;padding:1rem 1.5rem 3rem}
h1,h2,h3{line-height:1.2}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.25rem .5rem;vertical-align:top}th{background:#f4f4f4}
td.r,th.r{text-align:right}td.c,th.c{text-align:center}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;background:#f4f4f4;padding:0 .2em}
pre{background:#f4f4f4;padding:.6rem;overflow-x:auto}pre code{padding:0}
img{max-width:100%;height:auto}blockquote{margin:0;padding:.3rem 1rem;border-left:4px solid #e0a800;background:#fff8e1}
a{color:#0b5cad}
""".strip()

_INLINE = re.compile(
    r"`(?P<code>[^`]+)`"
    r"|!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)"
    r"|\[(?P<text>[^\]]+)\]\((?P<href>[^)\s]+)\)"
    r"|\*\*(?P<bold>.+?)\*\*"
    r"|(?<![*\w])\*(?P<em>[^*\s](?:[^*]*[^*\s])?)\*(?![*\w])"
)
_BLOCK_START = re.compile(r"^(#{1,6} |```|\||[-*] |\d+\. |>|<!--)")


def inline_html(text: str, href: typing.Callable[[str], str]) -> str:
    r"""Inline Markdown (code, images, links, bold, emphasis) to HTML.

    Examples:
        >>> inline_html("**a** & `b<c>` [x](y.md)", lambda h: h)
        '<strong>a</strong> &amp; <code>b&lt;c&gt;</code> <a href="y.md">x</a>'

    """
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()], quote=False))
        if m["code"] is not None:
            out.append(f"<code>{html.escape(m['code'], quote=False)}</code>")
        elif m["src"] is not None:
            out.append(f'<img src="{html.escape(href(m["src"]))}" alt="{html.escape(m["alt"])}">')
        elif m["href"] is not None:
            out.append(f'<a href="{html.escape(href(m["href"]))}">{inline_html(m["text"], href)}</a>')
        elif m["bold"] is not None:
            out.append(f"<strong>{inline_html(m['bold'], href)}</strong>")
        else:
            out.append(f"<em>{inline_html(m['em'], href)}</em>")
        pos = m.end()
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


def markdown_to_html(text: str, href: typing.Callable[[str], str]) -> str:
    r"""Block Markdown to HTML, for the subset these docs use.

    Headings, paragraphs, pipe tables (with alignment), flat bullet and
    numbered lists, block quotes, fenced code and one-line HTML
    comments. Not a general Markdown parser: the input is generated
    here or written to this subset (``docs/adding-a-model.md``).
    """
    lines = text.split("\n")
    out: list[str] = []
    ids: set[str] = set()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("<!--"):
            out.append(line)
            i += 1
        elif line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append("<pre><code>" + html.escape("\n".join(lines[i + 1:j]), quote=False) + "</code></pre>")
            i = j + 1
        elif m := re.match(r"^(#{1,6}) (.*)$", line):
            level, content = len(m[1]), m[2].strip()
            anchor = _anchor(content, ids)
            out.append(f'<h{level} id="{anchor}">{inline_html(content, href)}</h{level}>')
            i += 1
        elif line.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            out.append(_table_html(lines[i:j], href))
            i = j
        elif re.match(r"^([-*]|\d+\.) ", line):
            ordered = bool(re.match(r"^\d+\. ", line))
            items, j = [], i
            while j < len(lines) and lines[j].strip():
                if re.match(r"^([-*]|\d+\.) ", lines[j]):
                    items.append(re.sub(r"^([-*]|\d+\.) ", "", lines[j]))
                elif items:
                    items[-1] += " " + lines[j].strip()
                j += 1
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{inline_html(item, href)}</li>" for item in items) + f"</{tag}>")
            i = j
        elif line.startswith(">"):
            j = i
            while j < len(lines) and lines[j].startswith(">"):
                j += 1
            content = " ".join(x[1:].strip() for x in lines[i:j])
            out.append(f"<blockquote><p>{inline_html(content, href)}</p></blockquote>")
            i = j
        else:
            j = i
            while j < len(lines) and lines[j].strip() and (j == i or not _BLOCK_START.match(lines[j])):
                j += 1
            out.append(f"<p>{inline_html(' '.join(x.strip() for x in lines[i:j]), href)}</p>")
            i = j
    return "\n".join(out)


def _anchor(text: str, ids: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", re.sub(r"[`*\[\]()]", "", text).lower()).strip("-") or "section"
    anchor, k = base, 2
    while anchor in ids:
        anchor, k = f"{base}-{k}", k + 1
    ids.add(anchor)
    return anchor


def _table_html(lines: list[str], href: typing.Callable[[str], str]) -> str:
    def cells(line: str) -> list[str]:
        inner = line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]
        return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]

    header, body = cells(lines[0]), lines[1:]
    align = [""] * len(header)
    if body and re.fullmatch(r"\|?[\s:|-]+\|?", body[0]):
        align = [
            "c" if s.startswith(":") and s.endswith(":") else "r" if s.endswith(":") else ""
            for s in cells(body[0])
        ]
        body = body[1:]

    def row(tag: str, values: list[str]) -> str:
        out = []
        for k, value in enumerate(values):
            cls = f' class="{align[k]}"' if k < len(align) and align[k] else ""
            out.append(f"<{tag}{cls}>{inline_html(value, href)}</{tag}>")
        return "<tr>" + "".join(out) + "</tr>"

    head = row("th", header) if any(header) else ""
    rows = "".join(row("td", cells(line)) for line in body)
    return f"<table>\n<thead>{head}</thead>\n<tbody>{rows}</tbody>\n</table>" if head else f"<table>\n<tbody>{rows}</tbody>\n</table>"


def html_path(md_rel: str) -> str:
    r"""Where the HTML build of a docs page goes, relative to ``docs/html``.

    Examples:
        >>> html_path("leaderboard.md"), html_path("models/x.md")
        ('index.html', 'models/x.html')

    """
    return "index.html" if md_rel == "leaderboard.md" else md_rel[: -len(".md")] + ".html"


def html_page(md_text: str, md_rel: str) -> str:
    r"""Standalone HTML5 page for the Markdown page at ``docs/<md_rel>``.

    Links between pages point to their HTML builds; everything else
    (figures) is resolved relative to the HTML page's own location, so
    the pages work from the file system and from any static host that
    serves ``docs/``.
    """
    page_dir = posixpath.dirname(md_rel)
    html_dir = posixpath.dirname(posixpath.join(HTML, html_path(md_rel)))

    def href(target: str) -> str:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#") or target.startswith("/"):
            return target
        path, _, fragment = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(page_dir, path))
        if resolved.endswith(".md"):
            resolved = posixpath.join(HTML, html_path(resolved))
        rel = posixpath.relpath(resolved, html_dir or ".")
        return rel + (f"#{fragment}" if fragment else "")

    body = markdown_to_html(md_text, href)
    title_match = re.search(r"^# (.+)$", md_text, flags=re.M)
    title = re.sub(r"[`*]", "", title_match[1]) if title_match else "SER benchmark"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<!-- {MARKER} -->\n"
        f"<style>\n{CSS}\n</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
