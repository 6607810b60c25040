"""The shared kernel: settings, logging and metrics primitives. Imports no stage of dualcheck."""
