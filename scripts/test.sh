#!/usr/bin/env bash
# Set up and run the whole test suite: Python packages, Debian's chromium (as root), ruff, pytest.
# This is the README's test command, and CI's (.ci/run calls it).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q -r requirements-dev.txt -e .

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: /usr/bin/chromium is missing and this is not root: the real-browser tests will be skipped" >&2
  fi
fi

python3 -m ruff check .
# two test processes, a file per process at a time (module-scoped servers stay in one process)
python3 -m pytest -q -n 2 --dist loadfile "$@"
