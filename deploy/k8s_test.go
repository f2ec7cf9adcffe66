package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/cairn-dev/cairn/internal/config"
)

// kubeKinds are the Kubernetes API types the manifests may use, by apiVersion/kind.
var kubeKinds = map[string]func() any{
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"batch/v1/Job":                           func() any { return &batchv1.Job{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return &networkingv1.NetworkPolicy{} },
	"networking.k8s.io/v1/Ingress":           func() any { return &networkingv1.Ingress{} },
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeKube decodes every YAML document of a manifest file into its Kubernetes API
// type, refusing what the type does not have (a misspelt field), duplicate keys and
// values of the wrong type, as the API server's strict field validation would.
func decodeKube(name string, data []byte) ([]any, error) {
	var objs []any
	for i, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		js, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("%s document %d: %w", name, i+1, err)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(js, &tm); err != nil {
			return nil, fmt.Errorf("%s document %d: %w", name, i+1, err)
		}
		newObj, ok := kubeKinds[tm.APIVersion+"/"+tm.Kind]
		if !ok {
			return nil, fmt.Errorf("%s document %d: unknown apiVersion/kind %s/%s", name, i+1, tm.APIVersion, tm.Kind)
		}
		// The API server's own decoder: case-sensitive (encoding/json would take
		// "pathtype" for pathType), unknown and duplicate fields refused.
		obj := newObj()
		strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowUnknownFields, kjson.DisallowDuplicateFields)
		if err == nil {
			err = errors.Join(strict...)
		}
		if err != nil {
			return nil, fmt.Errorf("%s document %d (%s): %w", name, i+1, tm.Kind, err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// kubeManifests are the decoded objects of deploy/k8s.
type kubeManifests struct {
	deployment *appsv1.Deployment
	job        *batchv1.Job
	service    *corev1.Service
	secret     *corev1.Secret
	adapter    *corev1.ConfigMap
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	ingress    *networkingv1.Ingress
	policies   []*networkingv1.NetworkPolicy
}

func loadKube(t *testing.T) kubeManifests {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	var m kubeManifests
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeKube(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			switch o := o.(type) {
			case *appsv1.Deployment:
				m.deployment = o
			case *batchv1.Job:
				m.job = o
			case *corev1.Service:
				m.service = o
			case *corev1.Secret:
				m.secret = o
			case *corev1.ConfigMap:
				m.adapter = o
			case *policyv1.PodDisruptionBudget:
				m.pdb = o
			case *autoscalingv2.HorizontalPodAutoscaler:
				m.hpa = o
			case *networkingv1.Ingress:
				m.ingress = o
			case *networkingv1.NetworkPolicy:
				m.policies = append(m.policies, o)
			}
		}
	}
	if m.deployment == nil || m.job == nil || m.service == nil || m.secret == nil || m.adapter == nil ||
		m.pdb == nil || m.hpa == nil || m.ingress == nil || len(m.policies) == 0 {
		t.Fatalf("deploy/k8s lacks a kind: %+v", m)
	}
	return m
}

// TestKubernetesManifestsDecodeStrictly: every manifest is valid against the
// Kubernetes API types, with no field they do not know.
func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	loadKube(t)
}

// TestKubernetesManifestTypoFails proves the strict decoding catches mistakes: a
// copy of a shipped manifest with one field misspelt (or mistyped) must not decode.
func TestKubernetesManifestTypoFails(t *testing.T) {
	for _, tc := range []struct{ file, from, to, want string }{
		{"deployment.yaml", "readinessProbe:", "readinesProbe:", "readinesProbe"},
		{"deployment.yaml", "whenUnsatisfiable: DoNotSchedule", "whenUnsatisfable: DoNotSchedule", "whenUnsatisfable"},
		{"deployment.yaml", "fsGroup: 65532\n        seccompProfile:", "fsGroup: 65532\n        seccompProfil:", "seccompProfil"},
		{"deployment.yaml", "  replicas: 3\n", "  replicas: three\n", "replicas"},
		{"hpa.yaml", "minReplicas: 3", "minReplica: 3", "minReplica"},
		{"pdb.yaml", "minAvailable: 2", "minAvailabe: 2", "minAvailabe"},
		{"ingress.yaml", "pathType: Prefix", "pathtype: Prefix", "pathtype"},
		{"networkpolicy.yaml", "policyTypes: [Ingress, Egress]\n  egress:", "policyType: [Ingress, Egress]\n  egress:", "policyType"},
		{"migrate-job.yaml", "backoffLimit: 4", "backoffLimit: 4\n  backoffLimit: 5", "backoffLimit"},
	} {
		t.Run(tc.file+"/"+tc.want, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("k8s", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(data), tc.from); n != 1 {
				t.Fatalf("%q occurs %d times in %s, want once (update the test)", tc.from, n, tc.file)
			}
			if _, err := decodeKube(tc.file, data); err != nil {
				t.Fatalf("the shipped %s does not decode: %v", tc.file, err)
			}
			broken := strings.Replace(string(data), tc.from, tc.to, 1)
			_, err = decodeKube(tc.file, []byte(broken))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s with %q: %v, want an error naming %s", tc.file, tc.to, err, tc.want)
			}
		})
	}
	if _, err := decodeKube("x.yaml", []byte("apiVersion: apps/v1\nkind: Deploymnt\nmetadata: {name: x}\n")); err == nil {
		t.Fatal("a misspelt kind decoded")
	}
}

