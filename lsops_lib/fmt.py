"""Every text format of lsops, in one place, so the CLI, the reports and the charts agree.

    fmt.size(1536)            '1.5 KiB'      bytes in IEC units (powers of 1024), always
    fmt.iec_units('8192 kB')  '8192 KiB'     PostgreSQL's pg_size_pretty labels, renamed
    fmt.pct(0.0123)           '1.2 %'        a fraction 0-1 as a percent
    fmt.exact_pct(0.9995)     '99.95 %'      a threshold as a percent, never rounded
    fmt.share(0.00004)        '< 0.1 %'      a percent that never rounds a small share to 0
    fmt.rel(0.08)             '+8.0 %'       a relative change
    fmt.pp(0.0027)            '+0.27 pp'     a difference of fractions, percentage points
    fmt.ms(2500)              '2.5 s'        milliseconds, readable
    fmt.number(0.9355)        '0.936'        never scientific notation
    fmt.integer(10485760)     '10,485,760'
    fmt.instant(ts)           '2026-10-02 02:00 UTC'   instants always say UTC
    fmt.duration(3900)        '1 h 05 min'
    fmt.hours(5400)           '1.5 h'

Missing values (None, NaN, NaT) print as `DASH` everywhere; JSON output never goes
through this module (it carries the numbers themselves).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

DASH = "–"
_IEC = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def missing(value: Any) -> bool:
    """None, NaN, NaT or pandas NA (anything else, containers included, is a value)."""
    if value is None:
        return True
    if type(value) in (str, int, bool, datetime):  # never missing: answered without pandas
        return False
    if type(value) is float:
        return math.isnan(value)
    import pandas as pd  # imported by then wherever a frame is shown; a command that
    # shows none (`lsops report`, `lsops health`) never loads it

    if value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def size(value: Any) -> str:
    """Bytes in IEC units: 512 -> '512 B', 1536 -> '1.5 KiB', -2**30 -> '-1.0 GiB'."""
    if missing(value):
        return DASH
    number = float(value)
    sign = "-" if number < 0 else ""
    number = abs(number)
    for unit in _IEC:
        if number < 1024 or unit == _IEC[-1]:
            return f"{sign}{number:.0f} {unit}" if unit == "B" else f"{sign}{number:,.1f} {unit}"
        number /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


_PG_UNITS = re.compile(r"(\d) (kB|MB|GB|TB|PB)\b")
_PG_TO_IEC = {"kB": "KiB", "MB": "MiB", "GB": "GiB", "TB": "TiB", "PB": "PiB"}


def iec_units(text: str) -> str:
    """PostgreSQL's size labels (powers of 1024 written kB, MB, ...) as IEC units, in a
    text such as a setting or a recommendation: '8192 kB' -> '8192 KiB'."""
    return _PG_UNITS.sub(lambda m: f"{m.group(1)} {_PG_TO_IEC[m.group(2)]}", str(text))


def pct(value: Any, digits: int = 1) -> str:
    """A fraction 0-1 as a percent: 0.0123 -> '1.2 %'."""
    if missing(value):
        return DASH
    return f"{float(value) * 100:.{digits}f} %"


def exact_pct(value: Any) -> str:
    """A threshold (a fraction 0-1) as a percent with as many decimals as it needs, up to
    10: 0.9995 -> '99.95 %', 0.005 -> '0.5 %', 0.01 -> '1 %' (a target of 0.5 % is never
    written '0 %', nor 99.95 % '100.0 %')."""
    if missing(value):
        return DASH
    x = float(value) * 100
    digits = 0
    while digits < 10 and abs(round(x, digits) - x) > 1e-12 * max(1.0, abs(x)):
        digits += 1
    if x != 0 and round(x, digits) == 0:  # below 1e-10 %: in significant digits
        return f"{number(x, 4)} %"
    return f"{x:.{digits}f} %"


def share(value: Any, digits: int = 1) -> str:
    """A percent that never shows a small non-zero share as 0: 0.00004 -> '< 0.1 %'."""
    if missing(value):
        return DASH
    number = float(value)
    floor = 10.0 ** -(digits + 2)
    if number != 0 and abs(number) < floor:
        return f"< {floor * 100:.{digits}f} %"
    return pct(number, digits)


def rel(value: Any) -> str:
    """A relative change: 0.08 -> '+8.0 %' (infinite or missing: DASH)."""
    if missing(value) or not math.isfinite(float(value)):
        return DASH
    return f"{float(value) * 100:+.1f} %"


def pp(value: Any) -> str:
    """A difference of two fractions in percentage points: 0.0027 -> '+0.27 pp'."""
    if missing(value):
        return DASH
    return f"{float(value) * 100:+.2f} pp"


def ms(value: Any) -> str:
    """Milliseconds, readable: 0.42 -> '0.42 ms', 350 -> '350 ms', 2500 -> '2.5 s',
    90000 -> '1.5 min'; an hour or more as `duration` writes it (7,200,000 -> '2 h 00 min',
    not '120.0 min')."""
    if missing(value):
        return DASH
    number = float(value)
    if number == 0:
        return "0 ms"
    if abs(number) >= 3_600_000 and math.isfinite(number):
        return ("-" if number < 0 else "") + duration(abs(number) / 1000)
    if abs(number) >= 60_000:
        return f"{number / 60_000:,.1f} min"
    if abs(number) >= 1000:
        return f"{number / 1000:.1f} s"
    if abs(number) >= 10:
        return f"{number:.0f} ms"
    return f"{number:.2f} ms"


def number(value: Any, digits: int = 3) -> str:
    """A plain number, never in scientific notation: 10485760 -> '10,485,760',
    0.9355 -> '0.936', 1.49e-07 -> '0.000000149'."""
    if missing(value):
        return DASH
    x = float(value)
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if x.is_integer() or abs(x) >= 10**digits:
        return f"{x:,.0f}"
    decimals = min(12, max(0, digits - 1 - math.floor(math.log10(abs(x)))))
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def integer(value: Any) -> str:
    """A count with thousands separators: 10485760 -> '10,485,760'."""
    return DASH if missing(value) else f"{int(value):,}"


def counted(n: Any, noun: str, plural: str | None = None) -> str:
    """A count and its noun, in the plural unless the count is 1: 1 restart, 2 restarts,
    7,590 hits."""
    if missing(n):
        return f"{DASH} {plural or noun + 's'}"
    return f"{int(n):,} {noun if int(n) == 1 else plural or noun + 's'}"


def instant(value: Any, *, seconds: bool = False) -> str:
    """An instant in UTC, always labelled: '2026-10-02 02:00 UTC' (naive values are UTC)."""
    if missing(value):
        return DASH
    form = "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    if type(value) is datetime:  # the run index's instants: no pandas needed
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.strftime(form)
    import pandas as pd

    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime(form)


def duration(seconds: Any) -> str:
    """2400 -> '40 min'; 3900 -> '1 h 05 min'; 90000 -> '1 d 1 h'; 12 -> '12 s'."""
    if missing(seconds):
        return DASH
    s = float(seconds)
    if s < 60:
        return f"{s:.0f} s"
    minutes = int(round(s / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def hours(seconds: Any) -> str:
    """Seconds as hours with one decimal: 5400 -> '1.5 h'."""
    return DASH if missing(seconds) else f"{float(seconds) / 3600:,.1f} h"


def value(value: Any, column: str = "") -> str:
    """Any cell as a reader reads it, guided by its column's name: `*_bytes` in IEC
    units, `*_ms` and `*_s` as durations, `*ratio` / `*fraction` / `*share` / `*rate`
    and `share_*` (share_of_growth) as percents, instants in UTC, booleans as yes/no,
    counts with separators."""
    if missing(value):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if type(value).__name__ == "bool_":  # numpy.bool_
        return "yes" if bool(value) else "no"
    if isinstance(value, datetime):  # pandas' Timestamp is a datetime
        return instant(value)
    if isinstance(value, int | float) or hasattr(value, "dtype"):
        x = float(value)
        if column.endswith("bytes"):
            return size(x)
        if column.endswith(("ratio", "fraction", "share", "rate")) or column.startswith("share_"):
            return share(x)
        if column.endswith("_ms"):
            return ms(x)
        if column.endswith("_s"):
            return ms(x * 1000)
        if float(x).is_integer() and "int" in type(value).__name__.lower():
            return integer(x)
        return number(x, 4)
    return str(value)
