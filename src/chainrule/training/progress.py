"""What a run shows while it trains: the progress bar and durations in a unit that fits."""

from __future__ import annotations

from typing import Any


def format_duration(seconds: float) -> str:
    """A duration in the unit that shows its size: "850 ms", "6.1 s", "2 min 5 s", "1 h 3 min".

    An epoch of the 8×8 digits takes a fraction of a second, where "0.0 s" said nothing;
    a Fashion-MNIST epoch takes seconds and a long run hours.

    Example:
        >>> [format_duration(s) for s in (0.0042, 0.85, 6.06, 125.2, 3790.0)]
        ['4.2 ms', '850 ms', '6.1 s', '2 min 5 s', '1 h 3 min']
    """
    if seconds < 0.00995:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 0.9995:
        return f"{seconds * 1e3:.0f} ms"
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def progress_bar(total: int, enabled: bool, desc: str) -> Any:
    """A tqdm bar of ``total`` batches, or None when disabled or tqdm is not installed.

    The bar is advanced by hand and closed after the epoch's evaluation, so its last
    state shows the test accuracy too.
    """
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the progress bar is a nicety: train without it
        return None
    return tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True)
