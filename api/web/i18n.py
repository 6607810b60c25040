"""Words of the web UI in Simplified Chinese (default) and English, and how dates and amounts are written.

Chinese staff write ``2026年11月22日 14:05`` and ``¥1,234.50``; times are shown in the ``web_timezone``
setting (Asia/Shanghai by default), whatever zone they are stored in (UTC).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from api.web import i18n_cases, i18n_ward, words_rules
from api.web.words_ops import WORDS as OPS_WORDS
from api.web.words_watch import WORDS as WATCH_WORDS
from correlate.reasons import ENGLISH, Reason, scrub_scores

LANGS = ("zh", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "app_name": {"zh": "医保视频+数据双核验", "en": "Video + data dual verification"},
    "login": {"zh": "登录", "en": "Log in"},
    "logout": {"zh": "退出", "en": "Log out"},
    "username": {"zh": "用户名", "en": "Username"},
    "password": {"zh": "密码", "en": "Password"},
    "login_failed": {"zh": "用户名或密码错误", "en": "Wrong username or password"},
    "login_limited": {"zh": "登录失败次数过多，请 {s} 秒后再试", "en": "Too many failed logins; try again in {s} s"},
    "session_expired": {"zh": "会话已过期，请重新登录", "en": "Your session expired; please log in again"},
    "nav_queue": {"zh": "预警队列", "en": "Flag queue"},
    "nav_inquiries": {"zh": "质询", "en": "Inquiries"},
    "nav_cameras": {"zh": "摄像头", "en": "Cameras"},
    "nav_overview": {"zh": "统计概览", "en": "Overview"},
    "lang_switch": {"zh": "English", "en": "中文"},
    "filter": {"zh": "筛选", "en": "Filter"},
    "reset": {"zh": "重置", "en": "Reset"},
    "all": {"zh": "全部", "en": "All"},
    "org": {"zh": "机构", "en": "Institution"},
    "type": {"zh": "类型", "en": "Type"},
    "level": {"zh": "级别", "en": "Level"},
    "status": {"zh": "状态", "en": "Status"},
    "date_from": {"zh": "起始日期", "en": "From"},
    "date_to": {"zh": "截止日期", "en": "To"},
    "occurred_at": {"zh": "结算时间", "en": "Settled at"},
    "age": {"zh": "已等待", "en": "Waiting"},
    "reason": {"zh": "原因", "en": "Reason"},
    "settlement": {"zh": "结算记录", "en": "Settlement"},
    "count_per_level": {"zh": "各级别数量", "en": "Flags per level"},
    "no_flags": {"zh": "没有符合条件的预警", "en": "No flags match"},
    "level_n": {"zh": "{n}级", "en": "Level {n}"},
    "flag": {"zh": "预警", "en": "Flag"},
    "video": {"zh": "视频回放", "en": "Footage"},
    "claim_lines": {"zh": "数据比对（处方 | 收费 | 进销存）", "en": "The data lines (prescribed | billed | stock)"},
    "claim_none": {"zh": "无记录", "en": "No record"},
    "camera": {"zh": "摄像头", "en": "Camera"},
    "gaps": {"zh": "录像缺失", "en": "Gaps"},
    "camera_clock_off": {"zh": "摄像头时钟偏差 {s} 秒", "en": "Camera clock off by {s} s"},
    "no_footage": {"zh": "该时段没有录像", "en": "No footage in this window"},
    "enrolled_photo": {"zh": "参保人登记照片", "en": "Enrolled photo"},
    "face_crops": {"zh": "录像中的人脸", "en": "Faces in the footage"},
    "face_pay_capture": {"zh": "刷脸支付抓拍", "en": "Face-pay capture"},
    "none": {"zh": "无", "en": "None"},
    "score": {"zh": "相似度", "en": "Score"},
    "score_capture": {"zh": "与抓拍相似度", "en": "vs capture"},
    "insured_match": {"zh": "本人", "en": "insured"},
    "insured_id": {"zh": "参保人编号", "en": "Insured id"},
    "amount": {"zh": "金额", "en": "Amount"},
    "settlement_type": {"zh": "结算类型", "en": "Type"},
    "counter": {"zh": "窗口", "en": "Counter"},
    "terminal": {"zh": "终端", "en": "Terminal"},
    "face_check": {"zh": "刷脸核验", "en": "Face check"},
    "check_outcome": {"zh": "核验结论", "en": "Check outcome"},
    "history": {"zh": "处理记录", "en": "History"},
    "actions": {"zh": "处理", "en": "Actions"},
    "note": {"zh": "备注", "en": "Note"},
    "note_required": {"zh": "请填写备注", "en": "A note is required"},
    "confirm": {"zh": "确认违规", "en": "Confirm"},
    "dismiss": {"zh": "排除", "en": "Dismiss"},
    "send_inquiry": {"zh": "发起质询", "en": "Send inquiry"},
    "export": {"zh": "导出证据包", "en": "Export evidence package"},
    "export_ready": {"zh": "证据包已生成", "en": "Evidence package ready"},
    "download": {"zh": "下载", "en": "Download"},
    "closed": {"zh": "已办结", "en": "Closed"},
    "inquiries_open": {"zh": "待答复的质询", "en": "Inquiries awaiting your reply"},
    "inquiries_answered": {"zh": "已答复", "en": "Answered"},
    "no_inquiries": {"zh": "暂无质询", "en": "No inquiries"},
    "reply": {"zh": "答复", "en": "Reply"},
    "send_reply": {"zh": "提交答复", "en": "Send reply"},
    "question": {"zh": "质询内容", "en": "Question"},
    "online": {"zh": "在线", "en": "Online"},
    "offline": {"zh": "离线", "en": "Offline"},
    "connecting": {"zh": "连接中", "en": "Connecting"},
    "unknown": {"zh": "未知", "en": "Unknown"},
    "last_segment": {"zh": "最新录像", "en": "Last segment"},
    "recorded": {"zh": "已录时长", "en": "Recorded"},
    "coverage": {"zh": "覆盖率", "en": "Coverage"},
    "day": {"zh": "日期", "en": "Day"},
    "show": {"zh": "查看", "en": "Show"},
    "no_cameras": {"zh": "没有可查看的摄像头", "en": "No cameras to show"},
    "flags_over_time": {"zh": "各机构预警数量（按周、按级别）", "en": "Flags per institution over time (weekly, by level)"},
    "flags_by_type": {"zh": "预警类型与级别", "en": "Flags by type and level"},
    "confirm_rate": {"zh": "各规则确认率", "en": "Confirmation rate per rule"},
    "confirmed_of_decided": {"zh": "确认 {c} / 已处理 {d}", "en": "{c} confirmed of {d} decided"},
    "total": {"zh": "合计", "en": "Total"},
    "not_found": {"zh": "未找到该页面或记录", "en": "Not found"},
    "forbidden": {"zh": "您没有权限查看此页面", "en": "You may not see this page"},
    "bad_request": {"zh": "请求有误", "en": "Bad request"},
    "back": {"zh": "返回", "en": "Back"},
    "csrf_failed": {"zh": "页面已过期，请刷新后重试", "en": "The page expired; reload and try again"},
    "done_ok": {"zh": "已保存", "en": "Saved"},
    "seconds_short": {"zh": "秒", "en": "s"},
    "window": {"zh": "核查时段", "en": "Window"},
    "current_time": {"zh": "当前画面时间", "en": "Frame time"},
    "jump_settlement": {"zh": "跳到结算时刻", "en": "Jump to settlement"},
    "role_inspector": {"zh": "稽核人员", "en": "Inspector"},
    "role_institution": {"zh": "机构用户", "en": "Institution"},
    "role_operator": {"zh": "运维人员", "en": "Operator"},
    "role_admin": {"zh": "管理员", "en": "Admin"},
    "role_system": {"zh": "系统", "en": "System"},
    "footage_limited": {"zh": "按规定，监管录像不向机构提供", "en": "The supervisor's footage is not shown to institutions"},
    "evidence_limited": {"zh": "按规定，人脸图像不向机构提供", "en": "Face images are not shown to institutions"},
    # --- camera zones editor (api/web/zones_pages.py, static/zones.js) ---
    "zones": {"zh": "区域", "en": "Zones"},
    "zones_help": {"zh": "在摄像头最新画面上点击描出多边形：顾客区（柜台前付款、排队的位置）、工作人员区（收银台内）、忽略区（电视、带人脸的海报、临街窗户）。未设置区域时按整个画面核查。",
                   "en": "Click on the camera's latest frame to draw polygons: the customer side (where people pay and queue), "
                         "the staff side (behind the till), areas to ignore (a TV, a poster with faces, a street window). "
                         "Without zones the whole frame is checked."},
    "zone_still_alt": {"zh": "摄像头最新画面", "en": "The camera's latest frame"},
    "zone_new": {"zh": "新建区域", "en": "New zone"},
    "zone_kind": {"zh": "区域类型", "en": "Kind"},
    "zone_kind_customer": {"zh": "顾客区", "en": "Customer side"},
    "zone_kind_staff": {"zh": "工作人员区", "en": "Staff side"},
    "zone_kind_ignore": {"zh": "忽略区", "en": "Ignore"},
    "zone_label": {"zh": "名称（可选）", "en": "Label (optional)"},
    "zone_draw_hint": {"zh": "依次点击画面放置顶点（至少 3 个），点击第一个顶点或“完成”闭合。",
                       "en": "Click the frame to place the corners (at least 3); click the first one again or Finish to close."},
    "zone_points": {"zh": "已放置 {n} 个顶点", "en": "{n} points placed"},
    "zone_finish": {"zh": "完成多边形", "en": "Finish polygon"},
    "zone_undo": {"zh": "撤销上一个顶点", "en": "Undo last point"},
    "ref_title": {"zh": "空柜台参考画面", "en": "Reference picture: the counter empty"},
    "ref_help": {"zh": "在柜台前没有顾客时（收银员可以在场），把摄像头当前画面设为参考画面。核查时将结算时刻的画面与它比较：背对摄像头、一直站着不动的付款人也能被发现，不会拿排队者的人脸代替付款人。画面光线与参考画面差别过大时（夜间、红外）不使用。",
                 "en": "When nobody is at the counter on the customer side (the cashier may be there), take the camera's current frame as the reference. Checks compare the settlement second with it, so that a payer standing still with the back to the camera is noticed and no face in the queue stands in for theirs. Not used when the light differs too much (night, infrared)."},
    "ref_none": {"zh": "尚未设置参考画面：核查只用该时段本身的画面", "en": "No reference picture: checks use the window's own frames"},
    "ref_set": {"zh": "参考画面取自 {at}，由 {who} 设置", "en": "Reference picture of {at}, set by {who}"},
    "ref_take": {"zh": "以最新画面为空柜台参考画面", "en": "Use the latest frame as the reference"},
    "ref_clear": {"zh": "移除参考画面", "en": "Remove the reference picture"},
    "ref_taken": {"zh": "参考画面已设置，之后的核查将使用它", "en": "Reference picture set; checks from now on use it"},
    "ref_cleared": {"zh": "参考画面已移除", "en": "Reference picture removed"},
    "ref_failed": {"zh": "设置失败", "en": "Failed"},
    "ref_not_empty": {"zh": "该画面顾客一侧有人脸，不能作为空柜台参考画面；请在柜台前无顾客时再设置",
                      "en": "This frame shows a face on the customer side; take the picture when no customer is at the counter"},
    "ref_no_footage": {"zh": "该摄像头还没有可用的录像画面", "en": "This camera has no recorded frame yet"},
    "zones_of_camera": {"zh": "本摄像头的区域", "en": "This camera's zones"},
    "zone_none": {"zh": "未设置区域（按整个画面核查）", "en": "No zones (the whole frame is checked)"},
    "zone_delete": {"zh": "删除", "en": "Delete"},
    "zone_save": {"zh": "保存区域", "en": "Save zones"},
    "zone_saved": {"zh": "区域已保存，之后的核查将按新区域进行", "en": "Zones saved; checks from now on use them"},
    "zone_unsaved": {"zh": "有未保存的更改", "en": "Unsaved changes"},
    "zone_save_failed": {"zh": "保存失败", "en": "Could not save"},
    "zone_need_points": {"zh": "多边形需要 3 到 32 个顶点", "en": "A polygon needs 3 to 32 points"},
    "zone_too_many": {"zh": "每个摄像头最多 16 个区域", "en": "At most 16 zones per camera"},
    "zone_no_still": {"zh": "该摄像头还没有录像画面，可先在空白处描绘区域", "en": "No recorded frame yet; zones can still be drawn on the blank area"},
    # --- staff gallery and suggested regulars (api/web/staff_pages.py) ---
    "nav_staff": {"zh": "工作人员", "en": "Staff"},
    "staff_title": {"zh": "机构工作人员", "en": "Staff of the institution"},
    "staff_intro": {"zh": "登记收银员、药师、医保医师的照片后，录像核查会把他们识别为工作人员：不算顾客，不会被判为冒名或一人多卡。",
                    "en": "Staff enrolled here are recognised in the footage: never a customer, an impostor or one face with many cards."},
    "staff_id": {"zh": "工号", "en": "Staff id"},
    "staff_name": {"zh": "姓名", "en": "Name"},
    "staff_role": {"zh": "岗位", "en": "Role"},
    "staff_photos": {"zh": "照片", "en": "Photos"},
    "staff_added": {"zh": "登记时间", "en": "Enrolled"},
    "staff_none": {"zh": "尚未登记工作人员", "en": "No staff enrolled yet"},
    "staff_upload": {"zh": "上传工作人员照片", "en": "Upload staff photos"},
    "staff_upload_hint": {"zh": "每张照片须只有一张清晰的正脸；同一照片重复上传会被识别并跳过。",
                          "en": "Each photo must show exactly one clear face; a photo sent twice is recognised and skipped."},
    "staff_upload_do": {"zh": "上传", "en": "Upload"},
    "staff_erase": {"zh": "删除", "en": "Erase"},
    "staff_erased": {"zh": "已删除工作人员 {id} 的全部照片和记录", "en": "Staff member {id} and all their photos were erased"},
    "staff_result": {"zh": "上传结果：登记 {e} 张，重复 {d} 张，拒收 {r} 张",
                     "en": "Upload: {e} enrolled, {d} already enrolled, {r} refused"},
    "staff_role_doctor": {"zh": "医保医师", "en": "Doctor"},
    "staff_role_pharmacist": {"zh": "药师", "en": "Pharmacist"},
    "staff_role_cashier": {"zh": "收银员", "en": "Cashier"},
    "staff_role_nurse": {"zh": "护士", "en": "Nurse"},
    "staff_role_other": {"zh": "其他", "en": "Other"},
    "photo_enrolled": {"zh": "已登记", "en": "enrolled"},
    "photo_duplicate": {"zh": "已登记过（跳过）", "en": "already enrolled (skipped)"},
    "photo_refused": {"zh": "拒收", "en": "refused"},
    "refused_no_face": {"zh": "照片中没有找到人脸", "en": "no face found in the photo"},
    "refused_multiple_faces": {"zh": "照片中有多张人脸，登记照片只能有一个人", "en": "several faces: a photo must show one person"},
    "refused_low_quality": {"zh": "人脸太小、模糊或角度过大，无法登记", "en": "the face is too small, blurred or turned away"},
    "refused_empty": {"zh": "文件为空", "en": "the file is empty"},
    "refused_too_large": {"zh": "文件过大", "en": "the file is too large"},
    "refused_too_many_pixels": {"zh": "图像尺寸过大", "en": "the image is far too large"},
    "refused_busy": {"zh": "服务器正忙，请稍后重试", "en": "the server is busy; try again shortly"},
    "refused_too_much_memory": {"zh": "图像解码所需内存过大，请发送较小的 8 位图片", "en": "the image would take too much memory to decode; send a smaller 8-bit image"},
    "refused_not_an_image": {"zh": "不是图片文件", "en": "not an image"},
    "refused_unsupported_format": {"zh": "只接受 JPEG 或 PNG 图片", "en": "only JPEG or PNG images are accepted"},
    "refused_truncated": {"zh": "图片文件不完整或已损坏", "en": "the image is incomplete or corrupt"},
    "suggestions_title": {"zh": "疑似工作人员（待确认）", "en": "Likely staff (to confirm)"},
    "suggestions_intro": {"zh": "这些人脸在同一窗口的大多数核查中反复出现、且跨越多天，可能是尚未登记的工作人员。确认前，不再因其重复产生一人多卡预警。",
                          "en": "These faces appear at one counter in most checks over several days: probably staff nobody enrolled. "
                                "Until decided, they raise no repeated one-face-many-cards flags."},
    "suggestions_none": {"zh": "暂无待确认的人脸", "en": "No faces to confirm"},
    "suggestion_seen": {"zh": "{first} 至 {last}，{days} 天内 {checks}/{total} 次核查中出现",
                        "en": "{first} to {last}: in {checks} of {total} checks, on {days} days"},
    "suggestion_confirm": {"zh": "确认为工作人员", "en": "Confirm as staff"},
    "suggestion_dismiss": {"zh": "不是工作人员", "en": "Not staff"},
    "suggestion_confirmed": {"zh": "已确认为工作人员 {id}", "en": "Confirmed as staff member {id}"},
    "suggestion_dismissed": {"zh": "已标记为非工作人员", "en": "Marked as not staff"},
    "no_orgs_to_manage": {"zh": "没有可管理的机构", "en": "No institutions to manage"},
    # --- the audit trail page (api/web/audit_pages.py); audit_act_<action>: an action as words ---
    "role_auditor": {"zh": "审计人员", "en": "Auditor"},
    "nav_audit": {"zh": "审计日志", "en": "Audit trail"},
    "audit_title": {"zh": "审计日志", "en": "Audit trail"},
    "audit_intro": {"zh": "谁在何时查看或处理了哪些数据。查看本页本身也会记入审计日志。",
                    "en": "Who saw or did what, and when. Reading this page is itself recorded here."},
    "audit_actor": {"zh": "操作人", "en": "Actor"},
    "audit_action": {"zh": "操作", "en": "Action"},
    "audit_outcome": {"zh": "结果", "en": "Outcome"},
    "audit_at": {"zh": "时间", "en": "Time"},
    "audit_subject": {"zh": "对象", "en": "Subject"},
    "audit_flag": {"zh": "预警编号", "en": "Flag id"},
    "audit_camera": {"zh": "摄像头编号", "en": "Camera id"},
    "audit_org": {"zh": "机构编号", "en": "Institution id"},
    "audit_detail": {"zh": "详情", "en": "Detail"},
    "audit_csv": {"zh": "导出 CSV", "en": "Download CSV"},
    "audit_none": {"zh": "没有符合条件的审计记录", "en": "No audit events match"},
    "audit_total": {"zh": "共 {total} 条，第 {a}–{b} 条", "en": "{total} events, {a}–{b} shown"},
    "audit_prev": {"zh": "上一页", "en": "Previous"},
    "audit_next": {"zh": "下一页", "en": "Next"},
    "audit_csv_limit": {"zh": "每次导出最多 {n} 条", "en": "At most {n} rows per download"},
    "audit_outcome_ok": {"zh": "成功", "en": "ok"},
    "audit_outcome_refused": {"zh": "被拒绝", "en": "refused"},
    "audit_act_refused": {"zh": "被拒绝的请求", "en": "Refused request"},
    "audit_act_login": {"zh": "登录", "en": "Log in"},
    "audit_act_logout": {"zh": "退出登录", "en": "Log out"},
    "audit_act_flags.list": {"zh": "查看预警列表", "en": "Flag list viewed"},
    "audit_act_flag.view": {"zh": "查看预警", "en": "Flag viewed"},
    "audit_act_inquiry.view": {"zh": "查看质询", "en": "Inquiry viewed"},
    "audit_act_flag.created": {"zh": "生成预警", "en": "Flag raised"},
    "audit_act_flag.evidence_added": {"zh": "补充预警证据", "en": "Flag evidence added"},
    "audit_act_flag.inquiry_sent": {"zh": "发起质询", "en": "Inquiry sent"},
    "audit_act_flag.inquiry_answered": {"zh": "机构答复质询", "en": "Inquiry answered"},
    "audit_act_flag.confirmed": {"zh": "确认违规", "en": "Flag confirmed"},
    "audit_act_flag.dismissed": {"zh": "排除预警", "en": "Flag dismissed"},
    "audit_act_evidence.face.view": {"zh": "查看录像人脸", "en": "Face crop viewed"},
    "audit_act_evidence.capture.view": {"zh": "查看刷脸抓拍", "en": "Face-pay capture viewed"},
    "audit_act_evidence.photo.view": {"zh": "查看参保人登记照片", "en": "Enrolled photo viewed"},
    "audit_act_clip.view": {"zh": "回放录像", "en": "Footage played"},
    "audit_act_hls.view": {"zh": "回放录像（HLS）", "en": "Footage played (HLS)"},
    "audit_act_hls.segment": {"zh": "读取录像片段", "en": "Footage segment read"},
    "audit_act_camera.reference": {"zh": "设置空柜台参考画面", "en": "Reference picture set"},
    "audit_act_camera.reference.clear": {"zh": "移除空柜台参考画面", "en": "Reference picture removed"},
    "audit_act_camera.still.view": {"zh": "查看摄像头画面", "en": "Camera frame viewed"},
    "audit_act_camera.add": {"zh": "添加摄像头", "en": "Camera added"},
    "audit_act_camera.remove": {"zh": "移除摄像头", "en": "Camera removed"},
    "audit_act_camera.update": {"zh": "修改摄像头", "en": "Camera changed"},
    "audit_act_camera.zones": {"zh": "修改摄像头区域", "en": "Camera zones changed"},
    "audit_act_camera.credentials.seal": {"zh": "加密摄像头密码", "en": "Camera passwords sealed"},
    "audit_act_export.create": {"zh": "生成证据包", "en": "Evidence package made"},
    "audit_act_export.download": {"zh": "下载证据包", "en": "Evidence package downloaded"},
    "audit_act_hold.place": {"zh": "设置证据保全", "en": "Evidence hold placed"},
    "audit_act_hold.release": {"zh": "解除证据保全", "en": "Evidence hold released"},
    "audit_act_verify": {"zh": "刷脸核验", "en": "Face check"},
    "audit_act_verification.read": {"zh": "查看刷脸核验记录", "en": "Face check record read"},
    "audit_act_enroll": {"zh": "登记参保人照片", "en": "Insured photos enrolled"},
    "audit_act_erase": {"zh": "删除参保人照片", "en": "Insured photos erased"},
    "audit_act_template.capture": {"zh": "刷脸抓拍留作比对照片", "en": "Face-pay capture kept as a template"},
    "audit_act_settlement.view": {"zh": "查看结算记录", "en": "Settlement viewed"},
    "audit_act_settlements.import": {"zh": "导入结算记录", "en": "Settlements imported"},
    "audit_act_staff.enroll": {"zh": "登记工作人员照片", "en": "Staff photos enrolled"},
    "audit_act_staff.list": {"zh": "查看工作人员列表", "en": "Staff list viewed"},
    "audit_act_staff.view": {"zh": "查看工作人员", "en": "Staff member viewed"},
    "audit_act_staff.photo.view": {"zh": "查看工作人员照片", "en": "Staff photo viewed"},
    "audit_act_staff.erase": {"zh": "删除工作人员", "en": "Staff member erased"},
    "audit_act_staff.suggestions.list": {"zh": "查看疑似工作人员", "en": "Likely staff listed"},
    "audit_act_staff.suggestion.confirm": {"zh": "确认为工作人员", "en": "Confirmed as staff"},
    "audit_act_staff.suggestion.dismiss": {"zh": "确认不是工作人员", "en": "Marked not staff"},
    "audit_act_retention.run": {"zh": "执行保留期清理", "en": "Retention run"},
    "audit_act_user.add": {"zh": "添加用户", "en": "User added"},
    "audit_act_user.disable": {"zh": "停用用户", "en": "User disabled"},
    "audit_act_user.enable": {"zh": "启用用户", "en": "User enabled"},
    "audit_act_terminal.add": {"zh": "添加终端", "en": "Terminal added"},
    "audit_act_terminal.rotate": {"zh": "更换终端密钥", "en": "Terminal key rotated"},
    "audit_act_terminal.revoke": {"zh": "吊销终端", "en": "Terminal revoked"},
    "audit_act_terminal.attestation": {"zh": "设置终端设备签名要求", "en": "Terminal attestation rule set"},
    "audit_act_org.attestation": {"zh": "设置机构设备签名要求", "en": "Institution attestation rule set"},
    "audit_act_device_key.add": {"zh": "登记终端设备密钥", "en": "Device key registered"},
    "audit_act_device_key.revoke": {"zh": "吊销终端设备密钥", "en": "Device key revoked"},
    "audit_act_key.add": {"zh": "创建密钥", "en": "Key created"},
    "audit_act_key.revoke": {"zh": "吊销密钥", "en": "Key revoked"},
    "audit_act_audit.export": {"zh": "导出审计日志", "en": "Audit trail exported"},
}

STATUS = {"open": ("待处理", "Open"), "inquiry": ("质询中", "Inquiry"), "confirmed": ("已确认", "Confirmed"),
          "dismissed": ("已排除", "Dismissed")}
FLAG_TYPES = {
    "ghost_visit": ("无就诊记录结算", "Ghost visit"),
    "impersonation": ("冒名就医", "Impersonation"),
    "impersonation_failed_face_check": ("冒名就医且刷脸失败", "Impersonation, face check failed"),
    "one_face_many_cards": ("一人多卡（代刷套现）", "One face, many cards"),
    "face_pay_capture_mismatch": ("刷脸抓拍与现场不符", "Face-pay capture not at counter"),
    "face_pay_failed": ("刷脸核验未通过", "Face check failed"),
    "face_pay_absent": ("未刷脸结算", "No face check"),
    "face_pay_replayed": ("刷脸抓拍重放", "Replayed face-pay capture"),
    "footage_missing": ("录像缺失", "Footage missing"),
    "repeated_footage_missing": ("多次录像缺失", "Repeated footage missing"),
    "inconclusive": ("无法判定", "Inconclusive"),
    "claims_no_visit": ("无就诊记录结算", "Settlement without a visit record"),
    "claims_not_prescribed": ("处方与药品不符：处方外药品", "Drug not on the prescription"),
    "claims_substitution": ("处方与药品不符：串换药品", "Drug substituted"),
    "claims_over_quantity": ("处方与药品不符：超量开药", "Quantity beyond the prescription"),
    "claims_billed_not_dispensed": ("虚记费用：无销售出库", "Billed but never dispensed"),
    "claims_sold_beyond_stock": ("虚记费用：销售超库存", "Sold more than the stock held"),
    "claims_duplicate_charge": ("重复收费", "Duplicate charge"),
    "bed_hanging": ("挂床住院", "Bed-hanging"),
}
ACTIONS = {"created": ("生成预警", "Flag raised"), "evidence_added": ("补充证据", "Evidence added"),
           "inquiry_sent": ("发起质询", "Inquiry sent"), "inquiry_answered": ("机构答复", "Institution replied"),
           "confirmed": ("确认违规", "Confirmed"), "dismissed": ("排除", "Dismissed")}
SETTLEMENT_TYPES = {"outpatient": ("门诊", "Outpatient"), "inpatient": ("住院", "Inpatient"),
                    "pharmacy": ("药店购药", "Pharmacy")}
GAP_REASONS = {"camera_offline": ("摄像头离线", "camera offline"), "camera_stalled": ("画面停滞", "stalled"),
               "spool_full": ("缓存已满", "spool full"), "not_recorded": ("未录制", "not recorded"),
               "recorder_failover": ("录像机故障切换", "recorder failover"),
               "recorder_handover": ("录像机交接", "recorder handover"),
               "recorder_restart": ("录像机重启", "recorder restart")}
DECISIONS = {"verified": ("通过", "verified"), "match": ("通过", "match"), "mismatch": ("不匹配", "mismatch"),
             "low_quality": ("质量不足", "low quality"), "no_face": ("未检出人脸", "no face"),
             "multiple_faces": ("多张人脸", "multiple faces"), "uncertain": ("无法判断", "uncertain"),
             "liveness_failed": ("活体检测未通过", "liveness failed"),
             "liveness_unverified": ("活体未经验证", "liveness unverified")}


# Chinese wording of correlate/reasons.py's codes (English: correlate.reasons.ENGLISH, the stored text).
REASONS_ZH = {
    "no_camera": "该机构没有摄像头覆盖柜台/终端 {counter}",
    "no_footage": "该时段没有录像（摄像头离线、未录制或黑屏）",
    "seen": "录像中见到参保人本人（相似度 {best:.3f} ≥ {thr:.3f}）",
    "low_coverage": "该时段仅录制了 {coverage:.0%}，其中未见参保人本人",
    "nobody": "该时段 {frames} 帧画面中柜台前均无人（{start} 至 {end}）",
    "not_enrolled": "柜台前有人，但参保人没有当前模型的登记照片",
    "strangers": "{people} 人中有 {faces} 张可用人脸，均不是参保人本人（最高相似度 {best:.3f} < {thr:.3f}）",
    "no_usable_face": "{frames} 帧中有 {people_frames} 帧有人，但没有可用人脸（背对、模糊或过小）",
    "too_few_faces": "{frames} 帧中有 {people_frames} 帧有人，但可用人脸太少（背对、模糊或过小）",
    "nobody_but_staff": "该时段 {frames} 帧画面中顾客一侧均无人（{start} 至 {end}）；结算时在场的工作人员：{people}",
    "no_clear_payer": "结算时柜台前有多人（{count} 人），无法确定付款人",
    "payer_unusable": "付款人的人脸无法比对（模糊、背对或过小）；不以其他人的人脸代替",
    "payer_not_seen": "结算时刻前后 {seconds:.0f} 秒内未见顾客人脸：付款人的人脸无法比对；不以更早或更晚出现的人脸代替",
    "payer_not_insured": "付款人不是参保人本人（{faces} 张可用人脸，最高相似度 {best:.3f} < {thr:.3f}），"
                         "且该时段未见参保人本人",
    "face_check_failed": "结算时刷脸核验结果为 {decision}",
    "face_check_failed_score": "结算时刷脸核验结果为 {decision}（分数 {score:.3f}）",
    "capture_not_at_counter": "刷脸抓拍的人也不是柜台前的人",
    "face_pay_absent": "该机构已开通刷脸结算，但该笔结算未进行刷脸核验",
    "capture_mismatch": "刷脸抓拍的人不是柜台摄像头拍到的任何人（最高相似度 {best:.3f} < {thr:.3f}）",
    "one_face_many_cards": "{start} 至 {end}，同一张脸在该机构为 {count} 名不同参保人结算",
    "repeated_footage_missing": "{start} 至 {end}，该机构有 {count} 笔结算没有可用录像",
    "face_pay_replayed": "为结算 {settlement} 发送的 {count} 张刷脸抓拍重复了此前的抓拍（重放）",
    "claims_no_visit": "参保人 {psn_no} 于 {start} 的结算 {setl_id}：{org} 前后 {hours} 小时内没有就诊记录",
    "claims_not_prescribed": "处方 {rxno} 下收费的 {item}（数量 {cnt:g}，单价 {pric:g}）不在该处方上",
    "claims_substitution": "处方 {rxno} 开具 {prescribed}，实际收费 {item}（单价 {pric:g}，处方药品单价 {prescribed_pric:g}，"
                           "差价在 {band:.0%} 以内）",
    "claims_over_quantity": "处方 {rxno} 的 {item}：处方数量 {prescribed:g}，收费数量 {billed:g}",
    "claims_over_days": "处方 {rxno} 的 {item}：用药 {days:g} 天，超过 {max_days:g} 天",
    "claims_billed_not_dispensed": "就诊 {mdtrt_id} 收费 {item} 数量 {billed:g}，前后 {hours} 小时内向参保人 {psn_no} "
                                   "销售出库仅 {sold:g}",
    "claims_sold_beyond_stock": "{item} 于 {start} 库存降至 {balance:g}（自上次盘存以来销售 {sold:g}，可用库存 {held:g}）",
    "claims_duplicate_charge_rx": "{item} 在 {minutes} 分钟内为处方 {rxno} 收费 {n} 次",
    "claims_duplicate_charge_visit": "{item} 在 {minutes} 分钟内为就诊 {mdtrt_id} 收费 {n} 次",
    "bed_hanging": "住院 {mdtrt_id} 的 {bed} 床在连续 {checks} 次查房抽检中无人，跨 {days} 天（{first_day} 至 {last_day}）",
    "seen_limited": "录像中见到参保人本人",
    "strangers_limited": "{people} 人中有 {faces} 张可用人脸，均不是参保人本人",
    "payer_not_insured_limited": "付款人不是参保人本人（{faces} 张可用人脸），且该时段未见参保人本人",
    "capture_mismatch_limited": "刷脸抓拍的人不是柜台摄像头拍到的任何人",
    "cannot_tell": "无法判断付款人是否为参保人本人：最高相似度 {best:.3f} 处于该人脸尺寸的不确定区间"
                   "（{lower:.3f} 至 {thr:.3f}），请稽核人员判断",
    "cannot_tell_limited": "无法判断付款人是否为参保人本人，请稽核人员判断",
}


class Translator:
    def __init__(self, lang: str, tz: str):
        self.lang = lang if lang in LANGS else "zh"
        self.tz = ZoneInfo(tz)

    def __call__(self, key: str, **kw) -> str:
        entry = MESSAGES.get(key)
        text = entry[self.lang] if entry else key
        return text.format(**kw) if kw else text

    def _pick(self, table: dict, key: str | None) -> str:
        if key is None:
            return "—"
        pair = table.get(key)
        return (pair[0] if self.lang == "zh" else pair[1]) if pair else key

    def status(self, s):
        return self._pick(STATUS, s)

    def reason(self, text: str | None, holder: dict | None = None, limited: bool = False) -> str:
        """A check's or flag's reason in this language: from the parts stored beside the English text
        (``holder`` is the check's summary or the flag's evidence); the stored text when there are none.
        ``limited``: without the scores (pages of limited evidence, e.g. an institution's inquiry)."""

        r = Reason.stored((holder or {}).get("reason_parts"))
        if limited:
            text = scrub_scores(text)
            r = r.without_scores() if r is not None else None
        if r is None:
            return text or ""
        templates = ENGLISH if self.lang == "en" else REASONS_ZH
        for _, args in r.parts:  # times are stored as UTC ISO text: show them as the rest of the page does
            if self.lang == "zh" and isinstance(args.get("decision"), str):  # a face-check code: its words
                args["decision"] = self.decision(args["decision"])
            for k in ("start", "end"):
                if isinstance(args.get(k), str):
                    try:
                        args[k] = self.dt(datetime.fromisoformat(args[k].replace("Z", "+00:00")), seconds=True)
                    except ValueError:
                        pass
        try:
            return r.render({**ENGLISH, **templates})
        except (KeyError, ValueError, IndexError):  # a value the template cannot format: say it in English
            return text or str(r)

    def flag_type(self, s):
        return self._pick(FLAG_TYPES, s)

    def threshold(self, key):
        return self._pick(words_rules.THRESHOLDS, key)

    def ref_kind(self, kind):
        return self._pick(words_rules.REFERENCE_KINDS, kind)

    def action(self, s):
        return self._pick(ACTIONS, s)

    def stype(self, s):
        return self._pick(SETTLEMENT_TYPES, s)

    def gap_reason(self, s):
        return ", ".join(self._pick(GAP_REASONS, r) for r in (s or "not_recorded").split(","))

    def decision(self, s):
        return self._pick(DECISIONS, s)

    def role(self, r):
        return self(f"role_{r}") if f"role_{r}" in MESSAGES else (r or "—")

    def level(self, n):
        return self("level_n", n=n)

    # --- dates and amounts ---------------------------------------------------------------------
    def local(self, t: datetime | None) -> datetime | None:
        return t.astimezone(self.tz) if t else None

    def dt(self, t: datetime | None, seconds: bool = False) -> str:
        if t is None:
            return "—"
        t = self.local(t)
        if self.lang == "zh":
            return f"{t.year}年{t.month}月{t.day}日 {t:%H:%M}" + (f":{t:%S}" if seconds else "")
        return f"{t:%Y-%m-%d %H:%M}" + (f":{t:%S}" if seconds else "")

    def date(self, t: datetime | None) -> str:
        if t is None:
            return "—"
        t = self.local(t)
        return f"{t.year}年{t.month}月{t.day}日" if self.lang == "zh" else f"{t:%Y-%m-%d}"

    def time(self, t: datetime | None) -> str:
        return f"{self.local(t):%H:%M:%S}" if t else "—"

    def amount(self, value) -> str:
        try:
            d = Decimal(str(value))
        except (InvalidOperation, TypeError):
            return str(value)
        return f"¥{d:,.2f}"

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return "—"
        s = int(seconds)
        d, rem = divmod(s, 86400)
        h, rem = divmod(rem, 3600)
        m = rem // 60
        if self.lang == "zh":
            if d:
                return f"{d}天{h}小时"
            if h:
                return f"{h}小时{m}分"
            return f"{m}分钟" if m else f"{s}秒"
        if d:
            return f"{d} d {h} h"
        if h:
            return f"{h} h {m} min"
        return f"{m} min" if m else f"{s} s"


# Every page area keeps its words in a table of its own; they are registered here, in one place. A key
# defined by two tables would silently take one of its meanings, so that is refused at import.
AREAS: dict[str, dict[str, dict[str, str]]] = {
    "cases": i18n_cases.MESSAGES,  # api/web/i18n_cases.py
    "ward": i18n_ward.MESSAGES,  # api/web/i18n_ward.py
    "operations": OPS_WORDS,  # api/web/words_ops.py
    "watch": WATCH_WORDS,  # api/web/words_watch.py
    "rules": words_rules.WORDS,  # api/web/words_rules.py
}


def _register(areas: dict[str, dict]) -> None:
    owner = dict.fromkeys(MESSAGES, "i18n")
    for area, words in areas.items():
        taken = sorted(k for k in words if k in owner)
        if taken:
            raise RuntimeError(f"words of {area} already defined by {owner[taken[0]]}: {', '.join(taken[:5])}")
        owner.update(dict.fromkeys(words, area))
        MESSAGES.update(words)


_register(AREAS)
STATUS.update(i18n_cases.STATUS)
ACTIONS.update(i18n_cases.ACTIONS)
