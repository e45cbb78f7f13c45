"""Peers the benchmarks compare against, installed from Debian's packages when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def find_or_install(package: str, *commands: str) -> str:
    """The first of ``commands`` on PATH; ``apt-get install package`` first when none is."""
    for name in commands:
        if found := shutil.which(name):
            return found
    print(f"{commands[0]} is missing: apt-get install -y {package}")
    install = ["apt-get", "install", "-y", package]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, capture_output=True, env=env, check=False).returncode:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=True)
        subprocess.run(install, capture_output=True, env=env, check=True)
    for name in commands:
        if found := shutil.which(name):
            return found
    sys.exit(f"{commands[0]} is still missing after apt-get install {package}")
