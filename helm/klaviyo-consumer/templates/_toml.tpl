{{/*
TOML for the service's settings file. Helm's own toToml writes every number as a float
(`session_timeout_ms = 45000.0`, `1e+06`); this writes whole numbers as integers.
Input: (list "<table path>" <dict>). Null values are left out (= the service's default).
*/}}
{{- define "klaviyo-consumer.toml.table" -}}
{{- $path := index . 0 }}
{{- $table := index . 1 }}
{{- if $path }}
[{{ $path }}]
{{- end }}
{{- range $key, $value := $table }}
{{- if not (or (kindIs "map" $value) (kindIs "invalid" $value)) }}
{{ include "klaviyo-consumer.toml.key" $key }} = {{ include "klaviyo-consumer.toml.value" $value }}
{{- end }}
{{- end }}
{{- range $key, $value := $table }}
{{- if kindIs "map" $value }}
{{ include "klaviyo-consumer.toml.table" (list (ternary (printf "%s.%s" $path (include "klaviyo-consumer.toml.key" $key)) (include "klaviyo-consumer.toml.key" $key) (ne $path "")) $value) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "klaviyo-consumer.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{- define "klaviyo-consumer.toml.value" -}}
{{- if kindIs "slice" . }}
{{- $items := list }}
{{- range . }}{{ $items = append $items (include "klaviyo-consumer.toml.value" .) }}{{ end }}
{{- printf "[%s]" (join ", " $items) }}
{{- else if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) }}
{{- if eq (float64 (int64 .)) (float64 .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else if kindIs "bool" . }}
{{- . }}
{{- else }}
{{- toJson (toString .) }}
{{- end }}
{{- end }}
