{{/* Names, labels and images shared by the templates. */}}

{{- define "egressgw.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "egressgw.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "egressgw.name" . -}}
{{- end -}}
{{- end -}}

{{- define "egressgw.labels" -}}
app.kubernetes.io/name: {{ include "egressgw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: include with (list $ "manager"). */}}
{{- define "egressgw.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "egressgw.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "egressgw.componentLabels" -}}
{{ include "egressgw.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "egressgw.managerName" -}}{{ include "egressgw.fullname" . }}-manager{{- end -}}
{{- define "egressgw.agentName" -}}{{ include "egressgw.fullname" . }}-agent{{- end -}}

{{- define "egressgw.managerServiceAccount" -}}
{{- default "egressgw-manager" .Values.manager.serviceAccount.name -}}
{{- end -}}
{{- define "egressgw.agentServiceAccount" -}}
{{- default "egressgw-agent" .Values.agent.serviceAccount.name -}}
{{- end -}}

{{/* The image reference of a component: include with (list $ .Values.manager.image). */}}
{{- define "egressgw.image" -}}
{{- $ := index . 0 -}}
{{- $img := index . 1 -}}
{{- $repo := $img.repository -}}
{{- if $.Values.image.registry -}}{{- $repo = printf "%s/%s" $.Values.image.registry $img.repository -}}{{- end -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $repo $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default $.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* The node's CNI directories: the values, else each cloud's (docs/cni.md). */}}
{{- define "egressgw.cniConfDir" -}}
{{- default "/etc/cni/net.d" .Values.agent.cni.confDir -}}
{{- end -}}
{{- define "egressgw.cniBinDir" -}}
{{- if .Values.agent.cni.binDir -}}{{- .Values.agent.cni.binDir -}}
{{- else if eq .Values.cloud "gcp" -}}/home/kubernetes/bin
{{- else -}}/opt/cni/bin
{{- end -}}
{{- end -}}

{{/* The agent's flags that the run and the uninstall share: CNI and datapath settings. */}}
{{- define "egressgw.agentSharedArgs" -}}
{{- $a := .Values.agent -}}
- --install-cni={{ $a.cni.enabled }}
{{- if $a.cni.enabled }}
- --cni-conf-dir={{ include "egressgw.cniConfDir" . }}
- --cni-bin-dir={{ include "egressgw.cniBinDir" . }}
- --cni-socket={{ trimSuffix "/" $a.cni.socketDir }}/cni.sock
{{- end }}
{{- with $a.vxlan.device }}
- --tunnel-device={{ . }}
{{- end }}
{{- if not (kindIs "invalid" $a.vxlan.port) }}
- --vxlan-port={{ int64 $a.vxlan.port }}
{{- end }}
{{- if not (kindIs "invalid" $a.vxlan.vni) }}
- --vni={{ int64 $a.vxlan.vni }}
{{- end }}
{{- if not (kindIs "invalid" $a.vxlan.mtu) }}
- --tunnel-mtu={{ int64 $a.vxlan.mtu }}
{{- end }}
{{- with $a.marks.steerMask }}
- --steer-mask={{ . }}
{{- end }}
{{- with $a.marks.replyMark }}
- --reply-mark={{ . }}
{{- end }}
{{- if not (kindIs "invalid" $a.routing.tableBase) }}
- --table-base={{ int64 $a.routing.tableBase }}
{{- end }}
{{- if not (kindIs "invalid" $a.routing.returnTable) }}
- --return-table={{ int64 $a.routing.returnTable }}
{{- end }}
{{- if not (kindIs "invalid" $a.routing.rulePriority) }}
- --rule-priority={{ int64 $a.routing.rulePriority }}
{{- end }}
{{- with $a.uplink }}
- --uplink={{ . }}
{{- end }}
- --log-level={{ $a.logLevel }}
{{- end -}}

{{/* Host paths of the agent and of the uninstall hook: the datapath's tools and the CNI directories. */}}
{{- define "egressgw.agentVolumeMounts" -}}
- name: xtables-lock
  mountPath: /run/xtables.lock
- name: lib-modules
  mountPath: /lib/modules
  readOnly: true
{{- if .Values.agent.cni.enabled }}
- name: cni-conf
  mountPath: {{ include "egressgw.cniConfDir" . }}
- name: cni-bin
  mountPath: {{ include "egressgw.cniBinDir" . }}
- name: cni-socket
  mountPath: {{ trimSuffix "/" .Values.agent.cni.socketDir }}
{{- end }}
{{- end -}}

{{- define "egressgw.agentVolumes" -}}
- name: xtables-lock
  hostPath:
    path: /run/xtables.lock
    type: FileOrCreate
- name: lib-modules
  hostPath:
    path: /lib/modules
{{- if .Values.agent.cni.enabled }}
- name: cni-conf
  hostPath:
    path: {{ include "egressgw.cniConfDir" . }}
    type: DirectoryOrCreate
- name: cni-bin
  hostPath:
    path: {{ include "egressgw.cniBinDir" . }}
    type: DirectoryOrCreate
- name: cni-socket
  hostPath:
    path: {{ trimSuffix "/" .Values.agent.cni.socketDir }}
    type: DirectoryOrCreate
{{- end }}
{{- end -}}

{{- define "egressgw.agentSecurityContext" -}}
{{- if .Values.agent.privileged }}
privileged: true
{{- else }}
privileged: false
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
  add: [NET_ADMIN, NET_RAW]
{{- end }}
{{- end -}}
