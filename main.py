"""sculpt entry point: parse options into one config and dispatch to run/<experiment>.py.

Nothing else lives here. Bad input (a SculptError: ConfigError from the options, InputError and the
others from the library) and any OSError are reported as one line on stderr with exit code 2. Output
folders are checked for writability before any work starts; --dry_run prints the config and the run
folders it would use, and writes nothing.
"""

from __future__ import annotations

import importlib
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from run.parser import parse_config
    from utils.errors import SculptError

    try:
        config = parse_config(argv)
        from run.folders import check_output_folders, run_folders

        if config.dry_run:
            print(json.dumps(dict(vars(config), run_folders=run_folders(config)), indent=2, sort_keys=True))
            return 0
        check_output_folders(config)
        module = importlib.import_module(f"run.{config.experiment}")
        module.run(config)
    except SculptError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # one not caught where it happened: still one line, with the path
        where = f" {error.filename}" if error.filename else ""
        print(f"error: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished steps are saved; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


def exit_now(code: int) -> None:
    """Exit with `code` without tearing the interpreter down: finalising torch, scikit-learn and
    matplotlib takes about 0.5 s per process, which a sweep of hundreds of short commands pays each time.
    Output is flushed and the atexit handlers (a local Ray's shutdown, say) run first; every file is
    already complete (atomic writes) and every worker thread or pool already joined."""
    import atexit
    import os
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)  # someone still runs: the normal exit waits for them
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
