"""report.html's browser section: the browser stage's records (one per runtime and backend) as a table and a
latency chart. Inline HTML and SVG, like the rest of the report."""

from __future__ import annotations

import html

BAR_WIDTH = 360  # pixels for the slowest latency in the chart


def browser_section(stages: list[dict]) -> str:
    stage = next((s for s in stages if s["name"] == "browser"), None)
    if stage is None:
        return ""
    esc = html.escape
    env = stage.get("browser_env") or {}
    records = stage.get("browser") or []
    if not records:
        why = stage.get("reason") or (stage.get("error") or {}).get("message") or "nothing ran"
        return f"<h2>In the browser</h2><p class='{esc(stage['status'])}'>{esc(stage['status'])}: {esc(why)}</p>"
    rows = []
    for r in records:
        if r.get("status") == "unavailable":
            rows.append(f"<tr><td>{esc(r['runtime'])}</td><td>{esc(r['backend'])}</td><td></td>"
                        f"<td class='skipped'>unavailable</td><td colspan='7'>{esc(r.get('reason', ''))}</td></tr>")
            continue
        if "error" in r:
            rows.append(f"<tr><td>{esc(r['runtime'])}</td><td>{esc(r['backend'])}</td><td>{_int(r.get('threads'))}</td>"
                        f"<td class='failed'>failed</td><td colspan='7'>{esc(r['error'])}</td></tr>")
            continue
        rows.append(
            f"<tr><td>{esc(r['runtime'])}</td><td>{esc(r['backend'])}</td><td>{_int(r.get('threads'))}</td>"
            f"<td class='{esc(r['status'])}'>{esc(r['status'])}</td><td>{_num(r.get('max_rel_err'))}</td>"
            f"<td>{_num(r.get('tolerance'))} ({esc(r.get('precision', ''))})</td>"
            f"<td>{r['cold_start_ms']:.1f} ms</td>"
            f"<td>{'parity only' if r['warm_median_ms'] is None else format(r['warm_median_ms'], '.3f') + ' ms'}</td>"
            f"<td>{r['bytes_downloaded'] / 1e6:.2f} MB</td><td>{r['model_bytes'] / 1e6:.3f} MB</td></tr>")
    where = ", ".join(f"{k} {esc(str(v))}" for k, v in (("Chromium", env.get("chromium")),
                                                         ("cross-origin isolated", env.get("crossOriginIsolated")),
                                                         ("WebGPU adapter", env.get("webgpuAdapter") or
                                                          env.get("webgpu"))) if v is not None)
    soft = [name for name, key in (("WebGL", "webglSoftware"), ("WebGPU", "webgpuSoftware")) if env.get(key)]
    if soft:
        where += (f"; {' and '.join(soft)} on a software renderer (SwiftShader, on the CPU): parity only, its "
                  "timings would not be a GPU's")
    return (f"<h2>In the browser</h2><p><small>headless {where}; cold start: runtime start, model download and "
            "first inference; warm: median of the timed runs after warm-up; downloaded: everything the runtime "
            "fetched (its wasm and code included)</small></p>"
            "<table><tr><th>runtime</th><th>backend</th><th>threads</th><th>parity</th><th>max rel err</th>"
            "<th>tolerance</th><th>cold start</th><th>warm median</th><th>downloaded</th><th>model files</th></tr>"
            + "".join(rows) + "</table>" + _chart(records))


def _chart(records: list[dict]) -> str:
    timed = [r for r in records if r.get("warm_median_ms") is not None]
    if not timed:
        return ""
    slowest = max(r["warm_median_ms"] for r in timed) or 1.0
    height = 22
    bars = []
    for i, r in enumerate(timed):
        width = max(1.0, BAR_WIDTH * r["warm_median_ms"] / slowest)
        y = i * height
        label = html.escape(f"{r['runtime']} {r['backend']}" + (f" x{r['threads']}" if r.get("threads") else ""))
        color = "#cf222e" if r["status"] == "failed" else "#0969da"
        bars.append(f'<text x="0" y="{y + 15}" font-size="12">{label}</text>'
                    f'<rect x="170" y="{y + 4}" width="{width:.1f}" height="14" fill="{color}"/>'
                    f'<text x="{176 + width:.1f}" y="{y + 15}" font-size="12">{r["warm_median_ms"]:.3f} ms</text>')
    return (f'<p><small>warm median latency</small></p><svg width="{170 + BAR_WIDTH + 90}" '
            f'height="{len(timed) * height + 4}" role="img" aria-label="warm median latency per runtime and backend">'
            + "".join(bars) + "</svg>")


def _num(value) -> str:
    return "" if value is None else f"{value:.1e}"


def _int(value) -> str:
    return "" if value is None else str(value)
