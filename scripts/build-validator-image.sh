#!/usr/bin/env bash
# Builds the spider-validate image (what the chart's `watch` Deployment runs) from the validator's wheel, without
# pulling a base image: a Debian bookworm root made by mmdebstrap from Debian packages (python3 and CA
# certificates), the wheel and its dependencies installed into it by pip, committed by buildah as an OCI archive
# (scripts/lib/oci-image.sh, shared with build-rdma-tools-image.sh).
#   scripts/build-validator-image.sh [OUT_DIR]     (root: mmdebstrap's root mode and buildah's storage)
# Writes OUT_DIR/spider-validate-<version>.oci.tar (default OUT_DIR: build/image) and checks, in a chroot of the
# image's root, that `spider-validate --version` runs as the image's user. A release pushes the archive:
#   skopeo copy oci-archive:build/image/spider-validate-<version>.oci.tar docker://ghcr.io/spiderpool-rdma/spider-validate:<version>
# Environment: SUITE (bookworm), MIRROR (Debian's), PIP_INDEX_URL/PIP_FIND_LINKS (pip's own) for offline builds.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${1:-build/image}"
# shellcheck source=lib/oci-image.sh
source scripts/lib/oci-image.sh      # SUITE bookworm: its python3 is 3.11, the validator's minimum and the build host's
USER_ID=65532                        # the chart's runAsUser
VERSION="$(sed -nE 's/^__version__ = "(.*)"/\1/p' validators/spider_validate/__init__.py)"
IMAGE="spider-validate-${VERSION}.oci.tar"

echo "== wheels: spider-validate ${VERSION} and its dependencies, at the versions requirements.lock pins"
python3 -m pip wheel --quiet --constraint requirements.lock --wheel-dir "${WORK}/wheels" ./validators

image_rootfs python3,ca-certificates

# Debian's pip installs under /usr/local of --root (its posix_local scheme), where the image's python3 looks;
# --ignore-installed: what this host has installed must still go into the image.
echo "== install the wheels into it (pip of the same Python minor, --root)"
rootfs_python="$(readlink -f "${WORK}/rootfs/usr/bin/python3")"
host_python="$(python3 -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')"
[[ "$(basename "${rootfs_python}")" == "${host_python}" ]] || {
  echo "the image's $(basename "${rootfs_python}") differs from this host's ${host_python}: wheels would not match" >&2
  exit 2
}
/usr/bin/python3 -m pip install --quiet --root "${WORK}/rootfs" --ignore-installed --no-index \
  --find-links "${WORK}/wheels" --no-warn-script-location spider-validate
echo "nonroot:x:${USER_ID}:${USER_ID}::/nonexistent:/usr/sbin/nologin" >> "${WORK}/rootfs/etc/passwd"
echo "nonroot:x:${USER_ID}:" >> "${WORK}/rootfs/etc/group"

echo "== it runs, as its user, in its own root"
chroot --userspec="${USER_ID}:${USER_ID}" "${WORK}/rootfs" /usr/local/bin/spider-validate --version

image_container
buildah config \
  --entrypoint '["/usr/local/bin/spider-validate"]' --cmd watch --user "${USER_ID}:${USER_ID}" \
  --env PYTHONDONTWRITEBYTECODE=1 --port 9477 \
  --label org.opencontainers.image.title=spider-validate \
  --label org.opencontainers.image.version="${VERSION}" \
  --label org.opencontainers.image.description="spider-validate: proves a Spiderpool underlay cluster works; watch serves its checks as Prometheus metrics" \
  "${CONTAINER}"
image_commit "${IMAGE}" "spider-validate:${VERSION}"
