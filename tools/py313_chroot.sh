#!/usr/bin/env bash
# The course on a newer Python, for real: Debian 13 (trixie) and its python3.13, in a chroot
# made with debootstrap under build/. Installs camutils there from this working tree
# (`pip install -e ".[cpu,lab,test]"` into a venv), then runs the unit tests and notebooks 01-03
# with the network switched off. Prints the time and size of each step; exits non-zero when
# a test fails. Run as root: `make test-py313`. Logs: build/py313-chroot.*.log.
#
# Idempotent: the chroot and its venv are reused (the apt and pip steps then only check and
# reinstall camutils); PY313_FRESH_VENV=1 rebuilds the venv, and `rm -rf build/py313-chroot`
# the whole chroot. Nothing is ever mounted where the host can see it (see below).
#   PY313_CHROOT   where the chroot lives (default: build/py313-chroot)
#   DEBIAN_MIRROR  the Debian mirror (default: http://deb.debian.org/debian)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=${PY313_CHROOT:-$repo/build/py313-chroot}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
venv=/opt/venv   # inside the chroot; /course/.venv points to it, so `make lab` finds it
die() { echo "py313_chroot: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, mount and chroot need it): sudo make test-py313"
if ! command -v debootstrap >/dev/null; then
    echo "== installing debootstrap on the host"
    { apt-get install -y -q debootstrap || { apt-get update -q && apt-get install -y -q debootstrap; }; } \
        >/dev/null || die "debootstrap is missing and apt-get could not install it; install it and rerun"
fi

# Run the rest in a private mount namespace: the mounts of /proc, /sys and /dev below are
# invisible to the host and disappear with this process even if it is killed (so a later
# `rm -rf build` can never reach the host's /dev). The trap unmounts them anyway.
if [ -z "${PY313_PRIVATE_NS:-}" ]; then
    PY313_PRIVATE_NS=1 exec unshare --mount --propagation private -- "$BASH" "${BASH_SOURCE[0]}" "$@"
fi
mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock -n 9 || die "another run is using $root"

summary=()
step_start=0
begin() { echo; echo "== $1"; step_start=$SECONDS; }
took() { summary+=("$(printf '%-22s %5d s   %s' "$1" $((SECONDS - step_start)) "${2:-}")"); echo "== $1: $((SECONDS - step_start)) s ${2:-}"; }
size() { du -sxh "$@" 2>/dev/null | tail -1 | cut -f1; }
unmount_all() {  # deepest first; everything this script mounted lies under $root
    awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r \
        | while read -r m; do umount -l "$m" || true; done
}
trap unmount_all EXIT
trap 'exit 130' INT TERM
unmount_all   # a run killed before its trap ran leaves nothing here, but be sure

# 1. debootstrap: a minimal Debian 13, once (a half-made one from a failed run is redone)
if [ ! -e "$root/.py313-bootstrapped" ]; then
    begin "debootstrap trixie"
    rm -rf --one-file-system "$root"
    debootstrap --variant=minbase trixie "$root" "$mirror" > "$root.debootstrap.log" 2>&1 \
        || die "debootstrap failed; its log: $root.debootstrap.log ($(tail -1 "$root.debootstrap.log"))"
    touch "$root/.py313-bootstrapped"
    took "debootstrap" "chroot $(size "$root")"
fi

mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"   # DNS for apt and pip
# pip trusts the host's CA bundle: it holds any CA that a TLS proxy on this network needs.
host_ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$host_ca" ] && cp "$host_ca" "$root/etc/host-ca-certificates.crt" || host_ca=
in_root() { chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    PATH=$venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TF_ENABLE_ONEDNN_OPTS=0 TF_CPP_MIN_LOG_LEVEL=3 PYTHONHASHSEED=0 "$@"; }

# 2. apt: Python 3.13 with venv (pip comes from ensurepip), CA certificates for pip, make for
# `make lab` (a unit test runs it) and iproute2 to bring up loopback in the offline namespace.
# TensorFlow's manylinux wheels bring their own libraries beyond glibc and libstdc++.
begin "apt"
in_root apt-get update -q >/dev/null
in_root apt-get install -y -q --no-install-recommends python3 python3-venv ca-certificates make iproute2 \
    >/dev/null
in_root apt-get clean
took "apt" "$(in_root python3 --version), chroot without venv $(size --exclude="$root$venv" "$root")"

# The repository as it is now (tracked files with uncommitted changes, and untracked ones
# that git does not ignore), copied afresh to /course.
rm -rf --one-file-system "$root/course"
mkdir -p "$root/course"
git -C "$repo" ls-files -z --cached --others --exclude-standard \
    | (cd "$repo" && while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) \
    | tar -C "$repo" --null -T - -cf - | tar -C "$root/course" -xf -
ln -s "$venv" "$root/course/.venv"

# 3. the venv with Debian's python3.13, and camutils with the extras the tests need. Editable,
# as `make` installs it: the tests run in the source tree, which would shadow a plain install
# (and the source tree has no camutils.data: pyproject maps data/ there only on install).
begin "venv set-up"
[ "${PY313_FRESH_VENV:-0}" = 1 ] && rm -rf --one-file-system "$root$venv"
[ -x "$root$venv/bin/python" ] || in_root python3 -m venv "$venv"
in_root ${host_ca:+PIP_CERT=/etc/host-ca-certificates.crt} \
    sh -c "cd /course && python -m pip install -q --disable-pip-version-check -e '.[cpu,lab,test]'"
# course.py's stamp (pyproject.toml's sha256): `make lab` must not reinstall
sha256sum "$root/course/pyproject.toml" | cut -c1-64 | tr -d '\n' > "$root$venv/.installed"
took "venv set-up" "venv $(size "$root$venv"), $(in_root python -c \
    'import sys, tensorflow as tf, keras; print("Python", sys.version.split()[0], "TF", tf.__version__, "Keras", keras.__version__)')"

# 4, 5. the tests, offline: a new network namespace has only loopback
offline() { unshare --net -- chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
    PATH=$venv/bin:/usr/sbin:/usr/bin:/sbin:/bin TF_ENABLE_ONEDNN_OPTS=0 TF_CPP_MIN_LOG_LEVEL=3 \
    PYTHONHASHSEED=0 sh -c 'ip link set lo up && cd /course && exec "$@"' sh "$@"; }
status=0
begin "unit tests"
offline python -m pytest tests -q -m "not browser" 2>&1 | tee "$root.unit.log" \
    || status=1
took "unit tests" "$(tail -1 "$root.unit.log" | tr -d =)"

begin "notebooks 01-03"
offline python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider \
    notebooks/01_cam_from_scratch.ipynb notebooks/02_cam_on_real_photos.ipynb \
    notebooks/03_grad_cam.ipynb 2>&1 | tee "$root.notebooks.log" || status=1
took "notebooks 01-03" "$(tail -1 "$root.notebooks.log" | tr -d =)"

echo; echo "== summary (chroot: $root, $(size "$root") in all)"
printf '%s\n' "${summary[@]}"
exit $status
