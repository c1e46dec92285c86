"""The page's labels in English and Chinese, chosen by ``?lang=``, then a cookie, then
``Accept-Language``.

Labels live here rather than in the templates so that the server-rendered text and the strings the
modules show later (sign-in errors, "staff only", "paused") come from one table.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")
DEFAULT_LANGUAGE: Language = "en"
LANGUAGE_COOKIE = "agora_lang"

MESSAGES: dict[Language, dict[str, str]] = {
    "en": {
        "title": "Agora operations",
        "language": "Language",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "email": "Email",
        "password": "Password",
        "signed_in_as": "Signed in",
        "sign_in_failed": "Wrong email or password.",
        "staff_only": "Staff only: this account may not see the operations page.",
        "session_expired": "Your session ended; please sign in again.",
        "connecting": "Connecting…",
        "live": "Live",
        "reconnecting": "Reconnecting…",
        "range": "Time range",
        "requests": "Requests",
        "requests_per_second": "Requests/s",
        "errors": "Errors",
        "error_rate": "Error rate (5xx)",
        "latency": "Latency",
        "routes": "Routes",
        "route": "Route",
        "count": "Count",
        "status_codes": "Status codes",
        "top_paths": "Top paths",
        "top_ips": "Top client IPs",
        "orders": "Orders",
        "orders_per_minute": "Orders/min",
        "revenue": "Revenue",
        "revenue_per_minute": "Revenue/min",
        "payments": "Payment callbacks",
        "provider": "Provider",
        "outcome": "Outcome",
        "flash_sales": "Flash sales",
        "flash_sale_remaining": "Units remaining",
        "sale": "Sale",
        "sold": "Sold",
        "remaining": "Remaining",
        "queued": "Queued",
        "queues": "Queue depths",
        "queue": "Queue",
        "depth": "Depth",
        "tail": "Live tail",
        "query": "Query",
        "apply": "Apply",
        "pause": "Pause",
        "resume": "Resume",
        "paused": "Paused",
        "dropped": "lines dropped by the rate cap",
        "fields": "Fields",
        "alerts": "Alerts",
        "firing": "Firing",
        "recent": "Recent episodes",
        "rules": "Rules",
        "state": "State",
        "value": "Value",
        "since": "since",
        "crawl": "Crawl",
        "pages_per_second": "pages/s",
        "hosts": "Hosts:",
        "host": "Host",
        "leased": "Leased",
        "fetched": "Fetched",
        "next_start": "Next start",
        "now": "now",
        "pricewatch": "Price watch",
        "undercuts": "Undercuts",
        "page": "Page",
        "our_price": "Ours",
        "their_price": "Theirs",
        "gap": "Gap",
        "price_changes": "Latest price changes",
        "price": "Price",
        "was": "Was",
        "stock": "Stock",
        "in_stock": "in stock",
        "out_of_stock": "out of stock",
        "at": "At",
        "unavailable": "Not available",
        "nothing_yet": "Nothing yet",
    },
    "zh": {
        "title": "Agora 运营看板",
        "language": "语言",
        "sign_in": "登录",
        "sign_out": "退出",
        "email": "邮箱",
        "password": "密码",
        "signed_in_as": "已登录",
        "sign_in_failed": "邮箱或密码错误。",
        "staff_only": "仅限员工：此账号无权查看运营看板。",
        "session_expired": "会话已结束，请重新登录。",
        "connecting": "连接中…",
        "live": "实时",
        "reconnecting": "重新连接中…",
        "range": "时间范围",
        "requests": "请求",
        "requests_per_second": "每秒请求数",
        "errors": "错误",
        "error_rate": "错误率（5xx）",
        "latency": "延迟",
        "routes": "路由",
        "route": "路由",
        "count": "次数",
        "status_codes": "状态码",
        "top_paths": "热门路径",
        "top_ips": "热门客户端 IP",
        "orders": "订单",
        "orders_per_minute": "每分钟订单数",
        "revenue": "收入",
        "revenue_per_minute": "每分钟收入",
        "payments": "支付回调",
        "provider": "渠道",
        "outcome": "结果",
        "flash_sales": "秒杀",
        "flash_sale_remaining": "剩余件数",
        "sale": "活动",
        "sold": "已售",
        "remaining": "剩余",
        "queued": "排队中",
        "queues": "队列深度",
        "queue": "队列",
        "depth": "深度",
        "tail": "实时日志",
        "query": "查询",
        "apply": "应用",
        "pause": "暂停",
        "resume": "继续",
        "paused": "已暂停",
        "dropped": "行因速率上限被丢弃",
        "fields": "字段",
        "alerts": "告警",
        "firing": "触发中",
        "recent": "最近事件",
        "rules": "规则",
        "state": "状态",
        "value": "数值",
        "since": "开始于",
        "crawl": "爬虫",
        "pages_per_second": "页/秒",
        "hosts": "站点：",
        "host": "站点",
        "leased": "抓取中",
        "fetched": "已抓取",
        "next_start": "下次开始",
        "now": "现在",
        "pricewatch": "比价监控",
        "undercuts": "低于我方价格",
        "page": "页面",
        "our_price": "我方",
        "their_price": "对方",
        "gap": "差价",
        "price_changes": "最新价格变动",
        "price": "价格",
        "was": "原价",
        "stock": "库存",
        "in_stock": "有货",
        "out_of_stock": "缺货",
        "at": "时间",
        "unavailable": "暂不可用",
        "nothing_yet": "暂无数据",
    },
}


def choose_language(query: str | None, cookie: str | None, accept_language: str | None) -> Language:
    """The explicit choice if any, else the first supported language the browser prefers."""
    for explicit in (query, cookie):
        if explicit in LANGUAGES:
            return explicit
    for tag, _ in _preferences(accept_language or ""):
        primary = tag.split("-", 1)[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


def _preferences(header: str) -> list[tuple[str, float]]:
    """``Accept-Language`` entries, most wanted first (RFC 9110 quality values)."""
    entries: list[tuple[str, float]] = []
    for part in header.split(","):
        tag, _, parameters = part.strip().partition(";")
        weight = 1.0
        if parameters.strip().startswith("q="):
            try:
                weight = float(parameters.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and weight > 0:
            entries.append((tag.strip().lower(), weight))
    return sorted(entries, key=lambda entry: -entry[1])
