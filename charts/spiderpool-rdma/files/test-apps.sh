#!/bin/sh
# helm test: every sample app pod answers HTTP with its own name on its underlay IP, and a pod on
# another node answers ping. Reads the pods' network-status through the API (pods get/list only).
set -eu
api="https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}"
sa=/var/run/secrets/kubernetes.io/serviceaccount
pods="$(curl -sSf --cacert "${sa}/ca.crt" -H "Authorization: Bearer $(cat "${sa}/token")" \
  "${api}/api/v1/namespaces/${NAMESPACE}/pods?labelSelector=app.kubernetes.io%2Finstance%3D${RELEASE},spiderpool-rdma%2Fapp")"
rows="$(printf '%s' "${pods}" | jq -r --arg ifc "${INTERFACE}" '.items[]
  | select(.status.phase == "Running")
  | [.metadata.labels["spiderpool-rdma/app"], .metadata.name, .spec.nodeName,
     ((.metadata.annotations["k8s.v1.cni.cncf.io/network-status"] // "[]") | fromjson
      | map(select(.interface == $ifc)) | (.[0].ips[0] // ""))] | @tsv')"
failed=0
apps=""
remote=""
while IFS="$(printf '\t')" read -r app pod node ip; do
  [ -n "${app}" ] || continue
  apps="${apps} ${app}"
  if [ -z "${ip}" ]; then
    echo "FAIL ${app}/${pod}: no ${INTERFACE} address in its network-status"; failed=1; continue
  fi
  answer="$(curl -sS --max-time 5 --retry 3 --retry-all-errors "http://${ip}:${APP_PORT}/hostname" || true)"
  if [ "${answer}" = "${pod}" ]; then
    echo "ok   ${app}/${pod} on ${node} answers on ${ip}"
  else
    echo "FAIL ${app}/${pod} on ${node}: http://${ip}:${APP_PORT}/hostname answered '${answer}'"; failed=1
  fi
  [ "${node}" != "${NODE_NAME}" ] && remote="${ip}"
done <<ROWS
${rows}
ROWS
for app in ${APP_NAMES}; do
  case " ${apps} " in *" ${app} "*) ;; *) echo "FAIL ${app}: no running pod"; failed=1 ;; esac
done
if [ -n "${remote}" ]; then
  if ping -c 3 -W 2 "${remote}" >/dev/null; then
    echo "ok   ping ${remote} on another node"
  else
    echo "FAIL ping ${remote} on another node"; failed=1
  fi
else
  echo "FAIL no app pod on a node other than ${NODE_NAME} to ping"; failed=1
fi
exit "${failed}"
