{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "klaviyo-consumer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart> unless the release name already contains the chart name. */}}
{{- define "klaviyo-consumer.fullname" -}}
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

{{- define "klaviyo-consumer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "klaviyo-consumer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "klaviyo-consumer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "klaviyo-consumer.labels" -}}
helm.sh/chart: {{ include "klaviyo-consumer.chart" . }}
{{ include "klaviyo-consumer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: klaviyo-consumer
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The workloads to run (StatefulSets or Deployments, `workload`), as a list of dicts:
  name      resource name (full name, plus -derive / -deliver in split mode)
  kind      StatefulSet or Deployment
  headless  the StatefulSet's headless Service (its pods' network identity)
  stage     the `run --stage` argument
  component app.kubernetes.io/component label
  groups    consumer groups the workload's pods join, each with the topics it consumes
  values    the stage's values (replicas, resources, autoscaling overrides)
Returned as YAML (`fromYaml` it): templates cannot return data otherwise.
*/}}
{{- define "klaviyo-consumer.workloads" -}}
{{- $full := include "klaviyo-consumer.fullname" . }}
{{- $topics := .Values.config.topics | default dict }}
{{- $derive := dict
    "group" (printf "%s-derive" .Values.kafka.groupId)
    "topics" (list
      ($topics.orders | default "orders")
      ($topics.returns | default "returns")
      ($topics.storefront_events | default "storefront-events")) }}
{{- $deliver := dict
    "group" (printf "%s-deliver" .Values.kafka.groupId)
    "topics" (list ($topics.outbox | default "klaviyo-outbox")) }}
{{- $list := list }}
{{- if eq .Values.stages.mode "split" }}
{{- $list = append $list (dict "name" (printf "%s-derive" $full | trunc 63 | trimSuffix "-") "stage" "derive" "component" "derive" "groups" (list $derive) "values" .Values.stages.derive) }}
{{- $list = append $list (dict "name" (printf "%s-deliver" $full | trunc 63 | trimSuffix "-") "stage" "deliver" "component" "deliver" "groups" (list $deliver) "values" .Values.stages.deliver) }}
{{- else }}
{{- $list = append $list (dict "name" $full "stage" "all" "component" "consumer" "groups" (list $derive $deliver) "values" .Values.stages.combined) }}
{{- end }}
{{- range $list }}
{{- $_ := set . "kind" $.Values.workload }}
{{- $_ = set . "headless" (printf "%s-headless" (.name | trunc 54 | trimSuffix "-")) }}
{{- end }}
{{- toYaml (dict "items" $list) }}
{{- end }}

{{/* Autoscaling values of one workload: the global ones with the stage's overrides. */}}
{{- define "klaviyo-consumer.autoscaling" -}}
{{- $root := index . 0 }}
{{- $deployment := index . 1 }}
{{- $merged := merge (deepCopy ($deployment.values.autoscaling | default dict)) (dict "lagThreshold" $root.Values.autoscaling.keda.lagThreshold) (pick $root.Values.autoscaling "minReplicas" "maxReplicas") }}
{{- toYaml $merged }}
{{- end }}

{{- define "klaviyo-consumer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "klaviyo-consumer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "klaviyo-consumer.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- $ref := printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag }}
{{- if .Values.image.digest }}
{{- $ref = printf "%s@%s" $ref .Values.image.digest }}
{{- end }}
{{- $ref }}
{{- end }}

{{/* The grace period: above the shutdown budget plus the service's 5 s watchdog. */}}
{{- define "klaviyo-consumer.terminationGracePeriodSeconds" -}}
{{- $floor := add (int .Values.shutdownSeconds) 5 }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $floor 10 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) $floor }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed shutdownSeconds + 5 (%d): the pod would be killed before the service finishes its shutdown" .Values.terminationGracePeriodSeconds $floor) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* The label that marks a StatefulSet's headless Service. */}}
{{- define "klaviyo-consumer.headlessLabel" -}}klaviyo-consumer/headless{{- end }}

{{/* Where the existing Secrets are mounted. */}}
{{- define "klaviyo-consumer.secretsDir" -}}/var/run/secrets/klaviyo-consumer{{- end }}

{{/* Settings the combinations of values cannot express in the schema. */}}
{{- define "klaviyo-consumer.validate" -}}
{{- if and .Values.autoscaling.hpa.enabled .Values.autoscaling.keda.enabled }}
{{- fail "autoscaling.hpa.enabled and autoscaling.keda.enabled are both true: enable at most one, two autoscalers would fight over the replica count" }}
{{- end }}
{{- if not .Values.kafka.bootstrapServers }}
{{- fail "kafka.bootstrapServers is required" }}
{{- end }}
{{- if and .Values.localState.enabled (eq .Values.localState.volume "persistentVolume") (ne .Values.workload "StatefulSet") }}
{{- fail "localState.volume=persistentVolume needs workload=StatefulSet (a Deployment pod gets a new name, and no claim of its own, on each restart); use localState.volume=emptyDir" }}
{{- end }}
{{- if not .Values.keyEncryptionKeys.existingSecret }}
{{- fail "keyEncryptionKeys.existingSecret is required: the service does not start without a key-encryption key" }}
{{- end }}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}
{{- if not .Values.kafka.sasl.mechanism }}
{{- fail (printf "kafka.sasl.mechanism is required with kafka.securityProtocol=%s" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if not .Values.kafka.sasl.existingSecret }}
{{- fail (printf "kafka.sasl.existingSecret is required with kafka.securityProtocol=%s" .Values.kafka.securityProtocol) }}
{{- end }}
{{- end }}
{{- if and (or .Values.kafka.tls.certKey .Values.kafka.tls.keyKey) (not (and .Values.kafka.tls.certKey .Values.kafka.tls.keyKey)) }}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey go together (mTLS needs both)" }}
{{- end }}
{{- if and .Values.kafka.tls.existingSecret (not (hasSuffix "SSL" .Values.kafka.securityProtocol)) }}
{{- fail (printf "kafka.tls.existingSecret is set but kafka.securityProtocol=%s does not use TLS" .Values.kafka.securityProtocol) }}
{{- end }}
{{- range $key, $_ := .Values.config.kafka | default dict }}
{{- if or (has $key (list "bootstrap_servers" "group_id" "security_protocol")) (hasPrefix "sasl_" $key) (hasPrefix "ssl_" $key) }}
{{- fail (printf "config.kafka.%s would be overridden: set the Kafka connection and its secrets with the kafka.* values" $key) }}
{{- end }}
{{- end }}
{{- if hasKey (.Values.config.integrations | default dict) "key_encryption_keys" }}
{{- fail "config.integrations.key_encryption_keys would put keys in a ConfigMap: use keyEncryptionKeys.existingSecret" }}
{{- end }}
{{- if hasKey (.Values.config.schema_registry | default dict) "basic_auth" }}
{{- fail "config.schema_registry.basic_auth would put a password in a ConfigMap: use schemaRegistry.existingSecret" }}
{{- end }}
{{- if hasKey .Values.config "http" }}
{{- fail "config.http is not used: the port is service.port, probes and scrapes depend on it" }}
{{- end }}
{{- end }}
