"""A report model as one self-contained HTML page: styles inline, plots as inline SVG, no
script, no font, image or stylesheet fetched, so the file can be mailed or archived and opens
offline. Every text that comes from a run (model names, game ids, config values) is escaped.
"""

from __future__ import annotations

from html import escape

from sandbox.review.report import svg
from sandbox.review.report.model import Plot, Report, Section, Table

STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif;
  margin: 24px auto; max-width: 1200px; padding: 0 16px; color: #111; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 1.8em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; font-size: 13px; margin: 0.4em 0; }
th, td { border: 1px solid #d0d0d0; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
tbody tr:nth-child(even) { background: #fafafa; }
.caption, figcaption { color: #444; font-size: 12.5px; max-width: 1100px; }
figure { margin: 0.6em 0 1.4em; }
pre { background: #f6f6f6; padding: 10px; overflow-x: auto; font-size: 12px; }
.verdict-yes { color: #006d2c; font-weight: 600; }
.verdict-no { color: #555; }
.verdict-inconclusive { color: #a35d00; }
"""


VERDICTS = {
    "yes": "yes",
    "solved": "yes",
    "no": "no",
    "not solved": "no",
    "inconclusive": "inconclusive",
}
"""Verdicts as the terminal words them (the games' and the profile's), by their style."""


def _verdict_class(text: str) -> str:
    """A verdict cell ("solved", "not solved") or a profile cell led by one ("yes: ...")."""
    verdict = VERDICTS.get(text) or VERDICTS.get(text.split(":")[0])
    return f' class="verdict-{verdict}"' if verdict else ""


def table(t: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in t.columns)
    body = "\n".join(
        "<tr>" + "".join(f"<td{_verdict_class(c)}>{escape(c)}</td>" for c in row) + "</tr>"
        for row in t.rows
    )
    caption = f'<p class="caption">{escape(t.caption)}</p>' if t.caption else ""
    return (
        f'<h3>{escape(t.title)}</h3>\n<table data-table="{escape(t.id)}">\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n{caption}"
    )


def figure(p: Plot) -> str:
    return (
        f'<figure data-plot="{escape(p.id)}">\n<h3>{escape(p.title)}</h3>\n{svg.render(p)}\n'
        f"<figcaption>{escape(p.caption)}</figcaption>\n</figure>"
    )


def section(s: Section) -> str:
    parts = [f'<section id="{escape(s.id)}">', f"<h2>{escape(s.title)}</h2>"]
    if s.text:
        parts.append(f"<p>{escape(s.text)}</p>")
    parts += [table(t) for t in s.tables]
    parts += [figure(p) for p in s.plots]
    parts.append("</section>")
    return "\n".join(parts)


def render(report: Report) -> str:
    nav = " ".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in report.sections)
    config = (
        '<section id="config"><h2>config.yaml</h2>\n'
        f"<pre>{escape(report.config_yaml)}</pre></section>"
        if report.config_yaml
        else ""
    )
    body = "\n".join(section(s) for s in report.sections)
    title = escape(f"Report: {report.run_id}")
    return (
        "<!doctype html>\n"
        f'<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n<nav>{nav}</nav>\n{body}\n{config}\n</body>\n</html>\n"
    )
