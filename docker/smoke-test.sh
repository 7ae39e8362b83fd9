#!/usr/bin/env bash
# Smoke test of the Docker images on a machine without a registry or a GPU.
#
#   make docker-deps && sudo docker/smoke-test.sh
#
# This script only prepares the host and builds: it starts dockerd when it is not running,
# builds the stand-in base (docker/standin-base.sh; reused once built), snapshots the build
# context once (so every image gets the same code), and builds the serving image (the default
# target of docker/Dockerfile), the training image (docker/Dockerfile.train) and, unless skipped,
# the GPU (training) image on that base. What the images do is checked by tests/docker/ (pytest, marker `docker`), which
# it then runs against them with the suite's clips.
#
# Environment:
#   VOICEID_SMOKE_BASE_IMAGE  base for both images (default voiceid-base:bookworm, the stand-in;
#                             any other value, e.g. python:3.11-slim, must be pullable or present)
#   VOICEID_SMOKE_GPU         full (default): build and test the GPU image too | skip
#   VOICEID_SMOKE_TAG         the images' tag prefix (default smoke: voiceid:smoke for serving,
#                             voiceid:smoke-train, voiceid:smoke-gpu)
#   VOICEID_SMOKE_LOGS        where the build logs go (default /tmp/voiceid-smoke-logs); kept
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL   forwarded to the image builds when they are http(s) URLs
#
# Needs root, the docker and debootstrap packages (`make docker-deps` installs them; this script
# installs nothing) and the project's .venv. Leaves behind the images (voiceid:smoke,
# voiceid:smoke-train, voiceid:smoke-gpu, the base) and docker's build cache, so that reruns take seconds for
# unchanged layers.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base_image="${VOICEID_SMOKE_BASE_IMAGE:-voiceid-base:bookworm}"
gpu_mode="${VOICEID_SMOKE_GPU:-full}"
log_dir="${VOICEID_SMOKE_LOGS:-/tmp/voiceid-smoke-logs}"
python="$repo/.venv/bin/python"
tag="${VOICEID_SMOKE_TAG:-smoke}"
serve_image="voiceid:$tag"
train_images=("voiceid:$tag-train")
started_at=$SECONDS
work=""

log() { printf '[smoke] %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
trap '[[ -n "$work" ]] && rm -rf "$work"' EXIT

# step NAME CMD...: run CMD with its output in $log_dir/NAME.log; show the tail if it fails.
step() {
    local name="$1" t0=$SECONDS
    shift
    log "$name ..."
    if ! "$@" >"$log_dir/$name.log" 2>&1; then
        tail -n 30 "$log_dir/$name.log" | sed 's/^/    /' >&2
        fail "$name: see $log_dir/$name.log"
    fi
    log "$name: $((SECONDS - t0)) s"
}

ensure_dockerd() {
    docker info >/dev/null 2>&1 && return 0
    nohup dockerd >/var/log/dockerd.log 2>&1 &
    local i
    for ((i = 0; i < 60; i++)); do
        docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    echo "dockerd did not answer within 60 s (log: /var/log/dockerd.log)"
    return 1
}

# snapshot_context: copy what the images are built from (the paths .dockerignore lets in).
snapshot_context() {
    local path
    mkdir "$context"
    cp "$repo/.dockerignore" "$context/"
    while read -r path; do
        path="${path%/}"
        [[ -e "$repo/$path" ]] || continue
        mkdir -p "$context/$(dirname "$path")"
        cp -a "$repo/$path" "$context/$path"
    done < <(sed -n 's/^!//p' "$repo/.dockerignore")
    git -C "$repo" log -1 --format='HEAD %h %s' 2>/dev/null || true
}

# build DOCKERFILE TAG [TARGET]: build from the snapshot; drop the image TAG pointed at before, so
# that repeated runs do not pile up untagged multi-GB images (shared layers stay cached).
build() {
    local dockerfile="$1" tag="$2" target="${3:-}" old new var
    local args=(--network host --build-arg "BASE_IMAGE=$base_image")
    [[ -n "$target" ]] && args+=(--target "$target")
    for var in PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
        [[ "${!var:-}" =~ ^https?:// ]] && args+=(--build-arg "$var=${!var}")
    done
    old="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
    docker build "${args[@]}" -f "$repo/$dockerfile" -t "$tag" "$context"
    new="$(docker image inspect -f '{{.Id}}' "$tag")"
    if [[ -n "$old" && "$old" != "$new" ]]; then
        docker image rm "$old" || true
    fi
}

[[ $EUID == 0 ]] || fail "smoke-test.sh needs root (dockerd, debootstrap)"
[[ "$gpu_mode" == full || "$gpu_mode" == skip ]] || fail "VOICEID_SMOKE_GPU=$gpu_mode: full or skip"
[[ -x "$python" ]] || fail "no $python: run make test (or make lint) first"
command -v docker >/dev/null || fail "docker is not installed: run make docker-deps"
if [[ "$base_image" == voiceid-base:* ]] && ! command -v debootstrap >/dev/null; then
    fail "debootstrap is not installed: run make docker-deps"
fi
mkdir -p "$log_dir"
rm -f "$log_dir"/*.log
work="$(mktemp -d "${TMPDIR:-/tmp}/voiceid-smoke.XXXXXX")"
context="$work/context"

step dockerd ensure_dockerd
if [[ "$base_image" == voiceid-base:* ]]; then
    step standin-base "$repo/docker/standin-base.sh" "$base_image"
fi
step snapshot snapshot_context
step build-train build docker/Dockerfile.train "${train_images[0]}"
step build-serve build docker/Dockerfile "$serve_image" serve
if [[ "$gpu_mode" == full ]]; then
    step build-gpu build docker/Dockerfile.gpu "voiceid:$tag-gpu"
    train_images+=("voiceid:$tag-gpu")
else
    log "GPU image skipped (VOICEID_SMOKE_GPU=skip)"
fi
for image in "$serve_image" "${train_images[@]}"; do
    log "$image: $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1 / 1e6}')"
done

log "tests/docker against $serve_image (serving) and ${train_images[*]} (training) ..."
cd "$repo"
VOICEID_DOCKER_SERVE_IMAGE="$serve_image" VOICEID_DOCKER_IMAGES="${train_images[*]}" \
    "$python" -m pytest -q -m docker tests/docker || fail "tests/docker failed"
log "PASS in $((SECONDS - started_at)) s"
