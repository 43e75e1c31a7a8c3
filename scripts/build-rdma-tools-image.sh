#!/usr/bin/env bash
# Builds the image spider-validate's rdma tests run (--image rdma=REF), without pulling a base image: a Debian
# bookworm root made by mmdebstrap from Debian packages, committed by buildah as an OCI archive (scripts/lib/
# oci-image.sh, shared with build-validator-image.sh). No published image
# has what the tests need: Spiderpool's rdma-tools (spidernet-io/charts rdma-tools/image) has perftest but no
# libfabric, so no fi_pingpong, and no pyverbs.
#   perftest            ib_write_bw, ib_read_bw, ib_send_bw (4.5+0.17, built with SRD: SEND/READ over SRD)
#   ibverbs-utils       ibv_devices;  ibverbs-providers: the rxe, mlx5 and efa providers
#   libfabric-bin       fi_pingpong (libfabric 1.17 with its efa provider)
#   python3-pyverbs     rdma-core's binding, to read an EFA's capabilities (efadv_query_device)
#   iproute2            ss (the server listens; it is stopped by the PID its start printed)
#   scripts/build-rdma-tools-image.sh [OUT_DIR]     (root: mmdebstrap's root mode and buildah's storage)
# Writes OUT_DIR/rdma-tools-<suite>.oci.tar (default OUT_DIR: build/image) after checking, in a chroot of its root,
# that every tool the suite calls is there and that its perftest takes SRD. Push it and pass its digest:
#   skopeo copy oci-archive:build/image/rdma-tools-bookworm.oci.tar docker://REGISTRY/rdma-tools:bookworm
#   spider-validate run --image rdma=REGISTRY/rdma-tools@sha256:...
# Environment: SUITE (bookworm), MIRROR (Debian's).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${1:-build/image}"
# shellcheck source=lib/oci-image.sh
source scripts/lib/oci-image.sh
PACKAGES=perftest,ibverbs-utils,ibverbs-providers,libfabric-bin,python3-pyverbs,iproute2
IMAGE="rdma-tools-${SUITE}.oci.tar"

image_rootfs "${PACKAGES}"

echo "== every tool the rdma suite calls, in its own root"
for tool in ib_write_bw ib_read_bw ib_send_bw ibv_devices fi_pingpong python3 ss timeout nohup; do
  chroot "${WORK}/rootfs" sh -c "command -v ${tool}" >/dev/null || { echo "no ${tool} in the image" >&2; exit 1; }
done
chroot "${WORK}/rootfs" python3 -c "from pyverbs.providers.efa.efadv import EfaContext" || exit 1
# Without a device perftest's parser still runs: SRD refused means a build without SRD (HAVE_SRD).
if chroot "${WORK}/rootfs" ib_send_bw -c SRD -d none 2>&1 | grep -q "SRD not detected"; then
  echo "this perftest has no SRD" >&2
  exit 1
fi

image_container
buildah config --cmd '["sleep", "infinity"]' \
  --label org.opencontainers.image.title=rdma-tools \
  --label org.opencontainers.image.version="${SUITE}" \
  --label org.opencontainers.image.description="perftest with SRD, fi_pingpong, pyverbs, iproute2: spider-validate's RDMA tests" \
  "${CONTAINER}"
image_commit "${IMAGE}" "rdma-tools:${SUITE}"
