{{/* How pods get the EFA device: the device plugin's extended resource (cluster.rdmaDevices "plugin") or a
ResourceClaim of aws-dranet's DeviceClass ("dra", Dynamic Resource Allocation). Exactly one of the two drivers: both
would hand out the same devices, each unaware of the other's pods. */}}
{{- define "spiderpool-rdma.validateRdmaDevices" -}}
{{- if and .Values.install.dranet .Values.install.efaDevicePlugin -}}
{{- fail "install.dranet and install.efaDevicePlugin are both true: both would hand out the same EFA devices; DRA mode (cluster.rdmaDevices: dra) installs aws-dranet alone" -}}
{{- end -}}
{{- if ne (eq .Values.cluster.rdmaDevices "dra") (.Values.install.dranet | default false) -}}
{{- fail (printf "cluster.rdmaDevices is %q but install.dranet is %v: aws-dranet serves the claims of DRA mode and nothing else (cdktf.out/helm-values.yaml sets both)" .Values.cluster.rdmaDevices .Values.install.dranet) -}}
{{- end -}}
{{- if and .Values.rdmaSample.enabled (not .Values.rdmaSample.image) -}}
{{- fail "rdmaSample.enabled needs rdmaSample.image: the RDMA tools image you built (scripts/build-rdma-tools-image.sh) and pushed, as registry, repository and digest (or tag); none is published" -}}
{{- end -}}
{{- if and .Values.rdmaSample.enabled (ne .Values.cluster.rdma "efa") -}}
{{- fail (printf "rdmaSample runs fi_pingpong over EFA, but cluster.rdma is %q" .Values.cluster.rdma) -}}
{{- end -}}
{{- end -}}

{{/* The DeviceClass of EFA devices: the one the aws-dranet subchart creates. */}}
{{- define "spiderpool-rdma.efaDeviceClass" -}}
{{- dig "deviceClass" "name" "efa.networking.k8s.aws" (index .Values "aws-dranet" | default dict) -}}
{{- end -}}

{{/* What a pod adds to its spec and its container's resources to hold one EFA device, as JSON
{"pod": {...}, "resources": {...}}: a claim from `template` (DRA mode) or the device plugin's resource. */}}
{{- define "spiderpool-rdma.efaRequest" -}}
{{- if eq .root.Values.cluster.rdmaDevices "dra" -}}
{{- $claims := list (dict "name" "efa" "resourceClaimTemplateName" .template) -}}
{{- dict "pod" (dict "resourceClaims" $claims) "resources" (dict "claims" (list (dict "name" "efa"))) | toJson -}}
{{- else -}}
{{- $limits := dict "vpc.amazonaws.com/efa" "1" -}}
{{- dict "pod" dict "resources" (dict "requests" $limits "limits" $limits) | toJson -}}
{{- end -}}
{{- end -}}
