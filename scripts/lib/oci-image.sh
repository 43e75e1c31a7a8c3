# shellcheck shell=bash
# Sourced by scripts/build-*-image.sh, which build an OCI image without pulling a base image: a Debian root made by
# mmdebstrap from Debian packages, committed by buildah as an OCI archive (root: mmdebstrap's root mode and
# buildah's storage). The caller sets OUT (the archive's directory) before sourcing it; it gets WORK, a scratch
# directory removed on exit with the buildah container, and the steps below.
# Environment: SUITE (bookworm), MIRROR (Debian's).

SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
WORK="$(mktemp -d)"
CONTAINER=""
cleanup() {
  if [[ -n "${CONTAINER}" ]]; then buildah rm "${CONTAINER}" >/dev/null || true; fi
  rm -rf "${WORK}"
}
trap cleanup EXIT

if ! command -v mmdebstrap >/dev/null || ! command -v buildah >/dev/null; then
  echo "needs mmdebstrap and buildah (apt-get install mmdebstrap buildah)" >&2
  exit 2
fi
mkdir -p "${OUT}"

# image_rootfs PACKAGES: Debian ${SUITE} minbase with PACKAGES (comma-separated) in ${WORK}/rootfs, without
# documentation, man pages, locales or apt's caches.
image_rootfs() {
  echo "== root file system: Debian ${SUITE} minbase + $1 (mmdebstrap)"
  mmdebstrap --quiet --variant=minbase --include="$1" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "${SUITE}" "${WORK}/rootfs" "${MIRROR}"
  rm -rf "${WORK}/rootfs/var/cache/apt/"* "${WORK}/rootfs/var/lib/apt/lists/"*
}

# image_container: a buildah container from scratch holding ${WORK}/rootfs, for the caller's `buildah config`.
image_container() {
  echo "== OCI image (buildah from scratch)"
  CONTAINER="$(buildah from scratch)"
  buildah copy --quiet "${CONTAINER}" "${WORK}/rootfs" / >/dev/null
}

# image_commit FILE NAME:TAG: the container committed as the OCI archive OUT/FILE.
image_commit() {
  rm -f "${OUT:?}/$1"
  buildah commit --quiet --format oci "${CONTAINER}" "oci-archive:${OUT}/$1:$2" >/dev/null
  ls -l "${OUT}/$1"
}
