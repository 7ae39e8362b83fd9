#!/usr/bin/env bash
# End-to-end smoke test of the Docker images on a machine without a registry or a GPU.
#
#   sudo docker/smoke-test.sh
#
# 1. installs docker.io, debootstrap, curl, python3 when absent; starts dockerd when not running;
# 2. builds the stand-in base (docker/standin-base.sh; reused once built) and the CPU image on it,
#    from a snapshot of the build context taken once (both images get the same code);
# 3. in containers: `voiceid demo-data`, then `voiceid train` into a fresh named volume, then
#    `voiceid predict` on that bundle under an arbitrary uid (docker run --user 4242:4242);
# 4. serves that model (--network host, 127.0.0.1, a free port, non-default VOICEID_PORT) and
#    checks: /ready is 200; a Steve and a David WAV clip, and the Steve clip as WebM/Opus (which
#    only the image's ffmpeg can decode), are identified as Steve, David and Steve; the server
#    runs as a non-root uid; the image HEALTHCHECK turns `healthy`; /admin/reload refuses a
#    request without the API key and loads the shipped demo bundle with it;
# 5. builds docker/Dockerfile.gpu on the same base and runs the same predict check with it on the
#    CPU (this machine has no GPU: CUDA kernels are never exercised).
#
# Environment:
#   VOICEID_SMOKE_BASE_IMAGE  base for both images (default voiceid-base:bookworm, the stand-in;
#                             any other value, e.g. python:3.11-slim, must be pullable or present)
#   VOICEID_SMOKE_GPU         full (default): build and run the GPU image | skip
#   VOICEID_SMOKE_LOGS        where the step logs go (default /tmp/voiceid-smoke-logs); kept
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL   forwarded to the image builds when they are http(s) URLs
#
# Leaves behind only the images (voiceid:smoke, voiceid:smoke-gpu, the base) and docker's build
# cache, so that the next run takes seconds for unchanged layers; removes the containers and
# volumes it created. Needs root.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base_image="${VOICEID_SMOKE_BASE_IMAGE:-voiceid-base:bookworm}"
gpu_mode="${VOICEID_SMOKE_GPU:-full}"
log_dir="${VOICEID_SMOKE_LOGS:-/tmp/voiceid-smoke-logs}"
image=voiceid:smoke
gpu_image=voiceid:smoke-gpu
run_id="voiceid-smoke-$$"
volume="$run_id-models"
api_key="smoke-$RANDOM$RANDOM"
ready_timeout_s=180
healthy_timeout_s=60

work=""
api_port=""
containers=()
volume_created=0
current_step="setup"
timings=()
started_at=$SECONDS

log() { printf '[smoke] %s\n' "$*" >&2; }

fail() {
    log "FAIL ($current_step): $*"
    exit 1
}

cleanup() {
    local status=$?
    set +e
    if ((status != 0)); then
        for c in "${containers[@]}"; do
            log "--- last log lines of container $c ---"
            docker logs --tail 40 "$c" 2>&1 | sed 's/^/    /' >&2
        done
    fi
    for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
    ((volume_created)) && docker volume rm "$volume" >/dev/null 2>&1
    [[ -n "$work" ]] && rm -rf "$work"
    print_timings
    if ((status == 0)); then
        log "PASS in $((SECONDS - started_at)) s"
    else
        log "FAIL in step '$current_step' after $((SECONDS - started_at)) s; step logs in $log_dir"
    fi
    exit "$status"
}
trap cleanup EXIT

