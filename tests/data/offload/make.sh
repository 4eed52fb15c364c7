#!/usr/bin/env bash
# Makes the offload bundles tests/core/test_offload.py reads, with the real toolchain: hipcc and
# clang-offload-bundler of the offline example's base image (Debian sid's HIP on LLVM 21). To refresh them, from
# this folder:
#   docker run --rm --network none -v "$PWD:/out" --entrypoint bash epbuild-offline/base:sid-hip-ref-mpi-torchhip-rust /out/make.sh
# tests/integration/test_offload_bundles.py runs it again in a scratch folder and checks the listing still holds.
# Each file's expected triples are what clang-offload-bundler --list says (listing.txt), never our own encoder.
set -euo pipefail
cd /out
work=$(mktemp -d)
printf '#include <hip/hip_runtime.h>\n__global__ void fill(int *x) { x[threadIdx.x] = 1; }\n' > "$work/fill.hip"
printf '#include <hip/hip_runtime.h>\n__global__ void twice(int *x) { x[threadIdx.x] *= 2; }\n' > "$work/twice.hip"
archs=(--offload-arch=gfx942 --offload-arch=gfx950)
targets=hipv4-amdgcn-amd-amdhsa--gfx942,hipv4-amdgcn-amd-amdhsa--gfx950
# Shared libraries as hipcc writes them: the bundle sits in .hip_fatbin (one per translation unit).
hipcc "${archs[@]}" -O1 -fPIC -shared "$work/fill.hip" -o plain.so
# Two translation units built for different archs, linked: two compressed bundles in one section.
hipcc --offload-arch=gfx942 -O1 -fPIC --offload-compress -c "$work/fill.hip" -o "$work/fill.o"
hipcc --offload-arch=gfx950 -O1 -fPIC --offload-compress -c "$work/twice.hip" -o "$work/twice.o"
hipcc -fPIC -shared "$work/fill.o" "$work/twice.o" -o zstd-two-units.so
COMPRESSED_BUNDLE_FORMAT_VERSION=3 hipcc --offload-arch=gfx950 -O1 -fPIC -shared --offload-compress \
  "$work/fill.hip" -o zstd-v3.so
# -fgpu-rdc objects and their archive: one ELF section per bundle entry.
hipcc "${archs[@]}" -O1 -fgpu-rdc -fPIC -c "$work/fill.hip" -o rdc.o
rm -f rdc.a && llvm-ar rcs rdc.a rdc.o
# Bare bundles from the bundler itself, plain and zstd-compressed in format versions 2 and 3.
llvm-objcopy --dump-section=.hip_fatbin="$work/fatbin" plain.so
clang-offload-bundler --unbundle --type=o --input="$work/fatbin" --targets=$targets \
  --output="$work/gfx942.co" --output="$work/gfx950.co"
bundle() { clang-offload-bundler --type=o --targets=host-x86_64-unknown-linux-gnu-,$targets --input=/dev/null \
  --input="$work/gfx942.co" --input="$work/gfx950.co" "$@"; }
bundle --output=plain.hipfb
COMPRESSED_BUNDLE_FORMAT_VERSION=2 bundle --compress --output=zstd-v2.hipfb
COMPRESSED_BUNDLE_FORMAT_VERSION=3 bundle --compress --output=zstd-v3.hipfb
clang-offload-bundler --type=o --targets=host-x86_64-unknown-linux-gnu- --input=/dev/null --output=host-only.hipfb
# The tool's own listing of every bundle in each file (a shared library's from its .hip_fatbin section).
list() { clang-offload-bundler --list --type=o --input="$1" | sort -u | paste -sd, -; }
{
  for f in plain.hipfb zstd-v2.hipfb zstd-v3.hipfb host-only.hipfb rdc.o; do printf '%s\t%s\n' "$f" "$(list "$f")"; done
  printf 'rdc.a\t%s\n' "$(llvm-ar x --output="$work" rdc.a rdc.o && list "$work/rdc.o")"
  for f in plain.so zstd-v3.so; do
    llvm-objcopy --dump-section=.hip_fatbin="$work/section" "$f"
    printf '%s\t%s\n' "$f" "$(list "$work/section")"
  done
  # The tool lists one bundle per input, so the linked library's listing is its units' together.
  for unit in fill twice; do
    llvm-objcopy --dump-section=.hip_fatbin="$work/$unit.section" "$work/$unit.o"
    clang-offload-bundler --list --type=o --input="$work/$unit.section"
  done | sort -u | paste -sd, - | sed 's/^/zstd-two-units.so\t/' 
} > listing.txt
clang-offload-bundler --version | head -1 > tool-version.txt
rm -rf "$work"
