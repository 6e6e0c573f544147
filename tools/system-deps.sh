#!/usr/bin/env bash
# System libraries faceguard needs beyond PyPI, installed from Debian's packages when missing:
#   libegl1, libgles2      mediapipe's native library links them (no GPU is used)
#   chromium, chromium-driver   only for the end-to-end browser test (FACEGUARD_NO_BROWSER=1 skips)
# Needs root (or sudo) on Debian; elsewhere it only says what is missing.
set -u
need=()
for lib in libEGL.so.1 libGLESv2.so.2; do
  ldconfig -p 2>/dev/null | grep -q "$lib" || need+=("$([ "$lib" = libEGL.so.1 ] && echo libegl1 || echo libgles2)")
done
if [ "${FACEGUARD_NO_BROWSER:-0}" != 1 ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
fi
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo -n"
if command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  $SUDO apt-get update -qq >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || echo "warning: could not install ${need[*]} (the browser test will skip; mediapipe needs libegl1 libgles2)" >&2
else
  echo "warning: missing ${need[*]} and no apt-get here; install them with your package manager" >&2
fi
exit 0
