#!/usr/bin/env bash
# Fails when clang-format would change any of dtx's C++ files.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.h' '*.cc' '*.cpp' '*.hpp' | grep -v '\.pb\.')
if [ ${#files[@]} -eq 0 ]; then
  echo "check-format: no files"
  exit 0
fi
clang-format --dry-run --Werror "${files[@]}"
echo "check-format: ${#files[@]} files clean"
