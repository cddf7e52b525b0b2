{{/*
Naming and labels follow kube-state-metrics: name, fullname (63 characters, the release name
alone when it already contains the chart name), chart, labels, selectorLabels. Selectors hold
only immutable labels (name, instance, component), never the chart version.
*/}}

{{- define "agentprod.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agentprod.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The name of one component's objects: <fullname>-<component>, within 63 characters. */}}
{{- define "agentprod.componentName" -}}
{{- printf "%s-%s" (include "agentprod.fullname" .ctx | trunc (int (sub 62 (len .component))) | trimSuffix "-") .component }}
{{- end }}

{{- define "agentprod.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agentprod.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentprod.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{- define "agentprod.labels" -}}
helm.sh/chart: {{ include "agentprod.chart" . }}
{{ include "agentprod.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agentprod
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component; call with (dict "ctx" $ "component" "api"). */}}
{{- define "agentprod.componentSelectorLabels" -}}
{{ include "agentprod.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "agentprod.componentLabels" -}}
{{ include "agentprod.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "agentprod.namespace" -}}
{{- .Release.Namespace }}
{{- end }}

{{/* repository:tag, the tag defaulting to the chart's appVersion; call with (dict "image" .. "ctx" $). */}}
{{- define "agentprod.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag | toString) }}
{{- end }}

{{- define "agentprod.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "agentprod.componentName" (dict "ctx" . "component" "operator")) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Namespaces the operator watches (JSON list); the release namespace when none are given. */}}
{{- define "agentprod.operator.watchNamespaces" -}}
{{- if .Values.operator.watchNamespaces }}
{{- .Values.operator.watchNamespaces | uniq | toJson }}
{{- else }}
{{- list .Release.Namespace | toJson }}
{{- end }}
{{- end }}

{{/* Connection settings: explicit values, else the dev services, else the example's names. */}}
{{- define "agentprod.redisURL" -}}
{{- if .Values.redis.url }}
{{- .Values.redis.url }}
{{- else if .Values.redis.dev.enabled }}
{{- printf "redis://%s.%s.svc:6379/0" (include "agentprod.componentName" (dict "ctx" . "component" "redis")) .Release.Namespace }}
{{- else }}
{{- "redis://redis:6379/0" }}
{{- end }}
{{- end }}

{{- define "agentprod.rocketmqEndpoints" -}}
{{- if .Values.rocketmq.endpoints }}
{{- .Values.rocketmq.endpoints }}
{{- else if .Values.rocketmq.dev.enabled }}
{{- printf "%s.%s.svc:8081" (include "agentprod.componentName" (dict "ctx" . "component" "rocketmq")) .Release.Namespace }}
{{- else }}
{{- "rocketmq-proxy:8081" }}
{{- end }}
{{- end }}

{{- define "agentprod.rocketmqNameServer" -}}
{{- if .Values.rocketmq.nameServer }}
{{- .Values.rocketmq.nameServer }}
{{- else if .Values.rocketmq.dev.enabled }}
{{- printf "%s.%s.svc:9876" (include "agentprod.componentName" (dict "ctx" . "component" "rocketmq")) .Release.Namespace }}
{{- else }}
{{- "rocketmq-namesrv:9876" }}
{{- end }}
{{- end }}

{{/*
Annotations of the API's objects (Deployment, Service, Ingress, HPA, PDB): Argo CD sync wave 2,
after the pipelines (wave 1), because /readyz needs the RocketMQ topics that the operator
creates for them. Call with (dict "extra" <annotations from values>); a wave given there wins.
*/}}
{{- define "agentprod.api.annotations" -}}
{{- merge (dict) (.extra | default (dict)) (dict "argocd.argoproj.io/sync-wave" "2") | toYaml }}
{{- end }}

{{/* The restricted pod security of the operator and the API. */}}
{{- define "agentprod.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "agentprod.securityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/* REDIS_URL, MQ_ENDPOINT, MQ_NAMESRV and the RocketMQ keys (app/agentprod/settings.py). */}}
{{- define "agentprod.connectionEnv" -}}
{{- if .Values.redis.existingSecret.name }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret.name }}
      key: {{ .Values.redis.existingSecret.key }}
{{- else }}
- name: REDIS_URL
  value: {{ include "agentprod.redisURL" . | quote }}
{{- end }}
- name: MQ_ENDPOINT
  value: {{ include "agentprod.rocketmqEndpoints" . | quote }}
- name: MQ_NAMESRV
  value: {{ include "agentprod.rocketmqNameServer" . | quote }}
{{- with .Values.rocketmq.credentialsSecret }}
- name: MQ_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: accessKey
- name: MQ_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: secretKey
{{- end }}
{{- end }}

{{/* LOG_FORMAT and, with observability.tracing.enabled, the standard OTEL_* variables of one
service (docs/observability.md). Called with (dict "ctx" $ "service" "agentprod-api"). */}}
{{- define "agentprod.observabilityEnv" -}}
{{- $o := .ctx.Values.observability }}
- name: LOG_FORMAT
  value: {{ $o.logFormat | quote }}
{{- if $o.tracing.enabled }}
{{- if not $o.tracing.endpoint }}
{{- fail "observability.tracing.enabled needs observability.tracing.endpoint (the OTLP endpoint)" }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ .service | quote }}
- name: OTEL_TRACES_EXPORTER
  value: otlp
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $o.tracing.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $o.tracing.protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $o.tracing.sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $o.tracing.samplerArg | quote }}
{{- with $o.tracing.resourceAttributes }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
