{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "pypowerwall-server.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or the release name when it already holds the chart name. */}}
{{- define "pypowerwall-server.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "pypowerwall-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pypowerwall-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pypowerwall-server.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pypowerwall-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The Secret holding gateways.yaml. */}}
{{- define "pypowerwall-server.secretName" -}}
{{- default (include "pypowerwall-server.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* The configuration file: server settings (port from service-independent values) and gateways. */}}
{{- define "pypowerwall-server.config" -}}
{{- if not .Values.gateways }}
{{- fail "set at least one gateway (gateways[0].id, .host, .gw_pwd) or existingSecret" }}
{{- end }}
{{- $cfg := dict "server" (.Values.server | default dict) "gateways" .Values.gateways }}
{{- toYaml $cfg }}
{{- end }}
