{{/*
The objects Spiderpool's admission webhooks must accept: they are applied by the post-install/post-upgrade
job once spiderpool-controller serves its webhooks (see README, "Why a job applies the network").
Order matters: networks and pools before the apps that use them.
*/}}
{{- define "spiderpool-rdma.networkManifests" -}}
{{- $ns := .Release.Namespace -}}
{{- $apps := include "spiderpool-rdma.appsNamespace" . -}}
{{- $network := include "spiderpool-rdma.networkName" . -}}
{{- $general := include "spiderpool-rdma.generalPools" . | fromJsonArray -}}
{{- $sriovNetwork := printf "%s/%s-sriov" $ns (include "spiderpool-rdma.fullname" .) -}}
apiVersion: spiderpool.spidernet.io/v2beta1
kind: SpiderMultusConfig
metadata:
  name: {{ $network }}
  namespace: {{ $ns }}
  labels:
    {{- include "spiderpool-rdma.appliedLabels" . | nindent 4 }}
    # spider-validate attaches its test pods the same way (--attach auto)
    spiderpool-rdma/attachment: {{ .Values.network.attachment }}
spec:
  cniType: {{ .Values.network.cniType }}
  enableCoordinator: {{ .Values.network.enableCoordinator }}
  {{ .Values.network.cniType }}:
    master: {{ toJson .Values.network.master }}
    {{- with .Values.network.mtu }}
    mtu: {{ . }}
    {{- end }}
    {{- if $general }}
    ippools:
      ipv4: {{ toJson $general }}
    {{- end }}
{{- range .Values.network.pools }}
---
apiVersion: spiderpool.spidernet.io/v2beta1
kind: SpiderIPPool
metadata:
  name: {{ .name }}
  labels:
    {{- include "spiderpool-rdma.appliedLabels" $ | nindent 4 }}
    {{- with .app }}
    spiderpool-rdma/app: {{ . }}
    {{- end }}
spec:
  ipVersion: 4
  subnet: {{ .subnet }}
  ips: {{ toJson .ips }}
  {{- with .gateway }}
  gateway: {{ . }}
  {{- end }}
  {{- with .excludeIPs }}
  excludeIPs: {{ toJson . }}
  {{- end }}
  {{- with .routes }}
  routes: {{ toJson . }}
  {{- end }}
  {{- with .nodeName }}
  nodeName: {{ toJson . }}
  {{- end }}
  {{- if and $.Values.sriov.enabled (has .name $.Values.sriov.pools) }}
  multusName: [{{ $sriovNetwork | quote }}]
  {{- else }}
  multusName: [{{ printf "%s/%s" $ns $network | quote }}]
  {{- end }}
  default: {{ and (not .app) (default false .default) }}
{{- end }}
{{- if .Values.sriov.enabled }}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata:
  name: {{ include "spiderpool-rdma.fullname" . }}-rdma
  namespace: {{ $ns }}
  labels:
    {{- include "spiderpool-rdma.appliedLabels" . | nindent 4 }}
spec:
  resourceName: {{ .Values.sriov.resourceName }}
  isRdma: true
  deviceType: netdevice
  numVfs: {{ .Values.sriov.numVfs }}
  nicSelector:
    pfNames: {{ toJson .Values.sriov.pfNames }}
  nodeSelector: {{ toJson .Values.sriov.nodeSelector }}
---
apiVersion: spiderpool.spidernet.io/v2beta1
kind: SpiderMultusConfig
metadata:
  name: {{ include "spiderpool-rdma.fullname" . }}-sriov
  namespace: {{ $ns }}
  labels:
    {{- include "spiderpool-rdma.appliedLabels" . | nindent 4 }}
spec:
  cniType: sriov
  enableCoordinator: true
  sriov:
    resourceName: {{ printf "spidernet.io/%s" .Values.sriov.resourceName }}
    rdmaIsolation: true
    {{- with .Values.sriov.pools }}
    ippools:
      ipv4: {{ toJson . }}
    {{- end }}
{{- end }}
{{- range $app := include "spiderpool-rdma.appNames" . | fromJsonArray }}
{{- $pools := include "spiderpool-rdma.appPools" (dict "root" $ "app" $app) }}
{{- $nodes := include "spiderpool-rdma.appNodes" (dict "root" $ "app" $app) | fromJsonArray }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "spiderpool-rdma.fullname" $ }}-{{ $app }}
  namespace: {{ $apps }}
  labels:
    {{- include "spiderpool-rdma.appliedLabels" $ | nindent 4 }}
    spiderpool-rdma/app: {{ $app }}
  {{- with include "spiderpool-rdma.unpinned" (dict "image" $.Values.sampleApps.image "value" "sampleApps.image" "why" "cleared in the values" "n" 1) }}
  annotations:
    {{- . | nindent 4 }}
  {{- end }}
