#!/usr/bin/env bash
# Build a local stand-in for python:3.11-slim when no container registry is reachable.
#
# debootstrap lays down a minimal Debian bookworm (Python 3.11, the same minor version as
# python:3.11-slim), a venv at /opt/venv supplies `python` and `pip` on PATH (Debian's own pip
# refuses to install into the system interpreter), and the host's CA bundle goes in so that pip
# works behind an intercepting HTTPS proxy. The result is imported as one image layer.
#
# Usage: docker/standin-base.sh [--rebuild] [TAG]      (TAG defaults to voiceid-base:bookworm)
#
# Reuse: when TAG already exists nothing is done; otherwise a cached root filesystem tarball under
# $VOICEID_CACHE_DIR (default /var/cache/voiceid) is imported, and only when that is missing too
# does debootstrap run (a few minutes). --rebuild discards both.
#
# Environment: DEBIAN_MIRROR (default: debootstrap's own default archive), DEBIAN_SECURITY_MIRROR
# (when set, the image's apt also takes security updates from it), HOST_CA_BUNDLE (default
# /etc/ssl/certs/ca-certificates.crt). Needs root, debootstrap and a running docker daemon.
set -euo pipefail

rebuild=0
if [[ "${1:-}" == "--rebuild" ]]; then
    rebuild=1
    shift
fi
tag="${1:-voiceid-base:bookworm}"
suite=bookworm
mirror="${DEBIAN_MIRROR:-}"  # empty: debootstrap picks its default
security_mirror="${DEBIAN_SECURITY_MIRROR:-}"
host_ca="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
cache_dir="${VOICEID_CACHE_DIR:-/var/cache/voiceid}"
rootfs_tar="$cache_dir/$suite-rootfs.tar"
container_ca=/etc/ssl/certs/ca-certificates.crt

log() { printf '[standin-base] %s\n' "$*" >&2; }

if ((rebuild)); then
    docker image rm -f "$tag" >/dev/null 2>&1 || true
    rm -f "$rootfs_tar"
elif docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag exists; reusing it"
    exit 0
fi

build_rootfs() {
    local root="$1"
    log "debootstrap $suite (minbase) from ${mirror:-the default archive} into $root"
    # shellcheck disable=SC2086  # $mirror is empty or one URL
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        "$suite" "$root" $mirror >&2

    # debootstrap wrote "deb <archive> <suite> main"; add the suite's updates from the same
    # archive, and security updates when a security archive is given.
    local archive
    archive="$(awk '$1 == "deb" { print $2; exit }' "$root/etc/apt/sources.list")"
    echo "deb $archive $suite-updates main" >>"$root/etc/apt/sources.list"
    if [[ -n "$security_mirror" ]]; then
        echo "deb $security_mirror $suite-security main" >>"$root/etc/apt/sources.list"
    fi

    # The host bundle holds the proxy's CA. It goes both where every TLS client looks and into
    # the local CA folder, so that a later `update-ca-certificates` (run by any apt install that
    # touches ca-certificates) keeps it in the regenerated bundle.
    install -m 0644 "$host_ca" "$root$container_ca"
    install -m 0644 "$host_ca" "$root/usr/local/share/ca-certificates/host-bundle.crt"

    chroot "$root" /usr/bin/python3 -m venv /opt/venv
    # Slim images ship no apt lists, docs or caches; neither does this one.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
        "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* "$root"/usr/share/man/*

    mkdir -p "$cache_dir"
    tar --numeric-owner -C "$root" -cf "$rootfs_tar.partial" .
    mv "$rootfs_tar.partial" "$rootfs_tar"
}

cleanup_rootfs() {
    # debootstrap mounts /proc and /sys inside the target; a failed run can leave them behind.
    findmnt -rno TARGET | grep "^$1/" | sort -r | xargs -r umount -l || true
    rm -rf "$1"
}

if [[ ! -s "$rootfs_tar" ]]; then
    work="$(mktemp -d "${TMPDIR:-/tmp}/voiceid-rootfs.XXXXXX")"
    trap 'cleanup_rootfs "$work"' EXIT
    build_rootfs "$work/root"
else
    log "importing cached $rootfs_tar"
fi

docker import \
    --change "ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV LANG=C.UTF-8" \
    --change "ENV PIP_CERT=$container_ca" \
    --change "ENV REQUESTS_CA_BUNDLE=$container_ca" \
    --change "ENV SSL_CERT_FILE=$container_ca" \
    --change 'CMD ["python3"]' \
    --message "debootstrap $suite minbase + python3 venv (stand-in for python:3.11-slim)" \
    "$rootfs_tar" "$tag" >/dev/null
log "built $tag ($(docker run --rm "$tag" python --version 2>&1))"
