"""The benchmark's reports: the JSON file BENCHMARKS.md reads, and the lines printed when a run ends."""

import json
from pathlib import Path


def write_report(out: Path, report: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


def nights_summary(report: dict, out: Path) -> str:
    return (
        f"{report['customers']:,} customers: night 1 {report['total_s']} s, night 2 {report['warm_total_s']} s, "
        f"baseline {report['baseline_s']} s (ratio {report['ratio']}), peak {report['peak_rss_mb']} MB, "
        f"membership mismatches {report['membership_mismatches']}; written to {out}"
    )


def destinations_summary(report: dict, names: list[str]) -> list[str]:
    how = "emulator throttling" if report["throttled"] else "emulator not throttling: our own cost"
    lines = []
    for name in names:
        row = report[name]
        lines.append(
            f"{name}: {row['held']:,} of {report['members']:,} numbers in {row['seconds']} s, "
            f"{row['requests']:,} requests; the documented limits allow {row['floor_seconds']} s at best "
            f"(ratio {row['ratio_to_floor']}, {how})"
        )
    return lines
