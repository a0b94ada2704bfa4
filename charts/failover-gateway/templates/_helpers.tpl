{{/* Name of the chart, overridable. */}}
{{- define "failover-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, at most 63 characters (DNS label); "-admin" is appended to it for
the admin Service, so it is cut at 57.
*/}}
{{- define "failover-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 57 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "failover-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "failover-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "failover-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "failover-gateway.labels" -}}
helm.sh/chart: {{ include "failover-gateway.chart" . }}
{{ include "failover-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "failover-gateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "failover-gateway.configMapName" -}}
{{- default (printf "%s-config" (include "failover-gateway.fullname" .)) .Values.existingConfigMap }}
{{- end }}

{{- define "failover-gateway.secretName" -}}
{{- printf "%s-secrets" (include "failover-gateway.fullname" .) }}
{{- end }}
