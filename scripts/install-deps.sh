#!/usr/bin/env bash
# Installs the Debian packages lrsched builds and tests with; installs only what is missing,
# so it is cheap to run before every build. Needs root (or sudo) only when something is missing.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libgtest-dev libgmock-dev libsqlite3-dev libbenchmark-dev nlohmann-json3-dev libcpp-httplib-dev
  python3 python3-grpcio python3-protobuf python3-pytest
  python3-torch              # tests/python/test_python_ddp.py: a real 4-rank DDP job (gloo)
  etcd-server etcd-client     # --store=etcd: its tests start real etcd; scripts/ha-demo.sh
  clang libclang-rt-14-dev   # scripts/fuzz.sh: libFuzzer (-fsanitize=fuzzer) comes with clang's runtime
  clang-format-14            # scripts/check-tree.sh: the tree is checked for format
  python3-venv python3-pip python3-setuptools python3-wheel  # the pip-installed Python package's tests
  chromium chromium-driver python3-selenium  # tests/python/test_dashboard.py: the dashboard in headless Chromium
)
# Extra packages for optional parts (e.g. LRSCHED_EXTRA_PKGS="python3-torch").
if [[ -n "${LRSCHED_EXTRA_PKGS:-}" ]]; then read -r -a extra <<<"$LRSCHED_EXTRA_PKGS"; pkgs+=("${extra[@]}"); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
