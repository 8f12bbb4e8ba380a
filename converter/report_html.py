"""report.html: the report drawn for a person. One self-contained file (inline CSS and SVG) that opens offline."""

from __future__ import annotations

import html
import math
from pathlib import Path

from .report_browser import browser_section

# degenerate: within tolerance, but PyTorch's output varied too little across the cases for the check to fail.
COLORS = {"passed": "#1a7f37", "degenerate": "#9a6700", "failed": "#cf222e", "skipped": "#8c959f"}


def write_html(path: Path, doc: dict) -> None:
    path.write_text(render(doc))


def render(doc: dict) -> str:
    stages = doc["stages"]
    esc = html.escape
    title = f"Conversion report: {esc(doc['model']['name'])}"
    rows = "".join(_row(s) for s in stages)
    accuracy = ""
    if doc.get("accuracy"):
        cells = "".join(f"<tr><td>{esc(k)}</td><td>{_pct(v)}</td></tr>" for k, v in doc["accuracy"].items())
        accuracy = f"<h2>Accuracy on the labelled eval data</h2><table><tr><th>runtime</th><th>top-1</th></tr>{cells}</table>"
    io = "".join(f"<tr><td>{side}</td><td>{esc(t['name'])}</td><td>{t['shape']}</td><td>{esc(t['dtype'])}</td>"
                 f"<td>{esc(t['layout'])}</td></tr>"
                 for side in ("input", "output") for t in doc[side + "s"])
    versions = ", ".join(f"{esc(k)} {esc(str(v))}" for k, v in doc["versions"].items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1f2328; max-width: 72rem; }}
