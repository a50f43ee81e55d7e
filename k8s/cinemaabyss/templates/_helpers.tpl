{{/* Common labels of every object. */}}
{{- define "cinemaabyss.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: cinemaabyss
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "name" "movies-service") */}}
{{- define "cinemaabyss.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{/* Image of an application service: (dict "root" $ "svc" .Values.proxy) */}}
{{- define "cinemaabyss.appImage" -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- if eq (toString $tag) "latest" }}{{ fail "image.tag must be a version, not latest" }}{{ end -}}
{{- if .root.Values.image.registry -}}
{{ printf "%s/%s:%s" (trimSuffix "/" .root.Values.image.registry) .svc.imageName $tag }}
{{- else -}}
{{ printf "%s:%s" .svc.imageName $tag }}
{{- end -}}
{{- end }}

{{- define "cinemaabyss.secretName" -}}cinemaabyss-secrets{{- end }}

{{/* PostgreSQL URL of a database, password from the Secret via $(POSTGRES_PASSWORD). */}}
{{- define "cinemaabyss.postgresHost" -}}postgres.{{ .Release.Namespace }}.svc.cluster.local{{- end }}

{{/*
The tracing variables of every service's ConfigMap (values.yaml tracing): the OTLP receiver
(the chart's Jaeger unless tracing.endpoint names another) and the sampler. Nothing when off.
*/}}
{{- define "cinemaabyss.tracingEnv" -}}
{{- $t := .Values.tracing -}}
{{- if $t.enabled }}
{{- if and (not $t.endpoint) (not .Values.jaeger.enabled) }}{{ fail "tracing.enabled needs tracing.endpoint or jaeger.enabled" }}{{ end }}
# Spans as OTLP http/protobuf (lib/tracing/).
OTEL_EXPORTER_OTLP_ENDPOINT: {{ $t.endpoint | default "http://jaeger:4318" | quote }}
OTEL_TRACES_SAMPLER: {{ $t.sampler | quote }}
OTEL_TRACES_SAMPLER_ARG: {{ $t.samplerArg | toString | quote }}
{{- end }}
{{- end }}

{{/* Kafka client authentication of the services (SCRAM-SHA-512 on :9092; password from the Secret). */}}
{{- define "cinemaabyss.kafkaClientEnv" -}}
KAFKA_SASL_MECHANISM: "scram-sha-512"
KAFKA_SASL_USERNAME: {{ .Values.kafka.sasl.username | quote }}
{{- end }}
