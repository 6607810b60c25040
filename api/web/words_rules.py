"""Words of the rule library pages (规则库), merged into api/web/i18n.py: the pages' words, each
threshold's label, each rule's description in Chinese, the kinds of reference data, and the reasons a
change or an import is refused. Chinese first, English second. tests/web/test_rules_words.py checks that
every declared rule and threshold has its words here."""
from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "nav_rules": {"zh": "规则库", "en": "Rules"},
    "rules_title": {"zh": "规则库", "en": "Rule library"},
    "rules_help": {"zh": "每条规则的级别、开关、阈值和生效期均可由管理员修改；每次修改须填写说明，生成新版本并保留历史。"
                         "预警记录触发它的规则版本。",
                   "en": "Admins change a rule's level, switch, thresholds and effective dates; every change needs a "
                         "note, makes a new version and is kept in the history. A flag records the version that "
                         "raised it."},
    "rule": {"zh": "规则", "en": "Rule"},
    "rule_class": {"zh": "类别", "en": "Class"},
    "rule_switch": {"zh": "开关", "en": "Switch"},
    "rule_on": {"zh": "启用", "en": "On"},
    "rule_off": {"zh": "停用", "en": "Off"},
    "rule_thresholds": {"zh": "阈值", "en": "Thresholds"},
    "rule_version": {"zh": "版本", "en": "Version"},
    "rule_version_n": {"zh": "第{n}版", "en": "v{n}"},
    "rule_version_0": {"zh": "规则库之前", "en": "Before the library"},
    "rule_effective": {"zh": "生效期", "en": "Effective"},
    "rule_effective_from": {"zh": "生效日期", "en": "Effective from"},
    "rule_effective_to": {"zh": "失效日期", "en": "Effective until"},
    "rule_effective_always": {"zh": "长期有效", "en": "Always"},
    "rule_effective_range": {"zh": "{a} 至 {b}", "en": "{a} to {b}"},
    "rule_open_start": {"zh": "不限", "en": "open"},
    "rule_precision": {"zh": "违规确认率", "en": "Precision"},
    "rule_precision_help": {"zh": "违规确认率 = 已确认 ÷ 已决定（已确认 + 已排除）；尚未决定的预警不计。",
                            "en": "Precision = confirmed ÷ decided (confirmed + dismissed); undecided flags do not "
                                  "count."},
    "rule_precision_by_version": {"zh": "各规则各版本违规确认率", "en": "Precision per rule and version"},
    "rule_confirmed": {"zh": "已确认", "en": "Confirmed"},
    "rule_dismissed": {"zh": "已排除", "en": "Dismissed"},
    "rule_decided": {"zh": "已决定", "en": "Decided"},
    "rule_flags": {"zh": "预警数", "en": "Flags"},
    "rule_no_decisions": {"zh": "尚无已决定的预警", "en": "No decided flags yet"},
    "rule_description": {"zh": "说明", "en": "Description"},
    "rule_edit": {"zh": "修改规则", "en": "Change the rule"},
    "rule_note": {"zh": "变更说明", "en": "Note"},
    "rule_note_hint": {"zh": "为何修改：调整批次、专家评审意见等（必填）", "en": "Why: the batch, the expert review (required)"},
    "rule_save": {"zh": "保存为新版本", "en": "Save as a new version"},
    "rule_saved": {"zh": "已保存为第{n}版", "en": "Saved as version {n}"},
    "rule_history": {"zh": "修改历史", "en": "History"},
    "rule_who": {"zh": "修改人", "en": "By"},
    "rule_when": {"zh": "时间", "en": "When"},
    "rule_changes": {"zh": "改动", "en": "Changes"},
    "rule_first_version": {"zh": "初始版本", "en": "First version"},
    "rule_none": {"zh": "无", "en": "none"},
    "rule_yes": {"zh": "是", "en": "yes"},
    "rule_no": {"zh": "否", "en": "no"},
    "rule_reference": {"zh": "参考数据（知识库）", "en": "Reference data"},
    "rule_reference_help": {"zh": "从CSV文件导入（UTF-8编码，首行为列名）。同一药品或分组再次导入时更新其取值；"
                                  "有改动的导入生成规则的新版本。",
                            "en": "Imported from CSV (UTF-8, a header row). Importing a drug or group again updates "
                                  "it; an import that changes anything makes the rule's next version."},
    "rule_reference_template": {"zh": "下载模板", "en": "Template"},
    "rule_reference_kind": {"zh": "数据类型", "en": "Kind"},
    "rule_reference_file": {"zh": "CSV文件", "en": "CSV file"},
    "rule_reference_columns": {"zh": "列", "en": "Columns"},
    "rule_reference_upload": {"zh": "导入", "en": "Import"},
    "rule_reference_rows": {"zh": "{n}条", "en": "{n} rows"},
    "rule_reference_none": {"zh": "尚未导入参考数据", "en": "No reference data yet"},
    "rule_reference_result": {"zh": "共{rows}行：新增{imported}，更新{changed}，未变{unchanged}，拒绝{refused}",
                              "en": "{rows} rows: {imported} added, {changed} updated, {unchanged} unchanged, "
                                    "{refused} refused"},
    "rule_reference_version": {"zh": "规则已更新为第{n}版", "en": "The rule is now version {n}"},
    "rule_reference_line": {"zh": "第{line}行", "en": "Line {line}"},
    "rule_drug": {"zh": "药品编码", "en": "Drug code"},
    "rule_group": {"zh": "分组", "en": "Group"},
    "rule_value": {"zh": "取值", "en": "Value"},
    "rule_drug_name": {"zh": "药品名称", "en": "Drug name"},
    "rule_bad_number": {"zh": "「{label}」须为不小于0的数", "en": "{label} must be a number ≥ 0"},
    "rule_bad_date": {"zh": "「{label}」不是有效日期", "en": "{label} is not a valid date"},
    "rule_raised_by": {"zh": "触发规则版本：", "en": "Raised by rule version "},
    "rule_more_rows": {"zh": "仅显示前{n}条", "en": "Showing the first {n}"},
}

