"""Release gates: a performance specification judged on a curated set (ship / no-ship)."""
