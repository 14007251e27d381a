"""sculpt entry point: parse options into one config and dispatch to run/<experiment>.py.

Nothing else lives here. Bad input (a SculptError: ConfigError from the options, InputError and the
others from the library) is reported as one line on stderr with exit code 2.
"""

from __future__ import annotations

import importlib
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from utils.config import parse_config
    from utils.errors import SculptError

    try:
        config = parse_config(argv)
        if config.dry_run:
            print(json.dumps(vars(config), indent=2, sort_keys=True))
            return 0
        module = importlib.import_module(f"run.{config.experiment}")
        module.run(config)
    except SculptError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished steps are saved; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
