"""Where the OTEL_* environment asks for something the providers the plugin installs do not
do. Reads only ``os.environ``: the report header uses it before OpenTelemetry is imported."""

from __future__ import annotations

import os

_LIMIT_PREFIXES = {
    "traces": ("OTEL_SPAN_", "OTEL_EVENT_", "OTEL_LINK_", "OTEL_ATTRIBUTE_"),
    "logs": ("OTEL_LOGRECORD_", "OTEL_ATTRIBUTE_"),
}


def environment_notes(signal: str) -> list[str]:
    """For ``signal`` ("traces", "metrics" or "logs"): what of the environment an installed
    provider ignores (it captures everything a test records) and the limits it keeps."""
    notes = []
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        notes.append("ignoring OTEL_SDK_DISABLED=true")
    sampler = os.environ.get("OTEL_TRACES_SAMPLER", "").strip()
    if signal == "traces" and sampler and sampler.lower() != "always_on":
        notes.append(f"sampling every span, not OTEL_TRACES_SAMPLER={sampler}")
    # Limits still apply: a truncated or dropped attribute would otherwise look like a bug.
    prefixes = _LIMIT_PREFIXES.get(signal, ())
    limits = sorted(
        f"{name}={value}" for name, value in os.environ.items()
        if prefixes and name.endswith("_LIMIT") and name.startswith(prefixes)
    )
    if limits:
        notes.append(f"limits {', '.join(limits)} apply")
    return notes