# threshold key -> (Chinese, English)
THRESHOLDS: dict[str, tuple[str, str]] = {
    "raised_level_face_check_failed": ("刷脸核验也失败时的级别", "Level when the face check failed too"),
    "min_insured": ("最少参保人数", "Fewest insured people"),
    "days": ("统计天数", "Days"),
    "count": ("最少次数", "Fewest times"),
    "visit_window_hours": ("就诊记录时间范围（小时）", "Visit window (hours)"),
    "raise_level_if": ("现场核验为以下结论时升级", "Raise the level when the counter check found"),
    "raised_level": ("升级后的级别", "Raised level"),
    "footage_before_s": ("调取录像：此前秒数", "Footage before (s)"),
    "footage_after_s": ("调取录像：此后秒数", "Footage after (s)"),
    "drug_code_prefixes": ("药品编码前缀", "Drug code prefixes"),
    "price_band": ("同价位区间（相对）", "Price band (relative)"),
    "quantity_tolerance": ("数量容差（相对）", "Quantity tolerance (relative)"),
    "max_days_supply": ("最长用药天数", "Most days of supply"),
    "sale_window_hours": ("销售出库时间范围（小时）", "Sale window (hours)"),
    "stock_tolerance": ("库存容差", "Stock tolerance"),
    "inbound_change_types": ("计入入库的库存变更类型", "Stock change types counted inbound"),
    "outbound_change_types": ("计入出库的库存变更类型", "Stock change types counted outbound"),
    "duplicate_window_minutes": ("重复收费时间范围（分钟）", "Duplicate window (minutes)"),
    "consulting_raise_if": ("诊室录像为以下结论时升级", "Raise the level when the consulting room showed"),
    "consulting_sample_interval_s": ("诊室录像采样间隔（秒）", "Consulting-room sampling interval (s)"),
    "max_admissions": ("每月最多住院次数", "Most admissions in a month"),
    "max_days": ("全年最多住院天数", "Most inpatient days in a year"),
    "max_amount": ("自负费用上限（元）", "Out-of-pocket limit (CNY)"),
    "categories": ("适用人群", "Population categories"),
    "check_times": ("每日抽检时间", "Daily check times"),
    "min_absent_checks": ("连续不在床次数", "Consecutive absent checks"),
    "min_days": ("跨越最少天数", "Spanning at least (days)"),
    "sample_seconds": ("每次抽检录像秒数", "Seconds of footage per check"),
    "occupied_share": ("床位区域变化占比（判为有人）", "Share of the bed region changed (occupied)"),
    "dark_limit": ("过暗亮度下限", "Darkness limit (brightness)"),
}