table {{ border-collapse: collapse; margin: .5rem 0 1.5rem; }}
td, th {{ border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: left; vertical-align: top; }}
th {{ background: #f6f8fa; }}
.passed {{ color: {COLORS['passed']}; }} .failed {{ color: {COLORS['failed']}; }} .skipped {{ color: {COLORS['skipped']}; }}
.degenerate {{ color: {COLORS['degenerate']}; }}
.status {{ font-weight: 600; font-size: 1.2rem; }}
small {{ color: #59636e; }}
</style></head><body>
<h1>{title}</h1>
<p class="status {doc['status']}">{doc['status'].upper()}: {sum(s['status'] == 'passed' for s in stages)} of
{len(stages)} stages passed{_unverified(stages)} in {doc['seconds_total']} s <small>(exit code {doc['exit_code']})</small></p>
<p><small>source: {esc(doc['model']['source'])}</small></p>
<h2>Pipeline</h2>
{_diagram(stages)}
<h2>Error relative to PyTorch</h2>
{_plot(stages)}
<h2>Stages</h2>
<table><tr><th>stage</th><th>from</th><th>status</th><th>max abs err</th><th>max rel err</th><th>tolerance</th>
<th>err / spread</th><th>reference spread / scale</th><th>seconds</th><th>size</th><th>artifact</th><th>notes</th></tr>{rows}</table>
{accuracy}
{browser_section(stages)}
{_quantized(stages)}
<h2>Inputs and outputs (PyTorch layout)</h2>
<table><tr><th></th><th>name</th><th>shape</th><th>dtype</th><th>layout</th></tr>{io}</table>
<p><small>{versions}</small></p>
</body></html>
"""


def _quantized(stages: list[dict]) -> str:
    """The int8 artifacts' gates (accuracy in each runtime, agreement with PyTorch fp32) and, where a gate
    failed, the sensitivity analysis: the layers whose quantization costs the most."""
    esc = html.escape
    gated = [s for s in stages if s.get("gate")]
    if not gated:
        return ""
    rows = "".join(
        f"<tr><td>{esc(s['name'])}</td><td class='{'passed' if g['passed'] else 'failed'}'>"
        f"{'passed' if g['passed'] else 'FAILED'}</td><td>{_pct(g['agreement'])} (min {_pct(g['agreement_min'])})</td>"
        f"<td>{_pct(g['accuracy'])} (PyTorch {_pct(g['accuracy_pytorch'])})</td>"
        f"<td>{_points(g['accuracy_drop'])}</td>"
        f"<td>{_pct(g['golden_agreement'])}</td><td>{_num(g['max_rel_err'])}</td><td>{s['bytes'] or ''}</td></tr>"
        for s in gated for g in [s["gate"]])
    out = ("<h2>Int8 artifacts: accuracy gate in each runtime</h2><table><tr><th>stage</th><th>gate</th>"
           "<th>top-1 agreement with PyTorch fp32</th><th>accuracy</th><th>drop (points)</th>"
           "<th>agreement on golden cases</th><th>max rel err</th><th>bytes</th></tr>" + rows + "</table>")
    for s in gated:
        n = s.get("narrow_range")
        if n:  # tflite_int8: ops whose calibrated range TFLite's int8 quantizer cannot resolve stayed float
            outputs = "; ".join(f"output <b>{esc(k)}</b> spans only {v:.2g}" for k, v in n["outputs"].items())
            out += (f"<p>{esc(s['name'])}: {len(n['ops'])} ops kept float, their calibrated range under "
                    f"{n['min_range']:g} (TFLite's int8 quantizer widens a narrower range to about ±{n['min_range']:g}"
                    f" and would collapse them){': layers ' + esc(', '.join(n['layers'])) if n['layers'] else ''}."
                    + (f" {outputs}: a degenerate output scale, usually random weights whose activations die out; "
                       "int8 results on such a model say little about the trained one." if outputs else "") + "</p>")
    for s in gated:
        a = s.get("sensitivity")
        if not a:
            continue
        cells = "".join(f"<tr><td>{esc(r['layer'])}</td><td>{_pct(r.get('agreement'))}</td>"
                        f"<td>{_pct(r.get('accuracy'))}</td><td>{_num(r.get('max_rel_err'))}</td>"
                        f"<td>{esc(r.get('error', ''))}</td></tr>" for r in a["layers"])
        base = a["baseline"]
        out += (f"<h3>{esc(s['name'])}: sensitivity ({esc(a['runtime'])}, {a['cases']} cases, one layer float at a time)</h3>"
                f"<p>all quantized: agreement {_pct(base['agreement'])}, accuracy {_pct(base['accuracy'])}, "
                f"rel err {_num(base['max_rel_err'])}. Costliest: <b>{esc(', '.join(a['costliest']) or 'none found')}</b>"
                + (f"; try <code>{esc(a['suggest'])}</code>" if a.get("suggest") else "") + "</p>"
                "<table><tr><th>kept float</th><th>agreement</th><th>accuracy</th><th>max rel err</th><th></th></tr>"
                + cells + "</table>")
    return out


def _points(value) -> str:
    return "" if value is None else f"{value * 100:.2f}"


def _row(s: dict) -> str:
    esc = html.escape
    notes = [esc(n) for n in s["notes"]]
    if s["error"]:
        notes.insert(0, f"<b>{esc(s['error']['message'])}</b><br>try: {esc(s['error']['hint'])}")
    if s["reason"]:
        notes.insert(0, esc(s["reason"]))
    for c in s["comparisons"]:
        if c["against"] != "pytorch":
            notes.append(f"vs {esc(c['against'])}: rel {_num(c['max_rel_err'])}")
    size = f"{s['bytes'] / 1e6:.2f} MB" if s["bytes"] is not None else ""
    return (f"<tr><td>{esc(s['name'])}</td><td>{esc(s['after'])}</td><td class=\"{s['status']}\">{s['status']}</td>"
            f"<td>{_num(s['max_abs_err'])}</td><td>{_num(s['max_rel_err'])}</td><td>{_num(s['tolerance'])}</td>"
            f"<td>{_per_output(s, 'rel_to_spread')}</td><td>{_per_output(s, 'rel_spread')}</td>"
            f"<td>{s['seconds']:.2f}</td><td>{size}</td><td>{esc(s['artifact'] or '')}</td>"
            f"<td>{'<br>'.join(notes)}</td></tr>")


def _unverified(stages: list[dict]) -> str:
    count = sum(s["status"] == "degenerate" for s in stages)
    return f", {count} within tolerance but unverified (degenerate reference)" if count else ""


def _per_output(s: dict, key: str) -> str:
    """One value per output of the comparison with PyTorch, e.g. the reference's relative spread."""
    ref = next((c for c in s["comparisons"] if c["against"] == "pytorch"), None)
    if ref is None:
        return ""
    named = len(ref["outputs"]) > 1
    return "<br>".join((f"{html.escape(o['name'])} " if named else "") + (_num(o.get(key)) or "n/a")
                       for o in ref["outputs"])


def _diagram(stages: list[dict]) -> str:
    """Boxes for PyTorch and each stage, an arrow from each stage to the one it was made from."""
    columns: dict[str, int] = {"pytorch": 0}
    rows: dict[str, int] = {"pytorch": 0}
    used: dict[int, int] = {}
    for s in stages:
        col = columns.get(s["after"], 0) + 1
        columns[s["name"]] = col
        rows[s["name"]] = used.get(col, 0)
        used[col] = used.get(col, 0) + 1
    w, h, gx, gy = 130, 40, 50, 18
    width = (max(columns.values()) + 1) * (w + gx)
    height = max(used.values(), default=1) * (h + gy) + gy
    parts = []
    for name, col in columns.items():
        x, y = col * (w + gx) + 10, rows[name] * (h + gy) + gy
        status = next((s["status"] for s in stages if s["name"] == name), "passed")
        after = next((s["after"] for s in stages if s["name"] == name), None)
        if after is not None:
            px, py = columns[after] * (w + gx) + 10 + w, rows[after] * (h + gy) + gy + h / 2
            parts.append(f'<line x1="{px}" y1="{py}" x2="{x}" y2="{y + h / 2}" stroke="#8c959f" marker-end="url(#a)"/>')
        parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="white" stroke="{COLORS[status]}" '
                     f'stroke-width="2"/><text x="{x + w / 2}" y="{y + h / 2 + 5}" text-anchor="middle">'
                     f'{html.escape(name)}</text>')
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="pipeline diagram">'
            '<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
            'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker></defs>'
            + "".join(parts) + "</svg>")


def _plot(stages: list[dict]) -> str:
    """Horizontal bars of log10(max relative error), with each stage's tolerance as a tick."""
    measured = [s for s in stages if s["max_rel_err"] is not None]
    if not measured:
        return "<p>No stage produced outputs to compare.</p>"
    lo, hi = -16, 1
    scale = lambda v: 120 + (max(lo, min(hi, math.log10(max(v, 1e-16)))) - lo) / (hi - lo) * 460  # noqa: E731
    parts = []
    for i, s in enumerate(measured):
        y = 10 + i * 26
        x = scale(s["max_rel_err"])
        color = COLORS[s["status"]]
        parts.append(f'<text x="0" y="{y + 14}">{html.escape(s["name"])}</text>'
                     f'<rect x="120" y="{y}" width="{x - 120:.1f}" height="18" fill="{color}" opacity=".75"/>'
                     f'<text x="{x + 4:.1f}" y="{y + 14}">{_num(s["max_rel_err"])}</text>')
        if s["tolerance"]:
            t = scale(s["tolerance"])
            parts.append(f'<line x1="{t:.1f}" x2="{t:.1f}" y1="{y - 2}" y2="{y + 20}" stroke="black" stroke-width="2"/>')
    axis_y = 10 + len(measured) * 26
    for e in range(lo, hi + 1, 3):
        x = scale(10.0**e)
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#59636e">1e{e}</text>')
    return (f'<svg width="640" height="{axis_y + 22}" role="img" aria-label="relative error per stage">'
            + "".join(parts) + '</svg><p><small>bar: max error relative to max |PyTorch output| (log scale); '
            'black tick: the tolerance for that stage\'s precision</small></p>')


def _num(value) -> str:
    return "" if value is None else f"{value:.2e}" if isinstance(value, float) else str(value)


def _pct(value) -> str:
    return "" if value is None else f"{value:.2%}"
