{{/* The text `helm install` prints; a named template so tests can render it too. */}}
{{- define "klaviyo-consumer.notes" -}}
klaviyo-consumer {{ .Chart.AppVersion }} is deployed as release {{ .Release.Name }} in namespace {{ .Release.Namespace }}.

{{- $workloads := (include "klaviyo-consumer.workloads" . | fromYaml).items }}

{{ .Values.workload }}s (stage → consumer groups; each pod's name is its --instance-id):
{{- range $workloads }}
  {{ .name }}: run --stage {{ .stage }} →{{ range .groups }} {{ .group }}{{ end }}
{{- end }}
{{- if eq .Values.workload "Deployment" }}

workload=Deployment: pods get new names on each restart, so a replacement does not fence its
predecessor's transactions (an open one blocks its outbox partitions for up to 60 s) and each
restart rebalances. workload=StatefulSet keeps the names.
{{- end }}

Watch the rollout; a pod is ready once the integrations are loaded, partitions are assigned and
the tracking state is restored:
{{- range $workloads }}
  kubectl -n {{ $.Release.Namespace }} rollout status {{ .kind | lower }}/{{ .name }}
{{- end }}

Health and metrics:
  kubectl -n {{ .Release.Namespace }} port-forward service/{{ (first $workloads).name }} {{ .Values.service.port }}
  curl -s localhost:{{ .Values.service.port }}/readyz; curl -s localhost:{{ .Values.service.port }}/metrics | grep klaviyo_consumer_
{{- if .Values.helmTest.enabled }}
  helm test -n {{ .Release.Namespace }} {{ .Release.Name }}
{{- end }}

Autoscaling: {{ if .Values.autoscaling.keda.enabled }}KEDA ScaledObject on consumer-group lag (threshold {{ .Values.autoscaling.keda.lagThreshold }} records per replica and topic){{ else if .Values.autoscaling.hpa.enabled }}HorizontalPodAutoscaler on CPU/memory{{ else }}off (fixed replicas){{ end }}.
{{- if not .Values.serviceMonitor.enabled }}

Metrics are not scraped by a prometheus-operator: set serviceMonitor.enabled=true (and
prometheusRule.enabled=true for the alerts).
{{- end }}

Runbook: https://github.com/klaviyo-consumer/klaviyo-consumer/blob/main/docs/operations.md
{{- end }}