var releaseImage = regexp.MustCompile(`^[a-z0-9.\-/]+:(\d+\.\d+\.\d+)$`)

// readElsewhere are variables the manifests may set that internal/config does not
// read, with their reader.
var readElsewhere = map[string]string{
	"GOMEMLIMIT": "the Go runtime",
}

func containerEnv(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// TestKubernetesManifestsSemantics checks what the API types cannot: the choices
// the issue asks for and the agreement between the manifests and the code.
func TestKubernetesManifestsSemantics(t *testing.T) {
	m := loadKube(t)
	dep, pod := m.deployment, m.deployment.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(m.job.Spec.Template.Spec.Containers) != 1 {
		t.Fatal("want one container in the Deployment and in the Job")
	}
	app, migrate := pod.Containers[0], m.job.Spec.Template.Spec.Containers[0]
	env := containerEnv(app)

	t.Run("ImagePinned", func(t *testing.T) {
		v := releaseImage.FindStringSubmatch(app.Image)
		if v == nil {
			t.Fatalf("Deployment image %q is not pinned to a release x.y.z", app.Image)
		}
		if migrate.Image != app.Image {
			t.Errorf("the migration Job runs %q, the Deployment %q", migrate.Image, app.Image)
		}
		if !strings.HasSuffix(m.job.Name, "-"+v[1]) {
			t.Errorf("Job %q is not named after the release %s (a Job is immutable: one per release)", m.job.Name, v[1])
		}
	})

	t.Run("MigrationsAsAJob", func(t *testing.T) {
		if !slices.Equal(migrate.Args, []string{"migrate"}) || !slices.Equal(app.Args, []string{"serve"}) {
			t.Fatalf("Job args %v, Deployment args %v: want migrate and serve", migrate.Args, app.Args)
		}
		cfg := loadEnvConfig(t, env)
		if cfg.Migrate {
			t.Fatal("replicas migrate themselves (MIGRATE is not false) beside the Job")
		}
		sp := app.StartupProbe
		if sp == nil || sp.HTTPGet == nil {
			t.Fatal("no HTTP startupProbe")
		}
		if budget := time.Duration(sp.PeriodSeconds*sp.FailureThreshold) * time.Second; budget <= cfg.SchemaWait {
			t.Fatalf("startupProbe gives up after %s, before SCHEMA_WAIT (%s) is over", budget, cfg.SchemaWait)
		}
		if app.LivenessProbe == nil || app.ReadinessProbe == nil || app.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Fatal("want a liveness probe and a readiness probe on /readyz")
		}
	})

	t.Run("GraceOutlastsDraining", func(t *testing.T) {
		// The kubelet runs preStop, then sends SIGTERM; the replica serves on for
		// SHUTDOWN_DRAIN, then finishes in-flight requests for up to 25 s
		// (internal/server's shutdownTimeout).
		var preStop time.Duration
		if app.Lifecycle != nil && app.Lifecycle.PreStop != nil && app.Lifecycle.PreStop.Sleep != nil {
			preStop = time.Duration(app.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
		need := preStop + loadEnvConfig(t, env).ShutdownDrain + 25*time.Second
		if grace := pod.TerminationGracePeriodSeconds; grace == nil || time.Duration(*grace)*time.Second <= need {
			t.Fatalf("terminationGracePeriodSeconds %v is not over preStop + SHUTDOWN_DRAIN + 25 s = %s", grace, need)
		}
	})

	t.Run("Hardened", func(t *testing.T) {
		for name, spec := range map[string]corev1.PodSpec{"Deployment": pod, "Job": m.job.Spec.Template.Spec} {
			sc := spec.SecurityContext
			if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
				sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Errorf("%s: pod securityContext wants runAsNonRoot and seccompProfile RuntimeDefault: %+v", name, sc)
			}
			for _, c := range spec.Containers {
				cs := c.SecurityContext
				if cs == nil || cs.SeccompProfile == nil || cs.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
					cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem ||
					cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
					t.Errorf("%s/%s: container securityContext is not locked down: %+v", name, c.Name, cs)
				}
			}
		}
	})

	t.Run("Spread", func(t *testing.T) {
		keys := map[string]bool{}
		for _, c := range pod.TopologySpreadConstraints {
			if c.LabelSelector == nil || !selects(c.LabelSelector.MatchLabels, dep.Spec.Template.Labels) {
				t.Errorf("spread constraint on %s does not select the replicas", c.TopologyKey)
			}
			keys[c.TopologyKey] = true
		}
		if !keys["kubernetes.io/hostname"] || !keys["topology.kubernetes.io/zone"] {
			t.Fatalf("spread over %v, want hosts and zones", keys)
		}
	})

	t.Run("PDBAndHPA", func(t *testing.T) {
		if m.pdb.Spec.MinAvailable == nil || m.pdb.Spec.MinAvailable.IntValue() != 2 || !selects(m.pdb.Spec.Selector.MatchLabels, dep.Spec.Template.Labels) {
			t.Errorf("PDB: minAvailable %v over %v, want 2 over the replicas", m.pdb.Spec.MinAvailable, m.pdb.Spec.Selector)
		}
		h := m.hpa.Spec
		if h.MinReplicas == nil || *h.MinReplicas != 3 || h.MaxReplicas < 3 {
			t.Errorf("HPA: min %v max %d, want min 3", h.MinReplicas, h.MaxReplicas)
		}
		if h.ScaleTargetRef.Kind != "Deployment" || h.ScaleTargetRef.Name != dep.Name {
			t.Errorf("HPA scales %s/%s, not the Deployment %s", h.ScaleTargetRef.Kind, h.ScaleTargetRef.Name, dep.Name)
		}
		if dep.Spec.Replicas == nil || *dep.Spec.Replicas < *h.MinReplicas {
			t.Errorf("Deployment replicas %v below the HPA's minimum", dep.Spec.Replicas)
		}
		var cpu bool
		var podsMetric string
		for _, mt := range h.Metrics {
			switch {
			case mt.Resource != nil && mt.Resource.Name == corev1.ResourceCPU:
				cpu = true
			case mt.Pods != nil:
				podsMetric = mt.Pods.Metric.Name
			}
		}
		if !cpu || podsMetric == "" {
			t.Fatalf("HPA metrics: cpu %v, request rate %q; want both", cpu, podsMetric)
		}
		// The adapter's rule must turn the request counter into that metric (that
		// the replicas serve the counter, TestMonitoringNamesOnlyRealMetrics checks).
		r := adapterRule(t, m.adapter)
		series, _, _ := strings.Cut(r.SeriesQuery, "{")
		if !strings.HasSuffix(series, "_total") {
			t.Errorf("the adapter reads %q, want a request counter (…_total)", series)
		}
		if got := regexp.MustCompile(r.Name.Matches).ReplaceAllString(series, r.Name.As); got != podsMetric {
			t.Errorf("the adapter names the rate %q, the HPA reads %q", got, podsMetric)
		}
	})

	t.Run("MetricsNeverPublic", func(t *testing.T) {
		metricsPort := 0
		for _, p := range app.Ports {
			if p.Name == "metrics" {
				metricsPort = int(p.ContainerPort)
			}
		}
		if _, port, _ := strings.Cut(env["METRICS_ADDR"], ":"); metricsPort == 0 || port != strconv.Itoa(metricsPort) {
			t.Fatalf("METRICS_ADDR %q and the metrics container port %d disagree", env["METRICS_ADDR"], metricsPort)
		}
		if got := dep.Spec.Template.Annotations["prometheus.io/port"]; got != strconv.Itoa(metricsPort) {
			t.Errorf("prometheus.io/port = %q, want the metrics port %d", got, metricsPort)
		}
		for _, p := range m.service.Spec.Ports {
			if p.TargetPort.String() == "metrics" || p.TargetPort.IntValue() == metricsPort {
				t.Errorf("Service port %s leads to the metrics port", p.Name)
			}
		}
		for _, rule := range m.ingress.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				if strings.HasPrefix(p.Path, "/metrics") {
					t.Errorf("the Ingress routes %s", p.Path)
				}
				b := p.Backend.Service
				if b == nil || b.Name != m.service.Name || b.Port.Name != "http" {
					t.Errorf("Ingress path %s goes to %+v, want the Service %s's http port", p.Path, b, m.service.Name)
				}
			}
		}
		if !slices.ContainsFunc(m.service.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "http" && p.TargetPort.String() == "http" }) {
			t.Error("the Service has no http port leading to the container's http port")
		}
	})

	t.Run("NetworkPolicy", func(t *testing.T) {
		var ports []int
		for _, np := range m.policies {
			if !selects(np.Spec.PodSelector.MatchLabels, dep.Spec.Template.Labels) {
				continue
			}
			for _, in := range np.Spec.Ingress {
				if len(in.From) == 0 {
					t.Errorf("NetworkPolicy %s lets anyone in", np.Name)
				}
				for _, p := range in.Ports {
					ports = append(ports, p.Port.IntValue())
				}
			}
		}
		slices.Sort(ports)
		if !slices.Equal(ports, []int{8080, 9090}) {
			t.Fatalf("NetworkPolicy admits ports %v, want 8080 (app) and 9090 (metrics)", ports)
		}
	})

	t.Run("Memory", func(t *testing.T) {
		limit := app.Resources.Limits.Memory().Value()
		goLimit, err := parseGoMemLimit(env["GOMEMLIMIT"])
		if err != nil || limit == 0 {
			t.Fatalf("GOMEMLIMIT %q (%v), memory limit %d: want both", env["GOMEMLIMIT"], err, limit)
		}
		cache := loadEnvConfig(t, env).Retrieval.VectorCacheBytes
		if goLimit > limit*9/10 {
			t.Errorf("GOMEMLIMIT %d is over 90%% of the memory limit %d: no room outside the heap", goLimit, limit)
		}
		if cache > goLimit/2 {
			t.Errorf("VECTOR_CACHE_MB (%d MiB) is over half of GOMEMLIMIT (%d MiB)", cache>>20, goLimit>>20)
		}
	})

	t.Run("EnvKnown", func(t *testing.T) {
		known := config.Variables()
		for name, c := range map[string]corev1.Container{"Deployment": app, "Job": migrate} {
			if len(c.EnvFrom) > 0 {
				t.Errorf("%s: envFrom sets variables no test checks; list them in env", name)
			}
			for _, e := range c.Env {
				if !slices.Contains(known, e.Name) && readElsewhere[e.Name] == "" && !strings.HasPrefix(e.Name, "OTEL_") {
					t.Errorf("%s sets %s, which Cairn does not read", name, e.Name)
				}
			}
		}
	})

	t.Run("SecretsAsFiles", func(t *testing.T) {
		known := config.Variables()
		for key := range m.secret.StringData {
			if !slices.Contains(known, key+"_FILE") {
				t.Errorf("the example Secret holds %s, which is not a secret Cairn reads from a file", key)
			}
		}
		if !strings.HasPrefix(m.secret.StringData["REDIS_URL"], "redis") {
			t.Errorf("the example Secret has no REDIS_URL")
		}
		for name, spec := range map[string]corev1.PodSpec{"Deployment": pod, "Job": m.job.Spec.Template.Spec} {
			mounts := map[string]string{} // mount path → Secret name
			for _, c := range spec.Containers {
				for _, vm := range c.VolumeMounts {
					for _, v := range spec.Volumes {
						if v.Name == vm.Name && v.Secret != nil {
							mounts[vm.MountPath] = v.Secret.SecretName
						}
					}
				}
				for _, e := range c.Env {
					key, ok := strings.CutSuffix(e.Name, "_FILE")
					if !ok {
						continue
					}
					if mounts[path.Dir(e.Value)] != m.secret.Name || path.Base(e.Value) != key {
						t.Errorf("%s: %s=%s is not the key %s of the mounted Secret %s", name, e.Name, e.Value, key, m.secret.Name)
					}
					if _, ok := m.secret.StringData[key]; !ok {
						t.Errorf("%s reads %s, which the example Secret lacks (the file would be missing)", name, e.Name)
					}
					if _, plain := containerEnv(c)[key]; plain {
						t.Errorf("%s sets both %s and %s", name, key, e.Name)
					}
				}
			}
		}
	})
}

