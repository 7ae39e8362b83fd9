#!/bin/sh
# Build steps shared by docker/Dockerfile (serving), docker/Dockerfile.train and docker/Dockerfile.gpu,
# so that they cannot drift.
# Each step is one RUN (one layer); the Dockerfiles order them so that the slow dependency layer
# is cached until pyproject.toml changes.
#
#   image-steps.sh system          apt: libsndfile1 (+ python3, /opt/venv if none)
#   image-steps.sh ffmpeg          apt: ffmpeg (m4a, WebM and the rest; about 450 MB)
#   image-steps.sh deps [EXTRA]    pip: pyproject.toml's dependencies [+ its optional EXTRA]
#   image-steps.sh app SRC_DIR     pip: the voiceid package (--no-deps); SRC_DIR is removed
#   image-steps.sh user NAME UID   the unprivileged account the container runs as
#
# Works on python:3.11-slim, on the debootstrap stand-in (docker/standin-base.sh) and on
# Debian/Ubuntu bases without Python (e.g. nvidia/cuda), where Python comes from apt.
set -eu

venv=/opt/venv

apt_install() {
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    apt-get clean
    rm -rf /var/lib/apt/lists/*
}

step_system() {
    if command -v python >/dev/null 2>&1; then
        apt_install libsndfile1
    else
        # Distribution Python refuses pip installs into itself (PEP 668); a venv on PATH
        # (the Dockerfiles put /opt/venv/bin first) gives `python` and `pip` like the slim image.
        apt_install libsndfile1 python3 python3-venv
        python3 -m venv "$venv"
    fi
    python - <<'EOF'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"voiceid needs Python >= 3.11 (tomllib); the base image has {sys.version.split()[0]}")
EOF
}

step_ffmpeg() {
    apt_install ffmpeg
}

step_deps() {
    extra="${1:-}"
    # Only pyproject.toml is in the image at this point: install what it lists, not the package,
    # so that this layer survives every code change.
    python -c 'import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
print("\n".join(project["dependencies"] + [r for e in sys.argv[1:] for r in extras[e]]))' \
        $extra >/tmp/requirements.txt
    pip install --no-cache-dir -r /tmp/requirements.txt
    rm -f /tmp/requirements.txt
    # numpy's and scipy's own test suites: 75 MB that nothing imports at run time (a sixth of the
    # serving image). Removed in the layer that installed them, so that the image shrinks.
    site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    for package in numpy scipy; do
        [ -d "$site/$package" ] && find "$site/$package" -type d -name tests -prune -exec rm -rf {} +
    done
    true
}

step_app() {
    src="$1"
    pip install --no-cache-dir --no-deps "$src"
    pip check
    rm -rf "$src"
}

step_user() {
    name="$1"
    uid="$2"
    useradd --system --uid "$uid" --user-group --create-home --shell /usr/sbin/nologin "$name"
}

usage="image-steps.sh system | ffmpeg | deps [EXTRA] | app SRC_DIR | user NAME UID"
step="${1:?$usage}"
shift
case "$step" in
    system) step_system ;;
    ffmpeg) step_ffmpeg ;;
    deps) step_deps "$@" ;;
    app) step_app "$@" ;;
    user) step_user "$@" ;;
    *)
        echo "image-steps.sh: unknown step '$step'" >&2
        exit 2
        ;;
esac
