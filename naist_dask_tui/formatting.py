"""Human-readable numbers for the console: bytes, percents, durations and text bars.

Pure functions over plain values; sorting always uses the raw numbers, never these strings.
"""

from __future__ import annotations

_UNITS = ("B", "K", "M", "G", "T", "P")


def fmt_bytes(n: float | int | None) -> str:
    """``1536 -> '1.5K'``; short (at most 6 characters) so that table columns stay narrow."""
    if n is None:
        return "-"
    n = float(n)
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in _UNITS:
        if n < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{sign}{int(n)}B"
            return f"{sign}{n:.1f}{unit}" if n < 100 else f"{sign}{n:.0f}{unit}"
        n /= 1024
    raise AssertionError("unreachable")


def fmt_rate(bytes_per_s: float) -> str:
    return f"{fmt_bytes(bytes_per_s)}/s"


def fmt_percent(value: float) -> str:
    return f"{value:.0f}%"


def fmt_duration(seconds: float | None) -> str:
    """``75 -> '1m15s'``, ``1500 -> '25m'``, ``4000 -> '1h06m'``; ``None -> '-'``."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 10:
        return f"{m}m{s:02d}s"
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def duration_step(seconds: float) -> int:
    """The resolution ``fmt_duration`` shows at this length: ages change text only this often."""
    return 1 if seconds < 600 else 60


_EIGHTHS = " ▏▎▍▌▋▊▉█"


def bar(fraction: float, width: int) -> str:
    """A text bar of ``width`` cells filled to ``fraction`` (clamped to 0..1), in eighths."""
    if width <= 0:
        return ""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = int(round(fraction * width * 8))
    full, part = divmod(eighths, 8)
    text = "█" * full + (_EIGHTHS[part] if part and full < width else "")
    return text.ljust(width)


def truncate(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` cells with an ellipsis; pad to exactly ``width``."""
    if width <= 0:
        return ""
    if len(text) > width:
        return text[: width - 1] + "…" if width > 1 else text[:1]
    return text.ljust(width)


def ssh_tunnel_hint(dashboard_link: str | None, user: str, login_host: str) -> str | None:
    """The ``ssh -L`` command that makes the dashboard reachable from the user's laptop."""
    if not dashboard_link:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(dashboard_link)
    port = parts.port or 8787
    return f"ssh -L {port}:localhost:{port} {user}@{login_host}"


_DIGITS = __import__("re").compile(r"(\d+)")


@__import__("functools").lru_cache(maxsize=16384)
def natural_key(text: str) -> tuple:
    """Sort ``w-2`` before ``w-10``: digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(text))