// adapterRuleSpec is one rule of the Prometheus adapter's configuration.
type adapterRuleSpec struct {
	SeriesQuery  string         `json:"seriesQuery"`
	Resources    map[string]any `json:"resources"`
	Name         struct{ Matches, As string }
	MetricsQuery string `json:"metricsQuery"`
}

// adapterRule is the one rule of k8s/prometheus-adapter.yaml's configuration.
func adapterRule(t *testing.T, cm *corev1.ConfigMap) adapterRuleSpec {
	t.Helper()
	var rules struct{ Rules []adapterRuleSpec }
	if err := yaml.UnmarshalStrict([]byte(cm.Data["config.yaml"]), &rules); err != nil || len(rules.Rules) != 1 {
		t.Fatalf("prometheus adapter rules: %v %+v", err, rules)
	}
	return rules.Rules[0]
}

// selects reports whether a matchLabels selector picks pods labelled labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// loadEnvConfig validates a container's plain variables with Cairn's own
// configuration loader (the _FILE secrets are not there to read).
func loadEnvConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	plain := map[string]string{}
	for k, v := range env {
		if !strings.HasSuffix(k, "_FILE") {
			plain[k] = v
		}
	}
	cfg, err := config.Load(func(k string) string { return plain[k] }, nil)
	if err != nil {
		t.Fatalf("the manifest's variables do not load:\n%v", err)
	}
	return cfg
}

// parseGoMemLimit reads GOMEMLIMIT's form: a byte count with an optional B, KiB,
// MiB, GiB or TiB suffix.
func parseGoMemLimit(s string) (int64, error) {
	mult := int64(1)
	for i, suffix := range []string{"TiB", "GiB", "MiB", "KiB", "B"} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = n, int64(1)<<(10*(4-i))
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("GOMEMLIMIT %q is not a size such as 900MiB", s)
	}
	return n * mult, nil
}
