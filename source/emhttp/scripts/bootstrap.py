"""Start the plexcache-r backend with only its own code and vendored libraries on sys.path.

The launcher runs this file with `python3 -I -S`: no environment variables, no user or system
site-packages, so nothing else installed on the server can shadow or break a dependency.
"""

from __future__ import annotations

import os
import sys

LIB = os.environ.get("PLEXCACHE_LIB", "/usr/local/lib/plexcache-r")
MINIMUM = (3, 10)  # plexapi 4.18 needs 3.10


def main() -> int:
    if sys.version_info < MINIMUM:
        found = "%d.%d" % sys.version_info[:2]  # noqa: UP031 - must still parse on old interpreters
        sys.stderr.write(f"plexcache-r needs Python 3.10 or newer but {sys.executable} is {found}: "
                         "reinstall the plugin so it can fetch its own interpreter\n")
        return 6
    sys.path[:0] = [os.path.join(LIB, "app"), os.path.join(LIB, "vendor")]
    sys.argv[0] = "plexcache-r"
    from plexcache.cli import main as cli_main

    return int(cli_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
