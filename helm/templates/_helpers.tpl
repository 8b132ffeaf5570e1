{{/*
Names. Resource names are derived from the chart name (not the release name), exactly like the
Connaisseur chart 2.x, so that `helm upgrade` of an existing Connaisseur release replaces its
objects in place (Deployment selectors are immutable).
*/}}
{{- define "connaisseur.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "connaisseur.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "connaisseur.serviceName" -}}{{ include "connaisseur.name" . }}-svc{{- end -}}
{{- define "connaisseur.serviceAccountName" -}}{{ include "connaisseur.name" . }}-serviceaccount{{- end -}}
{{- define "connaisseur.tlsName" -}}{{ include "connaisseur.name" . }}-tls{{- end -}}
{{- define "connaisseur.webhookName" -}}{{ include "connaisseur.name" . }}-webhook{{- end -}}
{{- define "connaisseur.appConfigName" -}}{{ include "connaisseur.name" . }}-app-config{{- end -}}
{{- define "connaisseur.envName" -}}{{ include "connaisseur.name" . }}-env{{- end -}}
{{- define "connaisseur.envSecretName" -}}{{ include "connaisseur.name" . }}-env-secret{{- end -}}
{{- define "connaisseur.alertConfigName" -}}{{ include "connaisseur.name" . }}-alert-config{{- end -}}
{{- define "connaisseur.alertConfigPath" -}}/app/alerts/config.yaml{{- end -}}
{{- define "connaisseur.alertTemplatesName" -}}{{ include "connaisseur.name" . }}-alert-templates{{- end -}}
{{- define "connaisseur.roleName" -}}{{ include "connaisseur.name" . }}-role{{- end -}}
{{- define "connaisseur.roleBindingName" -}}{{ include "connaisseur.name" . }}-role-binding{{- end -}}
{{- define "connaisseur.clusterRoleName" -}}{{ include "connaisseur.name" . }}-cluster-role{{- end -}}
{{- define "connaisseur.clusterRoleBindingName" -}}{{ include "connaisseur.name" . }}-cluster-role-binding{{- end -}}
{{- define "connaisseur.pdbName" -}}{{ include "connaisseur.name" . }}-pod-disruption-budget{{- end -}}
{{- define "connaisseur.redisName" -}}{{ include "connaisseur.name" . }}-redis{{- end -}}
{{- define "connaisseur.redisService" -}}{{ include "connaisseur.name" . }}-redis-service{{- end -}}
{{- define "connaisseur.redisSecret" -}}{{ include "connaisseur.name" . }}-redis-secret{{- end -}}
{{- define "connaisseur.redisTLS" -}}{{ include "connaisseur.name" . }}-redis-tls{{- end -}}
{{- define "connaisseur.redisPort" -}}6379{{- end -}}
{{/* The Secret holding the cache HMAC key (D5): an existing one if named, else the chart's. */}}
{{- define "connaisseur.cacheKeySecret" -}}
{{- (.Values.kubernetes.redis | default dict).hmacKeySecret | default (printf "%s-cache-key" (include "connaisseur.name" .)) -}}
{{- end -}}
{{- define "connaisseur.cacheKeySecretKey" -}}hmac.key{{- end -}}
{{- define "connaisseur.namespaceSelectorKey" -}}securesystemsengineering.connaisseur/webhook{{- end -}}
{{- define "connaisseur.notAfterAnnotation" -}}connaisseur-py/tls-not-after{{- end -}}

