"""The sub-commands of `dualcheck`, one module per group; dualcheck/cli.py mounts them."""