# rule id -> description in Chinese (the English one is the rule's own, correlate/*_rules.py)
DESCRIPTIONS_ZH: dict[str, str] = {
    "ghost_visit": "结算时段内收费窗口的顾客一侧无人；在场工作人员不算顾客。",
    "impersonation": "收费窗口有可用的付款人面部图像，但均非参保人本人；结算时刷脸核验也未通过时升至更高级别。",
    "face_pay_capture_mismatch": "刷脸支付抓拍的人不在收费窗口摄像头的画面中。",
    "face_pay_failed": "该笔结算的刷脸核验未通过（不匹配、质量差、无人脸、多张人脸、活体检测未通过或未经认证）。",
    "face_pay_absent": "机构已启用刷脸支付，但该笔结算没有刷脸核验。",
    "face_pay_replayed": "终端为该笔结算发送的抓拍与此前的抓拍重复（翻拍、重复发送）。",
    "one_face_many_cards": "同一张脸在统计天数内于同一机构为不少于最少参保人数的不同参保人结算。",
    "footage_missing": "该笔结算时段内收费窗口没有（或缺少）录像。",
    "repeated_footage_missing": "同一机构在统计天数内录像缺失达到最少次数。",
    "inconclusive": "收费窗口有人，但没有可用的付款人面部图像，需稽核人员查看。",
    "claims_no_visit": "门诊结算（2207）在结算前后的就诊记录时间范围内，该机构没有此人的就诊记录（2201/2203）。"
                       "若该笔结算的现场核验结论为所列情形，则升级。",
    "claims_not_prescribed": "按处方号收费（2204/2301）的药品不在该处方（7101）上，且处方上没有同价位而未收费的药品"
                             "（那是串换）。",
    "claims_substitution": "以另一药品代替处方药收费：药品编码不同，单价在处方药的同价位区间内，且处方药未收费。"
                           "参考数据中同一替代分组的药品互为合理替代，不算串换；价位区间可按药品或分组单独设定。",
    "claims_over_quantity": "同一处方某药品扣除退费后的收费数量超过处方数量（超出数量容差），或收费、处方的用药天数超过"
                            "最长用药天数；参考数据可为单个药品设定其最长用药天数。",
    "claims_billed_not_dispensed": "报送销售数据（3505）的药店为某人收费的药品数量，在销售出库时间范围内没有对应的"
                                   "销售出库（扣除销售退货）。",
    "claims_sold_beyond_stock": "某药品的滚动库存（盘点3501确定，采购3503、采购退货3504、销售3505、销售退货3506及"
                                "库存变更3502增减）低于负的库存容差：药店卖出了从未有过的库存。没有盘点时期初库存未知，"
                                "不适用本规则。",
    "bed_hanging": "住院患者的床位在病区摄像头的每日抽检中连续不在床达到规定次数、跨越规定天数，且附近未见其本人面部。",
    "watch_admissions_month": "特困供养、低保人员在一个自然月内入院（2401）次数超过每月最多住院次数（按入院时间计）。",
    "watch_inpatient_days_year": "特困供养、低保人员自当年1月1日至统计月末的住院天数（入院2401至出院2402，入院当天计、"
                                 "出院当天不计，当天出院计1天，未出院的计至月末，重叠的住院日只计一次）超过全年最多住院天数。",
    "watch_oop_person": "脱贫人口、监测对象自当年1月1日至统计月末的个人负担（结算2207/2304的个人负担总金额）超过自负费用上限。",
    "watch_oop_household": "有脱贫人口或监测对象的家庭，家庭成员自当年1月1日至统计月末的个人负担合计超过自负费用上限。",
    "watch_oop_per_capita": "同上，家庭成员个人负担合计除以在册家庭人数，人均超过自负费用上限。",
    "watch_oop_resident": "任一参保人自当年1月1日至统计月末的个人负担超过自负费用上限（上年度全省居民人均可支配收入）。",
    "claims_duplicate_charge": "同一处方（无处方时同一就诊）在重复收费时间范围内对同一项目收费两次以上，且均未退费。",
}

