"""`python -m guildmeter` runs the command line."""

from __future__ import annotations

from guildmeter.cli import main

if __name__ == "__main__":
    main()
