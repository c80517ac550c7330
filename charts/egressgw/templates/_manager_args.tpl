{{/* The manager's flags: the cloud, its settings, leader election, probing, ports. */}}
{{- define "egressgw.managerArgs" -}}
{{- $m := .Values.manager -}}
- --cloud={{ .Values.cloud }}
{{- if eq .Values.cloud "aws" }}
{{- with .Values.aws }}
- --aws-egress-interface={{ .egressInterface }}
{{- with .clusterName }}
- --aws-cluster-name={{ . }}
{{- end }}
{{- with .vpcID }}
- --aws-vpc-id={{ . }}
{{- end }}
{{- range $zone, $subnet := .egressSubnets }}
- --aws-egress-subnet={{ $zone }}={{ $subnet }}
{{- end }}
{{- range $k, $v := .egressSubnetTags }}
- --aws-egress-subnet-tag={{ $k }}={{ $v }}
{{- end }}
{{- with .securityGroups }}
- --aws-security-groups={{ join "," . }}
{{- end }}
{{- end }}
{{- else if eq .Values.cloud "gcp" }}
{{- with .Values.gcp }}
- --gcp-project={{ .project }}
{{- with .network }}
- --gcp-network={{ . }}
{{- end }}
{{- with .endpoint }}
- --gcp-endpoint={{ . }}
{{- end }}
{{- with .accessTokenFile }}
- --gcp-access-token-file={{ . }}
{{- end }}
{{- end }}
{{- else if eq .Values.cloud "azure" }}
{{- with .Values.azure }}
- --azure-subscription={{ .subscription }}
{{- with .resourceGroups }}
- --azure-resource-group={{ join "," . }}
{{- end }}
- --azure-cloud={{ .cloudName }}
{{- with .armEndpoint }}
- --azure-arm-endpoint={{ . }}
{{- end }}
{{- with .armAudience }}
- --azure-arm-audience={{ . }}
{{- end }}
{{- with .authorityHost }}
- --azure-authority-host={{ . }}
{{- end }}
{{- if .allowSharedNIC }}
- --azure-allow-shared-nic
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.caBundle.configMapName }}
- --ca-bundle=/etc/egressgw/ca/{{ .Values.caBundle.key }}
{{- end }}
- --log-level={{ $m.logLevel }}
- --metrics-bind-address=:{{ $m.metricsPort }}
- --health-probe-bind-address=:{{ $m.healthPort }}
- --leader-election-namespace={{ .Release.Namespace }}
- --leader-election-id={{ $m.leaderElection.id }}
- --lease-duration={{ $m.leaderElection.leaseDuration }}
- --renew-deadline={{ $m.leaderElection.renewDeadline }}
- --retry-period={{ $m.leaderElection.retryPeriod }}
- --agent-health-port={{ .Values.agent.healthPort }}
{{- with $m.probe.interval }}
- --probe-interval={{ . }}
{{- end }}
{{- with $m.probe.timeout }}
- --probe-timeout={{ . }}
{{- end }}
{{- if not (kindIs "invalid" $m.probe.failures) }}
- --probe-failures={{ int64 $m.probe.failures }}
{{- end }}
{{- if not (kindIs "invalid" $m.probe.successes) }}
- --probe-successes={{ int64 $m.probe.successes }}
{{- end }}
{{- if not (kindIs "invalid" $m.cloudCalls.concurrency) }}
- --cloud-concurrency={{ int64 $m.cloudCalls.concurrency }}
{{- end }}
{{- with $m.cloudCalls.timeout }}
- --cloud-timeout={{ . }}
{{- end }}
{{- with $m.cloudCalls.resync }}
- --cloud-resync={{ . }}
{{- end }}
{{- range $m.extraArgs }}
- {{ . }}
{{- end }}
{{- end -}}