# kind of reference data -> (Chinese, English)
REFERENCE_KINDS: dict[str, tuple[str, str]] = {
    "days_supply": ("药品最长用药天数", "Days of supply per drug"),
    "substitution_group": ("药品替代分组", "Drug substitution groups"),
    "price_band": ("价位区间（按药品或分组）", "Price bands (per drug or group)"),
}

# the code of a refused change or import -> (Chinese, English); {detail} is the English reason
REFUSALS: dict[str, tuple[str, str]] = {
    "note_required": ("请填写变更说明（为何修改，如调整批次、专家评审意见）", "A note saying why is required"),
    "note_too_long": ("变更说明过长（最多2000字）", "The note is too long (at most 2000 characters)"),
    "no_change": ("没有改动：各项取值与现行版本相同", "Nothing changed: the values are the ones in force"),
    "bad_level": ("级别须为1至5", "The level must be 1-5"),
    "bad_threshold": ("阈值取值不合法", "A threshold's value is not valid"),
    "unknown_threshold": ("该规则没有此阈值", "The rule has no such threshold"),
    "bad_dates": ("失效日期须晚于生效日期", "The end date must be after the start date"),
    "reference_kind": ("该规则没有这类参考数据", "The rule has no reference data of this kind"),
    "not_utf8": ("文件不是UTF-8编码，请另存为UTF-8后重新导入；未导入任何数据",
                 "The file is not UTF-8: save it as UTF-8 and import it again; nothing was imported"),
    "bad_header": ("表头不符：请按所列的列名填写首行；未导入任何数据",
                   "The header row does not match the columns listed; nothing was imported"),
    "empty_file": ("文件为空：首行须为列名", "The file is empty: a header row is needed"),
    "too_many_rows": ("行数过多，请拆分文件", "Too many rows: split the file"),
    "no_file": ("请选择要导入的CSV文件", "Choose a CSV file to import"),
    "rule_not_found": ("没有这条规则", "No such rule"),
}

# the reasons of a refused row of a reference file (correlate/rule_reference.py RowError.code)
ROW_REASONS: dict[str, tuple[str, str]] = {
    "csv": ("不是有效的CSV行", "not a valid CSV line"),
    "fields": ("列数与表头不符", "not as many fields as the header"),
    "empty": ("缺少{column}", "{column} is empty"),
    "too_long": ("{column}过长", "{column} is too long"),
    "max_days": ("最长用药天数须为1至{max}的整数", "max_days must be a whole number from 1 to {max}"),
    "target": ("价位区间须指定药品编码或分组之一", "a price band is for one drug or one group"),
    "band": ("价位区间须为0至1之间的小数（0.1即±10%）", "price_band must be a fraction from 0 to 1"),
    "duplicate": ("与第{line}行重复", "the same as line {line}"),
}
COLUMNS: dict[str, tuple[str, str]] = {"med_list_codg": ("药品编码", "the drug code"),
                                       "group": ("分组", "the group")}
