# Debian packages that building librdkafka from source needs (rdkafka's cmake-build feature, linked
# with OpenSSL, zlib and libcurl: librdkafka 2.12 includes curl's headers whenever SSL is on).
# Sourced by .ci/test and .ci/demo; installs only what is missing.
APT_PACKAGES=(cmake pkg-config libssl-dev zlib1g-dev libcurl4-openssl-dev)

ensure_packages() {
  local missing=() package
  for package in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  if ((${#missing[@]})); then
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    echo "installing Debian packages: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}