{{/* Labels: Connaisseur's chart 2.x labels. */}}
{{- define "connaisseur.labels" -}}
helm.sh/chart: {{ include "connaisseur.chart" . }}
app.kubernetes.io/name: {{ include "connaisseur.name" . }}
app.kubernetes.io/instance: {{ .Chart.Name }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.kubernetes.additionalLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "connaisseur.selectorLabels" -}}
app.kubernetes.io/name: {{ include "connaisseur.name" . }}
app.kubernetes.io/instance: {{ .Chart.Name }}
{{- with .Values.kubernetes.deployment.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "connaisseur.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "connaisseur.name" . }}
app.kubernetes.io/instance: redis
{{- end -}}

{{/*
The Connaisseur image. The upstream Go image cannot run this chart's command line, so a values
file migrated from Connaisseur that still names it gets this chart's default image instead.
*/}}
{{- define "connaisseur.upstreamImage" -}}docker.io/securesystemsengineering/connaisseur{{- end -}}
{{- define "connaisseur.defaultImage" -}}connaisseur-py{{- end -}}

{{- define "connaisseur.usesUpstreamImage" -}}
{{- $repo := .Values.kubernetes.deployment.image.repository | default "" -}}
{{- if has (trimPrefix "docker.io/" $repo) (list "securesystemsengineering/connaisseur") -}}true{{- end -}}
{{- end -}}

{{- define "connaisseur.image" -}}
{{- $image := .Values.kubernetes.deployment.image | default dict -}}
{{- if include "connaisseur.usesUpstreamImage" . -}}
{{- printf "%s:%s" (include "connaisseur.defaultImage" .) .Chart.AppVersion -}}
{{- else -}}
{{- $repo := $image.repository | default (include "connaisseur.defaultImage" .) -}}
{{- printf "%s:%s" $repo (toString ($image.tag | default .Chart.AppVersion)) -}}
{{- end -}}
{{- end -}}

{{- define "connaisseur.redisImage" -}}
{{- $image := .Values.kubernetes.redis.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (toString ($image.tag | default "7")) -}}
{{- end -}}
{{- end -}}

{{/*
Feature values with Connaisseur's defaults. `default` cannot be used for booleans (a false
would become the default), hence hasKey.
*/}}
{{- define "connaisseur.feature" -}}
{{- $features := .root.Values.application.features | default dict -}}
{{- if hasKey $features .key -}}{{ index $features .key }}{{- else -}}{{ .default }}{{- end -}}
{{- end -}}

{{- define "connaisseur.cacheExpirySeconds" -}}
{{- $cache := (.Values.application.features | default dict).cache | default dict -}}
{{- if hasKey $cache "expirySeconds" -}}{{ int $cache.expirySeconds }}{{- else -}}30{{- end -}}
{{- end -}}

{{- define "connaisseur.cacheErrors" -}}
{{- $cache := (.Values.application.features | default dict).cache | default dict -}}
{{- if hasKey $cache "cacheErrors" -}}{{ $cache.cacheErrors }}{{- else -}}true{{- end -}}
{{- end -}}

{{/* "true" when Redis is deployed: cache expiry > 0. */}}
{{- define "connaisseur.cacheEnabled" -}}
{{- if gt (int (include "connaisseur.cacheExpirySeconds" .)) 0 -}}true{{- end -}}
{{- end -}}

{{/*
"true" when the application looks up owners: child approval on and not `podsOnly` (the
application then ignores child approval, config/container.py make_child_approval).
*/}}
{{- define "connaisseur.childApproval" -}}
{{- $on := eq (include "connaisseur.feature" (dict "root" . "key" "automaticChildApproval" "default" true)) "true" -}}
{{- $mode := include "connaisseur.feature" (dict "root" . "key" "resourceValidationMode" "default" "all") | lower -}}
{{- if and $on (ne $mode "podsonly") -}}true{{- end -}}
{{- end -}}

{{/*
Validators as written into the application config: a chart-level `auth.username/password`
(optionally `registry`) becomes `auth.secretName: <validator>-auth` and a Secret of that name,
as in Connaisseur's chart. Unlike Connaisseur, a cosign or notation validator without `auth.registry` is refused
when rendering (the application refuses it too): credentials must name the registry they are for,
so they are never sent to a registry they were not meant for
(docs/decisions/0015-credentials-name-their-registry.md).
*/}}
{{- define "connaisseur.hasChartAuth" -}}
{{- if and (kindIs "map" .auth) (or (hasKey .auth "username") (hasKey .auth "password")) -}}true{{- end -}}
{{- end -}}

{{- define "connaisseur.checkValidator" -}}
{{- if not (kindIs "map" .) -}}{{ fail "application.validators: every entry must be a map" }}{{- end -}}
{{- if include "connaisseur.hasChartAuth" . -}}
  {{- if not .name -}}{{ fail "application.validators: a validator with auth.username/password needs a name" }}{{- end -}}
  {{- if not (and .auth.username .auth.password) -}}
    {{- fail (printf "application.validators[%s].auth: username and password must both be set" .name) -}}
  {{- end -}}
  {{- if and (ne (.type | toString) "notaryv1") (not .auth.registry) -}}
    {{- fail (printf "application.validators[%s].auth: username/password need auth.registry for a %s validator" .name (.type | toString)) -}}
  {{- end -}}
  {{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" (printf "%s-auth" .name)) -}}
    {{- fail (printf "application.validators[%s]: the name must be a lower-case DNS label to hold credentials (Secret %s-auth)" .name .name) -}}
  {{- end -}}
{{- end -}}
{{- end -}}

{{- define "connaisseur.renderedValidators" -}}
{{- $mirrors := fromYaml (include "connaisseur.mirrors" .) -}}
{{- $out := list -}}
{{- range .Values.application.validators -}}
  {{- include "connaisseur.checkValidator" . -}}
  {{- $v := deepCopy . -}}
  {{- if include "connaisseur.hasChartAuth" . -}}
    {{- $_ := set $v "auth" (dict "secretName" (printf "%s-auth" .name)) -}}
  {{- end -}}
  {{- if hasKey $mirrors.byValidator (toString .name) -}}
    {{- $_ := set $v "mirrors" (get $mirrors.byValidator (toString .name)) -}}
  {{- end -}}
  {{- $out = append $out $v -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
Registry mirrors, global (`application.mirrors`) and per cosign or notation validator (its
`mirrors`), as written into the application config (docs/decisions/0050-registry-mirrors.md):
an endpoint's inline `auth.username/password` becomes `auth.secretName: <owner>-mirror-<i>-<j>-auth`
(owner: the release name for global entries, else the validator) and a Secret of that name,
mounted like validator credentials, so no password is written into the ConfigMap. Everything
else passes through for the application to check.
Result (YAML): shared (the global list, absent when unset), byValidator (validator → list),
secrets (Secret name → auth), mounted (names of the Secrets to mount, created or existing).
*/}}
{{- define "connaisseur.mirrors" -}}
{{- $owners := list -}}
{{- if hasKey .Values.application "mirrors" -}}
  {{- $owners = append $owners (dict "owner" (include "connaisseur.name" .) "path" "application.mirrors" "mirrors" .Values.application.mirrors "validator" "") -}}
{{- end -}}
{{- range .Values.application.validators -}}
  {{- if and (kindIs "map" .) (hasKey . "mirrors") -}}
    {{- $owners = append $owners (dict "owner" (toString .name) "path" (printf "application.validators[%s].mirrors" (toString .name)) "mirrors" .mirrors "validator" (toString .name)) -}}
  {{- end -}}
{{- end -}}
{{- $result := dict "byValidator" dict "secrets" dict "mounted" list -}}
{{- range $owner := $owners -}}
  {{- $out := list -}}
  {{- range $i, $mirror := (kindIs "slice" $owner.mirrors | ternary $owner.mirrors list) -}}
    {{- $m := deepCopy $mirror -}}
    {{- if and (kindIs "map" $m) (kindIs "slice" $m.endpoints) -}}
      {{- $endpoints := list -}}
      {{- range $j, $endpoint := $m.endpoints -}}
        {{- $e := deepCopy $endpoint -}}
        {{- $where := printf "%s[%d].endpoints[%d].auth" $owner.path $i $j -}}
        {{- if and (kindIs "map" $e) (include "connaisseur.hasChartAuth" $e) -}}
          {{- if not (and $e.auth.username $e.auth.password) -}}
            {{- fail (printf "%s: username and password must both be set" $where) -}}
          {{- end -}}
          {{- $name := printf "%s-mirror-%d-%d-auth" $owner.owner $i $j -}}
          {{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $name) -}}
            {{- fail (printf "%s: the credentials need a Secret named %s, not a lower-case DNS label; name the validator so" $where $name) -}}
          {{- end -}}
          {{- $_ := set $result.secrets $name $e.auth -}}
          {{- $_ := set $e "auth" (dict "secretName" $name) -}}
          {{- $_ := set $result "mounted" (append $result.mounted $name) -}}
        {{- else if and (kindIs "map" $e) (kindIs "map" $e.auth) $e.auth.secretName -}}
          {{- $_ := set $result "mounted" (append $result.mounted (toString $e.auth.secretName)) -}}
        {{- end -}}
        {{- $endpoints = append $endpoints $e -}}
      {{- end -}}
      {{- $_ := set $m "endpoints" $endpoints -}}
    {{- end -}}
    {{- $out = append $out $m -}}
  {{- end -}}
  {{- $rendered := kindIs "slice" $owner.mirrors | ternary $out $owner.mirrors -}}
  {{- if $owner.validator -}}
    {{- $_ := set $result.byValidator $owner.validator $rendered -}}
  {{- else -}}
    {{- $_ := set $result "shared" $rendered -}}
  {{- end -}}
{{- end -}}
{{- toYaml $result -}}
{{- end -}}

{{/* Names of the Secrets the validators read credentials from, each mounted at /app/secrets/<name>. */}}
{{- define "connaisseur.validatorSecrets" -}}
{{- $secrets := (fromYaml (include "connaisseur.mirrors" .)).mounted | default list -}}
{{- range .Values.application.validators -}}
  {{- if include "connaisseur.hasChartAuth" . -}}
    {{- $secrets = append $secrets (printf "%s-auth" .name) -}}
  {{- else if and (kindIs "map" .auth) .auth.secretName -}}
    {{- $secrets = append $secrets .auth.secretName -}}
  {{- end -}}
{{- end -}}
{{- toYaml (dict "list" (uniq $secrets)) -}}
{{- end -}}

{{/*
Secrets referenced as cosign keys `k8s://<namespace>/<name>` (cosign's format), grouped by namespace: the only
Secrets Connaisseur may read (Role per namespace, resourceNames pinned).
*/}}
{{- define "connaisseur.keySecretsByNamespace" -}}
{{- $byNs := dict -}}
{{- range .Values.application.validators -}}
  {{- range (.trustRoots | default list) -}}
    {{- $key := (.key | default "") | toString -}}
    {{- if hasPrefix "k8s://" $key -}}
      {{- $parts := splitList "/" (trimPrefix "k8s://" $key) -}}
      {{- $ns := first $parts -}}
      {{- $name := last $parts -}}
      {{- if or (ne (len $parts) 2) (not $name) (not $ns) -}}
        {{- fail (printf "trust root key %q: expected k8s://<namespace>/<secret>" $key) -}}
      {{- end -}}
      {{- $_ := set $byNs $ns (uniq (append (get $byNs $ns | default list) $name)) -}}
    {{- end -}}
  {{- end -}}
{{- end -}}
{{- toYaml $byNs -}}
{{- end -}}

{{/* "true" when the pod needs an API token: child approval or k8s:// keys. */}}
{{- define "connaisseur.needsApiAccess" -}}
{{- if or (include "connaisseur.childApproval" .) (fromYaml (include "connaisseur.keySecretsByNamespace" .)) -}}true{{- end -}}
{{- end -}}

{{/*
The application config (Connaisseur's, plus the keys our application reads from it): validators, policy,
features and log settings. Environment variables carry the same feature values. Alerting is
not here: receiver URLs and headers carry credentials, so it goes into a Secret (secrets.yaml)
mounted at /app/alerts/config.yaml and read with --alerting-config.
*/}}
{{- define "connaisseur.appConfig" -}}
{{- $app := .Values.application -}}
validators:
{{- include "connaisseur.renderedValidators" . | nindent 2 }}
policy:
{{- toYaml $app.policy | nindent 2 }}
{{- $mirrors := fromYaml (include "connaisseur.mirrors" .) }}
{{- if hasKey $mirrors "shared" }}
mirrors:
{{- toYaml $mirrors.shared | nindent 2 }}
{{- end }}
{{- with $app.features }}
features:
{{- toYaml . | nindent 2 }}
{{- end }}
logLevel: {{ $app.logLevel | default "info" | quote }}
logFormat: {{ $app.logFormat | default "json-pretty" | quote }}
{{- end -}}

{{/*
TLS material for a service: supplied in values, re-used from the cluster, or generated.

Input dict: root (the chart context), secret (Secret name), service (Service name), custom (the
`tls` values map), what (a label for messages). Result (YAML): cert, key, ca (PEM), notAfter
(unix seconds, "" when unknown), generated ("true"/"").

Re-use: `lookup` finds the Secret of a previous install; its certificate is kept while it is valid
for more than renewBeforeDays (the expiry is stored in an annotation by this chart). Secrets
without the annotation (e.g. from the Go Connaisseur chart, valid for 100 years) are replaced, so
every certificate this chart serves is bounded. `helm template` cannot look up: it generates.
*/}}
{{- define "connaisseur.tlsMaterial" -}}
{{- $custom := .custom | default dict -}}
{{- $certs := .root.Values.kubernetes.certificates | default dict -}}
{{- $days := int ($certs.validityDays | default 730) -}}
{{- $renew := int ($certs.renewBeforeDays | default 60) -}}
{{- if or $custom.cert $custom.key -}}
  {{- if not $custom.cert -}}{{ fail (printf "%s: a 'tls' section with a 'key' attribute is missing the 'cert' attribute" .what) }}{{- end -}}
  {{- if not $custom.key -}}{{ fail (printf "%s: a 'tls' section with a 'cert' attribute is missing the 'key' attribute" .what) }}{{- end -}}
  {{- toYaml (dict "cert" $custom.cert "key" $custom.key "ca" ($custom.caCert | default $custom.cert) "notAfter" "" "generated" "") -}}
{{- else -}}
  {{- $ns := .root.Release.Namespace -}}
  {{- $existing := lookup "v1" "Secret" $ns .secret -}}
  {{- $now := int64 (now | unixEpoch) -}}
  {{- $reuse := false -}}
  {{- if and $existing $existing.data $existing.metadata.annotations -}}
    {{- $notAfter := int64 (get $existing.metadata.annotations (include "connaisseur.notAfterAnnotation" .root) | default "0") -}}
    {{- if and (gt $notAfter (add $now (mul $renew 86400))) (index $existing.data "tls.crt") (index $existing.data "tls.key") (index $existing.data "ca.crt") -}}
      {{- $reuse = true -}}
      {{- toYaml (dict "cert" (b64dec (index $existing.data "tls.crt")) "key" (b64dec (index $existing.data "tls.key")) "ca" (b64dec (index $existing.data "ca.crt")) "notAfter" (toString $notAfter) "generated" "true") -}}
    {{- end -}}
  {{- end -}}
  {{- if not $reuse -}}
    {{- $cn := printf "%s.%s.svc" .service $ns -}}
    {{- $sans := list .service (printf "%s.%s" .service $ns) $cn (printf "%s.cluster.local" $cn) -}}
    {{- $ca := genCA (printf "%s-ca" .service) $days -}}
    {{- $leaf := genSignedCert $cn nil $sans $days $ca -}}
    {{- toYaml (dict "cert" $leaf.Cert "key" $leaf.Key "ca" $ca.Cert "notAfter" (toString (add $now (mul $days 86400))) "generated" "true") -}}
  {{- end -}}
{{- end -}}
{{- end -}}

{{/*
The type of a certificate Secret: the one it already has (a Secret's type cannot change, and the Go
Connaisseur chart's are Opaque, so an upgrade from it keeps that), else kubernetes.io/tls.
Input: dict root, secret (name).
*/}}
{{- define "connaisseur.tlsSecretType" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret | default dict -}}
{{- $existing.type | default "kubernetes.io/tls" -}}
{{- end -}}

{{/* Memoised per render, so the Secret, the webhook caBundle and the checksum agree. */}}
{{- define "connaisseur.webhookTLS" -}}
{{- if not (hasKey .Values "__webhookTLS") -}}
  {{- $in := dict "root" . "secret" (include "connaisseur.tlsName" .) "service" (include "connaisseur.serviceName" .) "custom" .Values.kubernetes.deployment.tls "what" "kubernetes.deployment.tls" -}}
  {{- $_ := set .Values "__webhookTLS" (include "connaisseur.tlsMaterial" $in) -}}
{{- end -}}
{{- .Values.__webhookTLS -}}
{{- end -}}

{{- define "connaisseur.redisTLSMaterial" -}}
{{- if not (hasKey .Values "__redisTLS") -}}
  {{- $in := dict "root" . "secret" (include "connaisseur.redisTLS" .) "service" (include "connaisseur.redisService" .) "custom" .Values.kubernetes.redis.tls "what" "kubernetes.redis.tls" -}}
  {{- $_ := set .Values "__redisTLS" (include "connaisseur.tlsMaterial" $in) -}}
{{- end -}}
{{- .Values.__redisTLS -}}
{{- end -}}

{{/* The Redis password: the one of a previous install, else a new random one. */}}
{{- define "connaisseur.redisPassword" -}}
{{- if not (hasKey .Values "__redisPassword") -}}
  {{- $existing := lookup "v1" "Secret" .Release.Namespace (include "connaisseur.redisSecret" .) -}}
  {{- $pw := "" -}}
  {{- if and $existing $existing.data (index $existing.data "REDIS_PASSWORD") -}}
    {{- $pw = b64dec (index $existing.data "REDIS_PASSWORD") -}}
  {{- else -}}
    {{- $pw = randAlphaNum 48 -}}
  {{- end -}}
  {{- $_ := set .Values "__redisPassword" $pw -}}
{{- end -}}
{{- .Values.__redisPassword -}}
{{- end -}}

{{/*
The per-install cache HMAC key (D5), shared by every replica: `kubernetes.redis.hmacKey` if set,
else the one of a previous install, else 64 random alphanumerics (crypto/rand, ~380 bits).
*/}}
{{- define "connaisseur.cacheHmacKey" -}}
{{- if not (hasKey .Values "__cacheHmacKey") -}}
  {{- $supplied := (.Values.kubernetes.redis | default dict).hmacKey | default "" | toString -}}
  {{- $key := "" -}}
  {{- if $supplied -}}
    {{- if lt (len $supplied) 32 -}}{{ fail "kubernetes.redis.hmacKey: use at least 32 characters" }}{{- end -}}
    {{- $key = $supplied -}}
  {{- else -}}
    {{- $existing := lookup "v1" "Secret" .Release.Namespace (include "connaisseur.cacheKeySecret" .) -}}
    {{- if and $existing $existing.data (index $existing.data (include "connaisseur.cacheKeySecretKey" .)) -}}
      {{- $key = b64dec (index $existing.data (include "connaisseur.cacheKeySecretKey" .)) -}}
    {{- else -}}
      {{- $key = randAlphaNum 64 -}}
    {{- end -}}
  {{- end -}}
  {{- $_ := set .Values "__cacheHmacKey" $key -}}
{{- end -}}
{{- .Values.__cacheHmacKey -}}
{{- end -}}

{{/* "true" when the chart creates the HMAC key Secret (no existing Secret named). */}}
{{- define "connaisseur.createsCacheKey" -}}
{{- if and (include "connaisseur.cacheEnabled" .) (not (.Values.kubernetes.redis | default dict).hmacKeySecret) -}}true{{- end -}}
{{- end -}}

{{/*
Checksum over everything the pods read at start-up (config is read once: ADR-6), so any change
rolls them: config maps, secrets, the serving certificate and the Redis CA. Of the ConfigMaps and
Secrets only names and data count: their labels carry the chart version, which the pods do not
read, so a chart upgrade that changes nothing they read does not roll them.
*/}}
{{- define "connaisseur.configChecksum" -}}
{{- $parts := list -}}
{{- $parts = append $parts (include "connaisseur.objectsData" (include (print .Template.BasePath "/configmaps.yaml") .) | sha256sum) -}}
{{- $parts = append $parts (include "connaisseur.objectsData" (include (print .Template.BasePath "/secrets.yaml") .) | sha256sum) -}}
{{- $parts = append $parts ((fromYaml (include "connaisseur.webhookTLS" .)).cert | sha256sum) -}}
{{- if include "connaisseur.cacheEnabled" . -}}
{{- $parts = append $parts ((fromYaml (include "connaisseur.redisTLSMaterial" .)).ca | sha256sum) -}}
{{- $parts = append $parts (include "connaisseur.redisPassword" . | sha256sum) -}}
{{- end -}}
{{- if include "connaisseur.createsCacheKey" . -}}
{{- $parts = append $parts (include "connaisseur.cacheHmacKey" . | sha256sum) -}}
{{- end -}}
{{- join "\n" $parts | sha256sum -}}
{{- end -}}

{{/* Custom alert templates shipped in alert_payload_templates/ (rendered only with alerting). */}}
{{- define "connaisseur.hasAlertTemplates" -}}
{{- if and .Values.alerting (.Files.Glob "alert_payload_templates/*.json") -}}true{{- end -}}
{{- end -}}

{{/* Name and data of each object of a rendered template (JSON, keys sorted), for checksums. */}}
{{- define "connaisseur.objectsData" -}}
{{- $out := list -}}
{{- range $doc := splitList "\n---" . -}}
  {{- $obj := fromYaml $doc -}}
  {{- if hasKey $obj "Error" -}}{{ fail (printf "checksum: unparsable object: %s" $obj.Error) }}{{- end -}}
  {{- if $obj.metadata -}}
    {{- $out = append $out (dict "name" $obj.metadata.name "data" ($obj.data | default dict)) -}}
  {{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
Whether the offline bundle serves every signature validator (`serve --offline`): true unless
kubernetes.deployment.offlineBundle.everyValidator is false; empty when false.
*/}}
{{- define "connaisseur.offlineEveryValidator" -}}
{{- $bundle := .Values.kubernetes.deployment.offlineBundle | default dict -}}
{{- if not (and (hasKey $bundle "everyValidator") (eq $bundle.everyValidator false)) }}true{{ end -}}
{{- end -}}

{{/*
The volume source of kubernetes.deployment.offlineBundle (README "Offline bundles"): exactly one
of configMap, secret, persistentVolumeClaim or image (besides the everyValidator switch);
rendered as YAML, empty when unset.
*/}}
{{- define "connaisseur.offlineBundleVolume" -}}
{{- $bundle := .Values.kubernetes.deployment.offlineBundle | default dict -}}
{{- $known := list "configMap" "secret" "persistentVolumeClaim" "image" -}}
{{- $given := list -}}
{{- range $key, $value := $bundle -}}
{{- if eq $key "everyValidator" -}}
{{- if not (kindIs "bool" $value) -}}
{{- fail "kubernetes.deployment.offlineBundle.everyValidator must be true or false" -}}
{{- end -}}
{{- else if has $key $known -}}
{{- $given = append $given $key -}}
{{- else -}}
{{- fail (printf "kubernetes.deployment.offlineBundle.%s: unknown source (one of configMap, secret, persistentVolumeClaim, image)" $key) -}}
{{- end -}}
{{- end -}}
{{- if and (hasKey $bundle "everyValidator") (not $given) -}}
{{- fail "kubernetes.deployment.offlineBundle.everyValidator: name a source (configMap, secret, persistentVolumeClaim or image)" -}}
{{- end -}}
{{- if gt (len $given) 1 -}}
{{- fail (printf "kubernetes.deployment.offlineBundle: one source only, got %s" (join ", " $given)) -}}
{{- end -}}
{{- with $bundle.configMap }}
{{- if not .name }}{{ fail "kubernetes.deployment.offlineBundle.configMap.name is required" }}{{ end }}
configMap:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $bundle.secret }}
{{- if not .secretName }}{{ fail "kubernetes.deployment.offlineBundle.secret.secretName is required" }}{{ end }}
secret:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $bundle.persistentVolumeClaim }}
{{- if not .claimName }}{{ fail "kubernetes.deployment.offlineBundle.persistentVolumeClaim.claimName is required" }}{{ end }}
persistentVolumeClaim:
  claimName: {{ .claimName }}
  readOnly: true
{{- end }}
{{- with $bundle.image }}
{{- if not .reference }}{{ fail "kubernetes.deployment.offlineBundle.image.reference is required" }}{{ end }}
image:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
