"""The Chinese summary page of an evidence package (摘要): what the package holds, in local time, for the
person who opens the zip. The manifest stays the machine-readable record; this page only restates it."""
from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

SUMMARY_FILE = "summary.zh-CN.html"
GAP_REASONS_ZH = {"camera_offline": "摄像头离线", "camera_stalled": "画面停滞", "spool_full": "缓存已满",
                  "not_recorded": "未录制", "recorder_failover": "录像机故障切换", "recorder_handover": "录像机交接",
                  "recorder_restart": "录像机重启"}


def _local(v, tz: ZoneInfo) -> str:
    if not v:
        return "—"
    t = datetime.fromisoformat(str(v).replace("Z", "+00:00")).astimezone(tz)
    return f"{t.year}年{t.month}月{t.day}日 {t:%H:%M:%S}"


def summary_html(manifest: dict, tz_name: str) -> bytes:
    tz = ZoneInfo(tz_name)
    m, clip, cam, org = manifest, manifest["clip"], manifest["camera"], manifest["organisation"]
    gaps = "".join(f"<li>{_local(g.get('start'), tz)} 至 {_local(g.get('end'), tz)}"
                   f"（{escape('、'.join(GAP_REASONS_ZH.get(r, r) for r in str(g.get('reason') or 'not_recorded').split(',')))}）</li>"
                   for g in m.get("gaps") or []) or "<li>无</li>"
    rows = [("证据包编号", m["export_id"]), ("生成时间", _local(m["created_at"], tz)), ("生成人", m.get("created_by")),
            ("事由", m.get("reason") or "—"), ("机构", f"{org.get('name') or ''}（{org.get('id')}）"),
            ("摄像头", f"{cam.get('name')}（{cam.get('id')}）"),
            ("申请时段", f"{_local(m['requested']['start'], tz)} 至 {_local(m['requested']['end'], tz)}"),
            ("视频时段", f"{_local(clip['start'], tz)} 至 {_local(clip['end'], tz)}"),
            ("视频时长", f"{clip['duration_s']:.1f} 秒"), ("录像片段数", str(len(m.get("segments") or []))),
            ("视频文件", f"{clip['file']}，SHA-256 {clip['sha256']}")]
    table = "".join(f"<tr><th>{escape(a)}</th><td>{escape(str(b))}</td></tr>" for a, b in rows)
    html = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>证据包摘要 {escape(m['export_id'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}th{{text-align:left;padding-right:1em;vertical-align:top}}
td{{word-break:break-all}}</style></head><body>
<h1>证据包摘要</h1><p>时间均为 {escape(tz_name)} 当地时间。</p><table>{table}</table>
<h2>录像缺失</h2><ul>{gaps}</ul>
<h2>如何核验</h2><ol><li>整个压缩包的 SHA-256 与系统审计记录（证据包导出）中登记的值一致；</li>
<li>包内文件用 <code>sha256sum -c SHA256SUMS</code> 核对（视频、清单和本摘要）；</li>
<li>清单 manifest.json 列出每个录像片段在存储中的位置和 SHA-256，可与存储逐一核对。</li></ol>
</body></html>"""
    return html.encode()