spec:
  replicas: {{ $.Values.sampleApps.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ $.Release.Name }}
      spiderpool-rdma/app: {{ $app }}
  template:
    metadata:
      labels:
        app.kubernetes.io/instance: {{ $.Release.Name }}
        spiderpool-rdma/app: {{ $app }}
      annotations:
        {{- include "spiderpool-rdma.podNetworkAnnotations" (dict "root" $ "pools" $pools) | nindent 8 }}
    spec:
      automountServiceAccountToken: false
      {{- /* serve-hostname waits 60 s after SIGTERM before it exits (serve_hostname.go, main): nothing to drain. */}}
      terminationGracePeriodSeconds: 5
      securityContext:
        runAsNonRoot: true
        seccompProfile:
          type: RuntimeDefault
      {{- if $nodes }}
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - key: kubernetes.io/hostname
                    operator: In
                    values: {{ toJson $nodes }}
      {{- end }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app.kubernetes.io/instance: {{ $.Release.Name }}
              spiderpool-rdma/app: {{ $app }}
      containers:
        - name: web
          {{- include "spiderpool-rdma.containerImage" $.Values.sampleApps.image | nindent 10 }}
          {{- /* The pod's name on every HTTP path and nothing else (kubernetes test/images/agnhost/serve-hostname/
          serve_hostname.go); not netexec, whose routes include /shell (sh -c of the query), /upload and /dial. */}}
          args: ["serve-hostname", "--port={{ $.Values.sampleApps.port }}"]
          ports:
            - name: http
              containerPort: {{ $.Values.sampleApps.port }}
          readinessProbe:
            httpGet: {path: /, port: http}
            periodSeconds: 5
          livenessProbe:
            httpGet: {path: /, port: http}
            periodSeconds: 10
          resources: {{ toJson $.Values.sampleApps.resources }}
          securityContext:
            {{- include "spiderpool-rdma.restrictedSecurityContext" $ | nindent 12 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "spiderpool-rdma.fullname" $ }}-{{ $app }}
  namespace: {{ $apps }}
  labels:
    {{- include "spiderpool-rdma.appliedLabels" $ | nindent 4 }}
    spiderpool-rdma/app: {{ $app }}
spec:
  selector:
    app.kubernetes.io/instance: {{ $.Release.Name }}
    spiderpool-rdma/app: {{ $app }}
  ports:
    - name: http
      port: 80
      targetPort: http
{{- end }}
{{- end -}}


{{/* One container of the apply and delete jobs: `command` run by the kubectl image, unprivileged:
{{ include "spiderpool-rdma.kubectl" (dict "root" $ "name" "x" "command" (list "kubectl" ...) "mounts" (list ...)) }} */}}
{{- define "spiderpool-rdma.kubectl" -}}
- name: {{ .name }}
  {{- include "spiderpool-rdma.containerImage" (include "spiderpool-rdma.kubectlImage" .root | fromJson) | nindent 2 }}
  command: {{ toJson .command }}
  {{- with .mounts }}
  volumeMounts: {{ toJson . }}
  {{- end }}
  resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {cpu: 200m, memory: 128Mi}}
  securityContext:
    {{- include "spiderpool-rdma.restrictedSecurityContext" .root | nindent 4 }}
{{- end -}}

{{/* Removing what the apply job applied and `selector` selects (the pre-delete job: all of it; the apply job's prune:
what the current revision no longer renders). Apps first, waiting for their pods to go, so that their addresses are
released before the pools go: (dict "root" $ "name" "x" "selector" "...") */}}
{{- define "spiderpool-rdma.deleteWorkloads" -}}
{{- include "spiderpool-rdma.kubectl" (dict "root" .root "name" .name "command" (list "kubectl" "delete"
    (printf "--namespace=%s" (include "spiderpool-rdma.appsNamespace" .root)) "deployments,services"
    (printf "--selector=%s" .selector)
    "--ignore-not-found" "--wait" "--cascade=foreground")) }}
{{- end -}}

{{/* Then networks, the SR-IOV policy and pools, without waiting: a pool keeps its finalizer while any pod (CoreDNS
on the default network) holds one of its addresses (Spiderpool pkg/ippoolmanager/ippool_informer.go); on uninstall
Spiderpool's own pre-delete cleanup, next, removes the finalizers and then every Spiderpool CRD. */}}
{{- define "spiderpool-rdma.deleteNetwork" -}}
{{- $kinds := printf "spidermultusconfigs,%sspiderippools" (ternary "sriovnetworknodepolicies," "" .root.Values.sriov.enabled) -}}
{{- include "spiderpool-rdma.kubectl" (dict "root" .root "name" .name "command" (list "kubectl" "delete"
    (printf "--namespace=%s" .root.Release.Namespace) $kinds (printf "--selector=%s" .selector)
    "--ignore-not-found" "--wait=false")) }}
{{- end -}}
