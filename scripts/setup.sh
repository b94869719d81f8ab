#!/usr/bin/env bash
# Installs what MedSynth needs on a fresh Debian machine and builds it in release mode.
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libdnnl-dev libpng-dev libturbojpeg0-dev libsqlite3-dev pkg-config)
packages+=(libdcmtk-dev)  # DICOM input: DCMTK's dcmdata with its RLE, JPEG and JPEG-LS decoders
packages+=(dcmtk)  # DCMTK's tools (img2dcm, dcmdjpeg, dcmodify): the DICOM tests make their files with them
# Open MPI: `mpirun -np N medsynth experiment` (the build links it when its header is present).
packages+=(libopenmpi-dev openmpi-bin)
# A headless browser: the paper report's test opens report.html in it (tables, charts, decoded images,
# nothing loaded from outside).
packages+=(chromium-headless-shell)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The checkpoint tests cross-check our safetensors files with the reference Python reader; the
# export tests check our ONNX files with onnx's checker and run them in ONNX Runtime.
python_packages=(safetensors numpy "onnx>=1.14" "onnxruntime>=1.16")
if command -v python3 >/dev/null && ! python3 -c "import safetensors.numpy, onnx, onnxruntime" 2>/dev/null; then
    echo "setup: installing the Python safetensors reader, onnx and ONNX Runtime (for tests)" >&2
    python3 -m pip install -q --disable-pip-version-check "${python_packages[@]}" 2>/dev/null \
        || python3 -m pip install -q --disable-pip-version-check --break-system-packages "${python_packages[@]}"
fi

# The serving tests drive `medsynth serve` with Triton's Open Inference Protocol client.
if command -v python3 >/dev/null && ! python3 -c "import numpy, tritonclient.http" 2>/dev/null; then
    echo "setup: installing tritonclient[http] (for the serving tests)" >&2
    python3 -m pip install -q --disable-pip-version-check numpy "tritonclient[http]" 2>/dev/null \
        || python3 -m pip install -q --disable-pip-version-check --break-system-packages numpy "tritonclient[http]"
fi

if [ "${MEDSYNTH_SKIP_BUILD:-0}" != 1 ]; then
    # The tool is built for the machine that runs it here: AVX2/FMA on (see Package.swift);
    # MEDSYNTH_NATIVE=0 builds a portable binary.
    export MEDSYNTH_NATIVE="${MEDSYNTH_NATIVE-1}"
    swift build -c release 2>&1 | grep -E "error|warning: unre|Compiling medsynth|Build complete" >&2 || true
    test -x .build/release/medsynth || { echo "setup: release build failed" >&2; swift build -c release; exit 1; }
fi
