"""Words of the bed-hanging timeline (api/web/ward_timeline.py), merged into api/web/i18n.py's tables."""
from __future__ import annotations

MESSAGES = {
    "ward_timeline": {"zh": "在床核查时间线", "en": "Bed checks, day by day"},
    "ward_admission": {"zh": "住院号 {mdtrt_id} · {dept} {bed} 床 · 入院 {begin}",
                       "en": "Admission {mdtrt_id} · {dept} bed {bed} · admitted {begin}"},
    "ward_day": {"zh": "日期", "en": "Day"},
    "ward_hint": {"zh": "每格为一次抽检（当地时间）；点击任一格在上方播放器中回放该次抽检的录像。",
                  "en": "Each cell is one check (local time); click one to replay its footage in the player."},
    "ward_present": {"zh": "在床", "en": "Present"},
    "ward_absent": {"zh": "不在床", "en": "Absent"},
    "ward_unknown": {"zh": "无法判断", "en": "Unknown"},
    "ward_not_checked": {"zh": "未抽检", "en": "Not checked"},
    "ward_why_occupied": {"zh": "床位有人", "en": "bed occupied"},
    "ward_why_face_seen": {"zh": "见到参保人本人", "en": "the patient's face seen"},
    "ward_why_bed_empty": {"zh": "床位无人", "en": "bed empty"},
    "ward_why_no_footage": {"zh": "无录像", "en": "no footage"},
    "ward_why_too_dark": {"zh": "画面过暗", "en": "too dark"},
    "ward_why_no_reference": {"zh": "缺少空床参照图", "en": "no empty-bed picture"},
    "ward_light_day": {"zh": "日间", "en": "day"},
    "ward_light_night": {"zh": "夜间红外", "en": "infrared"},
    "ward_frame": {"zh": "抽检画面", "en": "Sampled frame"},
    "ward_weekdays": {"zh": "周一,周二,周三,周四,周五,周六,周日", "en": "Mon,Tue,Wed,Thu,Fri,Sat,Sun"},
}
