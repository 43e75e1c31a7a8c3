{{/* Names and labels, in the style of Spiderpool's and Bitnami's charts. */}}

{{- define "spiderpool-rdma.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every name: a DNS-1035 label whatever the release name Helm accepted (a-z, 0-9, '-' and '.', a
digit first allowed), as a Service's name and a namespace's must be: dots become '-', and a leading digit gets an "r"
before it ("1rdma" -> "r1rdma-spiderpool-rdma", "rdma.v1" -> "rdma-v1-spiderpool-rdma"). 48 characters at most:
names add a suffix of up to 15 ("-test-apps", "-<app>") and stay DNS labels (63); every '-' the cut leaves at the
end goes (a name may have a run of them: trimSuffix takes one). */}}
{{- define "spiderpool-rdma.fullname" -}}
{{- $name := ternary .Release.Name (printf "%s-%s" .Release.Name .Chart.Name) (contains .Chart.Name .Release.Name) -}}
{{- $name = replace "." "-" $name -}}
{{- if regexMatch "^[0-9]" $name }}{{ $name = printf "r%s" $name }}{{ end -}}
{{- regexReplaceAll "-+$" ($name | trunc 48) "" -}}
{{- end -}}

{{- define "spiderpool-rdma.labels" -}}
app.kubernetes.io/name: {{ include "spiderpool-rdma.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels of the objects the apply job owns: the pre-delete job removes exactly these, and the apply job's prune
those of them of another generation (objects the release no longer renders). */}}
{{- define "spiderpool-rdma.appliedLabels" -}}
app.kubernetes.io/name: {{ include "spiderpool-rdma.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ include "spiderpool-rdma.fullname" . }}-apply
spiderpool-rdma/generation: {{ include "spiderpool-rdma.generation" . }}
{{- end -}}

{{/* A digest of everything the applied objects are rendered from: the chart's version, the release and its values.
Two renders that would apply different objects differ in it; a rollback renders the values rolled back to (Helm runs
the target revision's hooks with its manifest, pkg/action/rollback.go, performRollback), hence their generation. */}}
{{- define "spiderpool-rdma.generation" -}}
{{- list .Chart.Version .Release.Namespace .Release.Name .Values | toJson | sha256sum | trunc 16 -}}
{{- end -}}

{{- define "spiderpool-rdma.appliedSelector" -}}
app.kubernetes.io/instance={{ .Release.Name }},app.kubernetes.io/managed-by={{ include "spiderpool-rdma.fullname" . }}-apply
{{- end -}}

{{/* The sample apps' namespace: theirs alone, never the release's (kube-system, where Pod Security is not enforced). */}}
{{- define "spiderpool-rdma.appsNamespace" -}}
{{- default (printf "%s-apps" (include "spiderpool-rdma.fullname" .)) .Values.sampleApps.namespace -}}
{{- end -}}

{{/* The watch's probe pods' namespace: theirs alone, where the watch may create pods and exec into them. */}}
{{- define "spiderpool-rdma.watchNamespace" -}}
{{- default (printf "%s-watch" (include "spiderpool-rdma.fullname" .)) .Values.watch.namespace -}}
{{- end -}}

{{- define "spiderpool-rdma.networkName" -}}
{{- default (printf "%s-%s" .Values.network.cniType (first .Values.network.master)) .Values.network.name -}}
{{- end -}}

{{/* An image value (registry, repository, tag, digest) as a reference: REGISTRY/REPOSITORY[:TAG][@DIGEST], the
grammar of distribution/reference (reference.go). With a digest the runtime pulls exactly that image; the tag is
then only for the reader. */}}
{{- define "spiderpool-rdma.image" -}}
{{- $ref := printf "%s/%s" .registry .repository -}}
{{- with .tag }}{{ $ref = printf "%s:%s" $ref . }}{{ end -}}
{{- with .digest }}{{ $ref = printf "%s@%s" $ref . }}{{ end -}}
{{- $ref -}}
{{- end -}}

{{/* The kubectl image of the apply and delete jobs, as JSON: networkApply.image as set, or, while its tag and digest
are empty, the release files/kubectl-images.json pins for the cluster's own minor (kubectl supports one minor of skew
either way: kubernetes.io/releases/version-skew-policy; the file is written by scripts/pin_kubectl_images.py). The
minor is read from the server's gitVersion: Helm passes the server's /version as .Capabilities.KubeVersion (helm
pkg/action/action.go, getCapabilities), whose Minor is the raw field ("36+" on some providers). */}}
{{- define "spiderpool-rdma.kubectlImage" -}}
{{- $image := .Values.networkApply.image -}}
{{- if not (or $image.tag $image.digest) -}}
{{- $version := semver .Capabilities.KubeVersion.Version -}}
{{- $minor := printf "%d.%d" $version.Major $version.Minor -}}
{{- $releases := (.Files.Get "files/kubectl-images.json" | fromJson).releases -}}
{{- $release := get $releases $minor -}}
{{- if not $release -}}
{{- fail (printf "networkApply.image: the chart pins no kubectl for Kubernetes %s (files/kubectl-images.json: %s); set networkApply.image.tag and .digest to a kubectl of %s" $minor (keys $releases | sortAlpha | join ", ") $minor) -}}
{{- end -}}
{{- $image = dict "registry" $image.registry "repository" $image.repository "tag" $release.tag "digest" $release.digest -}}
{{- end -}}
{{- toJson $image -}}
{{- end -}}

{{/* checkov's CKV_K8S_43 (an image by digest) skipped only while the image has none, saying why and what to set:
{{ include "spiderpool-rdma.unpinned" (dict "image" .Values.x.image "value" "x.image" "why" "..." "n" 3) }} */}}
{{- define "spiderpool-rdma.unpinned" -}}
{{- if not .image.digest }}
checkov.io/skip{{ .n }}: CKV_K8S_43=the image has no digest here ({{ .why }}); set {{ .value }}.digest
{{- end }}
{{- end -}}

{{/* A container's `image` and `imagePullPolicy`: IfNotPresent when the image is pinned by digest (what is on the
node is what was asked for, and a registry outage cannot block a pod that the node has already pulled: the
pre-delete job, so the uninstall), Always when only a tag names it (a tag can move). Checkov's CKV_K8S_15 accepts
exactly these two. */}}
{{- define "spiderpool-rdma.containerImage" -}}
image: {{ include "spiderpool-rdma.image" . }}
imagePullPolicy: {{ ternary "IfNotPresent" "Always" (not (empty .digest)) }}
{{- end -}}

{{/* The underlay network's own pools: no app's, and not the SR-IOV network's (another subnet). */}}
{{- define "spiderpool-rdma.generalPools" -}}
{{- $names := list -}}
{{- $sriov := ternary .Values.sriov.pools list .Values.sriov.enabled -}}
{{- range .Values.network.pools -}}
{{- if and (not .app) (not (has .name $sriov)) -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* The sample apps: the pools' `app` names, in the order the pools list them. */}}
{{- define "spiderpool-rdma.appNames" -}}
{{- $names := list -}}
{{- range .Values.network.pools -}}
{{- if and .app (not (has .app $names)) -}}
{{- $names = append $names .app -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* Pools of one sample app: {{ include "spiderpool-rdma.appPools" (dict "root" . "app" "app-0") }} */}}
{{- define "spiderpool-rdma.appPools" -}}
{{- $names := list -}}
{{- range .root.Values.network.pools -}}
{{- if eq (default "" .app) $.app -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* Nodes that hold pools of one sample app (empty when the pools are not per node). */}}
{{- define "spiderpool-rdma.appNodes" -}}
{{- $nodes := list -}}
{{- range .root.Values.network.pools -}}
{{- if eq (default "" .app) $.app -}}
{{- $nodes = concat $nodes (default list .nodeName) -}}
{{- end -}}
{{- end -}}
{{- toJson ($nodes | uniq) -}}
{{- end -}}

{{/* The pod annotations that attach a pod to the underlay with addresses from the given pools. */}}
{{- define "spiderpool-rdma.podNetworkAnnotations" -}}
{{- $network := printf "%s/%s" .root.Release.Namespace (include "spiderpool-rdma.networkName" .root) -}}
{{- if eq .root.Values.network.attachment "default" }}
v1.multus-cni.io/default-network: {{ $network }}
ipam.spidernet.io/ippool: {{ dict "ipv4" (.pools | fromJsonArray) | toJson | quote }}
{{- else }}
k8s.v1.cni.cncf.io/networks: {{ $network }}
ipam.spidernet.io/ippools: {{ list (dict "interface" "net1" "ipv4" (.pools | fromJsonArray) "cleangateway" true) | toJson | quote }}
{{- end }}
{{- end -}}

{{- define "spiderpool-rdma.restrictedSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* One source for the network's name: with attachment "default" it must be Spiderpool's default CNI. */}}
{{- define "spiderpool-rdma.validate" -}}
{{- $network := include "spiderpool-rdma.networkName" . -}}
{{- $defaultCni := dig "multus" "multusCNI" "defaultCniCRName" "" (.Values.spiderpool | default dict) -}}
{{- if and .Values.install.spiderpool (eq .Values.network.attachment "default") (ne $defaultCni $network) -}}
{{- fail (printf "network.attachment is \"default\": spiderpool.multus.multusCNI.defaultCniCRName (%q) must be the network's name (%q)" $defaultCni $network) -}}
{{- end -}}
{{- if eq (include "spiderpool-rdma.appsNamespace" .) .Release.Namespace -}}
{{- fail (printf "sampleApps.namespace is the release namespace %q: the apps need one of their own (Pod Security enforced, none of the release's workloads)" .Release.Namespace) -}}
{{- end -}}
{{- if and .Values.watch.enabled (not .Values.watch.image) -}}
{{- fail "watch.enabled needs watch.image: the spider-validate image you built (scripts/build-validator-image.sh) and pushed, as registry, repository and digest (or tag); none is published" -}}
{{- end -}}
{{- if and .Values.watch.enabled (eq (include "spiderpool-rdma.watchNamespace" .) .Release.Namespace (include "spiderpool-rdma.appsNamespace" .)) -}}
{{- fail "watch.namespace must be a namespace of its own, neither the release's nor the apps'" -}}
{{- end -}}
{{- $apps := include "spiderpool-rdma.appNames" . | fromJsonArray -}}
{{- if and $apps (ne (len $apps) (int .Values.sampleApps.count)) -}}
{{- fail (printf "sampleApps.count is %d but the pools name %d apps: %s" (int .Values.sampleApps.count) (len $apps) (join ", " $apps)) -}}
{{- end -}}
{{- if and .Values.install.spiderpool (eq .Values.network.attachment "secondary") (eq $defaultCni $network) -}}
{{- fail (printf "network.attachment is \"secondary\": spiderpool.multus.multusCNI.defaultCniCRName must not be the network %q" $network) -}}
{{- end -}}
{{- end -}}