print_timings() {
    ((${#timings[@]})) || return 0
    log "timings:"
    printf '    %s\n' "${timings[@]}" >&2
}

# run_step NAME CMD...: run CMD with its output in $log_dir/NAME.log, record its duration.
run_step() {
    local name="$1"
    shift
    current_step="$name"
    local t0=$SECONDS
    log "$name ..."
    if ! "$@" >"$log_dir/$name.log" 2>&1; then
        tail -n 30 "$log_dir/$name.log" | sed 's/^/    /' >&2
        fail "see $log_dir/$name.log"
    fi
    timings+=("$(printf '%-22s %4d s' "$name" $((SECONDS - t0)))")
}

record() { timings+=("$(printf '%-22s %4d s' "$1" "$2")"); }

ensure_tools() {
    local missing=()
    command -v docker >/dev/null || missing+=(docker.io)
    if [[ "$base_image" == voiceid-base:* ]]; then
        command -v debootstrap >/dev/null || missing+=(debootstrap)
    fi
    command -v curl >/dev/null || missing+=(curl)
    command -v python3 >/dev/null || missing+=(python3)
    if ((${#missing[@]})); then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
}

ensure_dockerd() {
    docker info >/dev/null 2>&1 && return 0
    log "starting dockerd (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
    local i
    for ((i = 0; i < 60; i++)); do
        docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    echo "dockerd did not answer within 60 s" >&2
    return 1
}

build_args() {
    local args=(--network host --build-arg "BASE_IMAGE=$base_image")
    local var
    for var in PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
        if [[ "${!var:-}" =~ ^https?:// ]]; then
            args+=(--build-arg "$var=${!var}")
        fi
    done
    printf '%s\n' "${args[@]}"
}

# snapshot_context: copy what the images are built from (the paths .dockerignore lets in) once,
# so that both images hold the same code even while the working tree is being edited.
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
    git --no-optional-locks -C "$repo" status --short 2>/dev/null || true
}

# build_image DOCKERFILE TAG: build from the snapshot; drop the image TAG pointed at before, so
# that repeated runs do not pile up untagged multi-GB images (shared layers stay cached).
build_image() {
    local dockerfile="$1" tag="$2" args old new
    mapfile -t args < <(build_args)
    old="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
    docker build "${args[@]}" -f "$repo/$dockerfile" -t "$tag" "$context"
    new="$(docker image inspect -f '{{.Id}}' "$tag")"
    if [[ -n "$old" && "$old" != "$new" ]]; then
        docker image rm "$old" || true
    fi
}

image_size() {
    docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.2f GB", $1 / 1e9}'
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# start_api NAME IMAGE PORT: serve /models/smoke from the volume on 127.0.0.1:PORT (host network).
start_api() {
    local name="$1" img="$2" port="$3"
    containers+=("$name")
    docker run -d --name "$name" --network host \
        -e VOICEID_HOST=127.0.0.1 -e "VOICEID_PORT=$port" \
        -e VOICEID_MODEL_DIR=/models/smoke -e "VOICEID_API_KEY=$api_key" \
        -v "$volume:/models" \
        --health-interval 2s --health-timeout 5s --health-start-period 120s --health-retries 3 \
        "$img" >/dev/null
}

wait_ready() {
    local name="$1" port="$2" t0=$SECONDS code
    while ((SECONDS - t0 < ready_timeout_s)); do
        code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready" || true)"
        [[ "$code" == 200 ]] && return 0
        [[ "$(docker inspect -f '{{.State.Running}}' "$name")" == true ]] ||
            fail "container $name exited before /ready answered 200"
        sleep 1
    done
    fail "/ready did not answer 200 within $ready_timeout_s s (last: $code)"
}

# expect_speaker PORT WAV SPEAKER: POST the clip to /predict and compare the top speaker.
expect_speaker() {
    local port="$1" wav="$2" want="$3" body got seconds
    body="$(curl -sS --fail-with-body -H "X-API-Key: $api_key" -F "file=@$wav" \
        -w '\n%{time_total}' "http://127.0.0.1:$port/predict")" ||
        fail "POST /predict with $(basename "$wav") failed: $body"
    seconds="${body##*$'\n'}"
    body="${body%$'\n'*}"
    got="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["speaker"])' "$body")"
    [[ "$got" == "$want" ]] || fail "$(basename "$wav") from $want was identified as $got: $body"
    log "  /predict $(basename "$wav") ($want) -> $got in ${seconds} s"
}

# expect_any_uid: the CLI works under an arbitrary uid (docker run --user), as on OpenShift or
# with --user "$(id -u)" for bind mounts: caches must not need the image user's home.
expect_any_uid() {
    local out
    out="$(docker run --rm --network none --user 4242:4242 -v "$volume:/models:ro" \
        -v "$steve_wav:/clip.wav:ro" "$image" voiceid predict /models/smoke /clip.wav)"
    echo "$out"
    [[ "$out" == *": Steve "* ]] || { echo "expected Steve"; return 1; }
}

expect_non_root() {
    local name="$1" uid
    uid="$(docker exec "$name" id -u)"
    [[ "$uid" != 0 ]] || fail "docker exec id -u is 0"
    # The server itself is PID 1 (exec-form CMD); check the uid it actually runs under.
    uid="$(docker exec "$name" stat -c %u /proc/1)"
    [[ "$uid" != 0 ]] || fail "the server process (PID 1) runs as root"
    log "  server runs as uid $uid"
}

wait_healthy() {
    local name="$1" t0=$SECONDS status
    while ((SECONDS - t0 < healthy_timeout_s)); do
        status="$(docker inspect -f '{{.State.Health.Status}}' "$name")"
        [[ "$status" == healthy ]] && return 0
        [[ "$status" == unhealthy ]] && fail "HEALTHCHECK reports unhealthy"
        sleep 1
    done
    fail "HEALTHCHECK did not turn healthy within $healthy_timeout_s s (last: $status)"
}

check_reload() {
    local port="$1" url="http://127.0.0.1:$1/admin/reload" code
    local body='{"model_dir": "/app/models/default"}'
    code="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d "$body" "$url")"
    [[ "$code" == 401 || "$code" == 403 ]] ||
        fail "POST /admin/reload without the key answered $code"
    code="$(curl -s -o "$work/reload.json" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' -H "X-API-Key: $api_key" -d "$body" "$url")"
    [[ "$code" == 200 ]] ||
        fail "POST /admin/reload to the shipped bundle answered $code: $(cat "$work/reload.json")"
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")"
    [[ "$code" == 200 ]] || fail "/ready answered $code after reloading the shipped bundle"
    log "  /admin/reload: 401/403 without key, 200 with it; shipped bundle loaded"
}

check_lean_image() {
    local img="$1"
    docker run --rm --network none "$img" sh -c '
        if command -v gcc || command -v cc; then echo "compiler left in the image"; exit 1; fi
        for d in /root/.cache/pip "$HOME/.cache/pip"; do
            if [ -d "$d" ]; then echo "pip cache left in $d"; exit 1; fi
        done
        lists="$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e ^lock -e ^partial)"
        if [ -n "$lists" ]; then echo "apt lists left"; exit 1; fi'
}

# serve_and_check NAME IMAGE: start a server, check it answers right; its port goes to $api_port.
serve_and_check() {
    local name="$1" img="$2" port t0
    port="$(free_port)"
    api_port="$port"
    current_step="serve:$name"
    t0=$SECONDS
    start_api "$name" "$img" "$port"
    wait_ready "$name" "$port"
    record "${name#"$run_id"-} ready" $((SECONDS - t0))
    expect_speaker "$port" "$steve_wav" Steve
    expect_speaker "$port" "$david_wav" David
    expect_speaker "$port" "$steve_webm" Steve
    expect_non_root "$name"
}

# --- main -------------------------------------------------------------------------------------

[[ $EUID == 0 ]] || { echo "smoke-test.sh needs root (apt, dockerd, debootstrap)" >&2; exit 1; }
[[ "$gpu_mode" == full || "$gpu_mode" == skip ]] ||
    fail "VOICEID_SMOKE_GPU=$gpu_mode must be full or skip"
for f in voiceid/cli.py service/app.py models/default/metadata.json; do
    [[ -e "$repo/$f" ]] || fail "$f is missing: the images need the package and the shipped bundle"
done
mkdir -p "$log_dir"
rm -f "$log_dir"/*.log
work="$(mktemp -d "${TMPDIR:-/tmp}/voiceid-smoke.XXXXXX")"
context="$work/context"

run_step tools ensure_tools
run_step dockerd ensure_dockerd
if [[ "$base_image" == voiceid-base:* ]]; then
    run_step standin-base "$repo/docker/standin-base.sh" "$base_image"
fi
run_step snapshot snapshot_context
run_step build-cpu build_image docker/Dockerfile "$image"
log "  $image: $(image_size "$image")"
run_step lean-image check_lean_image "$image"

# The containers run as uid 10001; let them write the recordings into a host folder.
mkdir -m 0777 "$work/data"
run_step demo-data docker run --rm --network none -v "$work/data:/data" "$image" \
    voiceid demo-data /data
steve_wav="$(find "$work/data/Steve" -name '*.wav' | sort | head -n 1)"
david_wav="$(find "$work/data/David" -name '*.wav' | sort | head -n 1)"
[[ -n "$steve_wav" && -n "$david_wav" ]] || fail "voiceid demo-data wrote no Steve/David clips"
# A browser-style upload (WebM/Opus): libsndfile cannot read it, so it exercises the image's ffmpeg.
mkdir -m 0777 "$work/clips"
run_step ffmpeg-webm docker run --rm --network none \
    -v "$steve_wav:/in.wav:ro" -v "$work/clips:/out" "$image" \
    ffmpeg -nostdin -loglevel error -i /in.wav -c:a libopus /out/steve.webm
steve_webm="$work/clips/steve.webm"

docker volume create "$volume" >/dev/null
volume_created=1
run_step train docker run --rm --network none -v "$work/data:/data:ro" -v "$volume:/models" \
    "$image" voiceid train /data --out /models/smoke

run_step any-uid-predict expect_any_uid

serve_and_check "$run_id-api" "$image"
t0=$SECONDS
wait_healthy "$run_id-api"
record "healthy (2 s probes)" $((SECONDS - t0))
log "  HEALTHCHECK healthy"
check_reload "$api_port"
docker rm -f "$run_id-api" >/dev/null

if [[ "$gpu_mode" == full ]]; then
    run_step build-gpu build_image docker/Dockerfile.gpu "$gpu_image"
    log "  $gpu_image: $(image_size "$gpu_image")"
    run_step gpu-tensorflow docker run --rm --network none "$gpu_image" python -c '
import tensorflow as tf
assert tf.test.is_built_with_cuda(), "this TensorFlow build has no CUDA support"
gpus = tf.config.list_physical_devices("GPU")
print(tf.__version__, "built with CUDA; GPUs visible here:", gpus)'
    serve_and_check "$run_id-api-gpu" "$gpu_image"
else
    log "GPU image skipped (VOICEID_SMOKE_GPU=skip)"
fi
current_step="done"
