{{/*
One application service: Deployment + Service.
(dict "root" $ "name" "movies-service" "svc" .Values.moviesService "config" "movies-service-config"
      "secretEnv" (list "DB_CONNECTION_STRING:CATALOG_DB_CONNECTION_STRING") "livePath" "/health" "component" "catalogue")
secretEnv entries: "NAME" (from the Secret key NAME) or "NAME:KEY" (from the Secret key KEY).
Optional "files" (dict "configMap" "proxy-routes" "mountPath" "/etc/cinemaabyss/proxy"): a
ConfigMap mounted read-only as files.
Optional "opsPort": a second port, named ops (the proxy's operators' listener), where /metrics is.
*/}}
{{- define "cinemaabyss.app" -}}
{{- $root := .root -}}
{{- $svc := .svc -}}
{{- $sel := dict "root" $root "name" .name -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  labels:
    {{- include "cinemaabyss.labels" $root | nindent 4 }}
    app.kubernetes.io/name: {{ .name }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not (and (eq .name "proxy-service") $svc.autoscaling.enabled) }}
  replicas: {{ $svc.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "cinemaabyss.selectorLabels" $sel | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: {{ $root.Values.rollingUpdate.maxSurge }}
      maxUnavailable: {{ $root.Values.rollingUpdate.maxUnavailable }}
  template:
    metadata:
      labels:
        {{- include "cinemaabyss.selectorLabels" $sel | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
        app.kubernetes.io/part-of: cinemaabyss
        # Istio's telemetry and the fortio stats group by these two.
        app: {{ .name }}
        version: {{ $root.Values.image.tag | default $root.Chart.AppVersion | quote }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ .opsPort | default $svc.port | quote }}
        prometheus.io/path: /metrics
    spec:
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      # Longer than SHUTDOWN_TIMEOUT_MS (10 s): in-flight requests finish before SIGKILL.
      terminationGracePeriodSeconds: 30
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ .name }}
          image: {{ include "cinemaabyss.appImage" (dict "root" $root "svc" $svc) }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          ports:
            - name: http
              containerPort: {{ $svc.port }}
              protocol: TCP
            {{- with .opsPort }}
            - name: ops
              containerPort: {{ . }}
              protocol: TCP
            {{- end }}
          envFrom:
            - configMapRef:
                name: {{ .config }}
          {{- with .secretEnv }}
          env:
            {{- range . }}
            {{- /* "NAME" (the Secret key of that name) or "NAME:KEY" */}}
            {{- $parts := splitList ":" . }}
            - name: {{ first $parts }}
              valueFrom:
                secretKeyRef:
                  name: {{ include "cinemaabyss.secretName" $root }}
                  key: {{ last $parts }}
            {{- end }}
          {{- end }}
          startupProbe:
            httpGet: { path: {{ .livePath }}, port: http }
            {{- toYaml $root.Values.probes.startup | nindent 12 }}
          readinessProbe:
            httpGet: { path: /ready, port: http }
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          livenessProbe:
            httpGet: { path: {{ .livePath }}, port: http }
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          lifecycle:
            # Let endpoints and sidecars drop the pod before the server stops accepting.
            preStop:
              exec: { command: ["sleep", "5"] }
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          {{- /* Node runs the TypeScript sources itself: nothing is written, /tmp included. */}}
          {{- with .files }}
          volumeMounts:
            - name: files
              mountPath: {{ .mountPath }}
              readOnly: true
          {{- end }}
      {{- with .files }}
      volumes:
        - name: files
          configMap:
            name: {{ .configMap }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  labels:
    {{- include "cinemaabyss.labels" $root | nindent 4 }}
    app.kubernetes.io/name: {{ .name }}
    app.kubernetes.io/component: {{ .component }}
    app: {{ .name }}
spec:
  type: ClusterIP
  selector:
    {{- include "cinemaabyss.selectorLabels" $sel | nindent 4 }}
  ports:
    - name: http
      port: {{ $svc.port }}
      targetPort: http
      protocol: TCP
      appProtocol: http
    {{- with .opsPort }}
    - name: ops
      port: {{ . }}
      targetPort: ops
      protocol: TCP
      appProtocol: http
    {{- end }}
{{- end }}
