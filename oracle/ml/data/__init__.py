"""Data sets: BreakHis (and plain class folders), patient-level splits, a synthetic H&E generator."""
