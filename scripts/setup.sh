#!/usr/bin/env bash
# Installs every Debian package dtx needs to build, test and run its demos.
# Idempotent: packages already present are left alone and apt-get update runs at
# most once per invocation. Run as root (or with sudo available).
#
#   scripts/setup.sh           # gcc tool chain and libraries
#   scripts/setup.sh --clang   # also clang, for CI's -Wthread-safety build
#   scripts/setup.sh --fuzz    # also clang and libFuzzer, for scripts/fuzz.sh
set -euo pipefail

# Build tool chain and the libraries dtx links against.
PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache clang-format
  libsqlite3-dev sqlite3
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libasio-dev libspdlog-dev nlohmann-json3-dev
  libboost-dev  # Boost.Beast (header-only): dtx::http
  libssl-dev    # TLS (OpenSSL) of dtx::http: https:// branch calls, listeners
  openssl       # tests make their own certificates (tests/testing/test_certs.h)
  libssl-dev    # OpenSSL: TLS in dtx::http and dtx::grpc's certificate checks
  libgtest-dev libgmock-dev
  etcd-server etcd-client
  postgresql libpq-dev  # dtx::postgres (libpq); scripts/start-postgres.sh for its tests
  libbenchmark-dev
  libyaml-cpp-dev libcli11-dev
  python3-grpcio python3-protobuf  # tests/server/dtm_protocol_test.py
  python3-prometheus-client        # tests/lib/metrics_format_test.py
  chromium chromium-driver python3-selenium  # tests/server/console_test.py
  python3-venv  # tests/compat/run_compat_python.sh: dtm's Python SDK from PyPI in a venv
)

for arg in "$@"; do
  case "$arg" in
    --clang) PACKAGES+=(clang) ;;
    # -fsanitize=fuzzer,address,undefined links compiler-rt's runtimes
    # (libclang_rt.fuzzer, .asan, .ubsan), which Debian ships apart from clang
    # in libclang-rt-14-dev; libfuzzer-14-dev adds libFuzzer's own archive and
    # headers (FuzzedDataProvider.h), matching clang 14.
    --fuzz) PACKAGES+=(clang libclang-rt-14-dev libfuzzer-14-dev) ;;
    *)
      echo "setup: unknown argument: $arg (known: --clang, --fuzz)" >&2
      exit 2
      ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
