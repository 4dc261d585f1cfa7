"""Install the Debian packages some tests need (``tests/system_packages.txt``), once.

Run by tox before the test suite (``commands_pre``). Packages already installed are left alone;
the rest are installed with apt-get when running as root. Without root (or without apt-get) it
says what is missing and how to install it, and exits non-zero: a test that needs a package must
never be skipped silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

LIST = Path(__file__).with_name("system_packages.txt")


def wanted() -> list[str]:
    """Package names from the list (one per line; ``#`` starts a comment)."""
    names = []
    for line in LIST.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def installed(package: str) -> bool:
    probe = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0 and "install ok installed" in probe.stdout


def main() -> int:
    if shutil.which("dpkg-query") is None:
        print("system_deps: not a Debian system; install by hand:", ", ".join(wanted()))
        return 1
    missing = [p for p in wanted() if not installed(p)]
    if not missing:
        return 0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            f"system_deps: missing {', '.join(missing)};",
            f"run: apt-get install -y {' '.join(missing)}",
        )
        return 1
    print(f"system_deps: installing {', '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
