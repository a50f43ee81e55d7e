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
